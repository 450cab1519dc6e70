import Tensor

// Which images each step of an epoch uses, identically on every rank count.
// Legend: B = global batch (images per step, before the two views), N = ranks, P = the epoch's permutation.
// Global batch k of an epoch is P[kB ..< (k+1)B]; rank r of N takes a contiguous share of those B positions,
// the first B % N ranks one image more. P depends only on (seed, epoch), so the union over ranks of the shares
// is the same global batch whatever N is.

/// The per-epoch permutation of a training set and its split into global batches and rank shares.
public struct EpochSampler: Sendable {
    /// Images in the dataset.
    public let count: Int
    /// Images per step across all ranks (B).
    public let globalBatch: Int
    /// Ranks sharing each global batch (N).
    public let ranks: Int
    /// Seed of the `.permutation` stream.
    public let seed: UInt64

    /// Throws `.badSampling` unless ranks ≥ 1 and ranks ≤ globalBatch ≤ count.
    public init(count: Int, globalBatch: Int, ranks: Int, seed: UInt64) throws {
        guard ranks >= 1 else { throw DataError(.badSampling, file: "--ranks", "need at least 1 rank, got \(ranks)") }
        guard globalBatch >= ranks else {
            throw DataError(.badSampling, file: "--batch-size",
                            "global batch \(globalBatch) is smaller than the \(ranks) ranks: every rank needs an image")
        }
        guard globalBatch <= count else {
            throw DataError(.badSampling, file: "--batch-size",
                            "global batch \(globalBatch) is larger than the dataset (\(count) images)")
        }
        self.count = count
        self.globalBatch = globalBatch
        self.ranks = ranks
        self.seed = seed
    }

    /// Full global batches per epoch, count / B; the last partial batch is dropped, as in the PyTorch reference.
    public var stepsPerEpoch: Int { count / globalBatch }

    /// The permutation of 0..<count for `epoch`:
    /// `CounterRNG(seed).permutation(count: count, stream: .permutation, key: epoch)`.
    public func permutation(epoch: Int) -> [Int] {
        precondition(epoch >= 0 && epoch <= Int(UInt32.max), "epoch \(epoch) out of range 0…\(UInt32.max)")
        return CounterRNG(seed: seed).permutation(count: count, stream: .permutation, key: UInt32(epoch))
    }

    /// Positions of global batch `step` in the epoch's permutation: [step·B, (step+1)·B).
    public func globalPositions(step: Int) -> Range<Int> {
        precondition(step >= 0 && step < stepsPerEpoch, "step \(step) out of range 0..<\(stepsPerEpoch)")
        return step * globalBatch ..< (step + 1) * globalBatch
    }

    /// Positions in the permutation that `rank` fills at `step`: its share of `globalPositions(step:)`.
    public func localPositions(step: Int, rank: Int) -> Range<Int> {
        let share = Self.share(batch: globalBatch, ranks: ranks, rank: rank)
        let start = step * globalBatch
        return start + share.lowerBound ..< start + share.upperBound
    }

    /// Rank `rank`'s contiguous share of `batch` items split over `ranks`: ⌊batch/ranks⌋ each, one more for the
    /// first batch % ranks ranks. The shares of ranks 0..<ranks tile 0..<batch in rank order.
    public static func share(batch: Int, ranks: Int, rank: Int) -> Range<Int> {
        precondition(ranks >= 1 && rank >= 0 && rank < ranks, "rank \(rank) out of range 0..<\(ranks)")
        precondition(batch >= 0, "batch must be >= 0, got \(batch)")
        let base = batch / ranks, extra = batch % ranks
        let start = rank * base + min(rank, extra)
        return start ..< start + base + (rank < extra ? 1 : 0)
    }
}
