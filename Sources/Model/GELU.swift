import Tensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exact GELU, PyTorch `nn.GELU()` (approximate = "none"), as timm's ViT MLPs use it.
///
/// y = x·Φ(x) with Φ(x) = ½·(1 + erf(x/√2)); dy/dx = Φ(x) + x·φ(x) with φ(x) = exp(−x²/2)/√(2π).
/// Nothing is cached: backward recomputes Φ and φ from the forward input.
public enum GELU {
    @usableFromInline static let inverseSqrt2: Float = 0.707_106_781_186_547_5
    @usableFromInline static let inverseSqrt2Pi: Float = 0.398_942_280_401_432_7

    /// output[i] = GELU(input[i]) over `count` values; output may alias input.
    @inlinable
    public static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = input[i]
            output[i] = 0.5 * x * (1 + erff(x * inverseSqrt2))
        }
    }

    /// dInput[i] = dOutput[i]·GELU′(input[i]), **overwritten**; dInput may alias dOutput (in place).
    @inlinable
    public static func backward(dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                dInput: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = input[i]
            let cdf = 0.5 * (1 + erff(x * inverseSqrt2))
            let pdf = expf(-0.5 * x * x) * inverseSqrt2Pi
            dInput[i] = dOutput[i] * (cdf + x * pdf)
        }
    }
}
