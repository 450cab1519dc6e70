// The immutable description of one training run. Built once from flags (and an optional JSON config file) by the
// command line, validated, written to DIR/config.json, and passed down; library code never reads flags.
import Foundation
import Model

/// How a trained encoder is scored on the test split.
public enum EvalMode: String, Codable, Sendable, CaseIterable {
    /// The linear head trained with CE (needs CE in the loss).
    case head
    /// A linear classifier fitted on frozen, un-augmented training-set embeddings.
    case linearProbe = "linear-probe"
    /// Cosine k-nearest neighbours against the training-set embeddings.
    case knn
}

/// Every setting of a training run. Each property is one `ConfigKey` of the table `ConfigKey.all`, whose kebab-case
/// name (e.g. `batch-size`) is the JSON key and the flag; the property's initial value is the default.
public struct TrainConfig: Codable, Sendable, Equatable {
    public var dataset = "fashion-mnist"
    public var dataDir = "/usr/share/datasets/fashion-mnist"
    public var model = "mlp"
    public var loss = "clce"
    public var lambda = 0.9
    public var tau = 0.5
    /// Hard-negative exponent β of LACLN and H-SCL.
    public var beta = 1.0
    /// Global images per step (two views each).
    public var batchSize = 256
    public var epochs = 15
    /// Stop after this many steps (nil: run every epoch).
    public var maxSteps: Int? = nil
    /// Train for exactly this many steps whatever the batch size (nil: `epochs` epochs, capped by `maxSteps`).
    public var steps: Int? = nil
    /// Images per rank per forward chunk of the gradient-cached step (nil: the whole local batch at once).
    public var chunkSize: Int? = nil
    /// Base learning rate (nil: 0.05·√(batch/256)).
    public var lr: Double? = nil
    public var weightDecay = 5e-4
    public var optimizer = "sgd"
    public var momentum = 0.9
    public var warmupEpochs = 1.0
    public var seed: UInt64 = 0
    /// Use only the first N training images (nil: all).
    public var trainLimit: Int? = nil
    /// Use only the first N test images (nil: all).
    public var testLimit: Int? = nil
    public var out: String? = nil
    public var logEvery = 50
    public var blasThreads = 1
    public var quiet = false
    public var debug = false
    /// Evaluations to report (nil: head where CE is in the loss, else linear-probe).
    public var eval: [EvalMode]? = nil
    /// k of the k-NN evaluation.
    public var knnK = 20
    /// Unused: the linear probe is fitted by L-BFGS to convergence (the key stays so older configs load).
    public var probeEpochs = 10
    /// Evaluate after every epoch (the cheap evaluations); false: only after the last. Does not change the run.
    public var epochEval = true
    /// Reduce gradients in buckets started during backward (overlap), instead of one all-reduce after it.
    public var overlap = true
    /// Gradient elements per all-reduce bucket when overlapping.
    public var bucketSize = 1 << 18
    /// Write DIR/checkpoint.safetensors every N steps (0: only at the end of the run); needs `out`.
    public var checkpointEvery = 0
    /// Also write it after every N-th epoch (0: never); needs `out`.
    public var checkpointEveryEpochs = 0
    /// Weights file the encoder starts from (config key `init`; nil: random initialisation).
    public var initWeights: String? = nil
    /// With `initWeights`, also load the head (false: a fresh head).
    public var initHead = true
    /// Pixels a side the images are resized to (nil: their native size).
    public var imageSize: Int? = nil
    /// Normalisation layer of the ResNets.
    public var norm = NormKind.batch
    /// Channel groups of group normalisation.
    public var normGroups = 8
    /// First layers of the ResNets.
    public var stem = StemKind.imagenet
    /// Train on these original class ids only (nil: every class); labels are remapped to positions in the list.
    public var classes: [Int]? = nil
    /// With `out`: write the default checkpoints (every epoch, every `checkpointMinutes`, at the end, on a stop).
    public var checkpoint = true
    /// Minutes between time-based checkpoints (0: none); needs `out`.
    public var checkpointMinutes = 10.0
    /// Stop when the smoothed loss exceeds this many times its running minimum after the warm-up (0: never).
    public var divergenceFactor = 10.0
    /// Seconds without a finished step before the watchdog ends the job (nil: max(300, 10× the slowest step);
    /// 0: never).
    public var stepTimeout: Double? = nil
    /// Patch size of the ViT models (nil: the preset's).
    public var patchSize: Int? = nil
    /// Token width D of the ViT models (nil: the preset's).
    public var embedDim: Int? = nil
    /// Transformer blocks of the ViT models (nil: the preset's).
    public var depth: Int? = nil
    /// Attention heads of the ViT models (nil: the preset's).
    public var heads: Int? = nil
    /// MLP hidden size over D of the ViT models (nil: the preset's).
    public var mlpRatio: Double? = nil
    /// Folder of the decoded-image cache of `--dataset folder` (nil: DIR/.dtrain-cache beside the data).
    public var cacheDir: String? = nil
    /// Per-channel mean of pixel/255 used to normalise (nil: the dataset's; for folder and npy data, measured on
    /// the training split and recorded here when the run starts).
    public var mean: [Double]? = nil
    /// Per-channel standard deviation of pixel/255 (nil: as `mean`; either may be given alone).
    public var std: [Double]? = nil

    public init() {}

    /// The JSON key of a setting: its `ConfigKey` name. Any string makes a key, so unknown keys can be reported.
    public struct CodingKeys: CodingKey, Hashable, Sendable, CaseIterable {
        public let stringValue: String
        public var intValue: Int? { nil }
        /// The key of the setting called `name`.
        public init(_ name: String) { stringValue = name }
        public init?(stringValue: String) { self.stringValue = stringValue }
        public init?(intValue: Int) { nil }
        /// The key's name (as the raw value of the former enum).
        public var rawValue: String { stringValue }
        /// The key of every setting, in table order.
        public static var allCases: [CodingKeys] { ConfigKey.all.map(\.codingKey) }
    }

    public init(from decoder: Decoder) throws {
        // Every key is optional in a config file; unknown keys are errors (a typo must not pass silently).
        let box = try decoder.container(keyedBy: CodingKeys.self)
        if let bad = box.allKeys.first(where: { ConfigKey.named($0.stringValue) == nil }) {
            let known = ConfigKey.all.map(\.name).sorted().joined(separator: ", ")
            throw ConfigError("unknown key \"\(bad.stringValue)\" (known: \(known))")
        }
        self.init()
        for key in ConfigKey.all { try key.decodeValue(&self, box) }
    }

    public func encode(to encoder: Encoder) throws {
        var box = encoder.container(keyedBy: CodingKeys.self)
        for key in ConfigKey.all { try key.encodeValue(self, &box) }
    }

    /// The ViT shape of `model` with the `--patch-size`… overrides, or nil when `model` is not a ViT.
    public var vitSpec: ViTSpec? {
        guard var spec = EncoderKind(rawValue: model)?.vitSpec else { return nil }
        if let patchSize { spec.patchSize = patchSize }
        if let embedDim { spec.embedDim = embedDim }
        if let depth { spec.depth = depth }
        if let heads { spec.heads = heads }
        if let mlpRatio { spec.mlpRatio = mlpRatio }
        return spec
    }

    /// Whether any ViT shape option is set.
    var setsViTShape: Bool { patchSize != nil || embedDim != nil || depth != nil || heads != nil || mlpRatio != nil }

    /// The learning rate actually used: `lr`, or 0.05·√(batch/256).
    public var baseLearningRate: Double { lr ?? 0.05 * (Double(batchSize) / 256).squareRoot() }

    /// Reads a YAML (`.yaml`, `.yml`) or JSON config file; every key optional, unknown keys and values of the wrong
    /// type rejected with the line of their key.
    public static func load(path: String) throws -> TrainConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read config file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        if path.hasSuffix(".yaml") || path.hasSuffix(".yml") { return try parseYAML(text, path: path) }
        do { return try decodeConfigJSON(data, path: path) } catch let e as ConfigError {
            throw ConfigError(withLine(e.message, path: path, lines: jsonKeyLines(text)))
        }
    }

    /// Decodes a JSON config; errors start with "path: " and quote the key at fault.
    static func decodeConfigJSON(_ data: Foundation.Data, path: String) throws -> TrainConfig {
        do { return try JSONDecoder().decode(TrainConfig.self, from: data) } catch let e as ConfigError {
            throw ConfigError("\(path): \(e.message)")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx) {
            throw ConfigError("\(path): bad value for \(place(ctx)): \(ctx.debugDescription)")
        } catch let DecodingError.dataCorrupted(ctx) where !ctx.codingPath.isEmpty {
            // Valid JSON, but a value its field cannot hold (1.5 for an integer, -1 for the seed, an unknown eval).
            throw ConfigError("\(path): bad value for \(place(ctx)): \(ctx.debugDescription)")
        } catch let DecodingError.dataCorrupted(ctx) {
            // Foundation on Linux reports a number its field cannot hold (1.5 or 1e999 for an integer, -1 for the
            // seed) as "not valid JSON" with no key; find the key by decoding each top-level member on its own.
            if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                for key in object.keys.sorted() {
                    guard let one = try? JSONSerialization.data(withJSONObject: [key: object[key]!]) else { continue }
                    if (try? JSONDecoder().decode(TrainConfig.self, from: one)) == nil {
                        throw ConfigError("\(path): bad value for \"\(key)\": \(object[key]!) does not fit "
                                              + "this setting")
                    }
                }
            }
            throw ConfigError("\(path): not valid JSON: \(ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription)")
        } catch {
            throw ConfigError("\(path): \(error)")
        }
    }

    /// Where in the file a decoding error is: "\"epochs\"", or "the top level (a JSON object is expected)".
    private static func place(_ ctx: DecodingError.Context) -> String {
        ctx.codingPath.isEmpty ? "the top level (a JSON object is expected)"
            : "\"" + ctx.codingPath.map(\.stringValue).joined(separator: ".") + "\""
    }

    /// Sorted-key JSON, as written to DIR/config.json.
    public func json() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try e.encode(self), as: UTF8.self)
    }

    /// Problems with this configuration that do not depend on the data or the rank count, as messages.
    public func problems() -> [String] {
        var p = ConfigKey.all.compactMap { $0.problem(in: self) }
        if let mean, let std, mean.count != std.count {
            p.append("--mean and --std need one value per channel each, got \(mean.count) and \(std.count)")
        }
        if let std, !std.allSatisfy({ $0 > 0 && $0.isFinite }) { p.append("--std values must be > 0, got \(std)") }
        if (checkpointEvery > 0 || checkpointEveryEpochs > 0) && out == nil {
            p.append("--checkpoint-every and --checkpoint-every-epochs need --out DIR (the checkpoint is DIR/"
                     + "checkpoint.safetensors)")
        }
        if steps != nil && maxSteps != nil {
            p.append("--steps and --max-steps contradict each other (--steps trains exactly that many steps)")
        }
        if !checkpoint && (checkpointEvery > 0 || checkpointEveryEpochs > 0) {
            p.append("--no-checkpoint contradicts --checkpoint-every and --checkpoint-every-epochs")
        }
        return p
    }
}

/// A bad configuration file or value.
public struct ConfigError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
