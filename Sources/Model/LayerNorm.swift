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
        let g = params.pointer(weight), b = params.pointer(bias), D = features
        let invD = 1 / Float(D)
        for row in 0..<rows {
            let x = input + row * D, y = output + row * D
            // Two passes (mean, then the centred squares) so σ² does not suffer from cancellation.
            var sum: Float = 0
            for i in 0..<D { sum += x[i] }
            let mean = sum * invD
            var squares: Float = 0
            for i in 0..<D { let c = x[i] - mean; squares += c * c }
            let r = 1 / (squares * invD + epsilon).squareRoot()
            cache[2 * row] = mean
            cache[2 * row + 1] = r
            for i in 0..<D { y[i] = (x[i] - mean) * r * g[i] + b[i] }
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
        let D = features, invD = 1 / Float(D)
        for row in 0..<rows {
            let x = input + row * D, dy = dOutput + row * D, dx = dInput + row * D
            let mean = cache[2 * row], r = cache[2 * row + 1]
            var sumG: Float = 0, sumGX: Float = 0
            for i in 0..<D {
                let xh = (x[i] - mean) * r, g = dy[i] * gamma[i]
                dGamma[i] += dy[i] * xh
                dBeta[i] += dy[i]
                sumG += g
                sumGX += g * xh
            }
            let meanG = sumG * invD, meanGX = sumGX * invD
            if accumulateInput {
                for i in 0..<D { dx[i] += r * (dy[i] * gamma[i] - meanG - (x[i] - mean) * r * meanGX) }
            } else {
                for i in 0..<D { dx[i] = r * (dy[i] * gamma[i] - meanG - (x[i] - mean) * r * meanGX) }
            }
        }
    }
}
