import RealModule
import Tensor

// The contrastive losses on unnormalised embeddings, in their distributed form: anchors are a range of rows of the
// gathered batch, contrasted with every gathered row.
//
// Legend: N = gathered rows (the global batch, rank order), D = embedDim, anchors = rows r0..<r1 (this rank's),
// N_g = globalCount (the divisor), τ = temperature.
//
//   z_j = x_j / max(‖x_j‖, 1e-12)                     (N, D)
//   S   = Z_anchors Zᵀ / τ                            (n, N), one gemm per block of anchors (anchorBlocks)
//   L   = (1/N_g) Σ_{i∈anchors} l_i(S_i·)             (per-row terms: LACLN.swift, HSCL.swift)
//   dS  = scale·∂L/∂S, written over S by the row's fused passes (SimilarityRow.swift)
//   dZ  = (1/τ)·dSᵀ Z_anchors  (every row, as a column of S)  +  (1/τ)·dS Z  (the anchor rows)   — two gemms
//   dx_j = (g_j − (g_j·z_j) z_j) / ‖x_j‖,  g_j = dZ_j  (g_j/1e-12 when the norm is clamped)
//
// Self-exclusion and positives use the global index, so rank r's result is exactly the r-th summand of the
// single-process loss and gradient: summing dEmbeddings over ranks (reduce-scatter with sum) gives the gradient
// of the global loss, and a single process passes anchors = 0..<N.
//
// A single process (anchors = 0..<N) with a pooled loss (SupCon, LACLN) takes the symmetric form instead
// (SymmetricContrastive.swift): S = Z·Zᵀ/τ in t×t tiles of its upper triangle, two passes, dZ = (1/τ)(dS + dSᵀ)Z,
// 4·N²·D flops instead of 6·N²·D and no block larger than a tile. HSCL keeps the anchor blocks.

/// Whether the average over positives sits inside or outside the log (LACLN.swift).
public enum LogPlacement: Sendable, Equatable {
    /// Eq. 3 as printed: −log( (1/|P|)·S/(S + G) ).
    case inside
    /// SupCon L_out form: −(1/|P|) Σ_p log( e^{s_p}/(S + G) ).
    case outside
}

/// One supervised contrastive loss: its denominator form, hard-negative exponent and weight treatment.
public struct ContrastiveLoss: Sendable, Equatable {
    /// The shape of the per-anchor term.
    public enum Form: Sendable, Equatable {
        /// One denominator S + G per anchor shared by its positives (SupCon, LACLN).
        case pooled(LogPlacement)
        /// One denominator e^{s_p} + G per positive (HSCL).
        case perPositive
    }

    /// The per-anchor term.
    public let form: Form
    /// The hard-negative exponent β (0: every negative weight is 1).
    public let beta: Double
    /// Whether the hard-negative weights w_ik are treated as constants in the backward pass.
    public let detachedWeights: Bool

    /// A loss of the given form; β must be finite and ≥ 0.
    public init(form: Form, beta: Double, detachedWeights: Bool = false) {
        precondition(beta.isFinite && beta >= 0, "ContrastiveLoss: beta must be finite and >= 0, got \(beta)")
        self.form = form
        self.beta = beta
        self.detachedWeights = detachedWeights
    }

    /// Khosla et al.'s L_out, without a base-temperature factor (pooled, outside, β = 0).
    public static let supconOut = ContrastiveLoss(form: .pooled(.outside), beta: 0)
    /// LACL without hard-negative mining, = Khosla et al.'s L_in (pooled, inside, β = 0).
    public static let laclNoHNM = ContrastiveLoss(form: .pooled(.inside), beta: 0)

    /// CLCE's LACLN (Eq. 3): pooled with hard-negative weights of exponent `beta`.
    public static func lacln(beta: Double = 1, placement: LogPlacement = .inside,
                             detachedWeights: Bool = false) -> ContrastiveLoss {
        ContrastiveLoss(form: .pooled(placement), beta: beta, detachedWeights: detachedWeights)
    }

    /// Jiang et al.'s HSCL: a denominator per positive with importance-weighted negatives of exponent `beta`.
    public static func hscl(beta: Double = 1, detachedWeights: Bool = false) -> ContrastiveLoss {
        ContrastiveLoss(form: .perPositive, beta: beta, detachedWeights: detachedWeights)
    }
}

// MARK: - Forward and backward

/// A contrastive loss and its gradient in one pass: returns (1/globalCount)·Σ_{i∈anchorRows} l_i and overwrites
/// dEmbeddings with ∂(scale·that)/∂embeddings for the WHOLE gathered matrix.
///
/// embeddings, dEmbeddings: (N, D) with N = labels.count and D = workspace.embedDim, the gathered batch in rank
/// order (unnormalised); labels: N class ids; anchorRows: this rank's rows (0..<N for a single process).
/// `perAnchor`, when given, receives the undivided l_i for the anchors (anchorRows.count values). Loss terms are
/// accumulated in Double. Nothing is allocated: all scratch is in `workspace` (capacity ≥ N rows, width D).
@_specialize(exported: true, where T == Float)
@_specialize(where T == Double)
public func contrastiveLoss<T: BLASScalar>(_ loss: ContrastiveLoss, embeddings: UnsafeBufferPointer<T>,
                                           labels: UnsafeBufferPointer<Int32>, anchorRows: Range<Int>,
                                           globalCount: Int, tau: T, scale: T, workspace: ContrastiveWorkspace<T>,
                                           dEmbeddings: UnsafeMutableBufferPointer<T>,
                                           perAnchor: UnsafeMutableBufferPointer<Double>? = nil) -> Double {
    let rows = labels.count, dim = workspace.embedDim
    precondition(rows <= workspace.rows, "contrastiveLoss: \(rows) rows exceed the workspace's \(workspace.rows)")
    precondition(embeddings.count == rows * dim, "contrastiveLoss: embeddings has \(embeddings.count) elements, "
                 + "expected rows \(rows) × embedDim \(dim)")
    precondition(dEmbeddings.count == rows * dim, "contrastiveLoss: dEmbeddings has \(dEmbeddings.count) elements, "
                 + "expected rows \(rows) × embedDim \(dim)")
    precondition(anchorRows.lowerBound >= 0 && anchorRows.upperBound <= rows,
                 "contrastiveLoss: anchorRows \(anchorRows) outside 0..<\(rows)")
    precondition(globalCount >= 1, "contrastiveLoss: globalCount must be >= 1, got \(globalCount)")
    precondition(tau > 0, "contrastiveLoss: tau must be > 0, got \(tau)")
    if let perAnchor {
        precondition(perAnchor.count >= anchorRows.count,
                     "contrastiveLoss: perAnchor \(perAnchor.count) < anchors \(anchorRows.count)")
    }
    if rows == 0 { return 0 }

    let x = embeddings.baseAddress!, y = labels.baseAddress!, dx = dEmbeddings.baseAddress!
    let z = workspace.normalized.base, norms = workspace.norms.base
    let dz = workspace.dNormalized.base
    let minNorm: T = 1e-12

    // MARK: normalise
    for j in 0..<rows {
        let xj = x + j * dim, zj = z + j * dim
        let norm = T.dot(count: dim, x: xj, y: xj).squareRoot()
        norms[j] = norm
        let inv = 1 / max(norm, minNorm)
        for d in 0..<dim { zj[d] = xj[d] * inv }
    }
    workspace.dNormalized.storage.update(repeating: 0)

    let beta = T(loss.beta)
    let mode = BetaMode(beta)
    let rowScale = Double(scale) / Double(globalCount)
    let invTau = 1 / tau
    let total: Double

    // MARK: one process, a pooled loss: the symmetric form (SymmetricContrastive.swift)
    if anchorRows == 0..<rows, case .pooled(let placement) = loss.form {
        total = symmetricPooledLoss(placement: placement, beta: loss.beta, detachedWeights: loss.detachedWeights,
                                    z: z, labels: y, rows: rows, dim: dim, invTau: invTau, rowScale: rowScale,
                                    workspace: workspace, perAnchor: perAnchor)
    } else {
        total = anchorBlocks(loss, z: z, labels: y, rows: rows, dim: dim, anchorRows: anchorRows, beta: beta,
                             mode: mode, invTau: invTau, rowScale: rowScale, workspace: workspace,
                             perAnchor: perAnchor)
    }

    // MARK: backward through the normalisation
    for j in 0..<rows {
        let g = dz + j * dim, zj = z + j * dim, out = dx + j * dim
        let norm = norms[j]
        if norm > minNorm {
            let gz = T.dot(count: dim, x: g, y: zj)
            let inv = 1 / norm
            for d in 0..<dim { out[d] = (g[d] - gz * zj[d]) * inv }
        } else {
            // z = x/1e-12 is linear in x: no projection.
            for d in 0..<dim { out[d] = g[d] / minNorm }
        }
    }
    return total / Double(globalCount)
}

/// The distributed form: blocks of `workspace.anchorChunk` anchors × all N gathered rows, each row finished by
/// its fused passes, then dZ += (1/τ)·dSᵀ Z_anchors and dZ_anchors += (1/τ)·dS Z. Returns Σ l_i (not divided).
@inline(__always)
func anchorBlocks<T: BLASScalar>(_ loss: ContrastiveLoss, z: UnsafeMutablePointer<T>, labels y: UnsafePointer<Int32>,
                                 rows: Int, dim: Int, anchorRows: Range<Int>, beta: T, mode: BetaMode, invTau: T,
                                 rowScale: Double, workspace: ContrastiveWorkspace<T>,
                                 perAnchor: UnsafeMutableBufferPointer<Double>?) -> Double {
    let block = workspace.block.base, dz = workspace.dNormalized.base
    let weights = workspace.negativeWeights.base
    var total = 0.0
    var first = anchorRows.lowerBound
    while first < anchorRows.upperBound {
        let count = min(workspace.anchorChunk, anchorRows.upperBound - first)
        let zAnchors = z + first * dim
        // S = Z_anchors Zᵀ / τ: (count, N).
        gemm(.none, .transposed, m: count, n: rows, k: dim, alpha: invTau, a: zAnchors, lda: dim,
             b: z, ldb: dim, beta: 0, c: block, ldc: rows)
        for a in 0..<count {
            let i = first + a
            let s = block + a * rows
            let label = y[i]
            let scan = scanRow(s, labels: y, label: label, selfIndex: i, count: rows)
            var l = 0.0
            if scan.positives == 0 {
                // No positive: l_i = 0 exactly and no gradient as an anchor (it still counts in N_g).
                s.update(repeating: 0, count: rows)
            } else {
                switch loss.form {
                case .pooled(let placement):
                    let sums = exponentiateRow(s, labels: y, label: label, selfIndex: i, count: rows, scan: scan,
                                               beta: beta, mode: mode, keepPositives: false, weights: weights)
                    l = finishPooledRow(s, labels: y, label: label, selfIndex: i, count: rows, scan: scan,
                                        sums: sums, beta: loss.beta, mode: mode, placement: placement,
                                        detachedWeights: loss.detachedWeights, rowScale: rowScale,
                                        weights: weights)
                case .perPositive:
                    let sums = exponentiateRow(s, labels: y, label: label, selfIndex: i, count: rows, scan: scan,
                                               beta: beta, mode: mode, keepPositives: true, weights: weights)
                    l = finishPerPositiveRow(s, labels: y, label: label, selfIndex: i, count: rows, scan: scan,
                                             sums: sums, beta: loss.beta, mode: mode,
                                             detachedWeights: loss.detachedWeights, rowScale: rowScale,
                                             weights: weights)
                }
            }
            perAnchor?[i - anchorRows.lowerBound] = l
            total += l
        }
        // dZ += (1/τ)·dSᵀ Z_anchors: every row's gradient as a column of S (N, D).
        gemm(.transposed, .none, m: rows, n: dim, k: count, alpha: invTau, a: block, lda: rows,
             b: zAnchors, ldb: dim, beta: 1, c: dz, ldc: dim)
        // dZ_anchors += (1/τ)·dS Z: the anchors' own gradient (count, D).
        gemm(.none, .none, m: count, n: dim, k: rows, alpha: invTau, a: block, lda: rows,
             b: z, ldb: dim, beta: 1, c: dz + first * dim, ldc: dim)
        first += count
    }
    return total
}
