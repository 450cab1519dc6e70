// The Float hot path of the row passes (SimilarityRow.swift, LACLN.swift, HSCL.swift) on 8-lane vectors: the same
// formulas, for β = 0 and β = 1 (a general β uses the generic scalar loops). Masks replace branches; the self
// column is excluded with an index comparison in passes 1–2 and overwritten with 0 after pass 3.
//
// exp is Cephes' expf (Cody–Waite reduction, degree-6 polynomial, ≈ 1 ulp) evaluated on vectors; the arguments are
// always ≤ 0, and anything below −87 gives exactly 0. Sums are accumulated in Float vectors over blocks of 256
// elements and then added in Double.

@usableFromInline typealias FloatVector = SIMD8<Float>
@usableFromInline typealias LabelVector = SIMD8<Int32>

/// Elements per Float partial sum before it is added to the Double total.
@usableFromInline let floatSumBlock = 256

/// e^x for x ≤ 0 on 8 lanes; 0 below −87 (where Float would go subnormal).
@inline(__always)
func vectorExp(_ x: FloatVector) -> FloatVector {
    let log2e: Float = 1.442_695_04, ln2High: Float = 0.693_359_375, ln2Low: Float = -2.121_944_4e-4
    let magic: Float = 12_582_912          // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits
    let tiny = x .< -87
    let xc = x.replacing(with: -87, where: tiny)
    let shifted = xc * log2e + magic
    let n = shifted - magic
    let r = xc - n * ln2High - n * ln2Low
    var p: FloatVector = FloatVector(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let y = p * (r * r) + r + 1
    let exponent = unsafeBitCast(shifted, to: LabelVector.self) &- unsafeBitCast(magic, to: Int32.self)
    let scale = unsafeBitCast((exponent &+ 127) &<< 23, to: FloatVector.self)
    return (y * scale).replacing(with: 0, where: tiny)
}

@inline(__always)
func loadVector(_ p: UnsafePointer<Float>) -> FloatVector {
    UnsafeRawPointer(p).loadUnaligned(as: FloatVector.self)
}

@inline(__always)
func loadLabels(_ p: UnsafePointer<Int32>) -> LabelVector {
    UnsafeRawPointer(p).loadUnaligned(as: LabelVector.self)
}

@inline(__always)
func storeVector(_ v: FloatVector, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: FloatVector.self)
}

/// Lane indices 0…7.
@inline(__always)
var laneIndices: LabelVector { LabelVector(0, 1, 2, 3, 4, 5, 6, 7) }

// MARK: - Pass 1

/// Pass 1 on Float: the positive and negative maxima and the positive count, self excluded.
@inline(__always)
func scanRowFloat(_ s: UnsafeMutablePointer<Float>, labels: UnsafePointer<Int32>, label: Int32, selfIndex: Int,
                  count: Int) -> (maxPositive: Float, maxNegative: Float, positives: Int) {
    let y = LabelVector(repeating: label), me = LabelVector(repeating: Int32(truncatingIfNeeded: selfIndex))
    var mP = FloatVector(repeating: -.infinity), mN = FloatVector(repeating: -.infinity)
    var nP = LabelVector.zero
    var j = 0
    while j + 8 <= count {
        let v = loadVector(s + j)
        let same = loadLabels(labels + j) .== y
        let positive = same .& (laneIndices &+ Int32(truncatingIfNeeded: j) .!= me)
        // Selects, not pointwiseMax (which is not inlined).
        mP = mP.replacing(with: v, where: positive .& (v .> mP))
        mN = mN.replacing(with: v, where: .!same .& (v .> mN))
        nP = nP.replacing(with: nP &+ 1, where: positive)
        j += 8
    }
    var maxP = mP.max(), maxN = mN.max(), positives = Int(nP.wrappedSum())
    while j < count {
        let v = s[j]
        if labels[j] == label {
            if j != selfIndex { maxP = max(maxP, v); positives += 1 }
        } else {
            maxN = max(maxN, v)
        }
        j += 1
    }
    return (maxP, maxN, positives)
}

// MARK: - Pass 2

/// Pass 2 on Float for β ∈ {0, 1}: overwrites the row with e = exp(s − m) (m = mP on positives, mN on negatives;
/// positives kept as s when `keepPositives`) and returns (sumP, sumA, sumB, sumS) as in SimilarityRow.swift.
@inline(__always)
func exponentiateRowFloat(_ s: UnsafeMutablePointer<Float>, labels: UnsafePointer<Int32>, label: Int32,
                          selfIndex: Int, count: Int, maxPositive: Float, maxNegative: Float, betaIsOne: Bool,
                          keepPositives: Bool) -> (Double, Double, Double, Double) {
    let y = LabelVector(repeating: label), me = LabelVector(repeating: Int32(truncatingIfNeeded: selfIndex))
    let mPv = FloatVector(repeating: maxPositive), mNv = FloatVector(repeating: maxNegative)
    var sumP = 0.0, sumA = 0.0, sumB = 0.0, sumS = 0.0
    var j = 0
    while j + 8 <= count {
        let end = min(count - (count - j) % 8, j + floatSumBlock)
        var bP = FloatVector.zero, bA = FloatVector.zero, bB = FloatVector.zero, bS = FloatVector.zero
        while j < end {
            let v = loadVector(s + j)
            let same = loadLabels(labels + j) .== y
            let positive = same .& (laneIndices &+ Int32(truncatingIfNeeded: j) .!= me)
            let e = vectorExp(v - mNv.replacing(with: mPv, where: same))
            storeVector(keepPositives ? e.replacing(with: v, where: same) : e, s + j)
            bP += e.replacing(with: 0, where: .!positive)
            bS += v.replacing(with: 0, where: .!positive)
            let negative = e.replacing(with: 0, where: same)
            if betaIsOne {
                bA += negative * negative
                bB += negative
            } else {
                bA += negative
            }
            j += 8
        }
        sumP += Double(bP.sum()); sumA += Double(bA.sum()); sumB += Double(bB.sum()); sumS += Double(bS.sum())
    }
    while j < count {
        let v = s[j]
        if labels[j] == label {
            if j != selfIndex {
                let e = Float.exp(v - maxPositive)
                sumP += Double(e); sumS += Double(v)
                if !keepPositives { s[j] = e }
            }
        } else {
            let e = Float.exp(v - maxNegative)
            s[j] = e
            if betaIsOne { sumA += Double(e) * Double(e); sumB += Double(e) } else { sumA += Double(e) }
        }
        j += 1
    }
    return (sumP, sumA, sumB, sumS)
}

// MARK: - Pass 3

/// Pass 3 on Float for β ∈ {0, 1}: negatives become (cA·e − cB)·e (β = 1) or cA·e (β = 0); positives become
/// cP·e − c0, or stay as they are when `keepPositives` (HSCL wrote them already). The self column is zeroed.
@inline(__always)
func writeRowGradientFloat(_ s: UnsafeMutablePointer<Float>, labels: UnsafePointer<Int32>, label: Int32,
                           selfIndex: Int, count: Int, cP: Float, c0: Float, cA: Float, cB: Float, betaIsOne: Bool,
                           keepPositives: Bool) {
    let y = LabelVector(repeating: label)
    let cPv = FloatVector(repeating: cP), c0v = FloatVector(repeating: c0)
    let cAv = FloatVector(repeating: cA), cBv = FloatVector(repeating: cB)
    var j = 0
    while j + 8 <= count {
        let e = loadVector(s + j)
        let same = loadLabels(labels + j) .== y
        let negative = betaIsOne ? (cAv * e - cBv) * e : cAv * e
        let positive = keepPositives ? e : cPv * e - c0v
        storeVector(negative.replacing(with: positive, where: same), s + j)
        j += 8
    }
    while j < count {
        let e = s[j]
        if labels[j] == label {
            if !keepPositives { s[j] = cP * e - c0 }
        } else {
            s[j] = betaIsOne ? (cA * e - cB) * e : cA * e
        }
        j += 1
    }
    s[selfIndex] = 0
}
