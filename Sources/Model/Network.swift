import Tensor

// Legend: B = batch (≤ maxBatch), D = embedDim, K = classes.

/// One conv stage of the encoder: conv, ReLU, conv, ReLU, 2×2 max pool.
public struct ConvStage: Sendable {
    public let first: Conv2d
    public let second: Conv2d
    public let pool: MaxPool2d
}

/// An encoder (conv stages, flatten, Linear+ReLU layers, Linear → D) plus a linear head D → K, with every
/// buffer of a training step allocated at construction for batches of up to `maxBatch` samples.
///
/// Parameter arena layout: parameters are reserved in the order backward finishes them — head, last encoder
/// layer, …, first layer — each layer weight then bias, every slice 64-byte aligned. So after each layer's
/// backward the gradient arena prefix [0, k) is final, which `backward(…onReady:)` reports for a bucketed,
/// overlapped all-reduce. Names follow the PyTorch state dict of `nn.Sequential` encoder + head
/// (`encoder.<module index>.weight`, `head.bias`, …).
///
/// Initialisation (PyTorch defaults): every weight and bias ~ U(−1/√fanIn, 1/√fanIn), fanIn = in_features or
/// C_in·3·3, drawn from `CounterRNG(seed:)`, stream `.initialisation`, index = element offset within the
/// parameter, substream = parameter number = position in `parameters` (layout order). Identical on every rank.
///
/// ReLUs are fused into the preceding layer: its bias pass applies them (forward) and its backward masks the
/// incoming gradient in place before the gemms (`backwardThroughReLU`); each activation has its own buffer
/// (needed by backward); input gradients ping-pong between two buffers of the largest activation size.
public final class Network {
    public let config: NetworkConfig
    public let maxBatch: Int

    /// Parameters, in the layout described above.
    public let params: Arena
    /// Gradients, same layout as `params`. `backward` accumulates; call `zeroGradients()` between steps.
    public let grads: Arena
    /// Every parameter slice (named), in layout order.
    public let parameters: [Slice]

    public let stages: [ConvStage]
    public let flatten: Flatten
    /// Hidden layers (each followed by ReLU) and, last, the projection to the embedding.
    public let linears: [Linear]
    public let head: Linear
    public let relu = ReLU()

    // Activations: one arena, slices per layer output (maxBatch rows).
    @usableFromInline let activations: Arena
    @usableFromInline let inputSlice: Slice
    @usableFromInline let stageSlices: [(first: Slice, second: Slice, pooled: Slice, indices: Int)]
    @usableFromInline let linearSlices: [Slice]
    @usableFromInline let logitSlice: Slice
    @usableFromInline let poolIndices: Buffer<Int32>
    // Input-gradient ping-pong buffers and the im2col scratch.
    @usableFromInline let dFront: Arena
    @usableFromInline let dBack: Arena
    @usableFromInline let scratch: Arena
    /// The batch of the last `forward`.
    public private(set) var batch: Int = 0

    /// Builds the network for `config`, allocates every buffer for `maxBatch`, and initialises parameters.
    public init(config: NetworkConfig, maxBatch: Int, seed: UInt64) {
        precondition(maxBatch > 0, "Network: maxBatch must be > 0, got \(maxBatch)")
        self.config = config
        self.maxBatch = maxBatch

        // Shapes in forward order, with PyTorch's nn.Sequential module indices for the names.
        var module = 0
        var channels = config.inputChannels, height = config.height, width = config.width
        var stageShapes: [(c: Int, o: Int, h: Int, w: Int, i0: Int, i1: Int)] = []
        for o in config.convWidths {
            precondition(height >= 2 && width >= 2, "Network: image \(height)×\(width) too small to pool")
            stageShapes.append((channels, o, height, width, module, module + 2))
            module += 5
            channels = o; height /= 2; width /= 2
        }
        flatten = Flatten(channels: channels, height: height, width: width)
        module += 1
        var linearShapes: [(i: Int, o: Int, m: Int)] = []
        var features = flatten.features
        for h in config.hiddenWidths + [config.embedDim] {
            linearShapes.append((features, h, module))
            module += 2
            features = h
        }

        // Parameters in backward-completion order: head, last linear, …, first linear, last conv, …, first.
        var layout = ArenaLayout()
        head = Linear(inFeatures: config.embedDim, outFeatures: config.classes, name: "head", layout: &layout)
        var reversedLinears: [Linear] = []
        for s in linearShapes.reversed() {
            reversedLinears.append(Linear(inFeatures: s.i, outFeatures: s.o, name: "encoder.\(s.m)",
                                          layout: &layout))
        }
        linears = reversedLinears.reversed()
        var reversedStages: [ConvStage] = []
        for s in stageShapes.reversed() {
            let second = Conv2d(inChannels: s.o, outChannels: s.o, height: s.h, width: s.w,
                                name: "encoder.\(s.i1)", layout: &layout)
            let first = Conv2d(inChannels: s.c, outChannels: s.o, height: s.h, width: s.w,
                               name: "encoder.\(s.i0)", layout: &layout)
            reversedStages.append(ConvStage(first: first, second: second,
                                            pool: MaxPool2d(channels: s.o, height: s.h, width: s.w)))
        }
        stages = reversedStages.reversed()
        parameters = layout.slices
        params = Arena(count: layout.total)
        grads = Arena(count: layout.total)

        // Activations.
        var acts = ArenaLayout()
        inputSlice = acts.reserve(maxBatch * config.inputSize, name: "input")
        var largest = 0, scratchCount = 1, indexCount = 0
        var stageSlices: [(first: Slice, second: Slice, pooled: Slice, indices: Int)] = []
        for s in stages {
            let a = acts.reserve(maxBatch * s.first.outputSize, name: "conv1")
            let b = acts.reserve(maxBatch * s.second.outputSize, name: "conv2")
            let p = acts.reserve(maxBatch * s.pool.outputSize, name: "pool")
            stageSlices.append((a, b, p, indexCount))
            indexCount += maxBatch * s.pool.outputSize
            largest = max(largest, maxBatch * s.first.outputSize, maxBatch * s.first.inputSize)
            scratchCount = max(scratchCount, s.first.scratchCount, s.second.scratchCount)
        }
        self.stageSlices = stageSlices
        var linearSlices: [Slice] = []
        for l in linears {
            linearSlices.append(acts.reserve(maxBatch * l.outFeatures, name: "linear"))
            largest = max(largest, maxBatch * l.outFeatures, maxBatch * l.inFeatures)
        }
        self.linearSlices = linearSlices
        logitSlice = acts.reserve(maxBatch * config.classes, name: "logits")
        activations = Arena(count: acts.total)
        poolIndices = Buffer<Int32>(count: max(1, indexCount), repeating: 0)
        dFront = Arena(count: largest)
        dBack = Arena(count: largest)
        scratch = Arena(count: scratchCount)

        initialise(seed: seed)
    }

    // MARK: - Sizes

    /// Number of trainable scalars (excluding the alignment padding of the arena).
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Forward FLOPs per sample: 2 × the multiply-adds of every conv and linear layer (head included).
    /// ReLU, pooling, bias additions and the backward pass (≈ 2× forward) are not counted; a training step
    /// costs ≈ 3 × this per sample (minus the first layer's unneeded input gradient).
    public var flopsPerSample: Int {
        var macs = head.multiplyAddsPerSample
        for l in linears { macs += l.multiplyAddsPerSample }
        for s in stages { macs += s.first.multiplyAddsPerSample + s.second.multiplyAddsPerSample }
        return 2 * macs
    }

    /// Re-draws every parameter from `seed` (see the type's doc comment).
    public func initialise(seed: UInt64) {
        let rng = CounterRNG(seed: seed)
        for (number, slice) in parameters.enumerated() {
            let bound = 1 / Float(Double(fanIn(of: slice)).squareRoot())
            let p = params.pointer(slice)
            for i in 0..<slice.count {
                let u = rng.uniform(stream: .initialisation, index: UInt64(i), substream: UInt32(number))
                p[i] = (2 * u - 1) * bound
            }
        }
    }

    /// The fan-in of the layer owning `slice`.
    public func fanIn(of slice: Slice) -> Int {
        if slice == head.weight || slice == head.bias { return head.fanIn }
        for l in linears where slice == l.weight || slice == l.bias { return l.fanIn }
        for s in stages {
            if slice == s.first.weight || slice == s.first.bias { return s.first.fanIn }
            if slice == s.second.weight || slice == s.second.bias { return s.second.fanIn }
        }
        preconditionFailure("fanIn(of:): \(slice.name) is not a parameter of this network")
    }

    /// Sets every gradient to zero.
    public func zeroGradients() { grads.zero() }

    // MARK: - Outputs

    /// The embeddings of the last forward: (batch, D), row-major.
    public var embeddings: UnsafeMutablePointer<Float> {
        activations.pointer(linearSlices[linearSlices.count - 1])
    }
    /// The logits of the last forward: (batch, K), row-major.
    public var logits: UnsafeMutablePointer<Float> { activations.pointer(logitSlice) }

    // MARK: - Forward / backward

    /// Runs encoder and head on `input` (batch, C, H, W), leaving `embeddings` and `logits`; caches what
    /// backward needs (a copy of the input, every activation, pooling argmaxes). Allocation-free.
    public func forward(input: UnsafePointer<Float>, batch: Int) {
        precondition(batch > 0 && batch <= maxBatch, "forward: batch \(batch) not in 1...\(maxBatch)")
        self.batch = batch
        let x = activations.pointer(inputSlice)
        x.update(from: input, count: batch * config.inputSize)
        var current = UnsafePointer(x)
        let col = scratch.base
        for (s, slices) in zip(stages, stageSlices) {
            let a = activations.pointer(slices.first), b = activations.pointer(slices.second)
            let p = activations.pointer(slices.pooled)
            s.first.forward(input: current, output: a, batch: batch, params: params, scratch: col, relu: true)
            s.second.forward(input: a, output: b, batch: batch, params: params, scratch: col, relu: true)
            s.pool.forward(input: b, output: p, indices: poolIndices.base + slices.indices, batch: batch)
            current = UnsafePointer(p)
        }
        // Flatten is the identity on contiguous NCHW.
        let last = linears.count - 1
        for j in 0...last {
            let y = activations.pointer(linearSlices[j])
            linears[j].forward(input: current, output: y, batch: batch, params: params, relu: j < last)
            current = UnsafePointer(y)
        }
        head.forward(input: current, output: logits, batch: batch, params: params)
    }

    /// Back-propagates through head and encoder for the batch of the last `forward`, **accumulating** every
    /// parameter gradient into `grads`.
    ///
    /// dEmbeddings: (batch, D), ∂loss/∂embeddings from the embedding loss; dLogits: (batch, K), ∂loss/∂logits
    /// from the head's loss. The embedding's total gradient is dEmbeddings + dLogits·W_head. After each
    /// layer, `onReady(k)` says the gradient arena prefix [0, k) is final (k increasing; the last call has
    /// k = grads.count). Allocation-free.
    public func backward(dEmbeddings: UnsafePointer<Float>, dLogits: UnsafePointer<Float>, batch: Int,
                         onReady: (Int) -> Void) {
        precondition(batch == self.batch, "backward: batch \(batch) differs from forward's \(self.batch)")
        var dOut = dFront.base, dIn = dBack.base
        let last = linears.count - 1
        let embedding = activations.pointer(linearSlices[last])

        dOut.update(from: dEmbeddings, count: batch * config.embedDim)
        head.backward(dOutput: dLogits, input: embedding, dInput: dOut, batch: batch, params: params,
                      grads: grads, accumulateInput: true)
        onReady(head.end)

        let x = activations.pointer(inputSlice)
        let features: UnsafeMutablePointer<Float> =
            stageSlices.isEmpty ? x : activations.pointer(stageSlices[stageSlices.count - 1].pooled)
        for j in stride(from: last, through: 0, by: -1) {
            let input = j > 0 ? activations.pointer(linearSlices[j - 1]) : features
            let needInput = j > 0 || !stages.isEmpty
            if j == last {
                linears[j].backward(dOutput: dOut, input: input, dInput: needInput ? dIn : nil, batch: batch,
                                    params: params, grads: grads)
            } else {
                // dOut is ∂/∂ this layer's ReLU output: the fused backward masks it first.
                linears[j].backwardThroughReLU(dOutput: dOut, output: activations.pointer(linearSlices[j]),
                                               input: input, dInput: needInput ? dIn : nil, batch: batch,
                                               params: params, grads: grads)
            }
            onReady(linears[j].end)
            swap(&dOut, &dIn)
        }
        // dOut now holds ∂/∂(flattened features) = ∂/∂(last pooled output).
        for i in stride(from: stages.count - 1, through: 0, by: -1) {
            let s = stages[i], slices = stageSlices[i]
            let a = activations.pointer(slices.first), b = activations.pointer(slices.second)
            s.pool.backward(dOutput: dOut, indices: poolIndices.base + slices.indices, dInput: dIn,
                            batch: batch)
            swap(&dOut, &dIn)
            s.second.backwardThroughReLU(dOutput: dOut, output: b, input: a, dInput: dIn, batch: batch,
                                         params: params, grads: grads, scratch: scratch.base)
            onReady(s.second.end)
            swap(&dOut, &dIn)
            let input = i > 0 ? activations.pointer(stageSlices[i - 1].pooled) : x
            s.first.backwardThroughReLU(dOutput: dOut, output: a, input: input, dInput: i > 0 ? dIn : nil,
                                        batch: batch, params: params, grads: grads, scratch: scratch.base)
            onReady(s.first.end)
            swap(&dOut, &dIn)
        }
    }
}
