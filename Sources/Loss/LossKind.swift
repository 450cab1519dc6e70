// Which losses a training run combines, by their command-line names, and with which weights.
//
// Every blend is (1 − λ)·CE + λ·contrastive (CLCE, Long et al. 2024, Eq. 1). The pure contrastive kinds train no
// head (CE weight 0, contrastive weight 1); pure `ce` has contrastive weight 0.

/// The loss a run trains with; raw values are the command-line names.
public enum LossKind: String, CaseIterable, Sendable {
    /// Cross-entropy on the head only.
    case ce
    /// Khosla et al.'s SupCon L_out alone (no head is trained).
    case supcon
    /// (1 − λ)·CE + λ·SupCon L_out.
    case ceSupcon = "ce+supcon"
    /// Jiang et al.'s hard-negative SupCon (HSCL) alone (no head is trained).
    case hscl
    /// (1 − λ)·CE + λ·HSCL.
    case ceHscl = "ce+hscl"
    /// CLCE: (1 − λ)·CE + λ·LACLN (Eq. 3 with hard-negative weights).
    case clce
    /// The ablation (1 − λ)·CE + λ·LACL without hard-negative mining (all weights 1).
    case clceNoHNM = "clce-no-hnm"

    /// Whether the cross-entropy term has a non-zero weight (a head is trained).
    public var usesCrossEntropy: Bool {
        switch self {
        case .supcon, .hscl: return false
        case .ce, .ceSupcon, .ceHscl, .clce, .clceNoHNM: return true
        }
    }

    /// Whether a contrastive term has a non-zero weight (the embeddings must be gathered).
    public var usesContrastive: Bool { self != .ce }

    /// The weight of the cross-entropy term: 1 for `ce`, 0 for pure contrastive kinds, else 1 − λ.
    public func crossEntropyWeight(lambda: Double) -> Double {
        switch self {
        case .ce: return 1
        case .supcon, .hscl: return 0
        case .ceSupcon, .ceHscl, .clce, .clceNoHNM: return 1 - lambda
        }
    }

    /// The weight of the contrastive term: 0 for `ce`, 1 for pure contrastive kinds, else λ.
    public func contrastiveWeight(lambda: Double) -> Double {
        switch self {
        case .ce: return 0
        case .supcon, .hscl: return 1
        case .ceSupcon, .ceHscl, .clce, .clceNoHNM: return lambda
        }
    }

    /// The contrastive term of this kind, or nil for `ce`. `beta` is the hard-negative exponent (ignored by the
    /// SupCon and no-HNM kinds); `placement` and `detachedWeights` only affect the LACLN of `clce`.
    public func contrastiveLoss(beta: Double = 1, placement: LogPlacement = .inside,
                                detachedWeights: Bool = false) -> ContrastiveLoss? {
        switch self {
        case .ce: return nil
        case .supcon, .ceSupcon: return .supconOut
        case .hscl, .ceHscl: return .hscl(beta: beta, detachedWeights: detachedWeights)
        case .clce: return .lacln(beta: beta, placement: placement, detachedWeights: detachedWeights)
        case .clceNoHNM: return .laclNoHNM
        }
    }
}
