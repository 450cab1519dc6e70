import RealModule
import Tensor

// The first two passes over one anchor's similarity row, shared by every contrastive loss (LACLN.swift, HSCL.swift
// finish the row with their own third pass).
//
// Legend: i = the anchor (global index `selfIndex`), s_ij = z_i·z_j/τ for the N gathered rows j,
// P = { j ≠ i : y_j = y_i } (positives), Neg = { k : y_k ≠ y_i } (negatives), β = hard-negative exponent.
//
// Pass 1 finds mP = max_P s and mN = max_Neg s. Pass 2 overwrites the row with exponentials that never exceed 1:
//   positives  e_p = exp(s_ip − mP)                      (kept as s_ip instead when `keepPositives`)
//   negatives  e_k = exp(s_ik − mN)
// and sums, in Double,
//   sumP = Σ_P e_p,  sumA = Σ_Neg exp((1+β)(s_ik − mN)),  sumB = Σ_Neg exp(β(s_ik − mN)),  sumS = Σ_P s_ip,
// so that LSE_P s = mP + log sumP, LSE_Neg (1+β)s = (1+β)mN + log sumA, LSE_Neg βs = βmN + log sumB. The two
// negative LSEs share mN, so β = 1 needs a single exp per element (exp(2t) = e²) and β = 0 needs sumB = |Neg|.
// For any other β, exp(β(s_ik − mN)) is kept in `negativeWeights` for the third pass.
//
// The self column is skipped by running every loop over [0, i) and (i, N): no mask, no wasted exp.

/// The three code paths for the hard-negative exponent.
@usableFromInline
enum BetaMode {
    case zero, one, general

    @inlinable init<T: BLASScalar>(_ beta: T) {
        self = beta == 0 ? .zero : (beta == 1 ? .one : .general)
    }
}

/// What pass 1 finds on one row.
@usableFromInline
struct RowScan<T: BLASScalar> {
    @usableFromInline var maxPositive: T
    @usableFromInline var maxNegative: T
    @usableFromInline var positives: Int
    @usableFromInline var negatives: Int
}

/// The sums pass 2 accumulates (see the file header).
@usableFromInline
struct RowSums {
    @usableFromInline var positive = 0.0
    @usableFromInline var negativeA = 0.0
    @usableFromInline var negativeB = 0.0
    @usableFromInline var positiveSimilarity = 0.0
}

/// Pass 1: the positive and negative maxima and counts of row `s` (length `count`), skipping `selfIndex`.
@inline(__always)
func scanRow<T: BLASScalar>(_ s: UnsafeMutablePointer<T>, labels: UnsafePointer<Int32>, label: Int32,
                            selfIndex: Int, count: Int) -> RowScan<T> {
    if T.self == Float.self {
        let r = scanRowFloat(floatPointer(s), labels: labels, label: label, selfIndex: selfIndex, count: count)
        return RowScan(maxPositive: T(r.maxPositive), maxNegative: T(r.maxNegative), positives: r.positives,
                       negatives: count - 1 - r.positives)
    }
    var mP = -T.infinity, mN = -T.infinity
    var nP = 0
    for segment in 0..<2 {
        let lo = segment == 0 ? 0 : selfIndex + 1
        let hi = segment == 0 ? selfIndex : count
        var j = lo
        while j < hi {
            let v = s[j]
            let same = labels[j] == label
            mP = same ? max(mP, v) : mP
            mN = same ? mN : max(mN, v)
            nP &+= same ? 1 : 0
            j &+= 1
        }
    }
    return RowScan(maxPositive: mP, maxNegative: mN, positives: nP, negatives: count - 1 - nP)
}

/// Pass 2: overwrites row `s` with the shifted exponentials and returns their sums (see the file header).
/// `weights` receives exp(β(s_ik − mN)) on negatives when β is neither 0 nor 1.
@inline(__always)
func exponentiateRow<T: BLASScalar>(_ s: UnsafeMutablePointer<T>, labels: UnsafePointer<Int32>, label: Int32,
                                    selfIndex: Int, count: Int, scan: RowScan<T>, beta: T, mode: BetaMode,
                                    keepPositives: Bool, weights: UnsafeMutablePointer<T>) -> RowSums {
    if T.self == Float.self && mode != .general {
        let (sumP, sumA, sumB, sumS) = exponentiateRowFloat(
            floatPointer(s), labels: labels, label: label, selfIndex: selfIndex, count: count,
            maxPositive: Float(scan.maxPositive), maxNegative: Float(scan.maxNegative), betaIsOne: mode == .one,
            keepPositives: keepPositives)
        return RowSums(positive: sumP, negativeA: sumA,
                       negativeB: mode == .zero ? Double(scan.negatives) : sumB, positiveSimilarity: sumS)
    }
    let mP = scan.maxPositive, mN = scan.maxNegative
    var sumP = 0.0, sumA = 0.0, sumB = 0.0, sumS = 0.0
    for segment in 0..<2 {
        let lo = segment == 0 ? 0 : selfIndex + 1
        let hi = segment == 0 ? selfIndex : count
        var j = lo
        switch mode {
        case .zero:
            while j < hi {
                let v = s[j]
                let same = labels[j] == label
                let e = T.exp(v - (same ? mP : mN))
                s[j] = same && keepPositives ? v : e
                let d = Double(e)
                sumP += same ? d : 0
                sumA += same ? 0 : d
                sumS += same ? Double(v) : 0
                j &+= 1
            }
        case .one:
            while j < hi {
                let v = s[j]
                let same = labels[j] == label
                let e = T.exp(v - (same ? mP : mN))
                s[j] = same && keepPositives ? v : e
                let d = Double(e)
                sumP += same ? d : 0
                sumA += same ? 0 : d * d
                sumB += same ? 0 : d
                sumS += same ? Double(v) : 0
                j &+= 1
            }
        case .general:
            while j < hi {
                let v = s[j]
                let same = labels[j] == label
                let e = T.exp(v - (same ? mP : mN))
                s[j] = same && keepPositives ? v : e
                let d = Double(e)
                if same {
                    sumP += d
                    sumS += Double(v)
                } else {
                    let w = T.exp(beta * (v - mN))
                    weights[j] = w
                    sumA += d * Double(w)
                    sumB += Double(w)
                }
                j &+= 1
            }
        }
    }
    if mode == .zero { sumB = Double(scan.negatives) }
    return RowSums(positive: sumP, negativeA: sumA, negativeB: sumB, positiveSimilarity: sumS)
}

/// The row as Float, for the vector path (only called when T is Float).
@inline(__always)
func floatPointer<T>(_ s: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(s).assumingMemoryBound(to: Float.self)
}

/// log(exp(a) + exp(b)) without overflow; exact when one side is −∞.
@inline(__always)
func logAddExp(_ a: Double, _ b: Double) -> Double {
    let hi = max(a, b), lo = min(a, b)
    if lo == -.infinity { return hi }
    return hi + Double.log(onePlus: Double.exp(lo - hi))
}

/// log G = log|Neg| + LSE_Neg((1+β)s) − LSE_Neg(βs), or −∞ when there are no negatives (G = 0).
@inline(__always)
func logWeightedNegatives<T: BLASScalar>(scan: RowScan<T>, sums: RowSums, beta: Double) -> Double {
    guard scan.negatives > 0 else { return -.infinity }
    let mN = Double(scan.maxNegative)
    let lseA = (1 + beta) * mN + Double.log(sums.negativeA)
    let lseB = beta * mN + Double.log(sums.negativeB)
    return Double.log(Double(scan.negatives)) + lseA - lseB
}
