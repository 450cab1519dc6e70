// `dtrain embed` and `dtrain export` as library functions: eval-mode embeddings and logits of a whole split, and a
// checkpoint's weights under dtrain or torchvision names. Both run on one process (no communicator).
import Checkpoint
import Data
import FileIO
import Foundation
import Model
import Tensor

// MARK: - Embedding a split

/// One split of the data a config names, cut to its first `limit` images and resized as `--image-size` says
/// (the loading `loadDatasets` does for both splits).
/// With `--mean/--std` (or the statistics a folder or npy run recorded) the images are normalised with those.
/// `progress` receives the lines of a folder dataset's decoding.
public func loadSplit(_ config: TrainConfig, split: Split, limit: Int?,
                      progress: (@Sendable (String) -> Void)? = nil) throws -> Dataset {
    let files = ImageLoadOptions(imageSize: config.imageSize, cacheDirectory: config.cacheDir, progress: progress)
    var data = try loadDataset(name: config.dataset, directory: config.dataDir, split: split, limit: limit,
                               images: files)
    if let size = config.imageSize, data.height != size || data.width != size {
        // Bilinear, as torch's interpolate(align_corners=False, antialias=False), once, before augmentation.
        data = data.resized(to: size)
    }
    if config.mean != nil || config.std != nil {
        let mean = config.mean ?? data.mean.map(Double.init), std = config.std ?? data.std.map(Double.init)
        guard mean.count == data.channels && std.count == data.channels else {
            throw TrainingError("--mean/--std give \(mean.count)/\(std.count) values but the images have "
                                + "\(data.channels) channel(s)")
        }
        data = data.normalised(mean: mean.map(Float.init), std: std.map(Float.init))
    }
    return data
}

/// The network of `config`'s model for images of channels×height×width and `classes` classes (as the trainer
/// builds it), holding up to `maxBatch` images per forward pass.
public func makeNetwork(config: TrainConfig, channels: Int, height: Int, width: Int, classes: Int,
                        maxBatch: Int) throws -> Network {
    guard let kind = EncoderKind(rawValue: config.model) else {
        throw TrainingError("unknown model \(config.model) (one of \(EncoderKind.names))")
    }
    if let spec = config.vitSpec, let problem = spec.problem(height: height, width: width) {
        throw TrainingError(problem)
    }
    let netConfig = NetworkConfig(kind: kind, inputChannels: channels, height: height, width: width,
                                  classes: classes, stem: config.stem, norm: config.norm, groups: config.normGroups,
                                  vit: config.vitSpec)
    return Network(config: netConfig, maxBatch: maxBatch, seed: config.seed)
}

/// The class count of the head a weight file holds (`param/head.bias`, `head.bias` or `fc.bias`), nil without one.
public func headClasses(in file: SafeTensors) -> Int? {
    for name in ["param/head.bias", "head.bias", "fc.bias"] {
        if let t = file[name], t.shape.count == 1 { return t.shape[0] }
    }
    return nil
}

/// The images per forward pass `dtrain embed` uses for `model`: ResNet and ViT activations are large.
public func embedChunk(model: String, count: Int) -> Int {
    let isLarge = !(EncoderKind(rawValue: model)?.isSequential ?? true)
    return max(1, min(count, isLarge ? 64 : 500))
}

/// Eval-mode (BatchNorm running statistics) embeddings (n, D) and logits (n, K) of the first `limit` images of
/// `dataset` (all by default), un-augmented and normalised as evaluation sees them, in dataset order, in chunks of
/// `chunk` images (at most `network.maxBatch`). The network's mode is restored afterwards.
public func embedDataset(network: Network, dataset: Dataset, limit: Int? = nil, chunk: Int? = nil,
                         seed: UInt64 = 0) throws -> (embeddings: [Float], logits: [Float]) {
    let n = min(limit ?? dataset.count, dataset.count)
    let D = network.config.embedDim, K = network.config.classes
    guard dataset.channels == network.config.inputChannels, dataset.height == network.config.height,
          dataset.width == network.config.width else {
        throw TrainingError("images are \(dataset.channels)×\(dataset.height)×\(dataset.width), the network takes "
                            + "\(network.config.inputChannels)×\(network.config.height)×\(network.config.width)")
    }
    let step = max(1, min(chunk ?? network.maxBatch, network.maxBatch))
    let filler = BatchFiller(dataset: dataset, seed: seed)
    let input = Arena(count: step * dataset.imageSize)
    let labels = Buffer<Int32>(count: step)
    var embeddings = [Float](repeating: 0, count: n * D), logits = [Float](repeating: 0, count: n * K)
    let previous = network.mode
    network.mode = .eval
    defer { network.mode = previous }
    var first = 0
    while first < n {
        let count = min(step, n - first)
        filler.fillEvaluationBatch(indices: first..<(first + count), input: input.storage, labels: labels.storage)
        try network.forward(input: input.base, batch: count)
        embeddings.withUnsafeMutableBufferPointer {
            ($0.baseAddress! + first * D).update(from: network.embeddings, count: count * D)
        }
        logits.withUnsafeMutableBufferPointer {
            ($0.baseAddress! + first * K).update(from: network.logits, count: count * K)
        }
        first += count
    }
    return (embeddings, logits)
}

/// What `embedSplit` computed.
public struct EmbedResult {
    /// (count, embedDim) and (count, classes), row-major.
    public var embeddings: [Float], logits: [Float]
    public var count: Int, embedDim: Int, classes: Int
    /// How the weights were read (naming, notes such as an adapted input convolution).
    public var report: WeightLoadReport
}

/// `dtrain embed`: loads `split` of `config`'s data (first `limit` images), builds `config.model` with the weights of
/// the safetensors file `weights` (a dtrain checkpoint, an `encoder.`/`head.` file or a torchvision state dict; its
/// head must fit unless it has none, then the head is the seeded initialisation), and embeds every image.
public func embedSplit(config: TrainConfig, weights path: String, split: Split, limit: Int?) throws -> EmbedResult {
    let file: SafeTensors
    do { file = try SafeTensors.read(path: path, requireChecksum: false) } catch { throw TrainingError("\(error)") }
    // The whole split, then its first `limit` images: the synthetic data's normalisation is measured on the images
    // generated, so loading fewer would change the first ones' normalised values.
    let data = try loadSplit(config, split: split, limit: nil)
    let count = min(limit ?? data.count, data.count)
    let classes = headClasses(in: file) ?? data.classes
    let network = try makeNetwork(config: config, channels: data.channels, height: data.height, width: data.width,
                                  classes: classes, maxBatch: embedChunk(model: config.model, count: count))
    let report = try network.load(weights: file, includeHead: headClasses(in: file) != nil)
    let (e, l) = try embedDataset(network: network, dataset: data, limit: count, seed: config.seed)
    return EmbedResult(embeddings: e, logits: l, count: count, embedDim: network.config.embedDim,
                       classes: classes, report: report)
}

// MARK: - Exporting a checkpoint

/// The image shape (channels, height, width) a config's dataset has after `--image-size`, without reading it.
public func imageShape(of config: TrainConfig) throws -> (channels: Int, height: Int, width: Int) {
    guard let name = DatasetName(rawValue: config.dataset) else {
        throw TrainingError("unknown dataset \(config.dataset) (one of \(DatasetName.names))")
    }
    var shape: (channels: Int, height: Int, width: Int)
    switch name {
    case .fashionMNIST, .mnist, .synthetic: shape = (1, 28, 28)
    case .cifar10, .cifar100: shape = (3, 32, 32)
    case .folder, .npy:
        let one = try loadSplit(config, split: .test, limit: 1)
        shape = (one.channels, one.height, one.width)
    }
    if let size = config.imageSize { shape.height = size; shape.width = size }
    return shape
}

/// `dtrain export`: the weights, BatchNorm buffers and `num_batches_tracked` counters of the checkpoint in run folder
/// `directory`, under `naming` (`.dtrain`: `encoder.*`/`head.*`; `.torchvision`: `conv1.weight`, …, `fc.*`; `.timm`:
/// `patch_embed.proj.weight`, …, `head.*`), checked by loading them into the checkpoint's model first. torchvision
/// names are refused for all but the ResNets, timm names for all but the ViTs.
public func exportCheckpoint(directory: String, naming: WeightNaming) throws -> SafeTensors {
    let path = checkpointPath(directory: directory)
    let file = try SafeTensors.read(path: path)
    let config = try savedConfig(of: file)
    guard let kind = EncoderKind(rawValue: config.model) else { throw TrainingError("unknown model \(config.model)") }
    if naming == .torchvision && kind.resnetSpec == nil {
        throw TrainingError("--names torchvision: the checkpoint's model \(config.model) is not a torchvision "
                            + "ResNet; use --names dtrain")
    }
    if naming == .timm && kind.vitSpec == nil {
        throw TrainingError("--names timm: the checkpoint's model \(config.model) is not a ViT; use --names dtrain")
    }
    guard naming != .checkpoint else { throw TrainingError("export names are dtrain, torchvision or timm") }
    let shape = try imageShape(of: config)
    guard let classes = headClasses(in: file) else { throw TrainingError("\(path) has no param/head.bias") }
    let network = try makeNetwork(config: config, channels: shape.channels, height: shape.height,
                                  width: shape.width, classes: classes, maxBatch: 1)
    _ = try network.load(weights: file)
    var out = network.weightTensors(naming: naming)
    out.metadata["dtrain.model"] = config.model
    out.metadata["dtrain.source"] = path
    return out
}
