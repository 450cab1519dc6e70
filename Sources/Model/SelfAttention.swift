import Tensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Legend: B = batch, T = tokens, D = embedDim, Hh = heads, d = D/Hh (head size). Row-major.

/// Multi-head scaled dot-product attention between timm's `attn.qkv` and `attn.proj` Linears (they belong to the
/// block); no parameters of its own.
///
/// The qkv Linear's output (B, T, 3D) is read in place: for image b and head h, Q = columns [h·d, (h+1)·d),
/// K = columns D + the same, V = 2D + the same, each a (T, d) matrix with row stride 3D (timm's
/// `reshape(B, T, 3, Hh, d).permute(2, 0, 3, 1, 4)` without a copy). Per (b, h):
///   S = s·Q Kᵀ (T, T) with s = 1/√d,  P = softmax(S) row-wise (cached),  O = P V (T, d),
/// written at columns [h·d, (h+1)·d) of the output (B, T, D): the heads concatenated, as timm's
/// `transpose(1, 2).reshape(B, T, D)`. Every product is one sgemm on strided views (B·Hh calls per pass).
public struct SelfAttention: Sendable {
    public let tokens: Int
    public let embedDim: Int
    public let heads: Int

    public init(tokens: Int, embedDim: Int, heads: Int) {
        precondition(tokens > 0 && heads > 0 && embedDim % heads == 0,
                     "SelfAttention: embedDim \(embedDim) must be a multiple of heads \(heads) (tokens \(tokens))")
        self.tokens = tokens
        self.embedDim = embedDim
        self.heads = heads
    }

    /// d, the size of one head.
    @inlinable public var headDim: Int { embedDim / heads }
    /// s = 1/√d.
    @inlinable public var scale: Float { 1 / Float(Double(headDim).squareRoot()) }
    /// Floats of the probability cache P per sample: Hh·T·T.
    public var probabilitiesPerSample: Int { heads * tokens * tokens }
    /// Floats of the backward scratch: one (T, T) matrix.
    public var scratchCount: Int { tokens * tokens }
    /// Multiply-adds per sample of the two products (Q Kᵀ and P V): 2·T²·D.
    public var multiplyAddsPerSample: Int { 2 * tokens * tokens * embedDim }
    /// Backward multiply-adds per sample of the four products (dP = dO Vᵀ, dV = Pᵀ dO, dQ = dS K, dK = dSᵀ Q),
    /// T²·d each per head: 4·T²·D.
    public var backwardMultiplyAddsPerSample: Int { 4 * tokens * tokens * embedDim }

    // MARK: - Forward / backward

    /// O = softmax(s·Q Kᵀ) V per image and head. qkv: (B, T, 3D); probabilities: (B, Hh, T, T) ← P (cached for
    /// backward); output: (B, T, D), every element written.
    @inlinable
    public func forward(qkv: UnsafePointer<Float>, probabilities: UnsafeMutablePointer<Float>,
                        output: UnsafeMutablePointer<Float>, batch: Int) {
        let T = tokens, D = embedDim, d = headDim, ld = 3 * D
        for b in 0..<batch {
            let rows = qkv + b * T * ld
            for h in 0..<heads {
                let q = rows + h * d, k = rows + D + h * d, v = rows + 2 * D + h * d
                let p = probabilities + (b * heads + h) * T * T
                gemm(.none, .transposed, m: T, n: T, k: d, alpha: scale, a: q, lda: ld, b: k, ldb: ld,
                     beta: 0, c: p, ldc: T)
                for i in 0..<T { softmaxRow(p + i * T, count: T) }
                gemm(.none, .none, m: T, n: d, k: T, a: p, lda: T, b: v, ldb: ld, beta: 0,
                     c: output + b * T * D + h * d, ldc: D)
            }
        }
    }

    /// Writes dQKV from dO. Per (b, h): dP = dO Vᵀ, dV = Pᵀ dO, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
    /// dQ = s·dS K, dK = s·dSᵀ Q. dOutput: (B, T, D); qkv and probabilities: the forward's; dQKV: (B, T, 3D),
    /// **overwritten** (every element); scratch: `scratchCount` floats.
    @inlinable
    public func backward(dOutput: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
                         probabilities: UnsafePointer<Float>, dQKV: UnsafeMutablePointer<Float>, batch: Int,
                         scratch: UnsafeMutablePointer<Float>) {
        let T = tokens, D = embedDim, d = headDim, ld = 3 * D
        let dS = scratch
        for b in 0..<batch {
            let rows = qkv + b * T * ld, dRows = dQKV + b * T * ld, dO = dOutput + b * T * D
            for h in 0..<heads {
                let q = rows + h * d, k = rows + D + h * d, v = rows + 2 * D + h * d
                let p = probabilities + (b * heads + h) * T * T
                let dOh = dO + h * d
                gemm(.none, .transposed, m: T, n: T, k: d, a: dOh, lda: D, b: v, ldb: ld, beta: 0, c: dS, ldc: T)
                gemm(.transposed, .none, m: T, n: d, k: T, a: p, lda: T, b: dOh, ldb: D, beta: 0,
                     c: dRows + 2 * D + h * d, ldc: ld)
                let whole = T / 8 * 8
                for i in 0..<T {
                    let pr = p + i * T, g = dS + i * T
                    var lanes = Lanes.zero
                    for j in stride(from: 0, to: whole, by: 8) { lanes += loadLanes(g + j) * loadLanes(pr + j) }
                    var dot = lanes.sum()
                    for j in whole..<T { dot += g[j] * pr[j] }
                    for j in stride(from: 0, to: whole, by: 8) { storeLanes(loadLanes(pr + j) * (loadLanes(g + j) - dot), g + j) }
                    for j in whole..<T { g[j] = pr[j] * (g[j] - dot) }
                }
                gemm(.none, .none, m: T, n: d, k: T, alpha: scale, a: dS, lda: T, b: k, ldb: ld, beta: 0,
                     c: dRows + h * d, ldc: ld)
                gemm(.transposed, .none, m: T, n: d, k: T, alpha: scale, a: dS, lda: T, b: q, ldb: ld, beta: 0,
                     c: dRows + D + h * d, ldc: ld)
            }
        }
    }
}

/// x ← softmax(x) over `count` values, shifted by the maximum so exp never overflows.
@inlinable
func softmaxRow(_ x: UnsafeMutablePointer<Float>, count: Int) {
    let whole = count / 8 * 8
    var lanes = Lanes(repeating: -.infinity)
    for j in stride(from: 0, to: whole, by: 8) {
        let v = loadLanes(x + j)
        lanes = lanes.replacing(with: v, where: v .> lanes)
    }
    var m = lanes.max()
    for j in whole..<count { m = max(m, x[j]) }
    var sumLanes = Lanes.zero
    for j in stride(from: 0, to: whole, by: 8) {
        let e = exp8(loadLanes(x + j) - m)
        storeLanes(e, x + j)
        sumLanes += e
    }
    var sum = sumLanes.sum()
    for j in whole..<count {
        let e = expf(x[j] - m)
        x[j] = e
        sum += e
    }
    let inv = 1 / sum
    for j in stride(from: 0, to: whole, by: 8) { storeLanes(loadLanes(x + j) * inv, x + j) }
    for j in whole..<count { x[j] *= inv }
}
