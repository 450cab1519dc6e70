import Tensor

// Legend: B = batch (≤ maxBatch), C = channels, P = H·W, D = embedDim (the last stage's channels).
// NCHW, row-major. Names follow torchvision's `ResNet` state dict under the prefix `encoder.`.

/// The residual block type of a ResNet.
public enum ResidualBlockKind: Sendable {
    /// Two 3×3 convolutions (ResNet-18/34, the CIFAR ResNet-20); expansion 1.
    case basic
    /// 1×1, 3×3 (carrying the stride, torchvision v1.5), 1×1 with 4× expansion (ResNet-50/101).
    case bottleneck
}

/// Which stem a ResNet starts with (`--stem`).
public enum StemKind: String, Sendable, CaseIterable {
    /// conv 7×7/2 (padding 3) + norm + ReLU + max-pool 3×3/2 (padding 1): torchvision's, for 224-pixel images.
    case imagenet
    /// conv 3×3/1 (padding 1) + norm + ReLU, no pool: for 28–32-pixel images.
    case cifar
}

/// The shape of a ResNet: block kind, blocks per stage, stage widths and stem width.
public struct ResNetSpec: Sendable, Equatable {
    public var block: ResidualBlockKind
    public var blocksPerStage: [Int]
    public var widths: [Int]
    public var stemWidth: Int
    /// Whether the stem is fixed to the CIFAR stem (ResNet-20 has no ImageNet form).
    public var cifarOnly: Bool

    public init(block: ResidualBlockKind, blocksPerStage: [Int], widths: [Int], stemWidth: Int, cifarOnly: Bool) {
        precondition(!blocksPerStage.isEmpty && blocksPerStage.count == widths.count, "ResNetSpec: one width per stage")
        self.block = block; self.blocksPerStage = blocksPerStage; self.widths = widths
        self.stemWidth = stemWidth; self.cifarOnly = cifarOnly
    }

    public static let resnet18 = ResNetSpec(block: .basic, blocksPerStage: [2, 2, 2, 2], widths: [64, 128, 256, 512],
                                            stemWidth: 64, cifarOnly: false)
    public static let resnet34 = ResNetSpec(block: .basic, blocksPerStage: [3, 4, 6, 3], widths: [64, 128, 256, 512],
                                            stemWidth: 64, cifarOnly: false)
    public static let resnet50 = ResNetSpec(block: .bottleneck, blocksPerStage: [3, 4, 6, 3],
                                            widths: [64, 128, 256, 512], stemWidth: 64, cifarOnly: false)
    public static let resnet101 = ResNetSpec(block: .bottleneck, blocksPerStage: [3, 4, 23, 3],
                                             widths: [64, 128, 256, 512], stemWidth: 64, cifarOnly: false)
    /// He et al. 2016, sec. 4.2: 3×3 stem with 16 channels, three stages of three basic blocks (16/32/64).
    public static let resnet20 = ResNetSpec(block: .basic, blocksPerStage: [3, 3, 3], widths: [16, 32, 64],
                                            stemWidth: 16, cifarOnly: true)

    /// Output channels of a block of stage width `w`.
    public func outChannels(width w: Int) -> Int { block == .basic ? w : 4 * w }
    /// D: the channels of the last stage, the embedding size after global average pooling.
    public var embedDim: Int { outChannels(width: widths[widths.count - 1]) }
}

/// conv (no bias) → norm (→ ReLU): the unit residual blocks are made of, with its activation slices.
public struct ConvNorm: Sendable {
    public let conv: Conv2d
    public let norm: Norm2d
    public let relu: Bool
    /// Slices of the ResNet's activation arena: the conv's output (the norm's input) and the norm's output.
    let convOut: Slice, normOut: Slice
    /// The norm's cache in the ResNet's Double arena.
    let cache: Slice

    /// One past the last parameter-arena element of the unit.
    var end: Int { max(conv.end, norm.end) }
}

/// One residual block: units in order (the last without ReLU, writing into `output`), an optional projection
/// shortcut, then output = ReLU(main + shortcut).
public struct ResidualBlock: Sendable {
    public let units: [ConvNorm]
    public let shortcut: ConvNorm?
    /// The block's output slice (B, C_out, H_out, W_out).
    let output: Slice
    /// Elements per sample of the input and the output.
    let inputSize: Int, outputSize: Int
    /// One past the last parameter-arena element of the block.
    let end: Int
}

/// A torchvision-style ResNet encoder (stem, residual stages, global average pool → D), every buffer of a training
/// step allocated at construction for batches of up to `maxBatch` samples.
///
/// Parameters are reserved in the order backward finishes them: blocks from last to first (in each block the
/// shortcut, then the units from last to first, each norm before its conv), then the stem. Initialisation as
/// torchvision: convs kaiming-normal with fan-out (std √(2/(O·k·k))), norm weights 1 and biases 0.
/// Forward caches every conv and norm output (the norms' backward needs their inputs; ReLU masks their outputs);
/// backward uses three buffers of the largest activation: the incoming gradient, the outgoing one and one scratch.
public final class ResNet {
    public let spec: ResNetSpec
    public let stem: StemKind
    public let maxBatch: Int
    public let stemConv: Conv2d
    public let stemNorm: Norm2d
    public let pool: MaxPool2d?
    public let blocks: [ResidualBlock]
    /// C·H·W of the input and of the final feature map, and the final map's plane size.
    public let inputSize: Int, featureSize: Int, featurePlane: Int

    let activations: Arena
    let caches: Buffer<Double>
    let poolIndices: Buffer<Int32>
    let scratch: Arena
    let dA: Arena, dB: Arena, dC: Arena
    let inputSlice: Slice, stemConvOut: Slice, stemNormOut: Slice, poolOut: Slice, embeddingSlice: Slice
    let stemCache: Slice

    /// Builds the encoder for (C, H, W) inputs, reserving its parameters in `registry` under `prefix`.
    public init(spec: ResNetSpec, stem requestedStem: StemKind, norm: NormKind, groups: Int, inputChannels: Int,
                height: Int, width: Int, maxBatch: Int, prefix: String, registry: inout ParameterRegistry) {
        self.spec = spec
        self.maxBatch = maxBatch
        let stem: StemKind = spec.cifarOnly ? .cifar : requestedStem
        self.stem = stem
        inputSize = inputChannels * height * width

        // Shapes in forward order.
        let stemKernel = stem == .imagenet ? 7 : 3, stemStride = stem == .imagenet ? 2 : 1
        let stemOutH = (height + 2 * (stemKernel / 2) - stemKernel) / stemStride + 1
        let stemOutW = (width + 2 * (stemKernel / 2) - stemKernel) / stemStride + 1
        precondition(stemOutH >= 1 && stemOutW >= 1, "ResNet: image \(height)×\(width) too small for the stem")
        var h = stemOutH, w = stemOutW
        if stem == .imagenet {
            precondition(h >= 2 && w >= 2, "ResNet: image \(height)×\(width) too small for the stem's max-pool "
                         + "(use --image-size or --stem cifar)")
            h = (h + 2 - 3) / 2 + 1; w = (w + 2 - 3) / 2 + 1
        }
        struct BlockShape { let name: String; let inC: Int; let width: Int; let outC: Int; let stride: Int
                            let h: Int; let w: Int }
        var shapes: [BlockShape] = []
        var channels = spec.stemWidth
        for (stage, (count, width)) in zip(spec.blocksPerStage, spec.widths).enumerated() {
            for i in 0..<count {
                let stride = (stage > 0 && i == 0) ? 2 : 1
                let outC = spec.outChannels(width: width)
                shapes.append(BlockShape(name: "\(prefix)layer\(stage + 1).\(i)", inC: channels, width: width,
                                         outC: outC, stride: stride, h: h, w: w))
                channels = outC
                if stride == 2 { h = (h + 2 - 3) / 2 + 1; w = (w + 2 - 3) / 2 + 1 }
            }
        }
        featureSize = channels * h * w
        featurePlane = h * w

        // Activation and cache plans, filled while the layers are reserved (backward-completion order).
        var acts = ArenaLayout(), cacheLayout = ArenaLayout()
        var largest = maxBatch * inputSize, scratchCount = 1
        func unit(_ block: String, _ k: Int, inC: Int, outC: Int, kernel: Int, stride: Int, h: Int, w: Int,
                  relu: Bool, output: Slice?, registry: inout ParameterRegistry) -> ConvNorm {
            let name = "\(block).conv\(k)"
            let padding = kernel / 2
            let outH = (h + 2 * padding - kernel) / stride + 1, outW = (w + 2 * padding - kernel) / stride + 1
            // Norm first: its backward finishes before its conv's.
            let n = Norm2d(kind: norm, groups: groups, channels: outC, height: outH, width: outW,
                           name: "\(block).bn\(k)", registry: &registry)
            let std = Float((2.0 / Double(outC * kernel * kernel)).squareRoot())
            let c = Conv2d(inChannels: inC, outChannels: outC, kernel: kernel, stride: stride, padding: padding,
                           bias: false, height: h, width: w, name: name, registry: &registry,
                           weightInit: .normal(std: std))
            let size = maxBatch * c.outputSize
            largest = max(largest, size)
            scratchCount = max(scratchCount, c.scratchCount)
            let convOut = acts.reserve(size, name: name)
            let normOut = output ?? acts.reserve(size, name: name + ".norm")
            let cache = cacheLayout.reserve(n.cacheCount(batch: maxBatch), name: name)
            return ConvNorm(conv: c, norm: n, relu: relu, convOut: convOut, normOut: normOut, cache: cache)
        }

        var reversedBlocks: [ResidualBlock] = []
        for s in shapes.reversed() {
            let outH = (s.h + 2 - 3) / s.stride + 1, outW = (s.w + 2 - 3) / s.stride + 1
            let output = acts.reserve(maxBatch * s.outC * outH * outW, name: s.name + ".out")
            var shortcut: ConvNorm?
            if s.stride != 1 || s.inC != s.outC {
                // torchvision names the projection downsample.0 (conv) and downsample.1 (norm).
                let n = Norm2d(kind: norm, groups: groups, channels: s.outC, height: outH, width: outW,
                               name: s.name + ".downsample.1", registry: &registry)
                let c = Conv2d(inChannels: s.inC, outChannels: s.outC, kernel: 1, stride: s.stride, padding: 0,
                               bias: false, height: s.h, width: s.w, name: s.name + ".downsample.0",
                               registry: &registry, weightInit: .normal(std: Float((2.0 / Double(s.outC)).squareRoot())))
                scratchCount = max(scratchCount, c.scratchCount)
                let size = maxBatch * c.outputSize
                shortcut = ConvNorm(conv: c, norm: n, relu: false,
                                    convOut: acts.reserve(size, name: s.name + ".downsample.0"),
                                    normOut: acts.reserve(size, name: s.name + ".downsample.1"),
                                    cache: cacheLayout.reserve(n.cacheCount(batch: maxBatch), name: s.name + ".ds"))
            }
            var units: [ConvNorm] = []
            switch spec.block {
            case .basic:
                units.append(unit(s.name, 2, inC: s.width, outC: s.outC, kernel: 3, stride: 1, h: outH,
                                  w: outW, relu: false, output: output, registry: &registry))
                units.append(unit(s.name, 1, inC: s.inC, outC: s.width, kernel: 3, stride: s.stride,
                                  h: s.h, w: s.w, relu: true, output: nil, registry: &registry))
            case .bottleneck:
                units.append(unit(s.name, 3, inC: s.width, outC: s.outC, kernel: 1, stride: 1, h: outH,
                                  w: outW, relu: false, output: output, registry: &registry))
                units.append(unit(s.name, 2, inC: s.width, outC: s.width, kernel: 3, stride: s.stride,
                                  h: s.h, w: s.w, relu: true, output: nil, registry: &registry))
                units.append(unit(s.name, 1, inC: s.inC, outC: s.width, kernel: 1, stride: 1, h: s.h,
                                  w: s.w, relu: true, output: nil, registry: &registry))
            }
            let end = (units.map(\.end) + [shortcut?.end ?? 0]).max()!
            reversedBlocks.append(ResidualBlock(units: Array(units.reversed()), shortcut: shortcut, output: output,
                                                inputSize: s.inC * s.h * s.w, outputSize: s.outC * outH * outW,
                                                end: end))
        }
        blocks = reversedBlocks.reversed()

        // The stem: norm, then conv (backward-completion order).
        stemNorm = Norm2d(kind: norm, groups: groups, channels: spec.stemWidth, height: stemOutH, width: stemOutW,
                          name: prefix + "bn1", registry: &registry)
        stemConv = Conv2d(inChannels: inputChannels, outChannels: spec.stemWidth, kernel: stemKernel,
                          stride: stemStride, padding: stemKernel / 2, bias: false, height: height, width: width,
                          name: prefix + "conv1", registry: &registry,
                          weightInit: .normal(std: Float((2.0 / Double(spec.stemWidth * stemKernel * stemKernel))
                                                            .squareRoot())))
        scratchCount = max(scratchCount, stemConv.scratchCount)
        largest = max(largest, maxBatch * stemConv.outputSize)
        inputSlice = acts.reserve(maxBatch * inputSize, name: "input")
        stemConvOut = acts.reserve(maxBatch * stemConv.outputSize, name: "conv1")
        stemNormOut = acts.reserve(maxBatch * stemConv.outputSize, name: "bn1")
        stemCache = cacheLayout.reserve(stemNorm.cacheCount(batch: maxBatch), name: "bn1")
        if stem == .imagenet {
            let p = MaxPool2d(channels: spec.stemWidth, height: stemOutH, width: stemOutW, kernel: 3, stride: 2,
                              padding: 1)
            pool = p
            poolOut = acts.reserve(maxBatch * p.outputSize, name: "maxpool")
            poolIndices = Buffer<Int32>(count: maxBatch * p.outputSize, repeating: 0)
        } else {
            pool = nil
            poolOut = stemNormOut
            poolIndices = Buffer<Int32>(count: 1, repeating: 0)
        }
        embeddingSlice = acts.reserve(maxBatch * channels, name: "embedding")
        activations = Arena(count: acts.total)
        caches = Buffer<Double>(count: max(1, cacheLayout.total), repeating: 0)
        scratch = Arena(count: scratchCount)
        dA = Arena(count: largest)
        dB = Arena(count: largest)
        dC = Arena(count: largest)
    }

    /// D, the embedding size.
    public var embedDim: Int { spec.embedDim }

    /// Forward multiply-adds per sample of every convolution.
    public var multiplyAddsPerSample: Int {
        var macs = stemConv.multiplyAddsPerSample
        for b in blocks {
            for u in b.units { macs += u.conv.multiplyAddsPerSample }
            if let s = b.shortcut { macs += s.conv.multiplyAddsPerSample }
        }
        return macs
    }

    /// Multiply-adds per sample `backward` performs: every convolution's weight and input gradient, except the
    /// stem convolution's input gradient (the image needs none).
    public var backwardMultiplyAddsPerSample: Int {
        var macs = stemConv.backwardMultiplyAddsPerSample(inputGradient: false)
        for b in blocks {
            for u in b.units { macs += u.conv.backwardMultiplyAddsPerSample(inputGradient: true) }
            if let s = b.shortcut { macs += s.conv.backwardMultiplyAddsPerSample(inputGradient: true) }
        }
        return macs
    }

    /// Multiply-adds per sample of a training step's forward and backward.
    public var trainingMultiplyAddsPerSample: Int { multiplyAddsPerSample + backwardMultiplyAddsPerSample }

    /// Bytes of the encoder's buffers by name: the cached activations (every conv and norm output, block outputs),
    /// the norms' Double caches, the max-pool argmaxes, the three backward buffers and the convolutions' scratch.
    public var arenaBytes: [(name: String, bytes: Int)] {
        [("encoder activations", activations.byteCount), ("encoder norm caches", caches.byteCount),
         ("encoder pool indices", poolIndices.byteCount),
         ("encoder backward buffers", dA.byteCount + dB.byteCount + dC.byteCount),
         ("encoder scratch", scratch.byteCount)]
    }

    /// The embeddings of the last forward: (batch, D).
    public var embeddings: UnsafeMutablePointer<Float> { activations.pointer(embeddingSlice) }

    // MARK: - Forward / backward

    /// Runs the encoder on `input` (batch, C, H, W) in `mode`, leaving `embeddings`; caches what backward needs.
    public func forward(input: UnsafePointer<Float>, batch: Int, mode: NetworkMode, params: Arena, buffers: Arena,
                        counters: Buffer<Int64>, reducer: StatisticsReducer) throws {
        precondition(batch > 0 && batch <= maxBatch, "ResNet.forward: batch \(batch) not in 1...\(maxBatch)")
        let x = activations.pointer(inputSlice)
        x.update(from: input, count: batch * inputSize)
        let a = activations.pointer(stemConvOut), n = activations.pointer(stemNormOut)
        stemConv.forward(input: x, output: a, batch: batch, params: params, scratch: scratch.base)
        try stemNorm.forward(input: a, output: n, batch: batch, mode: mode, relu: true, params: params,
                             buffers: buffers, counters: counters, cache: caches.pointer(stemCache), reducer: reducer)
        var current = UnsafePointer(n)
        if let pool {
            let p = activations.pointer(poolOut)
            pool.forward(input: n, output: p, indices: poolIndices.base, batch: batch)
            current = UnsafePointer(p)
        }
        for block in blocks {
            var unitInput = current
            for u in block.units {
                let c = activations.pointer(u.convOut), o = activations.pointer(u.normOut)
                u.conv.forward(input: unitInput, output: c, batch: batch, params: params, scratch: scratch.base)
                try u.norm.forward(input: c, output: o, batch: batch, mode: mode, relu: u.relu, params: params,
                                   buffers: buffers, counters: counters, cache: caches.pointer(u.cache),
                                   reducer: reducer)
                unitInput = UnsafePointer(o)
            }
            let y = activations.pointer(block.output), count = batch * block.outputSize
            var identity = current
            if let s = block.shortcut {
                let c = activations.pointer(s.convOut), o = activations.pointer(s.normOut)
                s.conv.forward(input: current, output: c, batch: batch, params: params, scratch: scratch.base)
                try s.norm.forward(input: c, output: o, batch: batch, mode: mode, relu: false, params: params,
                                   buffers: buffers, counters: counters, cache: caches.pointer(s.cache),
                                   reducer: reducer)
                identity = UnsafePointer(o)
            }
            for i in 0..<count { y[i] = max(y[i] + identity[i], 0) }
            current = UnsafePointer(y)
        }
        // Global average pool.
        let e = embeddings, C = featureSize / featurePlane, P = featurePlane
        for s in 0..<batch {
            for c in 0..<C {
                let plane = current + s * featureSize + c * P
                var sum: Float = 0
                for i in 0..<P { sum += plane[i] }
                e[s * C + c] = sum / Float(P)
            }
        }
    }

    /// Back-propagates ∂loss/∂embeddings (batch, D) through the encoder for the batch of the last (training-mode)
    /// forward, **accumulating** every parameter gradient; `onReady(k)` after each block and the stem says the
    /// gradient-arena prefix [0, k) is final.
    public func backward(dEmbeddings: UnsafePointer<Float>, batch: Int, params: Arena, grads: Arena,
                         reducer: StatisticsReducer, onReady: (Int) -> Void) throws {
        var dTop = dA.base, dNext = dB.base
        let dTmp = dC.base
        let C = featureSize / featurePlane, P = featurePlane, scale = 1 / Float(P)
        for s in 0..<batch {
            for c in 0..<C {
                let g = dEmbeddings[s * C + c] * scale
                (dTop + s * featureSize + c * P).update(repeating: g, count: P)
            }
        }
        let firstInput: UnsafePointer<Float> = UnsafePointer(activations.pointer(pool == nil ? stemNormOut : poolOut))
        for b in stride(from: blocks.count - 1, through: 0, by: -1) {
            let block = blocks[b]
            let x = b > 0 ? UnsafePointer(activations.pointer(blocks[b - 1].output)) : firstInput
            let y = activations.pointer(block.output), count = batch * block.outputSize
            maskReLUGradient(dTop, output: y, count: count)
            // Shortcut first: it needs the masked gradient, which the main path then overwrites.
            if let s = block.shortcut {
                try s.norm.backward(dOutput: dTop, input: activations.pointer(s.convOut),
                                    output: activations.pointer(s.normOut), relu: false, dInput: dTmp,
                                    accumulateInput: false, batch: batch, params: params, grads: grads,
                                    cache: caches.pointer(s.cache), reducer: reducer)
                s.conv.backward(dOutput: dTmp, input: x, dInput: dNext, batch: batch, params: params, grads: grads,
                                scratch: scratch.base)
            } else {
                dNext.update(from: dTop, count: batch * block.inputSize)
            }
            for j in stride(from: block.units.count - 1, through: 0, by: -1) {
                let u = block.units[j]
                try u.norm.backward(dOutput: dTop, input: activations.pointer(u.convOut),
                                    output: activations.pointer(u.normOut), relu: u.relu, dInput: dTmp,
                                    accumulateInput: false, batch: batch, params: params, grads: grads,
                                    cache: caches.pointer(u.cache), reducer: reducer)
                let unitInput = j > 0 ? UnsafePointer(activations.pointer(block.units[j - 1].normOut)) : x
                u.conv.backward(dOutput: dTmp, input: unitInput, dInput: j > 0 ? dTop : dNext, batch: batch,
                                params: params, grads: grads, scratch: scratch.base, accumulateInput: j == 0)
            }
            onReady(block.end)
            swap(&dTop, &dNext)
        }
        // Stem: (max-pool) → norm with ReLU → conv (no input gradient).
        if let pool {
            pool.backward(dOutput: dTop, indices: poolIndices.base, dInput: dNext, batch: batch)
            swap(&dTop, &dNext)
        }
        try stemNorm.backward(dOutput: dTop, input: activations.pointer(stemConvOut),
                              output: activations.pointer(stemNormOut), relu: true, dInput: dTmp,
                              accumulateInput: false, batch: batch, params: params, grads: grads,
                              cache: caches.pointer(stemCache), reducer: reducer)
        stemConv.backward(dOutput: dTmp, input: activations.pointer(inputSlice), dInput: nil, batch: batch,
                          params: params, grads: grads, scratch: scratch.base)
        onReady(max(stemConv.end, stemNorm.end))
    }
}
