import Tensor

// Legend: B = batch (≤ maxBatch), D = embedDim, K = classes.

/// The concrete encoder of a network (a switch, no existential in the step).
public enum EncoderBody {
    case sequential(SequentialEncoder)
    case resnet(ResNet)
    case vit(VisionTransformer)
}

/// An encoder plus a linear head D → K, with one parameter arena, one gradient arena, the buffer arena (BatchNorm
/// running statistics) and the Int64 counters, all described by one `ParameterRegistry`.
///
/// Parameter arena layout: parameters are reserved in the order backward finishes them — the head first, then the
/// encoder's layers from last to first — every slice 64-byte aligned. So after each layer's backward the gradient
/// arena prefix [0, k) is final, which `backward(…onReady:)` reports for a bucketed, overlapped all-reduce. Names
/// follow the PyTorch state dict of an encoder module plus a head (`encoder.<name>`, `head.weight`, `head.bias`),
/// as in `peer/torch_peer.py`.
///
/// Initialisation: each parameter by its registry rule (PyTorch defaults for Linear and the `mlp`/`cnn` convs,
/// torchvision's for ResNets), drawn from `CounterRNG(seed:)`, stream `.initialisation`, index = element offset
/// within the parameter, substream = parameter number = position in the registry. Identical on every rank.
///
/// `mode` selects training (batch statistics) or evaluation (running statistics) behaviour; `reducer` sums the
/// BatchNorm statistics over all ranks (identity by default, for one rank).
public final class Network {
    public let config: NetworkConfig
    public let maxBatch: Int
    public let registry: ParameterRegistry

    /// Parameters, in the layout described above.
    public let params: Arena
    /// Gradients, same layout as `params`. `backward` accumulates; call `zeroGradients()` between steps.
    public let grads: Arena
    /// Non-trainable Float tensors (BatchNorm running statistics), laid out by `registry.bufferLayout`.
    public let buffers: Arena
    /// Int64 counters (`num_batches_tracked`), indexed as `registry.counters`.
    public let counters: Buffer<Int64>
    /// Every parameter slice (named), in layout order.
    public let parameters: [Slice]

    public let body: EncoderBody
    public let head: Linear
    /// Training or evaluation behaviour of the next `forward`.
    public var mode: NetworkMode = .train
    /// Sums BatchNorm statistics over the ranks.
    public var reducer: StatisticsReducer = .identity

    @usableFromInline let headBuffers: Arena
    @usableFromInline let logitSlice: Slice
    @usableFromInline let dEmbeddingSlice: Slice
    /// The batch of the last `forward`.
    public private(set) var batch: Int = 0

    /// Builds the network for `config`, allocates every buffer for `maxBatch`, and initialises it from `seed`.
    public init(config: NetworkConfig, maxBatch: Int, seed: UInt64) {
        precondition(maxBatch > 0, "Network: maxBatch must be > 0, got \(maxBatch)")
        self.config = config
        self.maxBatch = maxBatch
        var registry = ParameterRegistry()
        if case .vit = config.encoder {
            // timm's head: truncated normal 0.02, zero bias (not decayed).
            head = Linear(inFeatures: config.embedDim, outFeatures: config.classes, name: "head", registry: &registry,
                          weightInit: .truncatedNormal(std: 0.02), biasInit: .constant(0), biasDecay: false)
        } else {
            head = Linear(inFeatures: config.embedDim, outFeatures: config.classes, name: "head", registry: &registry)
        }
        switch config.encoder {
        case .sequential(let convWidths, let hiddenWidths, let embedDim):
            body = .sequential(SequentialEncoder(
                inputChannels: config.inputChannels, height: config.height, width: config.width,
                convWidths: convWidths, hiddenWidths: hiddenWidths, embedDim: embedDim, maxBatch: maxBatch,
                prefix: "encoder.", registry: &registry))
        case .resnet(let spec, let stem, let norm, let groups):
            body = .resnet(ResNet(spec: spec, stem: stem, norm: norm, groups: groups,
                                  inputChannels: config.inputChannels, height: config.height, width: config.width,
                                  maxBatch: maxBatch, prefix: "encoder.", registry: &registry))
        case .vit(let spec):
            body = .vit(VisionTransformer(spec: spec, inputChannels: config.inputChannels, height: config.height,
                                          width: config.width, maxBatch: maxBatch, prefix: "encoder.",
                                          registry: &registry))
        }
        self.registry = registry
        parameters = registry.parameters.map(\.slice)
        params = Arena(count: registry.layout.total)
        grads = Arena(count: registry.layout.total)
        buffers = Arena(count: registry.bufferLayout.total)
        counters = Buffer<Int64>(count: registry.counters.count, repeating: 0)
        var layout = ArenaLayout()
        logitSlice = layout.reserve(maxBatch * config.classes, name: "logits")
        dEmbeddingSlice = layout.reserve(maxBatch * config.embedDim, name: "dEmbedding")
        headBuffers = Arena(count: layout.total)
        initialise(seed: seed)
    }

    // MARK: - Sizes

    /// Number of trainable scalars (excluding the alignment padding of the arena).
    public var parameterCount: Int { registry.parameterCount }

    /// Forward multiply-adds per sample of every conv and linear layer (head included), the patch embedding and a
    /// ViT's attention products (Q Kᵀ and P V). Norms, activations, softmax, pooling and bias additions are not
    /// counted.
    public var forwardMultiplyAddsPerSample: Int {
        switch body {
        case .sequential(let e): return head.multiplyAddsPerSample + e.multiplyAddsPerSample
        case .resnet(let e): return head.multiplyAddsPerSample + e.multiplyAddsPerSample
        case .vit(let e): return head.multiplyAddsPerSample + e.multiplyAddsPerSample
        }
    }

    /// Multiply-adds per sample that one training `forward` + `backward` actually performs (same products as
    /// `forwardMultiplyAddsPerSample`): forward, every weight gradient, and the input gradients that are computed —
    /// the head's always (the embedding's gradient), the encoder's first layer's never (the image needs none).
    /// So it is 3 × forward minus the first layer's forward multiply-adds.
    public var trainingMultiplyAddsPerSample: Int {
        let headMACs = head.multiplyAddsPerSample + head.backwardMultiplyAddsPerSample(inputGradient: true)
        switch body {
        case .sequential(let e): return headMACs + e.trainingMultiplyAddsPerSample
        case .resnet(let e): return headMACs + e.trainingMultiplyAddsPerSample
        case .vit(let e): return headMACs + e.trainingMultiplyAddsPerSample
        }
    }

    /// Forward FLOPs per sample: 2 × `forwardMultiplyAddsPerSample` (one multiply-add = 2 FLOPs).
    public var flopsPerSample: Int { 2 * forwardMultiplyAddsPerSample }

    /// Training FLOPs per sample (forward + backward, as performed): 2 × `trainingMultiplyAddsPerSample`.
    public var trainingFlopsPerSample: Int { 2 * trainingMultiplyAddsPerSample }

    /// Bytes of the network's buffers by name: parameters, gradients, BatchNorm buffers and counters, the head's
    /// logits and embedding gradient, then the encoder's (`arenaBytes` of its body).
    public var arenaBytes: [(name: String, bytes: Int)] {
        var out: [(name: String, bytes: Int)] = [
            ("parameters", params.byteCount), ("gradients", grads.byteCount),
            ("buffers (norm statistics, counters)", buffers.byteCount + counters.byteCount),
            ("head logits and dEmbedding", headBuffers.byteCount)]
        switch body {
        case .sequential(let e): out += e.arenaBytes
        case .resnet(let e): out += e.arenaBytes
        case .vit(let e): out += e.arenaBytes
        }
        return out
    }

    /// Re-draws every parameter from `seed` and resets buffers and counters (see the type's doc comment).
    public func initialise(seed: UInt64) {
        registry.initialise(params: params, buffers: buffers, counters: counters, seed: seed)
    }

    /// Sets every gradient to zero.
    public func zeroGradients() { grads.zero() }

    // MARK: - Outputs

    /// The embeddings of the last forward: (batch, D), row-major.
    public var embeddings: UnsafeMutablePointer<Float> {
        switch body {
        case .sequential(let e): return e.embeddings
        case .resnet(let e): return e.embeddings
        case .vit(let e): return e.embeddings
        }
    }
    /// The logits of the last forward: (batch, K), row-major.
    public var logits: UnsafeMutablePointer<Float> { headBuffers.pointer(logitSlice) }

    // MARK: - Forward / backward

    /// Runs encoder and head on `input` (batch, C, H, W) in the current `mode`, leaving `embeddings` and `logits`;
    /// caches what backward needs. Throws only when the reducer fails (an MPI error). Allocation-free.
    public func forward(input: UnsafePointer<Float>, batch: Int) throws {
        precondition(batch > 0 && batch <= maxBatch, "forward: batch \(batch) not in 1...\(maxBatch)")
        self.batch = batch
        switch body {
        case .sequential(let e): e.forward(input: input, batch: batch, params: params)
        case .resnet(let e):
            try e.forward(input: input, batch: batch, mode: mode, params: params, buffers: buffers,
                          counters: counters, reducer: reducer)
        case .vit(let e): e.forward(input: input, batch: batch, params: params)
        }
        head.forward(input: embeddings, output: logits, batch: batch, params: params)
    }

    /// Back-propagates through head and encoder for the batch of the last (training-mode) `forward`,
    /// **accumulating** every parameter gradient into `grads`.
    ///
    /// dEmbeddings: (batch, D), ∂loss/∂embeddings from the embedding loss; dLogits: (batch, K), ∂loss/∂logits
    /// from the head's loss. The embedding's total gradient is dEmbeddings + dLogits·W_head. After each
    /// layer (or block), `onReady(k)` says the gradient arena prefix [0, k) is final (k increasing; the last call,
    /// after the first layer, has k = grads.count). Allocation-free.
    public func backward(dEmbeddings: UnsafePointer<Float>, dLogits: UnsafePointer<Float>, batch: Int,
                         onReady: (Int) -> Void) throws {
        precondition(batch == self.batch, "backward: batch \(batch) differs from forward's \(self.batch)")
        precondition(mode == .train, "backward needs a training-mode forward")
        let dE = headBuffers.pointer(dEmbeddingSlice)
        dE.update(from: dEmbeddings, count: batch * config.embedDim)
        head.backward(dOutput: dLogits, input: embeddings, dInput: dE, batch: batch, params: params, grads: grads,
                      accumulateInput: true)
        onReady(head.end)
        switch body {
        case .sequential(let e):
            e.backward(dEmbeddings: dE, batch: batch, params: params, grads: grads, onReady: onReady)
        case .resnet(let e):
            try e.backward(dEmbeddings: dE, batch: batch, params: params, grads: grads, reducer: reducer,
                           onReady: onReady)
        case .vit(let e):
            e.backward(dEmbeddings: dE, batch: batch, params: params, grads: grads, onReady: onReady)
        }
    }
}
