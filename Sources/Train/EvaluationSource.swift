// What `dtrain eval`, `fewshot` and `analyze` evaluate: a network with loaded weights (a finished or interrupted
// run's checkpoint, or any weight file `--init` reads) and the data to score it on. Loading goes through
// `Network.load(weights:)`, which reads a checkpoint's `param/`, `buffer/` and `counter/` tensors whatever the
// run's step, so a finished run (which `Trainer.restore` refuses to continue) evaluates like any other.
import Checkpoint
import Collective
import Data
import Evaluation
import Foundation
import Model
import Tensor

/// A network ready for evaluation and where it came from.
public struct EvaluationSource {
    /// The settings: the checkpoint's with the command's overrides, or the defaults with them.
    public var config: TrainConfig
    public var network: Network
    public var report: WeightLoadReport
    /// The weight file read.
    public var weightsPath: String
    /// The original class ids the checkpoint's head was trained on (`--classes` of its run), nil for all classes
    /// of its dataset or for an `--init` file.
    public var trainedClasses: [Int32]?
    /// Whether the weights are a dtrain checkpoint (so the training classes are known).
    public var isCheckpoint: Bool

    /// Reads `weights` (every rank reads the file itself) and builds `config.model` for images of `shape` with a
    /// head of the file's class count (the data's `classes` when the file has no head), holding `maxBatch` images
    /// per forward pass.
    public static func load(config: TrainConfig, weights path: String, channels: Int, height: Int, width: Int,
                            classes: Int, maxBatch: Int) throws -> EvaluationSource {
        let file: SafeTensors
        do { file = try SafeTensors.read(path: path, requireChecksum: false) } catch { throw TrainingError("\(error)") }
        let headK = headClasses(in: file)
        let network = try makeNetwork(config: config, channels: channels, height: height, width: width,
                                      classes: headK ?? classes, maxBatch: maxBatch)
        let report = try network.load(weights: file, includeHead: headK != nil)
        let isCheckpoint = file.metadata[CheckpointKey.format] == "dtrain-checkpoint"
        return EvaluationSource(config: config, network: network, report: report, weightsPath: path,
                                trainedClasses: isCheckpoint ? config.classes.map { $0.map(Int32.init) } : nil,
                                isCheckpoint: isCheckpoint)
    }
}

/// One split of `config`'s data cut to the classes of a class-subset run (`config.classes`, labels remapped as the
/// run saw them), the whole split otherwise.
public func loadEvaluationSplit(_ config: TrainConfig, split: Split,
                                progress: (@Sendable (String) -> Void)? = nil) throws -> Dataset {
    let data = try loadSplit(config, split: split, limit: split == .train ? config.trainLimit : config.testLimit,
                             progress: progress)
    guard let classes = config.classes else { return data }
    if let bad = classes.first(where: { $0 >= data.classes }) {
        throw TrainingError("--classes: class \(bad) is outside 0..<\(data.classes) of \(config.dataset)")
    }
    return data.keeping(classes: classes.map(Int32.init), remap: true)
}

/// The display names of the classes of `config`'s dataset in label order (CIFAR-100: `fine_label_names.txt` when
/// present), cut to `config.classes` when set.
public func classNames(_ config: TrainConfig, classes: Int) -> [String] {
    let all: [String]
    switch config.dataset {
    case "cifar100": all = cifar100Names(directory: config.dataDir)
    case "cifar10": all = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    case "fashion-mnist": all = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                                 "Bag", "Ankle boot"]
    default: all = (0..<max(classes, 10)).map { "\($0)" }
    }
    if let subset = config.classes { return subset.map { $0 < all.count ? all[$0] : "\($0)" } }
    return (0..<classes).map { $0 < all.count ? all[$0] : "\($0)" }
}

// MARK: - dtrain eval

/// What one evaluation protocol gave.
public struct ProtocolResult: Sendable {
    public var accuracy: Double
    public var confusion: ConfusionMatrix
    /// The solver of the linear probe (nil for head and k-NN).
    public var solver: String?
    public var lbfgs: LBFGSResult?
}

/// `dtrain eval`: scores `source.network` on `test` under each of `modes` (k-NN and the probe use `train` as the
/// reference / fitting split). Identical on every rank. `progress` is called as the work advances (a watchdog's
/// sign of life; see `Embedder.progress`).
public func evaluateSource<C: Communicator>(_ source: EvaluationSource, comm: C, train: Dataset, test: Dataset,
                                            modes: [EvalMode], knnK: Int,
                                            progress: (() -> Void)? = nil) throws -> [(EvalMode, ProtocolResult)] {
    let K = source.network.config.classes
    guard test.classes <= K else {
        throw TrainingError("the data has \(test.classes) classes, the network's head \(K)")
    }
    let evaluator = SplitEvaluator(embedder: Embedder(network: source.network, comm: comm, progress: progress),
                                   train: train, test: test)
    let labels = evaluator.testLabels
    var out: [(EvalMode, ProtocolResult)] = []
    for mode in modes {
        let predictions: [Int32]
        switch mode {
        case .head: predictions = try evaluator.headPredictions()
        case .knn: predictions = try evaluator.knnPredictions(k: knnK)
        case .linearProbe: predictions = try evaluator.probePredictions()
        }
        let confusion = ConfusionMatrix(labels: labels, predictions: predictions, classes: K)
        out.append((mode, ProtocolResult(accuracy: confusion.accuracy, confusion: confusion,
                                         solver: mode == .linearProbe ? LinearProbe.solver : nil,
                                         lbfgs: mode == .linearProbe ? evaluator.probeResult : nil)))
    }
    return out
}

// MARK: - dtrain fewshot

/// The few-shot result of one shot count.
public struct FewShotScore: Codable, Sendable, Equatable {
    /// Mean episode accuracy and its 95% confidence half-width, in percent.
    public var mean: Double, ci95: Double
}

/// `dtrain fewshot`: embeddings of the images of `novel` in `data` (each rank embeds a share, then all-gathered),
/// L2-normalised once; for each shot count, `episodes` episodes from (seed, episode) split between the ranks in
/// contiguous blocks, each scored by `classifier`; the accuracies are all-gathered in episode order and summarised
/// as mean and t-based 95% CI, in percent. Identical on every rank. `progress` is called after every embedding
/// chunk and episode.
public func fewShot<C: Communicator>(network: Network, comm: C, data: Dataset, novel: [Int32], ways: Int,
                                     shots: [Int], queries: Int, episodes: Int, classifier: FewShotClassifier,
                                     seed: UInt64, progress: (() -> Void)? = nil) throws -> [Int: FewShotScore] {
    let pool = data.keeping(classes: novel, remap: false)
    let embedder = Embedder(network: network, comm: comm, progress: progress)
    let D = embedder.embedDim
    let x = normalisedRows(try embedder.gatheredEmbeddings(of: pool), embedDim: D)
    let labels = Array(UnsafeBufferPointer(pool.labels.storage))
    let layout = ShardLayout.even(total: episodes, parts: comm.size)
    var out = [Int: FewShotScore]()
    for shot in shots {
        let sampler = try EpisodeSampler(labels: labels, classes: novel, ways: ways, shots: shot, queries: queries,
                                         seed: seed)
        let mine = layout.range(of: comm.rank).map {
            defer { progress?() }
            return episodeAccuracy(sampler.episode($0), embeddings: x, embedDim: D, classifier: classifier)
        }
        var all = [Double](repeating: 0, count: episodes)
        try mine.withUnsafeBufferPointer { m in
            try all.withUnsafeMutableBufferPointer { a in try comm.allGather(send: m, into: a, layout: layout) }
        }
        let (mean, ci) = meanAndCI95(all)
        out[shot] = FewShotScore(mean: 100 * mean, ci95: 100 * ci)
    }
    return out
}
