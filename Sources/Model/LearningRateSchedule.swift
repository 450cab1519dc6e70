#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Linear warmup then cosine decay, the `LambdaLR` of `torch_reference_train.py`.
///
/// With W = warmupSteps and T = totalSteps, the rate used at step t (0-based) is
/// base·(t+1)/W for t < W, else base·½·(1 + cos(π·(t−W)/max(1, T−W))).
public struct LearningRateSchedule: Sendable, Equatable {
    public let base: Double
    public let warmupSteps: Int
    public let totalSteps: Int

    /// W = warmupEpochs·stepsPerEpoch is the caller's; W = 0 means no warmup.
    public init(base: Double, warmupSteps: Int, totalSteps: Int) {
        precondition(warmupSteps >= 0 && totalSteps >= 0,
                     "LearningRateSchedule: warmup \(warmupSteps), total \(totalSteps)")
        self.base = base
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
    }

    /// The default base rate for a global batch of `globalBatch` images: 0.05·√(globalBatch/256).
    public static func defaultBase(globalBatch: Int) -> Double {
        0.05 * (Double(globalBatch) / 256).squareRoot()
    }

    /// The learning rate for step t (0-based).
    public func rate(at step: Int) -> Float {
        let t = Double(step), w = Double(warmupSteps)
        if step < warmupSteps { return Float(base * (t + 1) / w) }
        let span = Double(max(1, totalSteps - warmupSteps))
        return Float(base * 0.5 * (1 + cos(Double.pi * (t - w) / span)))
    }
}
