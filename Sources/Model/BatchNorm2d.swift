import Tensor

// Legend: B = local batch, C = channels, P = H·W (plane size), N = global count of values per channel
// (Σ over ranks of B·P). NCHW, row-major.

/// Batch normalisation over (batch, H, W) per channel, PyTorch `BatchNorm2d(C)` (eps 1e-5, momentum 0.1,
/// affine, running statistics tracked), with statistics over the **global** batch of every rank.
///
/// Training: μ_c = Σx/N, σ²_c = Σx²/N − μ_c² (biased), x̂ = (x − μ)/√(σ² + eps), y = γ·x̂ + β; the sums (and N)
/// come from every rank through the injected `StatisticsReducer`, so the output does not depend on how the
/// batch is split. Running statistics: mean ← 0.9·mean + 0.1·μ, var ← 0.9·var + 0.1·σ²·N/(N − 1) (unbiased),
/// `num_batches_tracked` += 1. Evaluation: x̂ = (x − running_mean)/√(running_var + eps).
/// Backward (training only): with g = dy, dγ += Σ g·x̂ and dβ += Σ g over the local batch (the gradient
/// all-reduce adds the ranks), and dx = γ/√(σ² + eps) · (g − Σ_all g/N − x̂·Σ_all g·x̂/N) with the sums over the
/// global batch (a second reduction of 2C values).
/// An optional ReLU after the normalisation is fused (`relu`): forward clamps, backward masks dy in place first.
/// Caches (Double, `cacheCount` per layer, owned by the caller): μ, 1/√(σ²+eps) and N, plus the reduction scratch.
public struct BatchNorm2d: Sendable {
    public let channels: Int
    public let planeSize: Int
    public let weight: Slice, bias: Slice
    public let runningMean: Slice, runningVar: Slice
    /// Index of `num_batches_tracked` in the counter array.
    public let counter: Int
    public let eps: Double = 1e-5
    public let momentum: Double = 0.1

    /// Reserves `name.weight` (1), `name.bias` (0), the buffers `name.running_mean` (0), `name.running_var` (1)
    /// and the counter `name.num_batches_tracked`.
    public init(channels: Int, height: Int, width: Int, name: String, registry: inout ParameterRegistry) {
        precondition(channels > 0 && height > 0 && width > 0, "BatchNorm2d \(name): C=\(channels) \(height)×\(width)")
        self.channels = channels
        planeSize = height * width
        weight = registry.parameter(name + ".weight", shape: [channels], initRule: .constant(1))
        bias = registry.parameter(name + ".bias", shape: [channels], initRule: .constant(0))
        runningMean = registry.buffer(name + ".running_mean", shape: [channels], initial: 0)
        runningVar = registry.buffer(name + ".running_var", shape: [channels], initial: 1)
        counter = registry.counter(name + ".num_batches_tracked")
    }

    /// Doubles of cache the caller provides: μ (C), rstd (C), N (1), then a reduction scratch of 2C + 1.
    public var cacheCount: Int { 4 * channels + 2 }
    /// Elements per sample, C·P.
    public var size: Int { channels * planeSize }

    // MARK: - Forward / backward

    /// y = γ·x̂ + β (then max(·, 0) when `relu`). input, output: (B, C, H, W) (may alias for an in-place pass in
    /// evaluation only: training keeps `input` for backward). In `.train` mode reduces the statistics over all
    /// ranks and updates the running statistics; in `.eval` uses them. cache: `cacheCount` Doubles.
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                        mode: NetworkMode, relu: Bool, params: Arena, buffers: Arena, counters: Buffer<Int64>,
                        cache: UnsafeMutablePointer<Double>, reducer: StatisticsReducer) throws {
        let C = channels, P = planeSize
        let mean = cache, rstd = cache + C
        switch mode {
        case .eval:
            let rm = buffers.pointer(runningMean), rv = buffers.pointer(runningVar)
            for c in 0..<C {
                mean[c] = Double(rm[c])
                rstd[c] = 1 / (Double(rv[c]) + eps).squareRoot()
            }
        case .train:
            let stats = cache + 2 * C + 1
            (stats).update(repeating: 0, count: 2 * C + 1)
            for n in 0..<batch {
                for c in 0..<C {
                    let x = input + (n * C + c) * P
                    var s1 = 0.0, s2 = 0.0
                    for i in 0..<P { let v = Double(x[i]); s1 += v; s2 += v * v }
                    stats[c] += s1; stats[C + c] += s2
                }
            }
            stats[2 * C] = Double(batch * P)
            try reducer.sum(UnsafeMutableBufferPointer(start: stats, count: 2 * C + 1))
            let count = stats[2 * C]
            cache[2 * C] = count
            let rm = buffers.pointer(runningMean), rv = buffers.pointer(runningVar)
            for c in 0..<C {
                let mu = stats[c] / count
                let variance = max(0, stats[C + c] / count - mu * mu)
                mean[c] = mu
                rstd[c] = 1 / (variance + eps).squareRoot()
                let unbiased = count > 1 ? variance * count / (count - 1) : variance
                rm[c] = Float((1 - momentum) * Double(rm[c]) + momentum * mu)
                rv[c] = Float((1 - momentum) * Double(rv[c]) + momentum * unbiased)
            }
            counters[counter] += 1
        }
        let g = params.pointer(weight), b = params.pointer(bias)
        for n in 0..<batch {
            for c in 0..<C {
                let x = input + (n * C + c) * P, y = output + (n * C + c) * P
                let scale = Float(Double(g[c]) * rstd[c]), shift = b[c] - Float(mean[c]) * scale
                scaleShift(x, y, count: P, scale: scale, shift: shift, relu: relu)
            }
        }
    }

    /// Backward of a training-mode `forward`: accumulates dγ, dβ (local sums) into `grads` and writes dx, or
    /// adds it when `accumulateInput`. dOutput: (B, C, H, W), ∂loss/∂y (∂/∂ the ReLU's output when `relu`: it is
    /// then masked **in place** with [output > 0]); input: the forward input; output: the forward output (read only
    /// when `relu`); dInput must not alias dOutput. cache: the forward's. Reduces 2C + 1 values over all ranks.
    @inlinable
    public func backward(dOutput: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                         output: UnsafePointer<Float>, relu: Bool, dInput: UnsafeMutablePointer<Float>?,
                         accumulateInput: Bool, batch: Int, params: Arena, grads: Arena,
                         cache: UnsafeMutablePointer<Double>, reducer: StatisticsReducer) throws {
        let C = channels, P = planeSize
        let mean = cache, rstd = cache + C, count = cache[2 * C]
        let stats = cache + 2 * C + 1
        stats.update(repeating: 0, count: 2 * C + 1)
        if relu {
            for i in 0..<(batch * C * P) where !(output[i] > 0) { dOutput[i] = 0 }
        }
        for n in 0..<batch {
            for c in 0..<C {
                let x = input + (n * C + c) * P, dy = dOutput + (n * C + c) * P
                let mu = Float(mean[c]), r = Float(rstd[c])
                var sg = 0.0, sgx = 0.0
                for i in 0..<P { let gi = Double(dy[i]); sg += gi; sgx += gi * Double((x[i] - mu) * r) }
                stats[c] += sg; stats[C + c] += sgx
            }
        }
        let dG = grads.pointer(weight), dB = grads.pointer(bias)
        for c in 0..<C {
            dG[c] += Float(stats[C + c])
            dB[c] += Float(stats[c])
        }
        guard let dInput else { return }
        try reducer.sum(UnsafeMutableBufferPointer(start: stats, count: 2 * C + 1))
        let g = params.pointer(weight)
        for n in 0..<batch {
            for c in 0..<C {
                let x = input + (n * C + c) * P, dy = dOutput + (n * C + c) * P, dx = dInput + (n * C + c) * P
                let mu = Float(mean[c]), r = Float(rstd[c])
                let k = Float(Double(g[c]) * rstd[c])
                let meanG = Float(stats[c] / count), meanGX = Float(stats[C + c] / count)
                if accumulateInput {
                    for i in 0..<P { dx[i] += k * (dy[i] - meanG - (x[i] - mu) * r * meanGX) }
                } else {
                    for i in 0..<P { dx[i] = k * (dy[i] - meanG - (x[i] - mu) * r * meanGX) }
                }
            }
        }
    }
}
