import Tensor

// Legend: B = batch, C = channels, G = groups, P = H·W, M = (C/G)·P values per (sample, group). NCHW.

/// Group normalisation, PyTorch `GroupNorm(G, C)` (eps 1e-5, affine): per sample and group of C/G channels,
/// x̂ = (x − μ)/√(σ² + eps) with the biased variance, y = γ_c·x̂ + β_c. Per sample, so it needs nothing from other
/// ranks and behaves the same in training and evaluation.
/// Backward: with h = γ_c·dy, dx = rstd·(h − mean_group(h) − x̂·mean_group(h·x̂)); dγ_c += Σ dy·x̂, dβ_c += Σ dy.
/// An optional ReLU after it is fused (`relu`), as in `BatchNorm2d`. Cache: μ and rstd per (sample, group), Double.
public struct GroupNorm: Sendable {
    public let channels: Int, groups: Int, planeSize: Int
    public let weight: Slice, bias: Slice
    public let eps: Double = 1e-5

    /// Reserves `name.weight` (1) and `name.bias` (0). `groups` must divide `channels`.
    public init(groups: Int, channels: Int, height: Int, width: Int, name: String, registry: inout ParameterRegistry) {
        precondition(groups > 0 && channels % groups == 0,
                     "GroupNorm \(name): \(groups) groups do not divide \(channels) channels")
        self.channels = channels
        self.groups = groups
        planeSize = height * width
        weight = registry.parameter(name + ".weight", shape: [channels], initRule: .constant(1))
        bias = registry.parameter(name + ".bias", shape: [channels], initRule: .constant(0))
    }

    /// Doubles of cache per sample: μ and rstd of each group.
    public var cachePerSample: Int { 2 * groups }
    /// Elements per sample, C·P.
    public var size: Int { channels * planeSize }

    // MARK: - Forward / backward

    /// y = γ·x̂ + β (then max(·, 0) when `relu`). input, output: (B, C, H, W); cache: B·`cachePerSample` Doubles.
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int, relu: Bool,
                        params: Arena, cache: UnsafeMutablePointer<Double>) {
        let per = channels / groups, m = per * planeSize, P = planeSize
        let g = params.pointer(weight), b = params.pointer(bias)
        for n in 0..<batch {
            for q in 0..<groups {
                let x = input + n * size + q * m, y = output + n * size + q * m
                var s1 = 0.0, s2 = 0.0
                for i in 0..<m { let v = Double(x[i]); s1 += v; s2 += v * v }
                let mu = s1 / Double(m), variance = max(0, s2 / Double(m) - mu * mu)
                let r = 1 / (variance + eps).squareRoot()
                cache[(n * groups + q) * 2] = mu
                cache[(n * groups + q) * 2 + 1] = r
                for j in 0..<per {
                    let c = q * per + j
                    let scale = Float(Double(g[c]) * r), shift = b[c] - Float(mu) * scale
                    let xc = x + j * P, yc = y + j * P
                    scaleShift(xc, yc, count: P, scale: scale, shift: shift, relu: relu)
                }
            }
        }
    }

    /// Accumulates dγ, dβ; writes dx (or adds it when `accumulateInput`). dOutput is masked **in place** with
    /// [output > 0] first when `relu`. dInput must not alias dOutput. cache: the forward's.
    @inlinable
    public func backward(dOutput: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                         output: UnsafePointer<Float>, relu: Bool, dInput: UnsafeMutablePointer<Float>?,
                         accumulateInput: Bool, batch: Int, params: Arena, grads: Arena,
                         cache: UnsafePointer<Double>) {
        let per = channels / groups, m = per * planeSize, P = planeSize
        if relu {
            for i in 0..<(batch * size) where !(output[i] > 0) { dOutput[i] = 0 }
        }
        let g = params.pointer(weight), dG = grads.pointer(weight), dB = grads.pointer(bias)
        for n in 0..<batch {
            for q in 0..<groups {
                let mu = Float(cache[(n * groups + q) * 2]), r = Float(cache[(n * groups + q) * 2 + 1])
                let x = input + n * size + q * m, dy = dOutput + n * size + q * m
                var sh = 0.0, shx = 0.0
                for j in 0..<per {
                    let c = q * per + j
                    var sg = 0.0, sgx = 0.0
                    for i in 0..<P {
                        let gi = Double(dy[j * P + i]), xh = Double((x[j * P + i] - mu) * r)
                        sg += gi; sgx += gi * xh
                    }
                    dG[c] += Float(sgx); dB[c] += Float(sg)
                    sh += Double(g[c]) * sg; shx += Double(g[c]) * sgx
                }
                guard let dInput else { continue }
                let meanH = Float(sh / Double(m)), meanHX = Float(shx / Double(m))
                let dx = dInput + n * size + q * m
                for j in 0..<per {
                    let gc = g[(q * per + j)]
                    for i in 0..<P {
                        let k = j * P + i
                        let v = r * (gc * dy[k] - meanH - (x[k] - mu) * r * meanHX)
                        if accumulateInput { dx[k] += v } else { dx[k] = v }
                    }
                }
            }
        }
    }
}
