import FileIO
import Tensor

// An in-memory image classification dataset and the loader that picks a reader by dataset name.

/// Which half of a dataset to load.
public enum Split: String, Sendable, CaseIterable {
    case train, test
}

/// Images as bytes in (count, channels, height, width) order, Int32 labels in 0..<classes, and the per-channel
/// mean and standard deviation (of pixel/255) used to normalise them.
public struct Dataset: Sendable {
    /// A short name ("fashion-mnist", "cifar10", …).
    public let name: String
    /// Pixels, (count, channels, height, width), row-major.
    public let images: Buffer<UInt8>
    /// Class of each image, (count).
    public let labels: Buffer<Int32>
    public let count: Int
    public let channels: Int
    public let height: Int
    public let width: Int
    /// Number of classes K; every label is in 0..<K.
    public let classes: Int
    /// Per-channel mean of pixel/255, (channels).
    public let mean: [Float]
    /// Per-channel standard deviation of pixel/255, (channels).
    public let std: [Float]

    /// Bytes (and normalised Floats) per image: channels·height·width.
    public var imageSize: Int { channels * height * width }

    /// Wraps buffers already filled; sizes must agree (programmer error otherwise).
    public init(name: String, images: Buffer<UInt8>, labels: Buffer<Int32>, count: Int, channels: Int,
                height: Int, width: Int, classes: Int, mean: [Float], std: [Float]) {
        precondition(images.count == count * channels * height * width,
                     "images hold \(images.count) bytes, expected \(count)×\(channels)×\(height)×\(width)")
        precondition(labels.count == count, "labels hold \(labels.count) entries, expected \(count)")
        precondition(mean.count == channels && std.count == channels,
                     "mean/std have \(mean.count)/\(std.count) entries, expected \(channels)")
        precondition(std.allSatisfy { $0 > 0 }, "std must be positive, got \(std)")
        self.name = name
        self.images = images
        self.labels = labels
        self.count = count
        self.channels = channels
        self.height = height
        self.width = width
        self.classes = classes
        self.mean = mean
        self.std = std
    }

    /// The first `limit` images (all when nil or larger), normalisation kept.
    public func prefix(_ limit: Int?) -> Dataset {
        guard let limit, limit < count else { return self }
        let kept = Buffer<UInt8>(count: limit * imageSize, repeating: 0)
        kept.base.update(from: images.base, count: limit * imageSize)
        let keptLabels = Buffer<Int32>(count: limit, repeating: 0)
        keptLabels.base.update(from: labels.base, count: limit)
        return Dataset(name: name, images: kept, labels: keptLabels, count: limit, channels: channels, height: height,
                       width: width, classes: classes, mean: mean, std: std)
    }

    /// The bytes of image `index`, (channels, height, width).
    public func image(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        precondition(index >= 0 && index < count, "image index \(index) out of range 0..<\(count)")
        return UnsafeBufferPointer(start: images.base + index * imageSize, count: imageSize)
    }
}

// MARK: - Standard datasets

/// Normalisation constants of the standard datasets (mean and std of pixel/255 over the training split).
public enum Normalisation {
    public static let fashionMNIST: (mean: [Float], std: [Float]) = ([0.2860], [0.3530])
    public static let mnist: (mean: [Float], std: [Float]) = ([0.1307], [0.3081])
    public static let cifar10: (mean: [Float], std: [Float]) = ([0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616])
    public static let cifar100: (mean: [Float], std: [Float]) = ([0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762])
}

/// The dataset names `loadDataset` accepts.
public let datasetNames = ["fashion-mnist", "mnist", "cifar10", "cifar100", "synthetic", "folder", "npy"]

/// Loads `split` of the dataset `name` from `directory`, keeping the first `limit` images when given.
///
/// - fashion-mnist, mnist: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-…`, each tried plain and
///   with `.gz` (MNIST-format files a user brings use the same names).
/// - cifar10: `data_batch_1.bin`…`data_batch_5.bin` / `test_batch.bin`, in `directory` or
///   `directory/cifar-10-batches-bin`.
/// - cifar100: `train.bin` / `test.bin` (fine labels), in `directory` or `directory/cifar-100-binary`.
/// - synthetic: `directory` is ignored; see `syntheticDataset` (10 classes, 1×28×28, 10000 train / 2000 test).
/// - folder: `train/<class>/*.{png,jpg,jpeg}`, `test/` or `val/` (ImageFolder.swift; `images` gives the target
///   size, cache folder and progress callback).
/// - npy: `train/images.npy`, `train/labels.npy`, `test/…` or `val/…` (ImageFolder.swift).
public func loadDataset(name: String, directory: String, split: Split, limit: Int? = nil,
                        images: ImageLoadOptions = ImageLoadOptions()) throws -> Dataset {
    if let limit, limit <= 0 {
        throw DataError(.badSampling, file: "--limit", "limit must be positive, got \(limit)")
    }
    switch name {
    case "fashion-mnist", "mnist":
        let constants = name == "mnist" ? Normalisation.mnist : Normalisation.fashionMNIST
        let prefix = split == .train ? "train" : "t10k"
        let images = try findFile(directory: directory, candidates: ["\(prefix)-images-idx3-ubyte"],
                                  dataset: name)
        let labels = try findFile(directory: directory, candidates: ["\(prefix)-labels-idx1-ubyte"],
                                  dataset: name)
        return try loadIDXPair(imagesPath: images, labelsPath: labels, classes: 10, name: name,
                               mean: constants.mean[0], std: constants.std[0], limit: limit)
    case "cifar10":
        let base = cifarDirectory(directory, subdirectory: "cifar-10-batches-bin", probe: "test_batch.bin")
        let files = split == .train ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"]
        let paths = try files.map { try findFile(directory: base, candidates: [$0], dataset: name, gzip: false) }
        return try loadCIFAR(paths: paths, variant: .cifar10, limit: limit)
    case "cifar100":
        let base = cifarDirectory(directory, subdirectory: "cifar-100-binary", probe: "test.bin")
        let file = split == .train ? "train.bin" : "test.bin"
        let path = try findFile(directory: base, candidates: [file], dataset: name, gzip: false)
        return try loadCIFAR(paths: [path], variant: .cifar100, limit: limit)
    case "folder":
        return try loadImageFolder(directory: directory, split: split, options: images).prefix(limit)
    case "npy":
        return try loadNPYDataset(directory: directory, split: split).prefix(limit)
    case "synthetic":
        let count = split == .train ? 10_000 : 2_000
        return syntheticDataset(count: min(count, limit ?? count), classes: 10, channels: 1, height: 28, width: 28,
                                seed: 0, split: split)
    default:
        throw DataError(.unknownDataset, file: "--dataset",
                        "unknown dataset \"\(name)\"; expected one of \(datasetNames.joined(separator: ", "))")
    }
}

/// `directory/subdirectory` when it holds `probe` and `directory` does not, else `directory`.
func cifarDirectory(_ directory: String, subdirectory: String, probe: String) -> String {
    let nested = directory + "/" + subdirectory
    if !fileExists(directory + "/" + probe) && fileExists(nested + "/" + probe) { return nested }
    return directory
}

/// The first existing path among the candidates (and their `.gz` forms); otherwise a `.missingFile` error that
/// names the path and says how to get the data.
func findFile(directory: String, candidates: [String], dataset: String, gzip: Bool = true) throws -> String {
    var tried: [String] = []
    for candidate in candidates {
        for suffix in gzip ? ["", ".gz"] : [""] {
            let path = directory + "/" + candidate + suffix
            if fileExists(path) { return path }
            if directoryExists(path) {
                throw DataError(.unreadable, file: path, "is a folder, not a data file")
            }
            tried.append(path)
        }
    }
    let hint = dataset == "fashion-mnist"
        ? "install it with `apt-get install dataset-fashion-mnist` or point --data-dir at a directory holding it"
        : "point --data-dir at a directory holding the \(dataset) files"
    let alternatives = tried.count > 1 ? " (also tried \(tried.dropFirst().joined(separator: ", ")))" : ""
    throw DataError(.missingFile, file: tried[0], "no such file\(alternatives); \(hint)")
}
