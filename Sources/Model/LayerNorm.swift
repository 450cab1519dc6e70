import Tensor

// Legend: rows = the flattened leading dimensions (B·T tokens), D = features. Row-major.

/// Layer normalisation over the last dimension, PyTorch `nn.LayerNorm(D, eps)` (timm's ViTs use eps 1e-6).
///
/// Per row x (D values): μ = mean(x), σ² = mean((x − μ)²) (biased), r = 1/√(σ² + eps), x̂ = (x − μ)·r,
/// y = γ ⊙ x̂ + β. γ, β: (D), initialised 1 and 0, not weight-decayed. The forward caches (μ, r) per row
/// (`cacheCount(rows:)` floats); backward recomputes x̂ from the input.
public struct LayerNorm: Sendable {
    public let features: Int
    public let epsilon: Float
    /// γ, (D).
    public let weight: Slice
    /// β, (D).
    public let bias: Slice

    /// Reserves `name.weight` (γ = 1) then `name.bias` (β = 0) in `registry`, both without weight decay.
    public init(features: Int, epsilon: Float = 1e-6, name: String, registry: inout ParameterRegistry) {
        precondition(features > 0, "LayerNorm \(name): features \(features)")
        self.features = features
        self.epsilon = epsilon
        weight = registry.parameter(name + ".weight", shape: [features], initRule: .constant(1), decay: false)
        bias = registry.parameter(name + ".bias", shape: [features], initRule: .constant(0), decay: false)
    }

    /// One past the last arena element this layer owns.
    public var end: Int { max(weight.offset + weight.count, bias.offset + bias.count) }
    /// Floats of the (μ, r) cache for `rows` rows.
    public func cacheCount(rows: Int) -> Int { 2 * rows }

    // MARK: - Forward / backward

    /// y = γ ⊙ (x − μ)·r + β per row. input, output: (rows, D), may not alias; cache: (rows, 2) ← (μ, r).
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, rows: Int,
                        params: Arena, cache: UnsafeMutablePointer<Float>) {
        let g = params.pointer(weight), b = params.pointer(bias), D = features, whole = D / 8 * 8
        let invD = 1 / Float(D)
        for row in 0..<rows {
            let x = input + row * D, y = output + row * D
            // Two passes (mean, then the centred squares) so σ² does not suffer from cancellation; 8 lanes wide.
            var lanes = Lanes.zero
            for i in stride(from: 0, to: whole, by: 8) { lanes += loadLanes(x + i) }
            var sum = lanes.sum()
            for i in whole..<D { sum += x[i] }
            let mean = sum * invD
            lanes = .zero
            for i in stride(from: 0, to: whole, by: 8) { let c = loadLanes(x + i) - mean; lanes += c * c }
            var squares = lanes.sum()
            for i in whole..<D { let c = x[i] - mean; squares += c * c }
            let r = 1 / (squares * invD + epsilon).squareRoot()
            cache[2 * row] = mean
            cache[2 * row + 1] = r
            for i in stride(from: 0, to: whole, by: 8) {
                storeLanes((loadLanes(x + i) - mean) * r * loadLanes(g + i) + loadLanes(b + i), y + i)
            }
            for i in whole..<D { y[i] = (x[i] - mean) * r * g[i] + b[i] }
        }
    }

    /// Accumulates dγ += Σ_rows dy ⊙ x̂ and dβ += Σ_rows dy; writes dx = r·(g − mean(g) − x̂·mean(g ⊙ x̂)) with
    /// g = dy ⊙ γ. dOutput, input (the forward input), dInput: (rows, D); cache: the forward's. `dInput` is
    /// **overwritten**, or **accumulated** into when `accumulateInput` (a residual stream); it must not alias
    /// `dOutput`.
    @inlinable
    public func backward(dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                         dInput: UnsafeMutablePointer<Float>, accumulateInput: Bool, rows: Int, params: Arena,
                         grads: Arena, cache: UnsafePointer<Float>) {
        let gamma = params.pointer(weight), dGamma = grads.pointer(weight), dBeta = grads.pointer(bias)
        let D = features, invD = 1 / Float(D), whole = D / 8 * 8
        for row in 0..<rows {
            let x = input + row * D, dy = dOutput + row * D, dx = dInput + row * D
            let mean = cache[2 * row], r = cache[2 * row + 1]
            var lanesG = Lanes.zero, lanesGX = Lanes.zero
            for i in stride(from: 0, to: whole, by: 8) {
                let xh = (loadLanes(x + i) - mean) * r, d = loadLanes(dy + i), g = d * loadLanes(gamma + i)
                storeLanes(loadLanes(dGamma + i) + d * xh, dGamma + i)
                storeLanes(loadLanes(dBeta + i) + d, dBeta + i)
                lanesG += g
                lanesGX += g * xh
            }
            var sumG = lanesG.sum(), sumGX = lanesGX.sum()
            for i in whole..<D {
                let xh = (x[i] - mean) * r, g = dy[i] * gamma[i]
                dGamma[i] += dy[i] * xh
                dBeta[i] += dy[i]
                sumG += g
                sumGX += g * xh
            }
            let meanG = sumG * invD, meanGX = sumGX * invD
            for i in stride(from: 0, to: whole, by: 8) {
                let v = r * (loadLanes(dy + i) * loadLanes(gamma + i) - meanG - (loadLanes(x + i) - mean) * r * meanGX)
                storeLanes(accumulateInput ? loadLanes(dx + i) + v : v, dx + i)
            }
            for i in whole..<D {
                let v = r * (dy[i] * gamma[i] - meanG - (x[i] - mean) * r * meanGX)
                dx[i] = accumulateInput ? dx[i] + v : v
            }
        }
    }
}

// MARK: - 8-lane helpers (the row loops of LayerNorm and softmax)



/// e^x on 8 lanes: Cephes' `expf` (x = n·ln 2 + r with |r| ≤ ½ ln 2, a degree-5 polynomial for e^r, then 2ⁿ through
/// the exponent bits), relative error ≈ 2 ulp. x is clamped to [−87.3, 88.3], so e^x stays a normal Float (the
/// softmax and GELU inputs it serves are ≤ 0, where e^−87.3 ≈ 1e−38 stands for 0). Rounding to the nearest integer
/// n uses the 1.5·2²³ trick, whose bits then hold n: no per-lane library call.
@inlinable @inline(__always)
func exp8(_ v: Lanes) -> Lanes {
    var x = v.replacing(with: -87.3, where: v .< -87.3)
    x = x.replacing(with: 88.3, where: x .> 88.3)
    let magic = Lanes(repeating: 12_582_912)
    let t = x * 1.442_695_04 + magic
    let n = t - magic
    // r = x − n·ln 2, with ln 2 split in two parts (0.693359375 is exact in 9 bits).
    let r = x - n * 0.693_359_375 + n * 2.121_944_4e-4
    var p = Lanes(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let y = p * r * r + r + 1
    let k = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
    return y * unsafeBitCast((k &+ 127) &<< 23, to: Lanes.self)
}
