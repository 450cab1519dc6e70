// Embedding whole splits with a frozen network: all that is needed is the network and a communicator. Each rank
// embeds a contiguous share of whole chunks of a split (rank order); `gathered` concatenates the shares with one all-gather
// so every rank holds the same (n, D) matrix. Collectives are issued in the same order on every rank.
//
// Legend: n = images of a split (or a rank's share), D = embedDim, K = classes.
import Collective
import Data
import Model
import Tensor

/// Runs a network in evaluation mode (BatchNorm running statistics, un-augmented images) over datasets, sharing
/// the work between the ranks of `comm`.
public struct Embedder<C: Communicator> {
    public let network: Network
    public let comm: C
    /// Images per forward pass (at most `network.maxBatch`).
    public let chunk: Int
    /// Called after every chunk's forward pass, and by `SplitEvaluator` after every k-NN block and probe objective
    /// evaluation: a sign of life for a watchdog (nil: none).
    public let progress: (() -> Void)?

    /// An embedder of `network` on `comm`, `chunk` images per forward pass (default and cap: `network.maxBatch`).
    public init(network: Network, comm: C, chunk: Int? = nil, progress: (() -> Void)? = nil) {
        self.network = network
        self.comm = comm
        self.chunk = max(1, min(chunk ?? network.maxBatch, network.maxBatch))
        self.progress = progress
    }

    public var embedDim: Int { network.config.embedDim }
    public var classes: Int { network.config.classes }

    /// How `dataset` is shared between the ranks: whole chunks of `chunk` images, spread evenly in rank order
    /// (contiguous). Every image is then embedded in the same chunk, at the same row, as on one rank, so the
    /// embeddings are bit-identical whatever the rank count (BLAS kernels may round a row differently depending on
    /// the batch it is part of).
    public func layout(of dataset: Dataset) -> ShardLayout {
        let chunks = (dataset.count + chunk - 1) / chunk
        let byChunk = ShardLayout.even(total: chunks, parts: comm.size)
        return ShardLayout(counts: (0..<comm.size).map { r in
            let c = byChunk.range(of: r)
            return min(c.upperBound * chunk, dataset.count) - min(c.lowerBound * chunk, dataset.count)
        })
    }

    /// This rank's share of `dataset` (see `layout(of:)`).
    public func share(of dataset: Dataset) -> Range<Int> { layout(of: dataset).range(of: comm.rank) }

    /// Runs the network over `dataset[range]` in chunks, calling `body(first, count)` after each chunk while the
    /// network's `embeddings`/`logits` hold the rows of images first..<first+count. The network's mode is restored.
    public func forEachChunk(of dataset: Dataset, range: Range<Int>, _ body: (Int, Int) throws -> Void) throws {
        let config = network.config
        guard dataset.channels == config.inputChannels, dataset.height == config.height,
              dataset.width == config.width else {
            throw EvaluationError("images are \(dataset.channels)×\(dataset.height)×\(dataset.width), the network "
                                  + "takes \(config.inputChannels)×\(config.height)×\(config.width)")
        }
        // The seed only drives augmentation, which evaluation batches do not use.
        let filler = BatchFiller(dataset: dataset, seed: 0)
        let previous = network.mode
        network.mode = .eval
        defer { network.mode = previous }
        let input = Arena(count: chunk * dataset.imageSize)
        let labels = Buffer<Int32>(count: chunk)
        var first = range.lowerBound
        while first < range.upperBound {
            let count = min(chunk, range.upperBound - first)
            filler.fillEvaluationBatch(indices: first..<(first + count), input: input.storage, labels: labels.storage)
            try network.forward(input: input.base, batch: count)
            try body(first, count)
            progress?()
            first += count
        }
    }

    /// Embeddings (range.count, D) of `dataset[range]`, computed by this rank alone.
    public func embeddings(of dataset: Dataset, range: Range<Int>) throws -> [Float] {
        let D = embedDim
        var out = [Float](repeating: 0, count: range.count * D)
        try out.withUnsafeMutableBufferPointer { o in
            try forEachChunk(of: dataset, range: range) { first, count in
                (o.baseAddress! + (first - range.lowerBound) * D).update(from: network.embeddings, count: count * D)
            }
        }
        return out
    }

    /// Embeddings (n, D) of every image of `dataset`, identical on every rank: each rank embeds its share, then
    /// one all-gather concatenates the shares in rank order.
    public func gatheredEmbeddings(of dataset: Dataset) throws -> [Float] {
        let shares = layout(of: dataset)
        let local = try embeddings(of: dataset, range: shares.range(of: comm.rank))
        var all = [Float](repeating: 0, count: dataset.count * embedDim)
        try local.withUnsafeBufferPointer { l in
            try all.withUnsafeMutableBufferPointer { a in
                try comm.allGather(send: l, into: a, layout: shares.scaled(by: embedDim))
            }
        }
        return all
    }

    /// The head's argmax class (ties → lower class) of each image of `dataset[range]`, by this rank alone.
    public func headPredictions(of dataset: Dataset, range: Range<Int>) throws -> [Int32] {
        let K = classes
        var out = [Int32](repeating: 0, count: range.count)
        try forEachChunk(of: dataset, range: range) { first, count in
            let logits = network.logits
            for r in 0..<count { out[first - range.lowerBound + r] = Int32(argmax(logits + r * K, count: K)) }
        }
        return out
    }

    /// `values` of this rank's share of `dataset` concatenated over the ranks (one all-gather), in dataset order.
    public func gathered(_ values: [Int32], of dataset: Dataset) throws -> [Int32] {
        let shares = layout(of: dataset)
        precondition(values.count == shares.counts[comm.rank],
                     "gathered: \(values.count) values, this rank's share is \(shares.counts[comm.rank])")
        var all = [Int32](repeating: 0, count: dataset.count)
        try values.withUnsafeBufferPointer { v in
            try all.withUnsafeMutableBufferPointer { a in try comm.allGather(send: v, into: a, layout: shares) }
        }
        return all
    }
}

/// The index of the largest of `count` values (ties → the lower index).
@inlinable
public func argmax(_ row: UnsafePointer<Float>, count: Int) -> Int {
    var best = 0
    for c in 1..<max(count, 1) where row[c] > row[best] { best = c }
    return best
}

/// An evaluation that cannot run (bad data, bad options): the message says why.
public struct EvaluationError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
