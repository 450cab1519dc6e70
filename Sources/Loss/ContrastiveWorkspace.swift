import Tensor

/// Scratch memory for the contrastive losses, allocated once for (rows N, embedDim D, maxAnchors): nothing is
/// allocated per call.
///
/// Holds the normalised rows z (N, D), their norms ‖x‖ (N), the similarity block S of up to `maxAnchors` anchor
/// rows (maxAnchors, N) that is overwritten in place by dS, the gradient ∂L/∂z (N, D), and one row (N) of
/// per-negative weights for a general β. A call may use fewer rows than the capacity. More anchors than
/// `maxAnchors` are processed in chunks of `maxAnchors` rows (same result, smaller block).
public final class ContrastiveWorkspace<T: BLASScalar>: @unchecked Sendable {
    /// Row capacity N (the gathered batch).
    public let rows: Int
    /// Embedding width D.
    public let embedDim: Int
    /// Anchor rows per similarity block (at most `rows`).
    public let maxAnchors: Int

    @usableFromInline let normalized: Buffer<T>
    @usableFromInline let norms: Buffer<T>
    @usableFromInline let block: Buffer<T>
    @usableFromInline let dNormalized: Buffer<T>
    @usableFromInline let negativeWeights: Buffer<T>

    /// Allocates the scratch for up to `rows` gathered rows of width `embedDim` and blocks of `maxAnchors` anchors
    /// (default: all rows in one block).
    public init(rows: Int, embedDim: Int, maxAnchors: Int? = nil) {
        let anchors = maxAnchors ?? rows
        precondition(rows >= 1 && embedDim >= 1,
                     "ContrastiveWorkspace: rows \(rows) and embedDim \(embedDim) must be >= 1")
        precondition(anchors >= 1, "ContrastiveWorkspace: maxAnchors must be >= 1, got \(anchors)")
        self.rows = rows
        self.embedDim = embedDim
        self.maxAnchors = min(anchors, rows)
        normalized = Buffer(count: rows * embedDim)
        norms = Buffer(count: rows)
        block = Buffer(count: min(anchors, rows) * rows)
        dNormalized = Buffer(count: rows * embedDim)
        negativeWeights = Buffer(count: rows)
    }
}
