import Tensor

// The one list of what a network stores: trainable parameters (with their PyTorch state-dict name, shape,
// initialisation rule and weight-decay flag), Float buffers (BatchNorm running mean/var) and Int64 counters
// (`num_batches_tracked`). Layers reserve their entries while the network is built; checkpoints, `--init`,
// `export`, the gradient checks and the bucketed all-reduce read this registry and nothing else.

/// How a parameter's initial values are drawn.
public enum InitRule: Sendable, Equatable {
    /// U(−bound, bound): PyTorch's default for Linear and Conv2d (bound = 1/√fan_in).
    case uniform(bound: Float)
    /// N(0, std²): torchvision's `kaiming_normal_(mode="fan_out")` has std = √(2/fan_out).
    case normal(std: Float)
    /// N(0, std²) truncated to [−2, 2] (absolute, as `timm.layers.trunc_normal_`): timm's ViT weights.
    case truncatedNormal(std: Float)
    /// Every element = value (norm weights 1, biases 0).
    case constant(Float)
}

/// One trainable tensor.
public struct ParameterEntry: Sendable, Equatable {
    /// The PyTorch state-dict name in dtrain's own naming (`encoder.layer1.0.conv1.weight`, `head.bias`).
    public let name: String
    /// The PyTorch shape: (O, C, kH, kW) for a conv weight, (O, I) for a Linear, (C) for a norm.
    public let shape: [Int]
    /// Its range in the parameter arena (and, identically, in the gradient and optimiser arenas).
    public let slice: Slice
    public let initRule: InitRule
    /// Whether L2 weight decay applies (PyTorch convention: everything unless told otherwise).
    public let decay: Bool
}

/// One non-trainable Float tensor (a BatchNorm running statistic).
public struct BufferEntry: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    /// Its range in the buffer arena.
    public let slice: Slice
    /// The value every element starts at (running mean 0, running variance 1).
    public let initial: Float
}

/// Parameters, buffers and counters of one network, in reservation order.
///
/// Parameters are laid out in the order they are reserved, every slice 64-byte aligned. Networks reserve them in
/// the order their backward pass finishes them, so that after each layer's backward a prefix of the gradient arena
/// is final (see `Network.backward(…onReady:)`).
public struct ParameterRegistry: Sendable {
    public private(set) var parameters: [ParameterEntry] = []
    public private(set) var buffers: [BufferEntry] = []
    /// Names of the Int64 counters (`…num_batches_tracked`); counter i lives at index i of the counter array.
    public private(set) var counters: [String] = []
    /// The parameter arena's plan.
    public private(set) var layout = ArenaLayout()
    /// The buffer arena's plan.
    public private(set) var bufferLayout = ArenaLayout()

    public init() {}

    /// A registry continuing `layout` (for layers built directly on an `ArenaLayout`, as tests do).
    public init(layout: ArenaLayout) { self.layout = layout }

    /// Reserves a trainable tensor of `shape` named `name`.
    public mutating func parameter(_ name: String, shape: [Int], initRule: InitRule, decay: Bool = true) -> Slice {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 > 0 }, "parameter \(name): shape \(shape)")
        precondition(!parameters.contains { $0.name == name }, "parameter \(name) reserved twice")
        let slice = layout.reserve(shape.reduce(1, *), name: name)
        parameters.append(ParameterEntry(name: name, shape: shape, slice: slice, initRule: initRule, decay: decay))
        return slice
    }

    /// Reserves a non-trainable Float tensor of `shape` named `name`, starting at `initial`.
    public mutating func buffer(_ name: String, shape: [Int], initial: Float) -> Slice {
        precondition(!buffers.contains { $0.name == name }, "buffer \(name) reserved twice")
        let slice = bufferLayout.reserve(shape.reduce(1, *), name: name)
        buffers.append(BufferEntry(name: name, shape: shape, slice: slice, initial: initial))
        return slice
    }

    /// Reserves an Int64 counter named `name` and returns its index.
    public mutating func counter(_ name: String) -> Int {
        precondition(!counters.contains(name), "counter \(name) reserved twice")
        counters.append(name)
        return counters.count - 1
    }

    /// Trainable scalars (without alignment padding).
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.slice.count } }

    /// The entry named `name`, if any.
    public func parameter(named name: String) -> ParameterEntry? { parameters.first { $0.name == name } }

    /// Arena ranges [start, end) of the parameters that are not weight-decayed, merged where adjacent.
    public var noDecayRanges: [Range<Int>] {
        var ranges: [Range<Int>] = []
        for p in parameters where !p.decay {
            let r = p.slice.offset..<(p.slice.offset + p.slice.count)
            if let last = ranges.last, last.upperBound == r.lowerBound {
                ranges[ranges.count - 1] = last.lowerBound..<r.upperBound
            } else {
                ranges.append(r)
            }
        }
        return ranges
    }

    // MARK: - Initialisation

    /// Draws every parameter from `seed` by its rule: element i of parameter number j (position in `parameters`)
    /// uses `CounterRNG(seed:)` stream `.initialisation`, index i, substream j, so the values are identical on
    /// every rank. Buffers are set to their initial values and counters to 0.
    public func initialise(params: Arena, buffers bufferArena: Arena, counters counterArray: Buffer<Int64>,
                           seed: UInt64) {
        let rng = CounterRNG(seed: seed)
        for (number, entry) in parameters.enumerated() {
            let p = params.pointer(entry.slice), sub = UInt32(number)
            for i in 0..<entry.slice.count {
                let index = UInt64(i)
                switch entry.initRule {
                case .uniform(let bound):
                    p[i] = (2 * rng.uniform(stream: .initialisation, index: index, substream: sub) - 1) * bound
                case .normal(let std):
                    p[i] = Float(rng.normal(stream: .initialisation, index: index, substream: sub) * Double(std))
                case .truncatedNormal(let std):
                    // Redraw (further counter values) until inside [−2, 2], as rejection sampling would.
                    var k: UInt64 = 0, v: Double
                    repeat {
                        v = rng.normal(stream: .initialisation, index: index | (k << 40), substream: sub)
                            * Double(std)
                        k += 1
                    } while abs(v) > 2
                    p[i] = Float(v)
                case .constant(let value):
                    p[i] = value
                }
            }
        }
        for entry in buffers { bufferArena.pointer(entry.slice).update(repeating: entry.initial, count: entry.slice.count) }
        for i in 0..<counterArray.count { counterArray[i] = 0 }
    }
}
