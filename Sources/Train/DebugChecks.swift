// The single-node debug mode's extra checks: a finite-difference check of the whole model + loss gradient on a tiny
// batch before training (through the real distributed step, so gather/reduce-scatter/all-reduce are covered), and
// a finiteness check of activations and gradients after every step.
import Collective
import Data
import Tensor

/// The outcome of the whole-gradient finite-difference check.
public struct GradientCheckResult: Sendable {
    /// Parameters checked (the largest gradients plus a few at random).
    public var checked: Int
    /// Largest |analytic − numeric| / (|analytic| + |numeric| + 1e-3) over the checked parameters.
    public var worstRelativeError: Double
    public var passed: Bool
}

/// Checks ∂loss/∂θ of the whole step against central differences on a batch of `images` images (Float, ε = 1e-2,
/// tolerance 5 %: ReLU kinks make a few entries inexact at this ε, so the worst of the checked entries is reported).
public func checkWholeGradient<C: Communicator>(config: TrainConfig, comm: C, train: Dataset, test: Dataset,
                                               images: Int = 8) throws -> GradientCheckResult {
    var small = config
    small.batchSize = max(comm.size, min(images, train.count))
    small.out = nil
    let trainer = try Trainer(config: small, comm: comm, train: train, test: test)
    trainer.prepareEpoch(0)
    trainer.prepareBatch(step: 0, epoch: 0)
    func loss() throws -> Double {
        let (ce, con) = try trainer.forwardAndBackward()
        return ce + con
    }
    _ = try loss()
    try comm.allReduceSum(trainer.network.grads.storage)
    let analytic = trainer.network.grads.toArray()
    // The largest gradients (robust signal) and some at random, the same on every rank.
    var order = Array(analytic.indices)
    order.sort { abs(analytic[$0]) > abs(analytic[$1]) }
    var picks = Array(order.prefix(8))
    let rng = CounterRNG(seed: config.seed)
    for i in 0..<4 { picks.append(rng.integer(below: analytic.count, stream: .test, index: UInt64(i))) }
    let params = trainer.network.params
    let eps: Float = 1e-2
    var worst = 0.0
    for p in picks {
        let saved = params[p]
        params[p] = saved + eps
        let plus = try loss()
        params[p] = saved - eps
        let minus = try loss()
        params[p] = saved
        let numeric = (plus - minus) / Double(2 * eps)
        let a = Double(analytic[p])
        worst = max(worst, abs(a - numeric) / (abs(a) + abs(numeric) + 1e-3))
    }
    return GradientCheckResult(checked: picks.count, worstRelativeError: worst, passed: worst < 0.05)
}

/// Runs the debug mode's pre-training checks; throws if the gradient check fails.
public func runDebugChecks<C: Communicator>(config: TrainConfig, comm: C, train: Dataset, test: Dataset,
                                            observer: RunObserver) throws {
    let result = try checkWholeGradient(config: config, comm: comm, train: train, test: test)
    observer.progress(String(format: "debug: whole-model gradient check on %d parameters: worst relative error %.2e (%@)",
                             result.checked, result.worstRelativeError, result.passed ? "ok" : "FAILED"))
    if !result.passed {
        throw TrainingError(String(format: "debug: gradient check failed (worst relative error %.3g)", result.worstRelativeError))
    }
}

extension Trainer {
    /// Debug mode: throws naming the first non-finite activation or gradient of this rank.
    func checkFinite() throws {
        func scan(_ p: UnsafePointer<Float>, _ n: Int, _ what: String) throws {
            for i in 0..<n where !p[i].isFinite {
                throw TrainingError("debug: rank \(comm.rank): non-finite \(what)[\(i)] = \(p[i]) at step \(step + 1)")
            }
        }
        try scan(localEmbeddings, localRows * embedDim, "embedding")
        try scan(localLogits, localRows * classes, "logit")
        try scan(network.grads.base, network.grads.count, "gradient")
    }
}
