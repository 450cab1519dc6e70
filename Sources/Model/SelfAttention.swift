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
/// `transpose(1, 2).reshape(B, T, D)`.
///
/// Two implementations of the same products: when d is a multiple of 8 (every timm ViT: d = 16 here, 64 in timm's
/// tiny/small/base), each product is `smallProduct`, a register-tiled 8-lane kernel that keeps one (image, head) in
/// L1 (K or V transposed into a (d, T₈) scratch, T₈ = T rounded up to 8; S computed into a (T, T₈) scratch and
/// normalised into the cache by the softmax). Otherwise each product is one sgemm on strided views. The small
/// products are 2·B·Hh per pass, too small for sgemm's packing to pay off (at T = 50, d = 16 the sgemm path spent
/// more time packing and in call overhead than multiplying).
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
    /// Whether the 8-lane kernels run (d a multiple of 8); otherwise the sgemm path.
    public var usesLaneKernels: Bool { headDim % 8 == 0 }
    /// T₈: T rounded up to a multiple of 8, the row stride of the lane kernels' (T, T₈) scratch.
    var paddedTokens: Int { (tokens + 7) / 8 * 8 }
    /// Floats of the scratch of forward and backward: (T, T₈) + (d, T₈) for the lane kernels, (T, T) for sgemm.
    public var scratchCount: Int { usesLaneKernels ? (tokens + headDim) * paddedTokens : tokens * tokens }
    /// Multiply-adds per sample of the two products (Q Kᵀ and P V): 2·T²·D.
    public var multiplyAddsPerSample: Int { 2 * tokens * tokens * embedDim }
    /// Backward multiply-adds per sample of the four products (dP = dO Vᵀ, dV = Pᵀ dO, dQ = dS K, dK = dSᵀ Q),
    /// T²·d each per head: 4·T²·D.
    public var backwardMultiplyAddsPerSample: Int { 4 * tokens * tokens * embedDim }

    // MARK: - Forward / backward

    /// O = softmax(s·Q Kᵀ) V per image and head. qkv: (B, T, 3D); probabilities: (B, Hh, T, T) ← P (cached for
    /// backward); output: (B, T, D), every element written; scratch: `scratchCount` floats.
    public func forward(qkv: UnsafePointer<Float>, probabilities: UnsafeMutablePointer<Float>,
                        output: UnsafeMutablePointer<Float>, batch: Int, scratch: UnsafeMutablePointer<Float>) {
        if usesLaneKernels {
            forwardLanes(qkv: qkv, probabilities: probabilities, output: output, batch: batch, scratch: scratch)
        } else {
            forwardGEMM(qkv: qkv, probabilities: probabilities, output: output, batch: batch)
        }
    }

    /// Writes dQKV from dO. Per (b, h): dP = dO Vᵀ, dV = Pᵀ dO, dS = P ⊙ (dP − rowsum(dP ⊙ P)),
    /// dQ = s·dS K, dK = s·dSᵀ Q. dOutput: (B, T, D); qkv and probabilities: the forward's; dQKV: (B, T, 3D),
    /// **overwritten** (every element); scratch: `scratchCount` floats.
    public func backward(dOutput: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
                         probabilities: UnsafePointer<Float>, dQKV: UnsafeMutablePointer<Float>, batch: Int,
                         scratch: UnsafeMutablePointer<Float>) {
        if usesLaneKernels {
            backwardLanes(dOutput: dOutput, qkv: qkv, probabilities: probabilities, dQKV: dQKV, batch: batch,
                          scratch: scratch)
        } else {
            backwardGEMM(dOutput: dOutput, qkv: qkv, probabilities: probabilities, dQKV: dQKV, batch: batch,
                         scratch: scratch)
        }
    }

    // MARK: - 8-lane kernels (d a multiple of 8)

    /// `forward` with `smallProduct`: Kᵀ into the (d, T₈) scratch (zero-padded), S = s·Q Kᵀ into the (T, T₈)
    /// scratch, P = softmax(S) into the cache, O = P V.
    func forwardLanes(qkv: UnsafePointer<Float>, probabilities: UnsafeMutablePointer<Float>,
                      output: UnsafeMutablePointer<Float>, batch: Int, scratch: UnsafeMutablePointer<Float>) {
        let T = tokens, D = embedDim, d = headDim, ld = 3 * D, T8 = paddedTokens
        let s = scratch, transposed = scratch + T * T8
        for b in 0..<batch {
            let rows = qkv + b * T * ld
            for h in 0..<heads {
                let q = rows + h * d, k = rows + D + h * d, v = rows + 2 * D + h * d
                let p = probabilities + (b * heads + h) * T * T
                transposeHead(k, rowStride: ld, tokens: T, headDim: d, into: transposed, paddedTokens: T8)
                smallProduct(rows: T, vectors: T8 / 8, depth: d, alpha: scale, a: q, aRowStride: ld, aDepthStride: 1,
                             b: transposed, ldb: T8, c: s, ldc: T8)
                for i in 0..<T { softmaxRow(s + i * T8, count: T, into: p + i * T) }
                smallProduct(rows: T, vectors: d / 8, depth: T, alpha: 1, a: p, aRowStride: T, aDepthStride: 1,
                             b: v, ldb: ld, c: output + b * T * D + h * d, ldc: D)
            }
        }
    }

    /// `backward` with `smallProduct`: Vᵀ into the (d, T₈) scratch, dP = dO Vᵀ into the (T, T₈) scratch,
    /// dV = Pᵀ dO, dS in place of dP, dQ = s·dS K, dK = s·dSᵀ Q (the transposes as strides of the broadcast
    /// operand).
    func backwardLanes(dOutput: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
                       probabilities: UnsafePointer<Float>, dQKV: UnsafeMutablePointer<Float>, batch: Int,
                       scratch: UnsafeMutablePointer<Float>) {
        let T = tokens, D = embedDim, d = headDim, ld = 3 * D, T8 = paddedTokens
        let dS = scratch, transposed = scratch + T * T8
        for b in 0..<batch {
            let rows = qkv + b * T * ld, dRows = dQKV + b * T * ld, dO = dOutput + b * T * D
            for h in 0..<heads {
                let q = rows + h * d, k = rows + D + h * d, v = rows + 2 * D + h * d
                let p = probabilities + (b * heads + h) * T * T
                let dOh = dO + h * d
                transposeHead(v, rowStride: ld, tokens: T, headDim: d, into: transposed, paddedTokens: T8)
                smallProduct(rows: T, vectors: T8 / 8, depth: d, alpha: 1, a: dOh, aRowStride: D, aDepthStride: 1,
                             b: transposed, ldb: T8, c: dS, ldc: T8)
                smallProduct(rows: T, vectors: d / 8, depth: T, alpha: 1, a: p, aRowStride: 1, aDepthStride: T,
                             b: dOh, ldb: D, c: dRows + 2 * D + h * d, ldc: ld)
                for i in 0..<T { softmaxBackwardRow(dS + i * T8, probabilities: p + i * T, count: T) }
                smallProduct(rows: T, vectors: d / 8, depth: T, alpha: scale, a: dS, aRowStride: T8, aDepthStride: 1,
                             b: k, ldb: ld, c: dRows + h * d, ldc: ld)
                smallProduct(rows: T, vectors: d / 8, depth: T, alpha: scale, a: dS, aRowStride: 1, aDepthStride: T8,
                             b: q, ldb: ld, c: dRows + D + h * d, ldc: ld)
            }
        }
    }

    // MARK: - sgemm path (any d)

    /// `forward` with one sgemm per product on strided views (B·Hh calls per product).
    func forwardGEMM(qkv: UnsafePointer<Float>, probabilities: UnsafeMutablePointer<Float>,
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

    /// `backward` with one sgemm per product on strided views; scratch: (T, T).
    func backwardGEMM(dOutput: UnsafePointer<Float>, qkv: UnsafePointer<Float>,
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
                for i in 0..<T { softmaxBackwardRow(dS + i * T, probabilities: p + i * T, count: T) }
                gemm(.none, .none, m: T, n: d, k: T, alpha: scale, a: dS, lda: T, b: k, ldb: ld, beta: 0,
                     c: dRows + h * d, ldc: ld)
                gemm(.transposed, .none, m: T, n: d, k: T, alpha: scale, a: dS, lda: T, b: q, ldb: ld, beta: 0,
                     c: dRows + D + h * d, ldc: ld)
            }
        }
    }
}

// MARK: - Row kernels

/// g ← p ⊙ (g − Σ_j g_j·p_j) over `count` values: the softmax backward of one row (g = dP in, dS out).
@inline(__always)
func softmaxBackwardRow(_ g: UnsafeMutablePointer<Float>, probabilities pr: UnsafePointer<Float>, count: Int) {
    let whole = count / 8 * 8
    var lanes = Lanes.zero
    for j in stride(from: 0, to: whole, by: 8) { lanes += loadLanes(g + j) * loadLanes(pr + j) }
    var dot = lanes.sum()
    for j in whole..<count { dot += g[j] * pr[j] }
    for j in stride(from: 0, to: whole, by: 8) { storeLanes(loadLanes(pr + j) * (loadLanes(g + j) - dot), g + j) }
    for j in whole..<count { g[j] = pr[j] * (g[j] - dot) }
}

/// y ← softmax(x) over `count` values, shifted by the maximum. x: `count` rounded up to 8 floats (the tail of
/// the last vector is read and overwritten with e^(x − max) or 0, never used); y: `count` floats.
@inline(__always)
func softmaxRow(_ x: UnsafeMutablePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>) {
    let whole = count / 8 * 8, padded = (count + 7) / 8 * 8
    // Lanes at or past `count` in the last vector: −∞ for the maximum, 0 in the sum.
    let outside = Lanes(0, 1, 2, 3, 4, 5, 6, 7) .>= Lanes(repeating: Float(count - (padded - 8)))
    var lanes = Lanes(repeating: -.infinity)
    for j in stride(from: 0, to: whole, by: 8) {
        let v = loadLanes(x + j)
        lanes = lanes.replacing(with: v, where: v .> lanes)
    }
    if whole < count {
        let v = loadLanes(x + whole).replacing(with: -.infinity, where: outside)
        lanes = lanes.replacing(with: v, where: v .> lanes)
    }
    let m = lanes.max()
    var sumLanes = Lanes.zero
    for j in stride(from: 0, to: whole, by: 8) {
        let e = exp8(loadLanes(x + j) - m)
        storeLanes(e, x + j)
        sumLanes += e
    }
    if whole < count {
        let e = exp8(loadLanes(x + whole) - m).replacing(with: 0, where: outside)
        storeLanes(e, x + whole)
        sumLanes += e
    }
    let inv = 1 / sumLanes.sum()
    for j in stride(from: 0, to: whole, by: 8) { storeLanes(loadLanes(x + j) * inv, y + j) }
    for j in whole..<count { y[j] = x[j] * inv }
}

/// xt[k, j] = x[j, k] for j < T, 0 for T ≤ j < T₈: one head's (T, d) block (row stride `rowStride`) transposed
/// into a (d, T₈) matrix whose rows are whole 8-lane vectors.
@inline(__always)
func transposeHead(_ x: UnsafePointer<Float>, rowStride: Int, tokens: Int, headDim: Int,
                   into xt: UnsafeMutablePointer<Float>, paddedTokens: Int) {
    for j in 0..<tokens {
        let row = x + j * rowStride
        for k in 0..<headDim { xt[k * paddedTokens + j] = row[k] }
    }
    for k in 0..<headDim {
        for j in tokens..<paddedTokens { xt[k * paddedTokens + j] = 0 }
    }
}

/// c + a·b on 8 lanes, one fused multiply-add where the instruction set has it (`DTRAIN_FMA`, arm64).
@inline(__always)
func fma8(_ a: Lanes, _ b: Lanes, _ c: Lanes) -> Lanes {
    #if DTRAIN_FMA || arch(arm64)
    return c.addingProduct(a, b)
    #else
    return c + a * b
    #endif
}

/// C = α·A B for the attention's small products. A: (rows, depth), element (i, p) at a[i·aRowStride +
/// p·aDepthStride] (a transposed operand is a swap of the strides); B: (depth, 8·vectors), rows at stride ldb,
/// each 8·vectors contiguous floats; C: (rows, 8·vectors), rows at stride ldc, **overwritten**.
///
/// Register tiles of 4 rows × 2 vectors (8 accumulators, enough independent FMAs to hide their latency): per step
/// of the depth, 2 vector loads of B and 4 broadcasts of A feed 8 FMAs. Edge tiles: fewer rows, one vector.
func smallProduct(rows: Int, vectors: Int, depth: Int, alpha: Float, a: UnsafePointer<Float>, aRowStride: Int,
                  aDepthStride: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
    var i = 0
    while i + 4 <= rows {
        productRowBlock(4, vectors: vectors, depth: depth, alpha: alpha, a: a + i * aRowStride, aRowStride: aRowStride,
                        aDepthStride: aDepthStride, b: b, ldb: ldb, c: c + i * ldc, ldc: ldc)
        i += 4
    }
    let ra = a + i * aRowStride, rc = c + i * ldc
    switch rows - i {
    case 1: productRowBlock(1, vectors: vectors, depth: depth, alpha: alpha, a: ra, aRowStride: aRowStride,
                            aDepthStride: aDepthStride, b: b, ldb: ldb, c: rc, ldc: ldc)
    case 2: productRowBlock(2, vectors: vectors, depth: depth, alpha: alpha, a: ra, aRowStride: aRowStride,
                            aDepthStride: aDepthStride, b: b, ldb: ldb, c: rc, ldc: ldc)
    case 3: productRowBlock(3, vectors: vectors, depth: depth, alpha: alpha, a: ra, aRowStride: aRowStride,
                            aDepthStride: aDepthStride, b: b, ldb: ldb, c: rc, ldc: ldc)
    default: break
    }
}

/// `R` rows of `smallProduct` (R ≤ 4, a constant at every call so the unused accumulators fold away).
@inline(__always)
func productRowBlock(_ R: Int, vectors: Int, depth: Int, alpha: Float, a: UnsafePointer<Float>, aRowStride: Int,
                     aDepthStride: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>,
                     ldc: Int) {
    var v = 0
    while v + 2 <= vectors {
        productTile(R, 2, depth: depth, alpha: alpha, a: a, aRowStride: aRowStride, aDepthStride: aDepthStride,
                    b: b + 8 * v, ldb: ldb, c: c + 8 * v, ldc: ldc)
        v += 2
    }
    if v < vectors {
        productTile(R, 1, depth: depth, alpha: alpha, a: a, aRowStride: aRowStride, aDepthStride: aDepthStride,
                    b: b + 8 * v, ldb: ldb, c: c + 8 * v, ldc: ldc)
    }
}

/// One R × (8·V) tile of `smallProduct` (R ≤ 4, V ≤ 2, constants at every call): c[r][v] = α·Σ_p A[r, p]·B[p, v].
@inline(__always)
func productTile(_ R: Int, _ V: Int, depth: Int, alpha: Float, a: UnsafePointer<Float>, aRowStride: Int,
                 aDepthStride: Int, b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
    var c00 = Lanes.zero, c01 = Lanes.zero, c10 = Lanes.zero, c11 = Lanes.zero
    var c20 = Lanes.zero, c21 = Lanes.zero, c30 = Lanes.zero, c31 = Lanes.zero
    var ap = a, bp = b
    for _ in 0..<depth {
        let b0 = loadLanes(bp), b1 = V > 1 ? loadLanes(bp + 8) : Lanes.zero
        let a0 = Lanes(repeating: ap[0])
        c00 = fma8(a0, b0, c00)
        if V > 1 { c01 = fma8(a0, b1, c01) }
        if R > 1 {
            let a1 = Lanes(repeating: ap[aRowStride])
            c10 = fma8(a1, b0, c10)
            if V > 1 { c11 = fma8(a1, b1, c11) }
        }
        if R > 2 {
            let a2 = Lanes(repeating: ap[2 * aRowStride])
            c20 = fma8(a2, b0, c20)
            if V > 1 { c21 = fma8(a2, b1, c21) }
        }
        if R > 3 {
            let a3 = Lanes(repeating: ap[3 * aRowStride])
            c30 = fma8(a3, b0, c30)
            if V > 1 { c31 = fma8(a3, b1, c31) }
        }
        ap += aDepthStride
        bp += ldb
    }
    storeLanes(c00 * alpha, c)
    if V > 1 { storeLanes(c01 * alpha, c + 8) }
    if R > 1 { storeLanes(c10 * alpha, c + ldc); if V > 1 { storeLanes(c11 * alpha, c + ldc + 8) } }
    if R > 2 { storeLanes(c20 * alpha, c + 2 * ldc); if V > 1 { storeLanes(c21 * alpha, c + 2 * ldc + 8) } }
    if R > 3 { storeLanes(c30 * alpha, c + 3 * ldc); if V > 1 { storeLanes(c31 * alpha, c + 3 * ldc + 8) } }
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
