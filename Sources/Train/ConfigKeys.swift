// The table of every training setting, each declared once (see ConfigKey.swift for what derives from it). To add a
// setting: add a property with its default to `TrainConfig`, one entry here, and the flag in
// Sources/dtrain/TrainOptions.swift (`ConfigFlagTests` fails until the flag exists). Order matters: it is the order
// of results.csv columns and of resume mismatch messages, so add new keys at the end.
import Foundation
import Loss
import Model

extension ConfigKey {
    /// Every setting of `TrainConfig`, in results.csv column order.
    public static let all: [ConfigKey] = [
        // MARK: Data and model
        .choice("dataset", \.dataset, DatasetName.self, .trajectory, "Dataset.", example: .synthetic),
        .value("data-dir", \.dataDir, .runtime, "Folder with the dataset files.", example: "/tmp/data"),
        .choice("model", \.model, ModelKind.self, .trajectory, "Encoder architecture (mlp: 784-512-512-128; cnn: 4 "
                + "conv + 2 linear; resnet*: residual networks; vit*: Vision Transformers, vit = vit-tiny's shape "
                + "changed by --patch-size, --embed-dim, --depth, --heads, --mlp-ratio).", example: .cnn),
        .choice("loss", \.loss, LossKind.self, .trajectory, "Loss.", example: .ceSupcon),
        .value("lambda", \.lambda, .trajectory, "Weight λ of the contrastive term in (1-λ)·CE + λ·contrastive.",
               example: "0.5", rule: ConfigRule("must be in [0, 1]") { (0...1).contains($0) }),
        .value("tau", \.tau, .trajectory, "Temperature τ of the contrastive losses, > 0.", example: "0.1",
               rule: .positive),
        .value("beta", \.beta, .trajectory, "Hard-negative exponent β of LACLN and H-SCL.", example: "2.0",
               rule: .nonNegative),

        // MARK: Optimisation
        .value("batch-size", \.batchSize, .trajectory,
               "Global images per step, split over the ranks; each gives two views.", example: "64",
               rule: .atLeast(1)),
        .value("epochs", \.epochs, .runLength, "Epochs over the training set.", example: "3", rule: .atLeast(1)),
        .optional("max-steps", \.maxSteps, .runLength, "Stop after this many steps (the schedule ends there).",
                  unset: "", example: "7", rule: .atLeast(1)),
        .optional("lr", \.lr, .trajectory, "Base learning rate.", unset: "0.05·√(batch/256)", example: "0.1",
                  rule: .positive, used: { "\($0.baseLearningRate)" }),
        .value("weight-decay", \.weightDecay, .trajectory, "Weight decay.", example: "0.0",
               rule: .nonNegative),
        .choice("optimizer", \.optimizer, OptimizerKind.self, .trajectory, "Optimiser (sgd uses --momentum).",
                example: .adamw),
        .value("momentum", \.momentum, .trajectory, "Momentum of SGD.", example: "0.5",
               rule: ConfigRule("must be in [0, 1)") { (0..<1).contains($0) }),
        .value("warmup-epochs", \.warmupEpochs, .trajectory, "Linear warm-up epochs before the cosine decay.",
               example: "0.5", rule: .nonNegative),
        .value("seed", \.seed, .trajectory, "Seed of initialisation, shuffling and augmentation.", example: "7"),
        .optional("train-limit", \.trainLimit, .trajectory, "Use only the first N training images.", unset: "all",
                  example: "100", rule: .atLeast(1)),
        .optional("test-limit", \.testLimit, .evaluation, "Use only the first N test images.", unset: "all",
                  example: "50", rule: .atLeast(1)),

        // MARK: Run
        .optional("out", \.out, .runtime, "Folder for config.json, metrics.jsonl and the checkpoint.", unset: "",
                  example: "/tmp/run", axis: false, column: false),
        .value("log-every", \.logEvery, .runtime, "Log a metrics line every K steps.", example: "5",
               rule: .atLeast(1), column: false),
        .value("blas-threads", \.blasThreads, .runtime, "OpenBLAS threads per rank.", example: "2",
               rule: .atLeast(1), column: false),
        .value("quiet", \.quiet, .runtime, "No progress lines; the summary line is still printed.", example: "true",
               column: false, shownDefault: ""),
        .value("debug", \.debug, .runtime, "Single-node debug mode: a small subset, a finite-difference check of the "
               + "whole gradient before training, finiteness checks every step, per-rank log lines.",
               example: "true", column: false, shownDefault: ""),

        // MARK: Evaluation
        .custom("eval", .evaluation, "Evaluations, comma-separated (joined by + in a study grid): "
                + EvalMode.names + "; the first gives test_accuracy.", unset: "head, or linear-probe when the loss trains no head",
                example: "knn+linear-probe", choices: EvalMode.names,
                read: { $0.eval.map { $0.map(\.rawValue).joined(separator: "+") } },
                used: { $0.evaluations.map(\.rawValue).joined(separator: "+") },
                write: { config, text in
                    config.eval = try TrainConfig.parseEvaluations(text.replacingOccurrences(of: "+", with: ","))
                },
                decode: { config, box in
                    let key = TrainConfig.CodingKeys("eval")
                    if box.contains(key) { config.eval = try box.decodeIfPresent([EvalMode].self, forKey: key) }
                },
                encode: { config, box in
                    try box.encodeIfPresent(config.eval, forKey: TrainConfig.CodingKeys("eval"))
                }),
        .value("knn-k", \.knnK, .evaluation,
               "Neighbours of the k-NN evaluation (cosine, votes weighted by exp(sim/0.07)).", example: "5",
               rule: .atLeast(1)),
        .value("probe-epochs", \.probeEpochs, .evaluation,
               "Unused since the linear probe is fitted by L-BFGS to convergence (kept so older configs load).",
               example: "2", rule: .atLeast(1)),
        .value("epoch-eval", \.epochEval, .evaluation, "Evaluate only after the last epoch, not after every one "
               + "(saves the per-epoch k-NN or head pass; the result is the same).", example: "false",
               flag: "--no-epoch-eval", column: false, shownDefault: ""),

        // MARK: Gradient reduction and checkpoints
        .value("overlap", \.overlap, .runtime, "One all-reduce after backward instead of buckets overlapped with it.",
               example: "false", flag: "--no-overlap", column: false, shownDefault: ""),
        .value("bucket-size", \.bucketSize, .runtime, "Gradient elements per all-reduce bucket when overlapping.",
               example: "1024", rule: .atLeast(1), column: false),
        .value("checkpoint-every", \.checkpointEvery, .runtime,
               "Write DIR/checkpoint.safetensors every N steps (needs --out); 0: only at the end.", example: "5",
               rule: .atLeast(0), column: false),
        .value("checkpoint-every-epochs", \.checkpointEveryEpochs, .runtime,
               "Also write the checkpoint after every N-th epoch (needs --out); 0: never.", example: "1",
               rule: .atLeast(0), column: false),

        // MARK: Architecture and initialisation
        .optional("init", \.initWeights, .trajectory, "Initialise the encoder from this safetensors weights file.",
                  unset: "random", example: "/tmp/weights.safetensors"),
        .value("init-head", \.initHead, .trajectory,
               "With --init, also load the head's weights (no: a fresh head, e.g. for other classes).",
               example: "no", shownDefault: "yes"),
        .optional("image-size", \.imageSize, .trajectory, "Resize images to this many pixels a side, >= 8.",
                  unset: "native", example: "64", rule: .atLeast(8)),
        .value("norm", \.norm, .trajectory, "Normalisation layer of the ResNets.", example: NormKind.group.rawValue),
        .value("norm-groups", \.normGroups, .trajectory, "Channel groups of --norm group.", example: "4",
               rule: .atLeast(1)),
        .value("stem", \.stem, .trajectory, "First layers of the ResNets (cifar: one 3×3 conv, no pooling).",
               example: StemKind.cifar.rawValue),

        // MARK: Class subsets
        .custom("classes", .trajectory, "Train on these class ids only, comma-separated (joined by + in a study "
                + "grid); labels become their positions in the list, the ids are kept in the checkpoint's config.",
                unset: "all", example: "0+1+2", axis: true,
                read: { $0.classes.map { $0.map(String.init).joined(separator: "+") } },
                write: { config, text in config.classes = try TrainConfig.parseClasses(text) },
                decode: { config, box in
                    let key = TrainConfig.CodingKeys("classes")
                    if box.contains(key) { config.classes = try box.decodeIfPresent([Int].self, forKey: key) }
                },
                encode: { config, box in
                    try box.encodeIfPresent(config.classes, forKey: TrainConfig.CodingKeys("classes"))
                }),
        // MARK: Stopping, divergence and stalls
        .value("checkpoint", \.checkpoint, .runtime, "Write no checkpoint (with --out the default is one every epoch, "
               + "every --checkpoint-minutes, at the end and when stopped by SIGINT or SIGTERM).", example: "false",
               flag: "--no-checkpoint", column: false, shownDefault: ""),
        .value("checkpoint-minutes", \.checkpointMinutes, .runtime,
               "Also write the checkpoint when this many minutes have passed since the last one (with --out); 0: never.",
               example: "0.5", rule: .nonNegative, column: false),
        .value("divergence-factor", \.divergenceFactor, .runtime, "Stop the run when the smoothed loss exceeds this "
               + "many times its running minimum after the warm-up; 0: never.", example: "5",
               rule: ConfigRule("must be 0 or a finite number > 1") { $0 == 0 || ($0 > 1 && $0.isFinite) },
               column: false),
        .optional("step-timeout", \.stepTimeout, .runtime, "End the job (MPI_Abort) when no training step finishes "
                  + "(or an evaluation makes no progress) for this many seconds, e.g. a rank is stalled; 0: never.",
                  unset: "max(300, 10× the slowest step)", example: "60", rule: .nonNegative, column: false),
        // MARK: Vision Transformer shape (overrides the --model preset's)
        .optional("patch-size", \.patchSize, .trajectory,
                  "Patch size P of the ViT models; the image sides must be multiples of it.", unset: "the preset's",
                  example: "7", rule: .atLeast(1)),
        .optional("embed-dim", \.embedDim, .trajectory,
                  "Token width D of the ViT models (the embedding size), a multiple of --heads.",
                  unset: "the preset's", example: "32", rule: .atLeast(1)),
        .optional("depth", \.depth, .trajectory, "Transformer blocks of the ViT models.", unset: "the preset's",
                  example: "2", rule: .atLeast(1)),
        .optional("heads", \.heads, .trajectory, "Attention heads of the ViT models.", unset: "the preset's",
                  example: "2", rule: .atLeast(1)),
        .optional("mlp-ratio", \.mlpRatio, .trajectory, "MLP hidden size over D of the ViT models.",
                  unset: "the preset's", example: "4.0", rule: .positive),

        // MARK: Image files
        .optional("cache-dir", \.cacheDir, .runtime, "Folder for the decoded images of --dataset folder.",
                  unset: "DIR/.dtrain-cache", example: "/tmp/cache", column: false),
        channelList("mean", \.mean, "Per-channel mean of pixel/255 to normalise with, comma-separated (joined by + "
                    + "in a study grid).", example: "0.5+0.4+0.3"),
        channelList("std", \.std, "Per-channel standard deviation of pixel/255 to normalise with, comma-separated "
                    + "(joined by + in a study grid).", example: "0.25+0.2+0.2"),

        // MARK: Run length in steps and gradient caching
        .optional("steps", \.steps, .runLength, "Train for exactly this many steps whatever the batch size (as many "
                  + "epochs as that takes); the warm-up is the same share of the run as --warmup-epochs of --epochs.",
                  unset: "", example: "500", rule: .atLeast(1), column: false),  // results.csv's `steps` says it
        .optional("chunk-size", \.chunkSize, .trajectory, "Gradient caching: images per rank per forward chunk. The "
                  + "step embeds the local batch chunk by chunk without keeping activations, computes the loss on "
                  + "all embeddings, then re-runs each chunk forward and backward: the same gradient as one pass, in "
                  + "the memory of one chunk, for one extra forward of all chunks but one. Not with BatchNorm (use --norm group) "
                  + "unless it covers the whole local batch.",
                  unset: "the whole local batch", example: "64", rule: .atLeast(1)),
    ]

    /// A per-channel list of numbers (`--mean`, `--std`): comma-separated as text, a JSON array in files.
    static func channelList(_ name: String, _ path: WritableKeyPath<TrainConfig, [Double]?> & Sendable,
                            _ help: String, example: String) -> ConfigKey {
        let key = TrainConfig.CodingKeys(name)
        return .custom(name, .trajectory, help, unset: "the dataset's (measured on the training split for folder "
                       + "and npy)", example: example, column: false,
                       read: { $0[keyPath: path].map { $0.map { "\($0)" }.joined(separator: ",") } },
                       write: { config, text in
                           let values = text.split(whereSeparator: { $0 == "," || $0 == "+" })
                               .map { Double($0.trimmingCharacters(in: .whitespaces)) }
                           guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
                               throw ConfigError("\(name): \"\(text)\" is not a comma-separated list of numbers")
                           }
                           config[keyPath: path] = values.map { $0! }
                       },
                       decode: { config, box in
                           if box.contains(key) {
                               config[keyPath: path] = try box.decodeIfPresent([Double].self, forKey: key)
                           }
                       },
                       encode: { config, box in try box.encodeIfPresent(config[keyPath: path], forKey: key) })
    }

    /// The table by name.
    static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The setting called `name` (kebab-case), or nil.
    public static func named(_ name: String) -> ConfigKey? { byName[name] }
}

// MARK: - What derives from the table

extension TrainConfig {
    /// Sets the setting named by config key `key` (kebab-case, as in JSON config files) from its text form.
    /// Throws `ConfigError` for an unknown key or a value of the wrong type; range checks are `problems()`'s.
    public mutating func set(_ key: String, to text: String) throws {
        guard let setting = ConfigKey.named(key) else { throw ConfigError("unknown setting \"\(key)\"") }
        try setting.set(text, in: &self)
    }

    /// The settings of this config that are results.csv columns, as (config key, text) pairs in table order:
    /// optional values left unset are empty; `lr` is the base rate actually used; `eval` the resolved list joined
    /// by `+`.
    public var parameterColumns: [(name: String, value: String)] {
        ConfigKey.all.filter(\.isResultColumn).map { ($0.name, $0.usedText(in: self) ?? "") }
    }

    /// The encoder, or nil when `model` names none (`problems()` reports it).
    public var modelKind: ModelKind? { ModelKind(rawValue: model) }
    /// The loss, or nil when `loss` names none (`problems()` reports it).
    public var lossKind: LossKind? { LossKind(rawValue: loss) }
    /// The optimiser, or nil when `optimizer` names none (`problems()` reports it).
    public var optimizerKind: OptimizerKind? { OptimizerKind(rawValue: optimizer) }
    /// The dataset, or nil when `dataset` names none (`problems()` reports it).
    public var datasetName: DatasetName? { DatasetName(rawValue: dataset) }
}
