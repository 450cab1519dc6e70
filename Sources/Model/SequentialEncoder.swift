import Tensor

// Legend: B = batch (≤ maxBatch), D = embedDim.

/// One conv stage of the sequential encoder: conv, ReLU, conv, ReLU, 2×2 max pool.
public struct ConvStage: Sendable {
    public let first: Conv2d
    public let second: Conv2d
    public let pool: MaxPool2d
}

/// The `mlp` and `cnn` encoders: conv stages, flatten, Linear+ReLU layers, Linear → D, with every buffer of a
/// training step allocated at construction for batches of up to `maxBatch` samples.
///
/// Parameters are reserved in the order backward finishes them — last linear, …, first linear, last conv, …,
/// first conv — each layer weight then bias, named as the PyTorch state dict of an `nn.Sequential` encoder
/// (`encoder.<module index>.weight`), with PyTorch's default initialisation U(−1/√fanIn, 1/√fanIn).
///
/// ReLUs are fused into the preceding layer: its bias pass applies them (forward) and its backward masks the
/// incoming gradient in place before the gemms (`backwardThroughReLU`); each activation has its own buffer
/// (needed by backward); input gradients ping-pong between two buffers of the largest activation size.
public final class SequentialEncoder {
    public let maxBatch: Int
    public let inputSize: Int
    public let embedDim: Int
    public let stages: [ConvStage]
    public let flatten: Flatten
    /// Hidden layers (each followed by ReLU) and, last, the projection to the embedding.
    public let linears: [Linear]

    @usableFromInline let activations: Arena
    @usableFromInline let inputSlice: Slice
    @usableFromInline let stageSlices: [(first: Slice, second: Slice, pooled: Slice, indices: Int)]
    @usableFromInline let linearSlices: [Slice]
    @usableFromInline let poolIndices: Buffer<Int32>
    @usableFromInline let dFront: Arena
    @usableFromInline let dBack: Arena
    @usableFromInline let scratch: Arena

    /// Builds the encoder for (C, H, W) inputs, reserving its parameters in `registry` (module indices of the
    /// names as `nn.Sequential` numbers them, under `prefix`).
    public init(inputChannels: Int, height: Int, width: Int, convWidths: [Int], hiddenWidths: [Int], embedDim: Int,
                maxBatch: Int, prefix: String, registry: inout ParameterRegistry) {
        precondition(maxBatch > 0, "SequentialEncoder: maxBatch must be > 0, got \(maxBatch)")
        self.maxBatch = maxBatch
        self.embedDim = embedDim
        inputSize = inputChannels * height * width

        // Shapes in forward order, with PyTorch's nn.Sequential module indices for the names.
        var module = 0
        var channels = inputChannels, h = height, w = width
        var stageShapes: [(c: Int, o: Int, h: Int, w: Int, i0: Int, i1: Int)] = []
        for o in convWidths {
            precondition(h >= 2 && w >= 2, "SequentialEncoder: image \(h)×\(w) too small to pool")
            stageShapes.append((channels, o, h, w, module, module + 2))
            module += 5
            channels = o; h /= 2; w /= 2
        }
        flatten = Flatten(channels: channels, height: h, width: w)
        module += 1
        var linearShapes: [(i: Int, o: Int, m: Int)] = []
        var features = flatten.features
        for width in hiddenWidths + [embedDim] {
            linearShapes.append((features, width, module))
            module += 2
            features = width
        }

        // Parameters in backward-completion order: last linear, …, first linear, last conv, …, first.
        var reversedLinears: [Linear] = []
        for s in linearShapes.reversed() {
            reversedLinears.append(Linear(inFeatures: s.i, outFeatures: s.o, name: "\(prefix)\(s.m)",
                                          registry: &registry))
        }
        linears = reversedLinears.reversed()
        var reversedStages: [ConvStage] = []
        for s in stageShapes.reversed() {
            let second = Conv2d(inChannels: s.o, outChannels: s.o, kernel: 3, stride: 1, padding: 1, bias: true,
                                height: s.h, width: s.w, name: "\(prefix)\(s.i1)", registry: &registry)
            let first = Conv2d(inChannels: s.c, outChannels: s.o, kernel: 3, stride: 1, padding: 1, bias: true,
                               height: s.h, width: s.w, name: "\(prefix)\(s.i0)", registry: &registry)
            reversedStages.append(ConvStage(first: first, second: second,
                                            pool: MaxPool2d(channels: s.o, height: s.h, width: s.w)))
        }
        stages = reversedStages.reversed()

        // Activations.
        var acts = ArenaLayout()
        inputSlice = acts.reserve(maxBatch * inputSize, name: "input")
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
        activations = Arena(count: acts.total)
        poolIndices = Buffer<Int32>(count: max(1, indexCount), repeating: 0)
        dFront = Arena(count: largest)
        dBack = Arena(count: largest)
        scratch = Arena(count: scratchCount)
    }

    /// Forward multiply-adds per sample of every conv and linear layer.
    public var multiplyAddsPerSample: Int {
        var macs = 0
        for l in linears { macs += l.multiplyAddsPerSample }
        for s in stages { macs += s.first.multiplyAddsPerSample + s.second.multiplyAddsPerSample }
        return macs
    }

    /// Multiply-adds per sample `backward` performs: every layer's weight gradient, and its input gradient except
    /// for the first layer (the first conv, or the first linear of an encoder without convs), as `backward` skips.
    public var backwardMultiplyAddsPerSample: Int {
        var macs = 0
        for (j, l) in linears.enumerated() {
            macs += l.backwardMultiplyAddsPerSample(inputGradient: j > 0 || !stages.isEmpty)
        }
        for (i, s) in stages.enumerated() {
            macs += s.first.backwardMultiplyAddsPerSample(inputGradient: i > 0)
                + s.second.backwardMultiplyAddsPerSample(inputGradient: true)
        }
        return macs
    }

    /// Multiply-adds per sample of a training step's forward and backward.
    public var trainingMultiplyAddsPerSample: Int { multiplyAddsPerSample + backwardMultiplyAddsPerSample }

    /// Bytes of the encoder's buffers by name: the cached activations (input copy, every layer's output), the pooling
    /// argmaxes, the two input-gradient ping-pong buffers and the convolutions' im2col scratch.
    public var arenaBytes: [(name: String, bytes: Int)] {
        [("encoder activations", activations.byteCount), ("encoder pool indices", poolIndices.byteCount),
         ("encoder backward buffers", dFront.byteCount + dBack.byteCount), ("encoder scratch", scratch.byteCount)]
    }

    /// The embeddings of the last forward: (batch, D), row-major.
    public var embeddings: UnsafeMutablePointer<Float> {
        activations.pointer(linearSlices[linearSlices.count - 1])
    }

    // MARK: - Forward / backward

    /// Runs the encoder on `input` (batch, C, H, W), leaving `embeddings`; caches what backward needs (a copy of
    /// the input, every activation, pooling argmaxes). Allocation-free.
    public func forward(input: UnsafePointer<Float>, batch: Int, params: Arena) {
        precondition(batch > 0 && batch <= maxBatch, "forward: batch \(batch) not in 1...\(maxBatch)")
        let x = activations.pointer(inputSlice)
        x.update(from: input, count: batch * inputSize)
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
    }

    /// Back-propagates ∂loss/∂embeddings (batch, D) for the batch of the last `forward`, **accumulating** every
    /// parameter gradient into `grads`; after each layer `onReady(k)` says the gradient-arena prefix [0, k) is
    /// final. Allocation-free.
    public func backward(dEmbeddings: UnsafePointer<Float>, batch: Int, params: Arena, grads: Arena,
                         onReady: (Int) -> Void) {
        var dOut = dFront.base, dIn = dBack.base
        let last = linears.count - 1
        dOut.update(from: dEmbeddings, count: batch * embedDim)
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
