import RealModule
import Tensor

// LACLN, CLCE's contrastive term (Long et al., "CLCE: An Approach to Refining Cross-Entropy and Contrastive
// Learning for Optimized Learning Fusion", arXiv 2402.14551, Eq. 3), and the SupCon losses it generalises
// (Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020). All share one "pooled" denominator.
//
// Legend: anchor i, s_ij = z_i·z_j/τ, P = P(i) (positives, self excluded), Neg = Neg(i), β = hard-negative exponent.
//
//   S_i = Σ_P e^{s_ip},   w_ik = |Neg|·e^{βs_ik} / Σ_Neg e^{βs},   G_i = Σ_Neg w_ik e^{s_ik}   (G_i = 0 if Neg = ∅)
//   lseP = LSE_P s,  lseA = LSE_Neg (1+β)s,  lseB = LSE_Neg βs,  log G = log|Neg| + lseA − lseB,
//   log D = log(S_i + G_i) = logaddexp(lseP, log G)
//
//   placement .inside  (Eq. 3 as printed):  l_i = −log( (1/|P|)·S_i/(S_i + G_i) ) = log|P| − lseP + log D
//   placement .outside (SupCon L_out form):  l_i = −(1/|P|) Σ_P log( e^{s_ip}/(S_i + G_i) ) = −mean_P s_ip + log D
//
//   lacln       = .inside, β = 1;     laclNoHNM = .inside, β = 0 (= Khosla's L_in)
//   lacln_out   = .outside, β = 1;    supconOut = .outside, β = 0 (= Khosla's L_out, no base-temperature factor)
//   l_i = 0 when P = ∅ (the anchor still counts in the mean).
//
// Gradient with respect to the similarities (all exponents ≤ 0 once written this way):
//   .inside   ∂l/∂s_ip = e^{s_ip − log D} − e^{s_ip − lseP} = −(e^{s_ip − mP}/sumP)·e^{log G − log D}
//   .outside  ∂l/∂s_ip = e^{s_ip − log D} − 1/|P|
//   both      ∂l/∂s_ik = e^{log G − log D}·[(1+β)e^{(1+β)s_ik − lseA} − β e^{βs_ik − lseB}]
//             (weights detached: the bracket is e^{(1+β)s_ik − lseA})
// Then ∂L/∂z through the similarity gemms and ∂L/∂x through the normalisation: see Contrastive.swift.

/// The per-row constants of the pooled gradient: l_i and the coefficients of
///   positives  scale·∂l/∂s_ip = cP·e^{s_ip − mP} − c0,
///   negatives  scale·∂l/∂s_ik = (cA·e^{s_ik − mN} − cB)·e^{β(s_ik − mN)}   (β = 0: cA·e, β = 1: (cA·e − cB)·e),
/// from pass 1's maxima and pass 2's sums (row-wise or accumulated over blocks). `rowScale` = weight / N_global.
@usableFromInline
struct PooledCoefficients {
    @usableFromInline var loss: Double
    @usableFromInline var cP: Double, c0: Double, cA: Double, cB: Double
}

@inline(__always)
func pooledCoefficients<T: BLASScalar>(scan: RowScan<T>, sums: RowSums, beta: Double, placement: LogPlacement,
                                       detachedWeights: Bool, rowScale: Double) -> PooledCoefficients {
    let positives = Double(scan.positives)
    let maxPositive = Double(scan.maxPositive)
    let lseP = maxPositive + Double.log(sums.positive)
    let logG = logWeightedNegatives(scan: scan, sums: sums, beta: beta)
    let logD = logAddExp(lseP, logG)
    // G/(S + G) ∈ [0, 1]; exactly 0 without negatives, which makes the .inside gradient exactly 0.
    let negativeShare = Double.exp(logG - logD)

    let loss: Double
    let cP: Double, c0: Double
    switch placement {
    case .inside:
        loss = Double.log(positives) - lseP + logD
        cP = -rowScale * negativeShare / sums.positive
        c0 = 0
    case .outside:
        loss = -sums.positiveSimilarity / positives + logD
        cP = rowScale * Double.exp(maxPositive - logD)
        c0 = rowScale / positives
    }
    var cA = 0.0, cB = 0.0
    if scan.negatives > 0 {
        cA = rowScale * negativeShare * (detachedWeights ? 1 : 1 + beta) / sums.negativeA
        cB = detachedWeights ? 0 : rowScale * negativeShare * beta / sums.negativeB
    }
    return PooledCoefficients(loss: loss, cP: cP, c0: c0, cA: cA, cB: cB)
}

/// Pass 3 for the pooled losses: overwrites row `s` (holding pass 2's exponentials) with scale·∂l_i/∂s_i·, zero on
/// the self column, and returns l_i. `rowScale` = weight / N_global.
@inline(__always)
func finishPooledRow<T: BLASScalar>(_ s: UnsafeMutablePointer<T>, labels: UnsafePointer<Int32>, label: Int32,
                                    selfIndex: Int, count: Int, scan: RowScan<T>, sums: RowSums, beta: Double,
                                    mode: BetaMode, placement: LogPlacement, detachedWeights: Bool,
                                    rowScale: Double, weights: UnsafePointer<T>) -> Double {
    let k = pooledCoefficients(scan: scan, sums: sums, beta: beta, placement: placement,
                               detachedWeights: detachedWeights, rowScale: rowScale)
    let loss = k.loss
    let cP = T(k.cP), c0 = T(k.c0), cA = T(k.cA), cB = T(k.cB)

    if T.self == Float.self && mode != .general {
        writeRowGradientFloat(floatPointer(s), labels: labels, label: label, selfIndex: selfIndex, count: count,
                              cP: Float(cP), c0: Float(c0), cA: Float(cA), cB: Float(cB), betaIsOne: mode == .one,
                              keepPositives: false)
        return loss
    }
    for segment in 0..<2 {
        let lo = segment == 0 ? 0 : selfIndex + 1
        let hi = segment == 0 ? selfIndex : count
        var j = lo
        switch mode {
        case .zero:         // e^{(1+β)t} = e, no β term
            while j < hi {
                let e = s[j]
                s[j] = labels[j] == label ? cP * e - c0 : cA * e
                j &+= 1
            }
        case .one:          // e^{(1+β)t} = e², e^{βt} = e
            while j < hi {
                let e = s[j]
                s[j] = labels[j] == label ? cP * e - c0 : (cA * e - cB) * e
                j &+= 1
            }
        case .general:      // e^{(1+β)t} = e·w, e^{βt} = w
            while j < hi {
                let e = s[j]
                s[j] = labels[j] == label ? cP * e - c0 : (cA * e - cB) * weights[j]
                j &+= 1
            }
        }
    }
    s[selfIndex] = 0
    return loss
}
