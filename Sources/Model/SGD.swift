import Tensor

/// Stochastic gradient descent with momentum and L2 weight decay, exactly `torch.optim.SGD(params, lr,
/// momentum=μ, weight_decay=wd)` (dampening 0, no Nesterov), applied to every element of the arena
/// (weights and biases alike).
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
    /// Steps taken so far (informational for SGD; saved with checkpoints).
    public var stepCount: Int = 0

    /// Allocates the momentum buffer (zeros) for `params`/`grads` (same size).
    public init(params: Arena, grads: Arena, momentum: Float = 0.9, weightDecay: Float = 0) {
        precondition(params.count == grads.count, "SGD: params \(params.count) vs grads \(grads.count)")
        self.params = params
        self.grads = grads
        self.momentum = momentum
        self.weightDecay = weightDecay
        momentumBuffer = Arena(count: params.count)
    }

    /// One update with learning rate `lr` from the current gradients (which are left unchanged). Allocation-free.
    public func step(lr: Float) {
        let p = params.base, g = grads.base, buf = momentumBuffer.base
        let mu = momentum, wd = weightDecay
        for i in 0..<params.count {
            let d = g[i] + wd * p[i]
            let b = mu * buf[i] + d
            buf[i] = b
            p[i] -= lr * b
        }
        stepCount += 1
    }
}
