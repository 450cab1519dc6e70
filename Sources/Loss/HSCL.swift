import RealModule
import Tensor

// HSCL: supervised contrastive learning with hard negative samples (Jiang et al., arXiv 2209.00078), with the
// importance-weighted negative term of exponent β (default 1).
//
// Legend: anchor i, s_ij = z_i·z_j/τ, P = P(i) (positives, self excluded), Neg = Neg(i).
//
//   G_i = |Neg|·Σ_Neg e^{(1+β)s_ik} / Σ_Neg e^{βs_ik}            (G_i = 0 when Neg = ∅)
//   l_i = (1/|P|) Σ_{p∈P} −log( e^{s_ip} / (e^{s_ip} + G_i) ) = (1/|P|) Σ_P softplus(log G_i − s_ip)
//   l_i = 0 when P = ∅; L = (1/N) Σ_i l_i.
//
// Each positive has its own denominator (unlike LACLN, whose positives share S_i + G_i).
// With log G = log|Neg| + lseA − lseB, lseA = LSE_Neg (1+β)s, lseB = LSE_Neg βs, and r_p = G/(e^{s_ip} + G)
// = e^{log G − logaddexp(s_ip, log G)} ∈ [0, 1]:
//   ∂l/∂s_ip = −r_p/|P|
//   ∂l/∂log G = q = (1/|P|) Σ_P r_p
//   ∂l/∂s_ik = q·[(1+β)e^{(1+β)s_ik − lseA} − β e^{βs_ik − lseB}]   (detached weights: q·e^{(1+β)s_ik − lseA})
// Every exponential above is ≤ 1, so Float stays finite at any temperature.

/// Pass 3 for HSCL: row `s` holds raw s_ip on positives and pass 2's exponentials on negatives; overwrites it with
/// scale·∂l_i/∂s_i·, zero on the self column, and returns l_i. `rowScale` = weight / N_global.
@inline(__always)
func finishPerPositiveRow<T: BLASScalar>(_ s: UnsafeMutablePointer<T>, labels: UnsafePointer<Int32>, label: Int32,
                                         selfIndex: Int, count: Int, scan: RowScan<T>, sums: RowSums,
                                         beta: Double, mode: BetaMode, detachedWeights: Bool,
                                         rowScale: Double, weights: UnsafePointer<T>) -> Double {
    let positives = Double(scan.positives)
    let logG = logWeightedNegatives(scan: scan, sums: sums, beta: beta)

    // Positives (a few per row): their own denominators, in Double.
    var loss = 0.0, q = 0.0
    forEachPositive(labels: labels, label: label, selfIndex: selfIndex, count: count) { j in
        // x = log G − s_ip: the term is softplus(x) and r_p = G/(e^{s_ip} + G) = σ(x); both from t = e^{−|x|} ≤ 1.
        let x = logG - Double(s[j])
        let t = Double.exp(-abs(x))
        loss += max(x, 0) + Double.log(onePlus: t)
        let r = x >= 0 ? 1 / (1 + t) : t / (1 + t)
        s[j] = T(-rowScale * r / positives)
        q += r
    }
    loss /= positives
    q /= positives

    var cA: T = 0, cB: T = 0
    if scan.negatives > 0 {
        cA = T(rowScale * q * (detachedWeights ? 1 : 1 + beta) / sums.negativeA)
        cB = T(detachedWeights ? 0 : rowScale * q * beta / sums.negativeB)
    }
    if T.self == Float.self && mode != .general {
        writeRowGradientFloat(floatPointer(s), labels: labels, label: label, selfIndex: selfIndex, count: count,
                              cP: 0, c0: 0, cA: Float(cA), cB: Float(cB), betaIsOne: mode == .one,
                              keepPositives: true)
        return loss
    }
    for segment in 0..<2 {
        let lo = segment == 0 ? 0 : selfIndex + 1
        let hi = segment == 0 ? selfIndex : count
        var j = lo
        switch mode {
        case .zero:
            while j < hi {
                let e = s[j]
                s[j] = labels[j] == label ? e : cA * e
                j &+= 1
            }
        case .one:
            while j < hi {
                let e = s[j]
                s[j] = labels[j] == label ? e : (cA * e - cB) * e
                j &+= 1
            }
        case .general:
            while j < hi {
                let e = s[j]
                s[j] = labels[j] == label ? e : (cA * e - cB) * weights[j]
                j &+= 1
            }
        }
    }
    s[selfIndex] = 0
    return loss
}

/// Calls `body` with every j ≠ selfIndex whose label is `label`, in increasing order; groups of 8 labels without
/// a match are skipped with one vector comparison.
@inline(__always)
func forEachPositive(labels: UnsafePointer<Int32>, label: Int32, selfIndex: Int, count: Int, _ body: (Int) -> Void) {
    let y = LabelVector(repeating: label)
    var j = 0
    while j + 8 <= count {
        if any(loadLabels(labels + j) .== y) {
            for k in j..<(j + 8) where labels[k] == label && k != selfIndex { body(k) }
        }
        j += 8
    }
    while j < count {
        if labels[j] == label && j != selfIndex { body(j) }
        j += 1
    }
}
