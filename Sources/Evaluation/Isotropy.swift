// The isotropy score of Mu & Viswanath ("All-but-the-Top", ICLR 2018) as the CLCE paper's Eq. 4:
//
//   I(V) = min_{c ∈ C} Z(c) / max_{c ∈ C} Z(c),   Z(c) = Σ_v exp(cᵀv),
//
// with C the eigenvectors of VᵀV and their negatives (an eigenvector's sign is arbitrary, so both are scored).
// V: (n, D) rows of embeddings, L2-normalised unless `normalise` is false. Eigenvectors from LAPACK's `dsyevd`
// (`symmetricEigen`); log Z(c) = logsumexp_v(cᵀv) in Double, so large projections do not overflow; I = exp(min log
// Z − max log Z) ∈ (0, 1], 1 for a perfectly isotropic set.
//
// Legend: n = rows, D = embedDim.
import Foundation
import Tensor

/// What `isotropy` computed.
public struct IsotropyResult: Sendable, Equatable {
    /// I = min Z / max Z.
    public var score: Double
    /// log Z(+q_i) and log Z(−q_i) for eigenvector i (eigenvalues ascending), (D) each.
    public var logZPlus: [Double], logZMinus: [Double]
    /// Eigenvalues of VᵀV, ascending.
    public var eigenvalues: [Double]
    /// Whether the rows were L2-normalised first.
    public var normalised: Bool
}

/// The isotropy score of the rows of `embeddings` (n, D); see the file comment.
public func isotropy(_ embeddings: [Float], embedDim D: Int, normalise: Bool = true) throws -> IsotropyResult {
    let n = embeddings.count / D
    precondition(n >= 1 && embeddings.count == n * D, "isotropy: \(embeddings.count) values are not rows of \(D)")
    let v = normalise ? normalisedRows(embeddings, embedDim: D) : embeddings.map(Double.init)
    var gram = [Double](repeating: 0, count: D * D)
    v.withUnsafeBufferPointer { vp in gram.withUnsafeMutableBufferPointer { g in
        gemm(.transposed, .none, m: D, n: D, k: n, a: vp.baseAddress!, lda: D, b: vp.baseAddress!, ldb: D,
             c: g.baseAddress!, ldc: D)
    } }
    let (values, vectors) = try symmetricEigen(gram, n: D)
    // Projections S = V Qᵀ (n, D): S[r, i] = q_iᵀ v_r.
    var s = [Double](repeating: 0, count: n * D)
    v.withUnsafeBufferPointer { vp in vectors.withUnsafeBufferPointer { q in s.withUnsafeMutableBufferPointer { sp in
        gemm(.none, .transposed, m: n, n: D, k: D, a: vp.baseAddress!, lda: D, b: q.baseAddress!, ldb: D,
             c: sp.baseAddress!, ldc: D)
    } } }
    var plus = [Double](repeating: 0, count: D), minus = [Double](repeating: 0, count: D)
    for i in 0..<D {
        plus[i] = logSumExp((0..<n).map { s[$0 * D + i] })
        minus[i] = logSumExp((0..<n).map { -s[$0 * D + i] })
    }
    let all = plus + minus
    return IsotropyResult(score: Foundation.exp(all.min()! - all.max()!), logZPlus: plus, logZMinus: minus,
                          eigenvalues: values, normalised: normalise)
}

/// log Σ exp(x_i), with the maximum subtracted first.
public func logSumExp(_ x: [Double]) -> Double {
    guard let top = x.max(), top.isFinite else { return x.max() ?? -.infinity }
    return top + Foundation.log(x.reduce(0) { $0 + Foundation.exp($1 - top) })
}
