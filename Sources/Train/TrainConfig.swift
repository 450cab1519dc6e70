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

/// Every setting of a training run. Keys are the command-line flag names without dashes, in camelCase for Swift and
/// kebab-case in JSON config files (e.g. `batch-size`).
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
    /// Epochs of the linear probe's own training.
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

    public init() {}

    enum CodingKeys: String, CodingKey {
        case dataset, dataDir = "data-dir", model, loss, lambda, tau, beta, batchSize = "batch-size", epochs
        case maxSteps = "max-steps", lr, weightDecay = "weight-decay", optimizer, momentum
        case warmupEpochs = "warmup-epochs", seed, trainLimit = "train-limit", testLimit = "test-limit", out
        case logEvery = "log-every", blasThreads = "blas-threads", quiet, debug, eval, knnK = "knn-k"
        case probeEpochs = "probe-epochs", epochEval = "epoch-eval", overlap, bucketSize = "bucket-size"
        case checkpointEvery = "checkpoint-every", checkpointEveryEpochs = "checkpoint-every-epochs"
    }

    public init(from decoder: Decoder) throws {
        // Every key is optional in a config file; unknown keys are errors (a typo must not pass silently).
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let any = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let bad = any.allKeys.first(where: { !known.contains($0.stringValue) }) {
            throw ConfigError("unknown key \"\(bad.stringValue)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
        func get<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = TrainConfig()
        dataset = try get(.dataset, d.dataset); dataDir = try get(.dataDir, d.dataDir); model = try get(.model, d.model)
        loss = try get(.loss, d.loss); lambda = try get(.lambda, d.lambda); tau = try get(.tau, d.tau)
        beta = try get(.beta, d.beta); batchSize = try get(.batchSize, d.batchSize); epochs = try get(.epochs, d.epochs)
        maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps); lr = try c.decodeIfPresent(Double.self, forKey: .lr)
        weightDecay = try get(.weightDecay, d.weightDecay); optimizer = try get(.optimizer, d.optimizer)
        momentum = try get(.momentum, d.momentum); warmupEpochs = try get(.warmupEpochs, d.warmupEpochs)
        seed = try get(.seed, d.seed); trainLimit = try c.decodeIfPresent(Int.self, forKey: .trainLimit)
        testLimit = try c.decodeIfPresent(Int.self, forKey: .testLimit); out = try c.decodeIfPresent(String.self, forKey: .out)
        logEvery = try get(.logEvery, d.logEvery); blasThreads = try get(.blasThreads, d.blasThreads)
        quiet = try get(.quiet, d.quiet); debug = try get(.debug, d.debug)
        eval = try c.decodeIfPresent([EvalMode].self, forKey: .eval); knnK = try get(.knnK, d.knnK)
        probeEpochs = try get(.probeEpochs, d.probeEpochs); epochEval = try get(.epochEval, d.epochEval)
        overlap = try get(.overlap, d.overlap); bucketSize = try get(.bucketSize, d.bucketSize)
        checkpointEvery = try get(.checkpointEvery, d.checkpointEvery)
        checkpointEveryEpochs = try get(.checkpointEveryEpochs, d.checkpointEveryEpochs)
    }

    /// The learning rate actually used: `lr`, or 0.05·√(batch/256).
    public var baseLearningRate: Double { lr ?? 0.05 * (Double(batchSize) / 256).squareRoot() }

    /// Reads a JSON config file; every key optional, unknown keys rejected.
    public static func load(path: String) throws -> TrainConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError("cannot read config file \(path)")
        }
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
        var p = [String]()
        if !(tau > 0) || !tau.isFinite { p.append("--tau must be > 0, got \(tau)") }
        if !(0...1).contains(lambda) { p.append("--lambda must be in [0, 1], got \(lambda)") }
        if !beta.isFinite || beta < 0 { p.append("--beta must be >= 0, got \(beta)") }
        if batchSize < 1 { p.append("--batch-size must be >= 1, got \(batchSize)") }
        if epochs < 1 { p.append("--epochs must be >= 1, got \(epochs)") }
        if let m = maxSteps, m < 1 { p.append("--max-steps must be >= 1, got \(m)") }
        if let l = lr, !(l > 0) || !l.isFinite { p.append("--lr must be > 0, got \(l)") }
        if !(weightDecay >= 0) { p.append("--weight-decay must be >= 0, got \(weightDecay)") }
        if !(0..<1).contains(momentum) { p.append("--momentum must be in [0, 1), got \(momentum)") }
        if !(warmupEpochs >= 0) { p.append("--warmup-epochs must be >= 0, got \(warmupEpochs)") }
        if let t = trainLimit, t < 1 { p.append("--train-limit must be >= 1, got \(t)") }
        if let t = testLimit, t < 1 { p.append("--test-limit must be >= 1, got \(t)") }
        if logEvery < 1 { p.append("--log-every must be >= 1, got \(logEvery)") }
        if blasThreads < 1 { p.append("--blas-threads must be >= 1, got \(blasThreads)") }
        if bucketSize < 1 { p.append("--bucket-size must be >= 1, got \(bucketSize)") }
        if checkpointEvery < 0 { p.append("--checkpoint-every must be >= 0, got \(checkpointEvery)") }
        if checkpointEveryEpochs < 0 {
            p.append("--checkpoint-every-epochs must be >= 0, got \(checkpointEveryEpochs)")
        }
        if (checkpointEvery > 0 || checkpointEveryEpochs > 0) && out == nil {
            p.append("--checkpoint-every and --checkpoint-every-epochs need --out DIR (the checkpoint is DIR/"
                     + "checkpoint.safetensors)")
        }
        if knnK < 1 { p.append("--knn-k must be >= 1, got \(knnK)") }
        if EncoderKind(rawValue: model) == nil {
            p.append("--model must be one of \(EncoderKind.allCases.map(\.rawValue).joined(separator: ", ")), got \(model)")
        }
        if !["sgd", "adamw"].contains(optimizer) { p.append("--optimizer must be sgd or adamw, got \(optimizer)") }
        if !["fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic"].contains(dataset) {
            p.append("--dataset must be fashion-mnist, mnist, cifar10, cifar100 or synthetic, got \(dataset)")
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

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension TrainConfig.CodingKeys: CaseIterable {}
