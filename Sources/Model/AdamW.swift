import Tensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Adam with decoupled weight decay, as `torch.optim.AdamW(params, lr, betas=(β1, β2), eps, weight_decay)`
/// (PyTorch defaults β = (0.9, 0.999), eps = 1e-8, weight_decay = 0.01; no amsgrad).
///
/// Per element, at step t = 1, 2, …:  p −= lr·wd·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
/// p −= (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + eps).
/// State: `firstMoment` m, `secondMoment` v (same layout as the parameters) and `stepCount` t. wd is 0 on the
/// `noDecay` ranges (the registry's parameters with the decay flag off), as PyTorch with two parameter groups.
public final class AdamW {
    public let params: Arena
    public let grads: Arena
    /// m, the running mean of gradients.
    public let firstMoment: Arena
    /// v, the running mean of squared gradients.
    public let secondMoment: Arena
    // Hyper-parameters in Double like PyTorch's Python floats, so 1 − β and 1 − lr·wd are formed before rounding
    // to Float (Float(1 − 0.999) is 1.3e-5 closer to 0.001 than 1 − Float(0.999)).
    public let beta1: Double
    public let beta2: Double
    public let epsilon: Double
    public let weightDecay: Double
    /// Arena ranges without weight decay, sorted and disjoint (`ParameterRegistry.noDecayRanges`).
    public let noDecay: [Range<Int>]
    /// Steps taken so far (t of the last step); restore it with the moments when resuming.
    public var stepCount: Int = 0

    /// Allocates the moments (zeros) for `params`/`grads` (same size).
    public init(params: Arena, grads: Arena, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                weightDecay: Double = 0.01, noDecay: [Range<Int>] = []) {
        precondition(zip(noDecay, noDecay.dropFirst()).allSatisfy { $0.upperBound <= $1.lowerBound }
                     && (noDecay.last?.upperBound ?? 0) <= params.count, "AdamW: noDecay ranges \(noDecay)")
        self.noDecay = noDecay
        precondition(params.count == grads.count, "AdamW: params \(params.count) vs grads \(grads.count)")
        self.params = params
        self.grads = grads
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoment = Arena(count: params.count)
        secondMoment = Arena(count: params.count)
    }

    /// One update with learning rate `lr` from the current gradients (left unchanged). Allocation-free.
    public func step(lr: Float) {
        stepCount += 1
        let t = Double(stepCount)
        // Bias corrections in Double: β2ᵗ is within a few ulps of 1 for small t in Float.
        let correction1 = 1 - pow(beta1, t)
        let correction2 = 1 - pow(beta2, t)
        let stepSize = Float(Double(lr) / correction1)
        let rootCorrection2 = Float(correction2.squareRoot())
        let decay = Float(1 - Double(lr) * weightDecay)
        var start = 0
        for r in noDecay {
            update(start..<r.lowerBound, stepSize: stepSize, rootCorrection2: rootCorrection2, decay: decay)
            update(r, stepSize: stepSize, rootCorrection2: rootCorrection2, decay: 1)
            start = r.upperBound
        }
        update(start..<params.count, stepSize: stepSize, rootCorrection2: rootCorrection2, decay: decay)
    }

    /// The update of the elements in `range`, with p multiplied by `decay` = 1 − lr·wd first.
    private func update(_ range: Range<Int>, stepSize: Float, rootCorrection2: Float, decay: Float) {
        let oneMinusB1 = Float(1 - beta1), b2 = Float(beta2), oneMinusB2 = Float(1 - beta2), eps = Float(epsilon)
        let p = params.base, g = grads.base, m = firstMoment.base, v = secondMoment.base
        for i in range {
            let gi = g[i]
            let mi = m[i] + oneMinusB1 * (gi - m[i])      // PyTorch's lerp form of β1·m + (1−β1)·g
            let vi = b2 * v[i] + oneMinusB2 * gi * gi
            m[i] = mi
            v[i] = vi
            let denominator = vi.squareRoot() / rootCorrection2 + eps
            p[i] = p[i] * decay - stepSize * mi / denominator
        }
    }
}
