import Tensor

/// Stochastic gradient descent with momentum and L2 weight decay, exactly `torch.optim.SGD(params, lr,
/// momentum=μ, weight_decay=wd)` (dampening 0, no Nesterov), applied to every element of the arena; wd is 0 on the
/// `noDecay` ranges (the registry's parameters with the decay flag off: a ViT's biases, norms and embeddings), as
/// PyTorch with two parameter groups.
///
/// Per element, per step: d = g + wd·p;  buf = μ·buf + d (the first step sets buf = d);  p −= lr·buf.
/// The momentum buffer starts at zero, which makes the first update buf = μ·0 + d = d exactly, i.e. PyTorch's
/// "clone on first step". State: `momentumBuffer` (same layout as the parameters) and `stepCount`.
public final class SGD {
    public let params: Arena
    public let grads: Arena
    /// The momentum buffer `buf`, one element per parameter-arena element (for checkpoints).
    public let momentumBuffer: Arena
    public let momentum: Float
    public let weightDecay: Float
    /// Arena ranges without weight decay, sorted and disjoint (`ParameterRegistry.noDecayRanges`).
    public let noDecay: [Range<Int>]
    /// Steps taken so far (informational for SGD; saved with checkpoints).
    public var stepCount: Int = 0

    /// Allocates the momentum buffer (zeros) for `params`/`grads` (same size); `noDecay` as the property.
    public init(params: Arena, grads: Arena, momentum: Float = 0.9, weightDecay: Float = 0,
                noDecay: [Range<Int>] = []) {
        precondition(zip(noDecay, noDecay.dropFirst()).allSatisfy { $0.upperBound <= $1.lowerBound }
                     && (noDecay.last?.upperBound ?? 0) <= params.count, "SGD: noDecay ranges \(noDecay)")
        self.noDecay = noDecay
        precondition(params.count == grads.count, "SGD: params \(params.count) vs grads \(grads.count)")
        self.params = params
        self.grads = grads
        self.momentum = momentum
        self.weightDecay = weightDecay
        momentumBuffer = Arena(count: params.count)
    }

    /// One update with learning rate `lr` from the current gradients (which are left unchanged). Allocation-free.
    public func step(lr: Float) {
        var start = 0
        for r in noDecay {
            update(start..<r.lowerBound, lr: lr, weightDecay: weightDecay)
            update(r, lr: lr, weightDecay: 0)
            start = r.upperBound
        }
        update(start..<params.count, lr: lr, weightDecay: weightDecay)
        stepCount += 1
    }

    /// The update of the elements in `range` with weight decay `wd`.
    private func update(_ range: Range<Int>, lr: Float, weightDecay wd: Float) {
        let p = params.base, g = grads.base, buf = momentumBuffer.base
        let mu = momentum
        for i in range {
            let d = g[i] + wd * p[i]
            let b = mu * buf[i] + d
            buf[i] = b
            p[i] -= lr * b
        }
    }
}
