// How a batch-dependent layer (BatchNorm) sees the *global* batch without knowing about ranks: the caller injects
// a reducer that sums small Double vectors over every rank (Train backs it with the communicator's all-reduce; on
// one rank it is the identity). Every rank must reach the same reductions in the same order, which holds because
// every rank runs the same layers on its shard of one global batch.

/// Whether layers behave as in training (batch statistics, running statistics updated) or evaluation.
public enum NetworkMode: Sendable {
    case train, eval
}

/// Sums a Double vector element-wise over all ranks, in place.
public final class StatisticsReducer: @unchecked Sendable {
    @usableFromInline let reduce: (UnsafeMutableBufferPointer<Double>) throws -> Void

    /// A reducer calling `reduce` (it must leave every rank holding the same element-wise sum).
    public init(_ reduce: @escaping (UnsafeMutableBufferPointer<Double>) throws -> Void) { self.reduce = reduce }

    /// The one-rank reducer: the local sums are the global sums.
    public static let identity = StatisticsReducer { _ in }

    /// Replaces `values` by their sum over all ranks.
    @inlinable
    public func sum(_ values: UnsafeMutableBufferPointer<Double>) throws { try reduce(values) }
}
