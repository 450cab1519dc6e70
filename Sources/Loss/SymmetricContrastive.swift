import RealModule
import Tensor

// The single-process form of the pooled losses (SupCon, LACLN; anchors = every row), using the symmetry of
// S = Z·Zᵀ/τ and never holding more than one t×t tile of it (t = workspace.tile).
//
// Legend as in Contrastive.swift and LACLN.swift; I, J = blocks of t rows, S_IJ = Z_I Z_Jᵀ/τ, f_i(s) = the
// gradient scale·∂l_i/∂s_ij as a function of s = s_ij (LACLN.swift's cP, c0, cA, cB with the row's maxima).
//
// Pass 1, over the tiles I ≤ J of the upper triangle (S_II by syrk, S_IJ by gemm, N²·D flops in all): every
// row's statistics of SimilarityRow.swift, accumulated online — the maxima mP, mN are running maxima, and when
// one rises the sums taken at the old maximum are rescaled by e^{old − new} (sumA by e^{(1+β)(old − new)}, sumB
// by e^{β(old − new)}). Rows of I take the tile row-wise, rows of J column-wise (S_JI = S_IJᵀ), so each tile
// is computed once for both. Then l_i and the coefficients of f_i follow per row (LACLN.swift).
//
// Pass 2, over the same tiles, recomputed (N²·D flops: cheaper than storing N² elements, which would not fit in
// cache and is what the issue rules out): the tile is overwritten in place by
//   G_IJ = dS_IJ + dS_JIᵀ,  G_ij = f_i(s_ij) + f_j(s_ij)      (s_ji = s_ij; zero on the diagonal i = j)
// and dZ = (1/τ)(dS + dSᵀ)Z is accumulated as dZ_I += G_IJ Z_J/τ and, for I ≠ J, dZ_J += G_IJᵀ Z_I/τ
// (2·N²·D flops). Total 4·N²·D flops against the 6·N²·D of the three full gemms of the distributed form, and
// every exponential of f is ≤ 1 (the maxima are exact by then), as in the row-wise form.
//
// The result equals the row-wise form to rounding (the sums are added in a different order and rescaled).

/// The one-shift form is used in Float for β ∈ {0, 1} when τ ≥ this: every exponent is then ≥ −(1+β)·2/τ ≥ −40
/// (e^{−40} ≈ 4e−18, far from Float's underflow at e^{−87}), and the shift's rounding error stays ≤ 40 ulp-scale
/// (relative ≈ 2e−6 on an exponential).
@usableFromInline let boundedShiftMinTau = 0.1

/// Runs both passes for a pooled loss with anchors = all `rows` rows; accumulates (1/τ)(dS + dSᵀ)Z into
/// workspace.dNormalized (zeroed by the caller), writes perAnchor and returns Σ l_i (not divided).
@inline(__always)
func symmetricPooledLoss<T: BLASScalar>(placement: LogPlacement, beta: Double, detachedWeights: Bool,
                                        z: UnsafePointer<T>, labels y: UnsafePointer<Int32>, rows: Int, dim: Int,
                                        invTau: T, rowScale: Double, workspace: ContrastiveWorkspace<T>,
                                        perAnchor: UnsafeMutableBufferPointer<Double>?) -> Double {
    let t = workspace.tile
    let tileBuffer = workspace.block.base, dz = workspace.dNormalized.base
    let mP = workspace.rowMaxima.base, mN = mP + rows
    let sums = workspace.rowSums.base
    let coefficients = workspace.rowCoefficients.base
    let mode = BetaMode(T(beta))
    let vectorPath = T.self == Float.self && mode != .general
    // One shift M = 1/τ ≥ every s for all rows when the exponents stay far from underflow (see the header).
    let bounded = vectorPath && invTau <= 1 / T(boundedShiftMinTau)
    let shift = invTau
    mP.update(repeating: -.infinity, count: 2 * rows)
    sums.update(repeating: 0, count: 5 * rows)
    let statistics = RowStatistics(maxPositive: mP, maxNegative: mN, sums: sums, rows: rows, beta: beta)

    // MARK: pass 1: row statistics
    forEachUpperTile(z, rows: rows, dim: dim, invTau: invTau, tileSize: t, tile: tileBuffer) { i0, bi, j0, bj in
        let diagonal = i0 == j0
        if bounded {
            // Literal β flags so each call is compiled without the β test in its inner loop.
            let scratch = floatPointer(workspace.columnScratch.base), counts = workspace.columnCounts.base
            if mode == .one {
                boundedStatisticsTileFloat(floatPointer(tileBuffer), bi: bi, bj: bj, labels: y, i0: i0, j0: j0,
                                           diagonal: diagonal, shift: Float(shift), betaIsOne: true, sums: sums,
                                           rows: rows, scratch: scratch, counts: counts)
            } else {
                boundedStatisticsTileFloat(floatPointer(tileBuffer), bi: bi, bj: bj, labels: y, i0: i0, j0: j0,
                                           diagonal: diagonal, shift: Float(shift), betaIsOne: false, sums: sums,
                                           rows: rows, scratch: scratch, counts: counts)
            }
            return
        }
        if !diagonal {
            // Rows of J over the columns of I: the tile's columns (read before the row pass overwrites it).
            if vectorPath {
                accumulateColumnsFloat(floatPointer(tileBuffer), bi: bi, bj: bj, labels: y, i0: i0, j0: j0,
                                       statistics: unsafeBitCast(statistics, to: RowStatistics<Float>.self),
                                       betaIsOne: mode == .one,
                                       scratch: floatPointer(workspace.columnScratch.base),
                                       counts: workspace.columnCounts.base)
            } else {
                for c in 0..<bj {
                    accumulateScalar(row: j0 + c, tileBuffer + c, stride: bj, count: bi, labels: y + i0,
                                     selfIndex: -1, mode: mode, beta: T(beta), label: y[j0 + c],
                                     statistics: statistics)
                }
            }
        }
        // Rows of I over the columns of J.
        for a in 0..<bi {
            let s = tileBuffer + a * bj
            let selfIndex = diagonal ? a : -1
            if vectorPath {
                let label = y[i0 + a]
                let scan = scanRowFloat(floatPointer(s), labels: y + j0, label: label, selfIndex: selfIndex,
                                        count: bj)
                statistics.raise(i0 + a, T(scan.maxPositive), T(scan.maxNegative))
                let (p, sa, sb, ss) = exponentiateRowFloat(
                    floatPointer(s), labels: y + j0, label: label, selfIndex: selfIndex, count: bj,
                    maxPositive: Float(mP[i0 + a]), maxNegative: Float(mN[i0 + a]), betaIsOne: mode == .one,
                    keepPositives: false)
                statistics.add(i0 + a, p, sa, sb, ss, positives: scan.positives)
            } else {
                accumulateScalar(row: i0 + a, s, stride: 1, count: bj, labels: y + j0, selfIndex: selfIndex,
                                 mode: mode, beta: T(beta), label: y[i0 + a], statistics: statistics)
            }
        }
    }

    // MARK: per-row loss and gradient coefficients
    if bounded { mP.update(repeating: shift, count: 2 * rows) }
    let cP = coefficients, c0 = coefficients + rows, cA = coefficients + 2 * rows, cB = coefficients + 3 * rows
    var total = 0.0
    for r in 0..<rows {
        let positives = Int(sums[4 * rows + r])
        var l = 0.0
        if positives == 0 {
            // No positive: l_i = 0 and no gradient as an anchor (f_i ≡ 0).
            cP[r] = 0; c0[r] = 0; cA[r] = 0; cB[r] = 0
        } else {
            let negatives = rows - 1 - positives
            let scan = RowScan(maxPositive: mP[r], maxNegative: mN[r], positives: positives, negatives: negatives)
            let rowSums = RowSums(positive: sums[r], negativeA: sums[rows + r],
                                  negativeB: mode == .zero ? Double(negatives) : sums[2 * rows + r],
                                  positiveSimilarity: sums[3 * rows + r])
            let k = pooledCoefficients(scan: scan, sums: rowSums, beta: beta, placement: placement,
                                       detachedWeights: detachedWeights, rowScale: rowScale)
            l = k.loss
            cP[r] = T(k.cP); c0[r] = T(k.c0); cA[r] = T(k.cA); cB[r] = T(k.cB)
        }
        perAnchor?[r] = l
        total += l
    }

    // MARK: pass 2: G = dS + dSᵀ tile by tile, dZ += G Z / τ
    let rowCoefficients = GradientCoefficients(maxPositive: mP, maxNegative: mN, cP: cP, c0: c0, cA: cA, cB: cB)
    forEachUpperTile(z, rows: rows, dim: dim, invTau: invTau, tileSize: t, tile: tileBuffer) { i0, bi, j0, bj in
        let diagonal = i0 == j0
        if bounded {
            let k = unsafeBitCast(rowCoefficients, to: GradientCoefficients<Float>.self)
            if mode == .one {
                boundedGradientTileFloat(floatPointer(tileBuffer), bi: bi, bj: bj, labels: y, i0: i0, j0: j0,
                                         diagonal: diagonal, shift: Float(shift), coefficients: k, betaIsOne: true)
            } else {
                boundedGradientTileFloat(floatPointer(tileBuffer), bi: bi, bj: bj, labels: y, i0: i0, j0: j0,
                                         diagonal: diagonal, shift: Float(shift), coefficients: k, betaIsOne: false)
            }
        } else if vectorPath {
            symmetricGradientTileFloat(floatPointer(tileBuffer), bi: bi, bj: bj, labels: y, i0: i0, j0: j0,
                                       diagonal: diagonal,
                                       coefficients: unsafeBitCast(rowCoefficients,
                                                                   to: GradientCoefficients<Float>.self),
                                       betaIsOne: mode == .one)
        } else {
            symmetricGradientTile(tileBuffer, bi: bi, bj: bj, labels: y, i0: i0, j0: j0, diagonal: diagonal,
                                  coefficients: rowCoefficients, mode: mode, beta: T(beta))
        }
        // dZ_I += G_IJ Z_J / τ; dZ_J += G_IJᵀ Z_I / τ (the diagonal tile's G is already symmetric and whole).
        gemm(.none, .none, m: bi, n: dim, k: bj, alpha: invTau, a: tileBuffer, lda: bj, b: z + j0 * dim,
             ldb: dim, beta: 1, c: dz + i0 * dim, ldc: dim)
        if !diagonal {
            gemm(.transposed, .none, m: bj, n: dim, k: bi, alpha: invTau, a: tileBuffer, lda: bj,
                 b: z + i0 * dim, ldb: dim, beta: 1, c: dz + j0 * dim, ldc: dim)
        }
    }
    return total
}

/// Both passes' walk: the tiles (I, J) of the upper triangle of S = Z Zᵀ/τ, row block by row block (I ≤ J, blocks
/// of `tileSize` rows, the last ones shorter), each computed into `tile` (bi, bj) before `body(i0, bi, j0, bj)`.
@inline(__always)
func forEachUpperTile<T: BLASScalar>(_ z: UnsafePointer<T>, rows: Int, dim: Int, invTau: T, tileSize t: Int,
                                     tile: UnsafeMutablePointer<T>, _ body: (Int, Int, Int, Int) -> Void) {
    var i0 = 0
    while i0 < rows {
        let bi = min(t, rows - i0)
        var j0 = i0
        while j0 < rows {
            let bj = min(t, rows - j0)
            similarityTile(z, i0: i0, bi: bi, j0: j0, bj: bj, dim: dim, invTau: invTau, tile: tile)
            body(i0, bi, j0, bj)
            j0 += bj
        }
        i0 += bi
    }
}

/// S_IJ = Z_I Z_Jᵀ/τ into `tile` (bi, bj), compact. The diagonal tile is one syrk on its upper triangle,
/// mirrored to the lower one.
@inline(__always)
func similarityTile<T: BLASScalar>(_ z: UnsafePointer<T>, i0: Int, bi: Int, j0: Int, bj: Int, dim: Int, invTau: T,
                                   tile: UnsafeMutablePointer<T>) {
    if i0 == j0 {
        syrkUpper(n: bi, k: dim, alpha: invTau, a: z + i0 * dim, lda: dim, beta: 0, c: tile, ldc: bi)
        for a in 1..<max(bi, 1) {
            for c in 0..<a { tile[a * bi + c] = tile[c * bi + a] }
        }
    } else {
        gemm(.none, .transposed, m: bi, n: bj, k: dim, alpha: invTau, a: z + i0 * dim, lda: dim, b: z + j0 * dim,
             ldb: dim, beta: 0, c: tile, ldc: bj)
    }
}

/// The online statistics of every row: running maxima and the sums (sumP, sumA, sumB, sumS, |P|) taken at them.
@usableFromInline
struct RowStatistics<T: BLASScalar> {
    let maxPositive: UnsafeMutablePointer<T>
    let maxNegative: UnsafeMutablePointer<T>
    let sums: UnsafeMutablePointer<Double>
    let rows: Int
    let beta: Double

    /// Raises row r's maxima to include a block's maxima, rescaling the sums taken at the old ones.
    @inline(__always)
    func raise(_ r: Int, _ blockPositive: T, _ blockNegative: T) {
        let oldP = maxPositive[r]
        if blockPositive > oldP {
            if oldP > -.infinity { sums[r] *= Double.exp(Double(oldP) - Double(blockPositive)) }
            maxPositive[r] = blockPositive
        }
        let oldN = maxNegative[r]
        if blockNegative > oldN {
            if oldN > -.infinity {
                let d = Double(oldN) - Double(blockNegative)
                sums[rows + r] *= Double.exp((1 + beta) * d)
                if beta != 0 { sums[2 * rows + r] *= Double.exp(beta * d) }
            }
            maxNegative[r] = blockNegative
        }
    }

    /// Adds a block's sums (taken at the current maxima).
    @inline(__always)
    func add(_ r: Int, _ p: Double, _ a: Double, _ b: Double, _ s: Double, positives: Int) {
        sums[r] += p
        sums[rows + r] += a
        sums[2 * rows + r] += b
        sums[3 * rows + r] += s
        sums[4 * rows + r] += Double(positives)
    }
}

/// Pass 1 for one row `row` over `count` strided values (any T, any β): block maxima, raise, sums.
@inline(__always)
func accumulateScalar<T: BLASScalar>(row: Int, _ s: UnsafePointer<T>, stride: Int, count: Int,
                                     labels: UnsafePointer<Int32>, selfIndex: Int, mode: BetaMode, beta: T,
                                     label: Int32, statistics: RowStatistics<T>) {
    var bP = -T.infinity, bN = -T.infinity
    var positives = 0
    for k in 0..<count where k != selfIndex {
        let v = s[k * stride]
        if labels[k] == label { bP = max(bP, v); positives += 1 } else { bN = max(bN, v) }
    }
    statistics.raise(row, bP, bN)
    let mP = statistics.maxPositive[row], mN = statistics.maxNegative[row]
    var sumP = 0.0, sumA = 0.0, sumB = 0.0, sumS = 0.0
    for k in 0..<count where k != selfIndex {
        let v = s[k * stride]
        if labels[k] == label {
            sumP += Double(T.exp(v - mP))
            sumS += Double(v)
        } else {
            let e = T.exp(v - mN)
            let d = Double(e)
            switch mode {
            case .zero: sumA += d
            case .one: sumA += d * d; sumB += d
            case .general:
                let w = T.exp(beta * (v - mN))
                sumA += d * Double(w)
                sumB += Double(w)
            }
        }
    }
    statistics.add(row, sumP, sumA, sumB, sumS, positives: positives)
}

/// Per-row shifts and coefficients of f_i (pass 2).
@usableFromInline
struct GradientCoefficients<T: BLASScalar> {
    let maxPositive: UnsafePointer<T>, maxNegative: UnsafePointer<T>
    let cP: UnsafePointer<T>, c0: UnsafePointer<T>, cA: UnsafePointer<T>, cB: UnsafePointer<T>

    /// f_r(v) for a positive (`same`) or negative column.
    @inline(__always)
    func gradient(_ r: Int, _ v: T, same: Bool, mode: BetaMode, beta: T) -> T {
        if same { return cP[r] * T.exp(v - maxPositive[r]) - c0[r] }
        let e = T.exp(v - maxNegative[r])
        switch mode {
        case .zero: return cA[r] * e
        case .one: return (cA[r] * e - cB[r]) * e
        case .general: return (cA[r] * e - cB[r]) * T.exp(beta * (v - maxNegative[r]))
        }
    }
}

/// Pass 2 on one tile (any T, any β): overwrites S_IJ with G_IJ (zero where i = j).
@inline(__always)
func symmetricGradientTile<T: BLASScalar>(_ tile: UnsafeMutablePointer<T>, bi: Int, bj: Int,
                                          labels y: UnsafePointer<Int32>, i0: Int, j0: Int, diagonal: Bool,
                                          coefficients k: GradientCoefficients<T>, mode: BetaMode, beta: T) {
    for a in 0..<bi {
        let i = i0 + a
        let label = y[i]
        for c in 0..<bj {
            let j = j0 + c
            if diagonal && a == c { tile[a * bj + c] = 0; continue }
            let v = tile[a * bj + c]
            let same = y[j] == label
            tile[a * bj + c] = k.gradient(i, v, same: same, mode: mode, beta: beta)
                + k.gradient(j, v, same: same, mode: mode, beta: beta)
        }
    }
}
