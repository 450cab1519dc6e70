import ArgumentParser
import Train

// Flags of `dtrain train` (and of `study`, which takes any of them). Every flag is optional so that a config file's
// value stands unless the flag is given; the defaults shown are TrainConfig's.

struct DataOptions: ParsableArguments {
    @Option(help: "Dataset: fashion-mnist, mnist, cifar10, cifar100 or synthetic. (default: fashion-mnist)")
    var dataset: String?
    @Option(help: "Folder with the dataset files. (default: /usr/share/datasets/fashion-mnist)")
    var dataDir: String?
    @Option(help: "Use only the first N training images.")
    var trainLimit: Int?
    @Option(help: "Use only the first N test images.")
    var testLimit: Int?

    func apply(to c: inout TrainConfig) {
        if let dataset {
            c.dataset = dataset
            if dataDir == nil, dataset != "fashion-mnist" { c.dataDir = dataset == "synthetic" ? "" : "." }
        }
        if let dataDir { c.dataDir = dataDir }
        if let trainLimit { c.trainLimit = trainLimit }
        if let testLimit { c.testLimit = testLimit }
    }
}

struct ModelOptions: ParsableArguments {
    @Option(help: "Encoder: mlp (784-512-512-128) or cnn (4 conv + 2 linear). (default: mlp)")
    var model: String?
    @Option(help: "Loss: ce, supcon, ce+supcon, hscl, ce+hscl, clce or clce-no-hnm. (default: clce)")
    var loss: String?
    @Option(name: .customLong("lambda"), help: "Weight λ of the contrastive term in (1-λ)·CE + λ·contrastive. (default: 0.9)")
    var lambda: Double?
    @Option(help: "Temperature τ of the contrastive losses, > 0. (default: 0.5)")
    var tau: Double?
    @Option(help: "Hard-negative exponent β of LACLN and H-SCL. (default: 1)")
    var beta: Double?

    func apply(to c: inout TrainConfig) {
        if let model { c.model = model }
        if let loss { c.loss = loss }
        if let lambda { c.lambda = lambda }
        if let tau { c.tau = tau }
        if let beta { c.beta = beta }
    }
}

struct OptimOptions: ParsableArguments {
    @Option(help: "Global images per step, split over the ranks; each gives two views. (default: 256)")
    var batchSize: Int?
    @Option(help: "Epochs over the training set. (default: 15)")
    var epochs: Int?
    @Option(help: "Stop after this many steps (the schedule ends there).")
    var maxSteps: Int?
    @Option(help: "Base learning rate. (default: 0.05·√(batch/256))")
    var lr: Double?
    @Option(help: "Weight decay. (default: 5e-4)")
    var weightDecay: Double?
    @Option(help: "Optimiser: sgd (momentum 0.9) or adamw. (default: sgd)")
    var optimizer: String?
    @Option(help: "Linear warm-up epochs before the cosine decay. (default: 1)")
    var warmupEpochs: Double?
    @Option(help: "Seed of initialisation, shuffling and augmentation. (default: 0)")
    var seed: UInt64?

    func apply(to c: inout TrainConfig) {
        if let batchSize { c.batchSize = batchSize }
        if let epochs { c.epochs = epochs }
        if let maxSteps { c.maxSteps = maxSteps }
        if let lr { c.lr = lr }
        if let weightDecay { c.weightDecay = weightDecay }
        if let optimizer { c.optimizer = optimizer }
        if let warmupEpochs { c.warmupEpochs = warmupEpochs }
        if let seed { c.seed = seed }
    }
}

struct RunOptions: ParsableArguments {
    @Option(help: "Folder for config.json and metrics.jsonl.")
    var out: String?
    @Option(help: "Log a metrics line every K steps. (default: 50)")
    var logEvery: Int?
    @Option(help: "OpenBLAS threads per rank. (default: 1)")
    var blasThreads: Int?
    @Flag(help: "No progress lines; the summary line is still printed.")
    var quiet = false
    @Option(help: "JSON config file with any of these options as keys (e.g. {\"batch-size\": 64}); flags override it.")
    var config: String?
    @Option(help: "Write DIR/checkpoint.safetensors every N steps (needs --out); 0: only at the end. (default: 0)")
    var checkpointEvery: Int?
    @Option(help: "Also write the checkpoint after every N-th epoch (needs --out); 0: never. (default: 0)")
    var checkpointEveryEpochs: Int?

    func apply(to c: inout TrainConfig) {
        if let out { c.out = out }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let checkpointEveryEpochs { c.checkpointEveryEpochs = checkpointEveryEpochs }
        if let logEvery { c.logEvery = logEvery }
        if let blasThreads { c.blasThreads = blasThreads }
        if quiet { c.quiet = true }
    }
}

struct EvalOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Evaluations, comma-separated: head, linear-probe, knn; the first gives test_accuracy. "
                               + "(default: head, or linear-probe when the loss trains no head)",
                               valueName: "modes"))
    var eval: String?
    @Option(help: "Neighbours of the k-NN evaluation (cosine, votes weighted by exp(sim/0.07)). (default: 20)")
    var knnK: Int?
    @Option(help: "Epochs of the linear probe's own training on frozen embeddings. (default: 10)")
    var probeEpochs: Int?
    @Flag(help: ArgumentHelp("Evaluate only after the last epoch, not after every one (saves the per-epoch k-NN "
                             + "or head pass; the result is the same)."))
    var noEpochEval = false

    func validate() throws {
        if let eval {
            do { _ = try TrainConfig.parseEvaluations(eval) } catch { throw ValidationError("--eval: \(error)") }
        }
    }

    func apply(to c: inout TrainConfig) throws {
        if let eval { c.eval = try TrainConfig.parseEvaluations(eval) }
        if let knnK { c.knnK = knnK }
        if let probeEpochs { c.probeEpochs = probeEpochs }
        if noEpochEval { c.epochEval = false }
    }
}

/// Builds the run's config: `base` (the defaults, or a resumed checkpoint's settings), replaced by the config file
/// if one is given, then the flags given.
func makeConfig(data: DataOptions, model: ModelOptions, optim: OptimOptions, run: RunOptions,
                eval: EvalOptions, base: TrainConfig = TrainConfig()) throws -> TrainConfig {
    var c = base
    if let path = run.config { c = try TrainConfig.load(path: path) }
    data.apply(to: &c); model.apply(to: &c); optim.apply(to: &c); run.apply(to: &c)
    try eval.apply(to: &c)
    return c
}
