import RealModule
import Tensor

// The Float, β ∈ {0, 1} kernels of SymmetricContrastive.swift on 8-lane vectors (helpers in
// SimilarityRow+Float.swift). Both sweep a tile row by row with the columns in vectors, so the column-wise work
// (the rows of J) reads the per-row arrays of J as vectors.

/// Pass 1, the rows of J over the columns of I of an off-diagonal tile S_IJ (bi, bj): their block maxima and
/// positive counts, then the raise, then the sums at the new maxima (Float partial sums over ≤ tile elements,
/// added in Double). `scratch` holds 6·bj Floats, `counts` bj.
@inline(__always)
func accumulateColumnsFloat(_ tile: UnsafeMutablePointer<Float>, bi: Int, bj: Int, labels y: UnsafePointer<Int32>,
                            i0: Int, j0: Int, statistics: RowStatistics<Float>, betaIsOne: Bool,
                            scratch: UnsafeMutablePointer<Float>, counts: UnsafeMutablePointer<Int32>) {
    let colP = scratch, colN = scratch + bj
    let sumP = scratch + 2 * bj, sumA = scratch + 3 * bj, sumB = scratch + 4 * bj, sumS = scratch + 5 * bj
    colP.update(repeating: -.infinity, count: 2 * bj)
    sumP.update(repeating: 0, count: 4 * bj)
    counts.update(repeating: 0, count: bj)
    let yJ = y + j0
    let vectorEnd = bj - bj % 8
    let countPointer = UnsafeMutableRawPointer(counts)
    for a in 0..<bi {
        let label = y[i0 + a]
        let lv = LabelVector(repeating: label)
        let row = tile + a * bj
        var c = 0
        while c < vectorEnd {
            let v = loadVector(row + c)
            let same = loadLabels(yJ + c) .== lv
            let p = loadVector(colP + c), n = loadVector(colN + c)
            storeVector(p.replacing(with: v, where: same .& (v .> p)), colP + c)
            storeVector(n.replacing(with: v, where: .!same .& (v .> n)), colN + c)
            let k = countPointer.loadUnaligned(fromByteOffset: 4 * c, as: LabelVector.self)
            countPointer.storeBytes(of: k.replacing(with: k &+ 1, where: same), toByteOffset: 4 * c,
                                    as: LabelVector.self)
            c += 8
        }
        while c < bj {
            let v = row[c]
            if yJ[c] == label { colP[c] = max(colP[c], v); counts[c] += 1 } else { colN[c] = max(colN[c], v) }
            c += 1
        }
    }
    for c in 0..<bj { statistics.raise(j0 + c, colP[c], colN[c]) }
    let mP = statistics.maxPositive + j0, mN = statistics.maxNegative + j0
    for a in 0..<bi {
        let label = y[i0 + a]
        let lv = LabelVector(repeating: label)
        let row = tile + a * bj
        var c = 0
        while c < vectorEnd {
            let v = loadVector(row + c)
            let same = loadLabels(yJ + c) .== lv
            // Every lane's shift is ≥ its value now (the maxima include this tile), so e ≤ 1.
            let e = vectorExp(v - loadVector(mN + c).replacing(with: loadVector(mP + c), where: same))
            storeVector(loadVector(sumP + c) + e.replacing(with: 0, where: .!same), sumP + c)
            storeVector(loadVector(sumS + c) + v.replacing(with: 0, where: .!same), sumS + c)
            let negative = e.replacing(with: 0, where: same)
            if betaIsOne {
                storeVector(loadVector(sumA + c) + negative * negative, sumA + c)
                storeVector(loadVector(sumB + c) + negative, sumB + c)
            } else {
                storeVector(loadVector(sumA + c) + negative, sumA + c)
            }
            c += 8
        }
        while c < bj {
            let v = row[c]
            if yJ[c] == label {
                sumP[c] += Float.exp(v - mP[c]); sumS[c] += v
            } else {
                let e = Float.exp(v - mN[c])
                if betaIsOne { sumA[c] += e * e; sumB[c] += e } else { sumA[c] += e }
            }
            c += 1
        }
    }
    for c in 0..<bj {
        statistics.add(j0 + c, Double(sumP[c]), Double(sumA[c]), Double(sumB[c]), Double(sumS[c]),
                       positives: Int(counts[c]))
    }
}

/// Pass 2 on one tile (Float, β ∈ {0, 1}): overwrites S_IJ (bi, bj) with G_ij = f_i(s_ij) + f_j(s_ij), zero
/// where i = j (diagonal tile).
@inline(__always)
func symmetricGradientTileFloat(_ tile: UnsafeMutablePointer<Float>, bi: Int, bj: Int,
                                labels y: UnsafePointer<Int32>, i0: Int, j0: Int, diagonal: Bool,
                                coefficients k: GradientCoefficients<Float>, betaIsOne: Bool) {
    let yJ = y + j0
    let mPJ = k.maxPositive + j0, mNJ = k.maxNegative + j0
    let cPJ = k.cP + j0, c0J = k.c0 + j0, cAJ = k.cA + j0, cBJ = k.cB + j0
    let vectorEnd = bj - bj % 8
    for a in 0..<bi {
        let i = i0 + a
        let label = y[i]
        let lv = LabelVector(repeating: label)
        let mPi = FloatVector(repeating: k.maxPositive[i]), mNi = FloatVector(repeating: k.maxNegative[i])
        let cPi = FloatVector(repeating: k.cP[i]), c0i = FloatVector(repeating: k.c0[i])
        let cAi = FloatVector(repeating: k.cA[i]), cBi = FloatVector(repeating: k.cB[i])
        let me = LabelVector(repeating: Int32(truncatingIfNeeded: diagonal ? a : -1))
        let row = tile + a * bj
        var c = 0
        while c < vectorEnd {
            let v = loadVector(row + c)
            let same = loadLabels(yJ + c) .== lv
            // Row i's side: f_i(s_ij).
            let ei = vectorExp(v - mNi.replacing(with: mPi, where: same))
            let negI = betaIsOne ? (cAi * ei - cBi) * ei : cAi * ei
            let gi = negI.replacing(with: cPi * ei - c0i, where: same)
            // Row j's side: f_j(s_ji) = f_j(s_ij).
            let ej = vectorExp(v - loadVector(mNJ + c).replacing(with: loadVector(mPJ + c), where: same))
            let cAj = loadVector(cAJ + c)
            let negJ = betaIsOne ? (cAj * ej - loadVector(cBJ + c)) * ej : cAj * ej
            let gj = negJ.replacing(with: loadVector(cPJ + c) * ej - loadVector(c0J + c), where: same)
            let isSelf = laneIndices &+ Int32(truncatingIfNeeded: c) .== me
            storeVector((gi + gj).replacing(with: 0, where: isSelf), row + c)
            c += 8
        }
        while c < bj {
            if diagonal && a == c { row[c] = 0; c += 1; continue }
            let v = row[c]
            row[c] = k.gradient(i, v, same: yJ[c] == label, mode: betaIsOne ? .one : .zero, beta: betaIsOne ? 1 : 0)
                + k.gradient(j0 + c, v, same: yJ[c] == label, mode: betaIsOne ? .one : .zero,
                             beta: betaIsOne ? 1 : 0)
            c += 1
        }
    }
}

// MARK: - One shift for every row (τ ≥ boundedShiftMinTau)

/// Pass 1 of the one-shift form on one tile: with e = exp(s − M) (one exponential per element, shared by row i
/// and column j), adds to row i's sums (rows of I over the columns of J, self excluded on the diagonal tile) and,
/// off the diagonal, to row j's sums (rows of J over the columns of I). `sums` is RowStatistics' (5N Doubles);
/// `scratch` holds 4·bj Floats and `counts` bj.
@inline(__always)
func boundedStatisticsTileFloat(_ tile: UnsafePointer<Float>, bi: Int, bj: Int, labels y: UnsafePointer<Int32>,
                                i0: Int, j0: Int, diagonal: Bool, shift: Float, betaIsOne: Bool,
                                sums: UnsafeMutablePointer<Double>, rows: Int,
                                scratch: UnsafeMutablePointer<Float>, counts: UnsafeMutablePointer<Int32>) {
    let colP = scratch, colA = scratch + bj, colB = scratch + 2 * bj, colS = scratch + 3 * bj
    if !diagonal {
        scratch.update(repeating: 0, count: 4 * bj)
        counts.update(repeating: 0, count: bj)
    }
    let yJ = y + j0
    let vectorEnd = bj - bj % 8
    let m = FloatVector(repeating: shift)
    let countPointer = UnsafeMutableRawPointer(counts)
    for a in 0..<bi {
        let i = i0 + a
        let label = y[i]
        let lv = LabelVector(repeating: label)
        let me = LabelVector(repeating: Int32(truncatingIfNeeded: diagonal ? a : -1))
        let row = tile + a * bj
        var rP = FloatVector.zero, rA = FloatVector.zero, rB = FloatVector.zero, rS = FloatVector.zero
        var rN = LabelVector.zero
        var c = 0
        while c < vectorEnd {
            let v = loadVector(row + c)
            let same = loadLabels(yJ + c) .== lv
            let positive = same .& (laneIndices &+ Int32(truncatingIfNeeded: c) .!= me)
            let e = vectorExp(v - m)
            let eP = e.replacing(with: 0, where: .!positive), vP = v.replacing(with: 0, where: .!positive)
            let negative = e.replacing(with: 0, where: same)
            let nA = betaIsOne ? negative * negative : negative
            rP += eP; rS += vP; rA += nA
            if betaIsOne { rB += negative }
            rN = rN.replacing(with: rN &+ 1, where: positive)
            if !diagonal {
                storeVector(loadVector(colP + c) + eP, colP + c)
                storeVector(loadVector(colS + c) + vP, colS + c)
                storeVector(loadVector(colA + c) + nA, colA + c)
                if betaIsOne { storeVector(loadVector(colB + c) + negative, colB + c) }
                let k = countPointer.loadUnaligned(fromByteOffset: 4 * c, as: LabelVector.self)
                countPointer.storeBytes(of: k.replacing(with: k &+ 1, where: positive), toByteOffset: 4 * c,
                                        as: LabelVector.self)
            }
            c += 8
        }
        var sP = Double(rP.sum()), sA = Double(rA.sum()), sB = Double(rB.sum()), sS = Double(rS.sum())
        var nP = Int(rN.wrappedSum())
        while c < bj {
            if !(diagonal && c == a) {
                let v = row[c]
                let e = Float.exp(v - shift)
                if yJ[c] == label {
                    sP += Double(e); sS += Double(v); nP += 1
                    if !diagonal { colP[c] += e; colS[c] += v; counts[c] += 1 }
                } else {
                    let nA = betaIsOne ? e * e : e
                    sA += Double(nA)
                    if betaIsOne { sB += Double(e) }
                    if !diagonal { colA[c] += nA; if betaIsOne { colB[c] += e } }
                }
            }
            c += 1
        }
        sums[i] += sP; sums[rows + i] += sA; sums[2 * rows + i] += sB; sums[3 * rows + i] += sS
        sums[4 * rows + i] += Double(nP)
    }
    if !diagonal {
        for c in 0..<bj {
            let j = j0 + c
            sums[j] += Double(colP[c]); sums[rows + j] += Double(colA[c]); sums[2 * rows + j] += Double(colB[c])
            sums[3 * rows + j] += Double(colS[c]); sums[4 * rows + j] += Double(counts[c])
        }
    }
}

/// Pass 2 of the one-shift form on one tile: with e = exp(s − M), G_ij = f_i(s) + f_j(s) =
/// (cP_i + cP_j)·e − (c0_i + c0_j) on positives, ((cA_i + cA_j)·e − (cB_i + cB_j))·e (β = 1) or (cA_i + cA_j)·e
/// (β = 0) on negatives, zero where i = j.
@inline(__always)
func boundedGradientTileFloat(_ tile: UnsafeMutablePointer<Float>, bi: Int, bj: Int, labels y: UnsafePointer<Int32>,
                              i0: Int, j0: Int, diagonal: Bool, shift: Float,
                              coefficients k: GradientCoefficients<Float>, betaIsOne: Bool) {
    let yJ = y + j0
    let cPJ = k.cP + j0, c0J = k.c0 + j0, cAJ = k.cA + j0, cBJ = k.cB + j0
    let vectorEnd = bj - bj % 8
    let m = FloatVector(repeating: shift)
    for a in 0..<bi {
        let i = i0 + a
        let label = y[i]
        let lv = LabelVector(repeating: label)
        let cPi = FloatVector(repeating: k.cP[i]), c0i = FloatVector(repeating: k.c0[i])
        let cAi = FloatVector(repeating: k.cA[i]), cBi = FloatVector(repeating: k.cB[i])
        let me = LabelVector(repeating: Int32(truncatingIfNeeded: diagonal ? a : -1))
        let row = tile + a * bj
        var c = 0
        while c < vectorEnd {
            let v = loadVector(row + c)
            let same = loadLabels(yJ + c) .== lv
            let e = vectorExp(v - m)
            let cA = cAi + loadVector(cAJ + c)
            let negative = betaIsOne ? (cA * e - (cBi + loadVector(cBJ + c))) * e : cA * e
            let positive = (cPi + loadVector(cPJ + c)) * e - (c0i + loadVector(c0J + c))
            let g = negative.replacing(with: positive, where: same)
            storeVector(g.replacing(with: 0, where: laneIndices &+ Int32(truncatingIfNeeded: c) .== me), row + c)
            c += 8
        }
        while c < bj {
            if diagonal && a == c { row[c] = 0; c += 1; continue }
            let v = row[c]
            let e = Float.exp(v - shift)
            let j = j0 + c
            if yJ[c] == label {
                row[c] = (k.cP[i] + k.cP[j]) * e - (k.c0[i] + k.c0[j])
            } else {
                let cA = k.cA[i] + k.cA[j]
                row[c] = betaIsOne ? (cA * e - (k.cB[i] + k.cB[j])) * e : cA * e
            }
            c += 1
        }
    }
}
