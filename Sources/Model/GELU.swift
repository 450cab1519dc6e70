import Tensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exact GELU, PyTorch `nn.GELU()` (approximate = "none"), as timm's ViT MLPs use it.
///
/// y = x·Φ(x) with Φ(x) = ½·(1 + erf(x/√2)); dy/dx = Φ(x) + x·φ(x) with φ(x) = exp(−x²/2)/√(2π).
/// Nothing is cached: backward recomputes Φ and φ from the forward input. Whole 8-lane vectors use `erf8` and
/// `exp8`; the last `count` mod 8 values use libm's `erff` and `expf` (`forwardScalar`, `backwardScalar`).
public enum GELU {
    @usableFromInline static let inverseSqrt2: Float = 0.707_106_781_186_547_5
    @usableFromInline static let inverseSqrt2Pi: Float = 0.398_942_280_401_432_7

    /// output[i] = GELU(input[i]) over `count` values; output may alias input.
    public static func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
        let whole = count / 8 * 8
        for i in stride(from: 0, to: whole, by: 8) {
            let x = loadLanes(input + i)
            storeLanes(0.5 * x * (1 + erf8(x * inverseSqrt2)), output + i)
        }
        forwardScalar(input: input + whole, output: output + whole, count: count - whole)
    }

    /// dInput[i] = dOutput[i]·GELU′(input[i]), **overwritten**; dInput may alias dOutput (in place).
    public static func backward(dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                                dInput: UnsafeMutablePointer<Float>, count: Int) {
        let whole = count / 8 * 8
        for i in stride(from: 0, to: whole, by: 8) {
            let x = loadLanes(input + i)
            let cdf = 0.5 * (1 + erf8(x * inverseSqrt2))
            let pdf = exp8(-0.5 * x * x) * inverseSqrt2Pi
            storeLanes(loadLanes(dOutput + i) * (cdf + x * pdf), dInput + i)
        }
        backwardScalar(dOutput: dOutput + whole, input: input + whole, dInput: dInput + whole, count: count - whole)
    }

    /// y[r, c] += bias[c], then activated[r, c] = GELU(y[r, c]): the bias epilogue of a Linear fused with the
    /// GELU after it (`Linear.forwardGELU`). y: (rows, cols), the pre-activation, kept for backward;
    /// activated: (rows, cols), must not alias y; bias: (cols).
    static func addBiasForward(_ y: UnsafeMutablePointer<Float>, rows: Int, cols: Int, bias: UnsafePointer<Float>,
                               activated: UnsafeMutablePointer<Float>) {
        let whole = cols / 8 * 8
        for r in 0..<rows {
            let row = y + r * cols, out = activated + r * cols
            for c in stride(from: 0, to: whole, by: 8) {
                let x = loadLanes(row + c) + loadLanes(bias + c)
                storeLanes(x, row + c)
                storeLanes(0.5 * x * (1 + erf8(x * inverseSqrt2)), out + c)
            }
            for c in whole..<cols { row[c] += bias[c] }
            forwardScalar(input: row + whole, output: out + whole, count: cols - whole)
        }
    }

    /// dY[r, c] ← dY[r, c]·GELU′(y[r, c]) in place, then dBias[c] += Σ_r dY[r, c]: the GELU backward fused with
    /// the bias gradient of the Linear before it (`Linear.backwardThroughGELU`). dY: (rows, cols), ∂loss/∂ the
    /// GELU's output on entry, ∂/∂ the pre-activation on return; y: the pre-activation (rows, cols); dBias: (cols).
    static func backwardColumnSums(_ dY: UnsafeMutablePointer<Float>, preActivation y: UnsafePointer<Float>,
                                   rows: Int, cols: Int, into dBias: UnsafeMutablePointer<Float>) {
        let whole = cols / 8 * 8
        for r in 0..<rows {
            let g = dY + r * cols, row = y + r * cols
            for c in stride(from: 0, to: whole, by: 8) {
                let x = loadLanes(row + c)
                let cdf = 0.5 * (1 + erf8(x * inverseSqrt2))
                let pdf = exp8(-0.5 * x * x) * inverseSqrt2Pi
                let v = loadLanes(g + c) * (cdf + x * pdf)
                storeLanes(v, g + c)
                storeLanes(loadLanes(dBias + c) + v, dBias + c)
            }
            backwardScalar(dOutput: g + whole, input: row + whole, dInput: g + whole, count: cols - whole)
            for c in whole..<cols { dBias[c] += g[c] }
        }
    }

    /// `forward` one value at a time with libm's `erff`.
    static func forwardScalar(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = input[i]
            output[i] = 0.5 * x * (1 + erff(x * inverseSqrt2))
        }
    }

    /// `backward` one value at a time with libm's `erff` and `expf`.
    static func backwardScalar(dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                               dInput: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = input[i]
            let cdf = 0.5 * (1 + erff(x * inverseSqrt2))
            let pdf = expf(-0.5 * x * x) * inverseSqrt2Pi
            dInput[i] = dOutput[i] * (cdf + x * pdf)
        }
    }
}

/// erf(x) on 8 lanes: the rational approximation of Eigen's float `erf` (`generic_fast_erf_float`),
/// erf(x) ≈ x·P(x²)/Q(x²) with P of degree 6 and Q of degree 4, on x clamped to [−4, 4] (|erf(4)| rounds to 1 in
/// Float). Absolute error 6.5e-8 in exact arithmetic, ≤ 4.2e-7 evaluated in Float (against libm's `erff`: within
/// 5e-7 over [−6, 6]); no branches, no library call.
@inline(__always)
func erf8(_ v: Lanes) -> Lanes {
    var x = v.replacing(with: -4, where: v .< -4)
    x = x.replacing(with: 4, where: x .> 4)
    let x2 = x * x
    var p = Lanes(repeating: -2.726_142_258_013_06e-10)
    p = fma8(p, x2, Lanes(repeating: 2.770_681_424_959_02e-08))
    p = fma8(p, x2, Lanes(repeating: -2.101_024_020_825_08e-06))
    p = fma8(p, x2, Lanes(repeating: -5.692_506_394_623_46e-05))
    p = fma8(p, x2, Lanes(repeating: -7.349_906_303_268_55e-04))
    p = fma8(p, x2, Lanes(repeating: -2.954_599_808_540_25e-03))
    p = fma8(p, x2, Lanes(repeating: -1.609_603_332_624_15e-02))
    var q = Lanes(repeating: -1.456_607_184_649_96e-05)
    q = fma8(q, x2, Lanes(repeating: -2.133_740_552_789_05e-04))
    q = fma8(q, x2, Lanes(repeating: -1.682_826_974_382_03e-03))
    q = fma8(q, x2, Lanes(repeating: -7.373_329_167_204_68e-03))
    q = fma8(q, x2, Lanes(repeating: -1.426_473_905_141_89e-02))
    return x * p / q
}
