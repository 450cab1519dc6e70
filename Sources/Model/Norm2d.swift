import Tensor

/// Which normalisation a convolutional encoder uses after each convolution (`--norm`).
public enum NormKind: String, Sendable, CaseIterable {
    /// BatchNorm2d with statistics over the global batch (running statistics in evaluation).
    case batch
    /// GroupNorm with a fixed number of groups (per sample: no cross-rank statistics).
    case group
}

/// A BatchNorm2d or a GroupNorm, dispatched by a switch (no existential in the step).
public enum Norm2d: Sendable {
    case batch(BatchNorm2d)
    case group(GroupNorm)

    /// Reserves the layer `name` of `kind` for (C, H, W) in `registry`.
    public init(kind: NormKind, groups: Int, channels: Int, height: Int, width: Int, name: String,
                registry: inout ParameterRegistry) {
        switch kind {
        case .batch:
            self = .batch(BatchNorm2d(channels: channels, height: height, width: width, name: name,
                                      registry: &registry))
        case .group:
            self = .group(GroupNorm(groups: groups, channels: channels, height: height, width: width, name: name,
                                    registry: &registry))
        }
    }

    /// Doubles of cache for a batch of `batch` samples.
    public func cacheCount(batch: Int) -> Int {
        switch self {
        case .batch(let n): return n.cacheCount
        case .group(let n): return batch * n.cachePerSample
        }
    }

    /// One past the last parameter-arena element the layer owns.
    public var end: Int {
        switch self {
        case .batch(let n): return n.bias.offset + n.bias.count
        case .group(let n): return n.bias.offset + n.bias.count
        }
    }

    /// See `BatchNorm2d.forward` and `GroupNorm.forward`.
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                        mode: NetworkMode, relu: Bool, params: Arena, buffers: Arena, counters: Buffer<Int64>,
                        cache: UnsafeMutablePointer<Double>, reducer: StatisticsReducer) throws {
        switch self {
        case .batch(let n):
            try n.forward(input: input, output: output, batch: batch, mode: mode, relu: relu, params: params,
                          buffers: buffers, counters: counters, cache: cache, reducer: reducer)
        case .group(let n):
            n.forward(input: input, output: output, batch: batch, relu: relu, params: params, cache: cache)
        }
    }

    /// See `BatchNorm2d.backward` and `GroupNorm.backward`.
    @inlinable
    public func backward(dOutput: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>,
                         output: UnsafePointer<Float>, relu: Bool, dInput: UnsafeMutablePointer<Float>?,
                         accumulateInput: Bool, batch: Int, params: Arena, grads: Arena,
                         cache: UnsafeMutablePointer<Double>, reducer: StatisticsReducer) throws {
        switch self {
        case .batch(let n):
            try n.backward(dOutput: dOutput, input: input, output: output, relu: relu, dInput: dInput,
                           accumulateInput: accumulateInput, batch: batch, params: params, grads: grads,
                           cache: cache, reducer: reducer)
        case .group(let n):
            n.backward(dOutput: dOutput, input: input, output: output, relu: relu, dInput: dInput,
                       accumulateInput: accumulateInput, batch: batch, params: params, grads: grads,
                       cache: UnsafePointer(cache))
        }
    }
}

/// y = x·scale + shift, then max(·, 0) when `relu`: the affine pass of BatchNorm2d and GroupNorm over `count` values.
@inlinable
func scaleShift(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, scale: Float, shift: Float,
                relu: Bool) {
    if relu {
        for i in 0..<count { y[i] = max(x[i] * scale + shift, 0) }
    } else {
        for i in 0..<count { y[i] = x[i] * scale + shift }
    }
}
