import Tensor

/// Scratch memory for the contrastive losses, allocated once for (rows N, embedDim D, maxAnchors): nothing is
/// allocated per call, and nothing is N×N.
///
/// Holds the normalised rows z (N, D), their norms ‖x‖ (N), the gradient ∂L/∂z (N, D), one row (N) of
/// per-negative weights for a general β, and a similarity block used two ways:
/// - the distributed form (a rank's anchors are a slice of the gathered rows, Contrastive.swift): blocks of
///   `anchorChunk` anchor rows × N columns, overwritten in place by dS;
/// - the symmetric form (a single process, anchors = every row, SymmetricContrastive.swift): square tiles of
///   `tile` × `tile` of S = Z·Zᵀ/τ, with per-row statistics (2 maxima, 5 sums, N each) and per-row gradient
///   coefficients (6 per row) instead of any N×N matrix.
/// A call may use fewer rows than the capacity.
public final class ContrastiveWorkspace<T: BLASScalar>: @unchecked Sendable {
    /// Row capacity N (the gathered batch).
    public let rows: Int
    /// Embedding width D.
    public let embedDim: Int
    /// Upper bound on the anchor rows of one block (at most `rows`): the caller's memory limit.
    public let maxAnchors: Int
    /// Anchor rows per block of the distributed form: min(maxAnchors, the rows whose N columns fill
    /// `chunkElements`), at least 1.
    public let anchorChunk: Int
    /// Edge of the square tiles of the symmetric form: min(maxAnchors, `defaultTile`, rows).
    public let tile: Int

    /// Tile edge of the symmetric form: a 256×256 Float tile is 256 KiB, a quarter of this machine's 1 MiB L2,
    /// beside the two 256×D row panels it multiplies.
    public static var defaultTile: Int { 256 }
    /// Elements of one anchor block of the distributed form (a cap on anchorChunk·N): 4M elements = 16 MiB in
    /// Float (512 anchors at N = 8192, 1024 up to N = 4096). Smaller, cache-sized blocks (64–256 anchors at
    /// N = 8192) were measured and were not faster: each row's three fused passes already run in L1, and only the
    /// two gradient gemms re-read the block (docs/PERFORMANCE.md, issue 17).
    public static var chunkElements: Int { 1 << 22 }

    @usableFromInline let normalized: Buffer<T>
    @usableFromInline let norms: Buffer<T>
    @usableFromInline let block: Buffer<T>
    @usableFromInline let dNormalized: Buffer<T>
    @usableFromInline let negativeWeights: Buffer<T>
    /// Symmetric form: running maxima mP, mN (2N).
    @usableFromInline let rowMaxima: Buffer<T>
    /// Symmetric form: sumP, sumA, sumB, sumS, |P| per row (5N, Double).
    @usableFromInline let rowSums: Buffer<Double>
    /// Symmetric form: cP, c0, cA, cB per row (4N).
    @usableFromInline let rowCoefficients: Buffer<T>
    /// Symmetric form: one tile's column maxima (2), Float partial sums (4) and positive counts (8·tile).
    @usableFromInline let columnScratch: Buffer<T>
    @usableFromInline let columnCounts: Buffer<Int32>

    /// Allocates the scratch for up to `rows` gathered rows of width `embedDim` and blocks of at most
    /// `maxAnchors` anchors (default: no limit beyond the cache-sized chunk).
    public init(rows: Int, embedDim: Int, maxAnchors: Int? = nil) {
        let anchors = maxAnchors ?? rows
        precondition(rows >= 1 && embedDim >= 1,
                     "ContrastiveWorkspace: rows \(rows) and embedDim \(embedDim) must be >= 1")
        precondition(anchors >= 1, "ContrastiveWorkspace: maxAnchors must be >= 1, got \(anchors)")
        self.rows = rows
        self.embedDim = embedDim
        self.maxAnchors = min(anchors, rows)
        anchorChunk = max(1, min(self.maxAnchors, Self.chunkElements / rows))
        tile = max(1, min(self.maxAnchors, Self.defaultTile))
        normalized = Buffer(count: rows * embedDim)
        norms = Buffer(count: rows)
        block = Buffer(count: max(anchorChunk * rows, tile * tile))
        dNormalized = Buffer(count: rows * embedDim)
        negativeWeights = Buffer(count: rows)
        rowMaxima = Buffer(count: 2 * rows)
        rowSums = Buffer(count: 5 * rows, repeating: 0)
        rowCoefficients = Buffer(count: 4 * rows)
        columnScratch = Buffer(count: 6 * tile + 8)
        columnCounts = Buffer(count: tile + 8, repeating: 0)
    }
}
