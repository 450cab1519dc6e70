import Tensor

// Legend: B = batch (≤ maxBatch), C×H×W = image, P = patch size, N = (H/P)·(W/P) patches, T = 1 + N tokens,
// D = embedDim, Hh = heads, F = MLP hidden size (⌊D·mlpRatio⌋). Tokens are rows of (B·T, D) matrices, row-major.
// Names follow timm's `VisionTransformer` state dict under the prefix `encoder.`.

/// The shape of a Vision Transformer (`--patch-size`, `--embed-dim`, `--depth`, `--heads`, `--mlp-ratio`).
public struct ViTSpec: Sendable, Equatable {
    public var patchSize: Int
    public var embedDim: Int
    public var depth: Int
    public var heads: Int
    public var mlpRatio: Double

    public init(patchSize: Int, embedDim: Int, depth: Int, heads: Int, mlpRatio: Double) {
        self.patchSize = patchSize; self.embedDim = embedDim; self.depth = depth; self.heads = heads
        self.mlpRatio = mlpRatio
    }

    /// F = ⌊D·mlpRatio⌋, timm's `int(dim * mlp_ratio)`.
    public var mlpHidden: Int { Int(Double(embedDim) * mlpRatio) }

    /// The peer's `ViTEncoder` for 28-pixel images: patch 4, D 64, depth 6, 4 heads, MLP ratio 2.
    public static let vitTiny = ViTSpec(patchSize: 4, embedDim: 64, depth: 6, heads: 4, mlpRatio: 2)
    /// timm `vit_tiny_patch16_224`.
    public static let vitTinyPatch16 = ViTSpec(patchSize: 16, embedDim: 192, depth: 12, heads: 3, mlpRatio: 4)
    /// timm `vit_small_patch16_224`.
    public static let vitSmallPatch16 = ViTSpec(patchSize: 16, embedDim: 384, depth: 12, heads: 6, mlpRatio: 4)
    /// timm `vit_base_patch16_224`.
    public static let vitBasePatch16 = ViTSpec(patchSize: 16, embedDim: 768, depth: 12, heads: 12, mlpRatio: 4)

    /// Why this spec cannot run on C×H×W images, or nil.
    public func problem(height: Int, width: Int) -> String? {
        if patchSize < 1 || embedDim < 1 || depth < 1 || heads < 1 || !(mlpRatio > 0) || mlpHidden < 1 {
            return "ViT sizes must be positive (patch \(patchSize), dim \(embedDim), depth \(depth), heads \(heads), "
                + "MLP ratio \(mlpRatio))"
        }
        if embedDim % heads != 0 { return "--embed-dim \(embedDim) is not a multiple of --heads \(heads)" }
        if height % patchSize != 0 || width % patchSize != 0 {
            return "the \(height)×\(width) images are not a whole number of \(patchSize)-pixel patches "
                + "(use --image-size or --patch-size)"
        }
        return nil
    }
}

/// One pre-norm transformer block, timm's `Block`: x ← x + proj(attn(qkv(norm1(x)))); x ← x + fc2(GELU(fc1(norm2(x)))),
/// with the slices of its activations in the encoder's arena.
public struct TransformerBlock: Sendable {
    public let norm1: LayerNorm
    public let qkv: Linear
    public let attention: SelfAttention
    public let proj: Linear
    public let norm2: LayerNorm
    public let fc1: Linear
    public let fc2: Linear
    /// Activation slices: norm1's output (B·T, D), qkv (B·T, 3D), P (B, Hh, T, T), attention output (B·T, D),
    /// the stream after attention (B·T, D), norm2's output (B·T, D), fc1's output (B·T, F), GELU's (B·T, F) and
    /// the block's output (B·T, D); the two norms' (μ, r) caches.
    let normed1: Slice, qkvOut: Slice, probabilities: Slice, attended: Slice, middle: Slice, normed2: Slice
    let hidden: Slice, activated: Slice, output: Slice, cache1: Slice, cache2: Slice

    /// One past the last parameter-arena element of the block.
    public var end: Int { max(norm1.end, qkv.end, proj.end, norm2.end, fc1.end, fc2.end) }
    /// Forward multiply-adds per sample.
    public var multiplyAddsPerSample: Int {
        attention.tokens * (qkv.multiplyAddsPerSample + proj.multiplyAddsPerSample + fc1.multiplyAddsPerSample
                            + fc2.multiplyAddsPerSample) + attention.multiplyAddsPerSample
    }
    /// Backward multiply-adds per sample: every Linear's weight and input gradient and the attention's backward.
    public var backwardMultiplyAddsPerSample: Int {
        attention.tokens * (qkv.backwardMultiplyAddsPerSample(inputGradient: true)
                            + proj.backwardMultiplyAddsPerSample(inputGradient: true)
                            + fc1.backwardMultiplyAddsPerSample(inputGradient: true)
                            + fc2.backwardMultiplyAddsPerSample(inputGradient: true))
            + attention.backwardMultiplyAddsPerSample
    }
}

/// timm's `VisionTransformer` (class token, learned absolute position embedding, pre-norm blocks, final LayerNorm,
/// `global_pool="token"`) as an encoder: the embedding is the class token after the final norm (timm's
/// `forward_head(…, pre_logits=True)`). LayerNorm eps 1e-6, exact GELU, attention scale 1/√(D/Hh), no dropout.
///
/// Parameters are reserved in the order backward finishes them: `norm`, then the blocks from last to first (each
/// `mlp.fc2`, `mlp.fc1`, `norm2`, `attn.proj`, `attn.qkv`, `norm1`), then `pos_embed`, `cls_token` and
/// `patch_embed.proj`. Initialisation as timm's default (`init_weights` mode ""): Linear weights truncated normal
/// std 0.02 and biases 0, `pos_embed` truncated normal 0.02, `cls_token` normal std 1e-6, LayerNorms 1 and 0, the
/// patch convolution PyTorch's default. Biases, norms, `pos_embed` and `cls_token` are not weight-decayed (timm's
/// `no_weight_decay` plus its 1-d rule). Forward caches every block's activations for batches of up to `maxBatch`;
/// backward runs the residual stream's gradient through one (B·T, D) buffer, with three scratch buffers.
public final class VisionTransformer {
    public let spec: ViTSpec
    public let maxBatch: Int
    public let patchEmbedding: PatchEmbedding
    /// (1, 1, D).
    public let classToken: Slice
    /// (1, T, D).
    public let positionEmbedding: Slice
    public let blocks: [TransformerBlock]
    public let norm: LayerNorm
    /// T = 1 + N.
    public let tokens: Int

    let activations: Arena
    let patchesSlice: Slice, patchTokens: Slice, streamStart: Slice, classTokens: Slice, embeddingSlice: Slice
    let normCache: Slice
    /// Backward buffers: the stream's gradient (B·T, D), a (B·T, D) scratch, dQKV (B·T, 3D), dHidden (B·T, F),
    /// the attention's scratch (forward and backward) and the class tokens' gradient (B, D).
    let dStream: Arena, dSmall: Arena, dQKV: Arena, dHidden: Arena, attentionScratch: Arena, dClass: Arena

    /// Builds the encoder for (C, H, W) inputs, reserving its parameters in `registry` under `prefix`.
    public init(spec: ViTSpec, inputChannels: Int, height: Int, width: Int, maxBatch: Int, prefix: String,
                registry: inout ParameterRegistry) {
        if let problem = spec.problem(height: height, width: width) { preconditionFailure("ViT: " + problem) }
        self.spec = spec
        self.maxBatch = maxBatch
        let D = spec.embedDim, F = spec.mlpHidden
        let N = (height / spec.patchSize) * (width / spec.patchSize), T = 1 + N
        tokens = T
        let rows = maxBatch * T
        var acts = ArenaLayout()

        norm = LayerNorm(features: D, name: prefix + "norm", registry: &registry)
        var reversed: [TransformerBlock] = []
        for i in stride(from: spec.depth - 1, through: 0, by: -1) {
            let name = prefix + "blocks.\(i)."
            let trunc = InitRule.truncatedNormal(std: 0.02), zero = InitRule.constant(0)
            let fc2 = Linear(inFeatures: F, outFeatures: D, name: name + "mlp.fc2", registry: &registry,
                             weightInit: trunc, biasInit: zero, biasDecay: false)
            let fc1 = Linear(inFeatures: D, outFeatures: F, name: name + "mlp.fc1", registry: &registry,
                             weightInit: trunc, biasInit: zero, biasDecay: false)
            let norm2 = LayerNorm(features: D, name: name + "norm2", registry: &registry)
            let proj = Linear(inFeatures: D, outFeatures: D, name: name + "attn.proj", registry: &registry,
                              weightInit: trunc, biasInit: zero, biasDecay: false)
            let qkv = Linear(inFeatures: D, outFeatures: 3 * D, name: name + "attn.qkv", registry: &registry,
                             weightInit: trunc, biasInit: zero, biasDecay: false)
            let norm1 = LayerNorm(features: D, name: name + "norm1", registry: &registry)
            let attention = SelfAttention(tokens: T, embedDim: D, heads: spec.heads)
            reversed.append(TransformerBlock(
                norm1: norm1, qkv: qkv, attention: attention, proj: proj, norm2: norm2, fc1: fc1, fc2: fc2,
                normed1: acts.reserve(rows * D, name: name + "norm1"),
                qkvOut: acts.reserve(rows * 3 * D, name: name + "qkv"),
                probabilities: acts.reserve(maxBatch * attention.probabilitiesPerSample, name: name + "attn"),
                attended: acts.reserve(rows * D, name: name + "attended"),
                middle: acts.reserve(rows * D, name: name + "middle"),
                normed2: acts.reserve(rows * D, name: name + "norm2"),
                hidden: acts.reserve(rows * F, name: name + "fc1"),
                activated: acts.reserve(rows * F, name: name + "gelu"),
                output: acts.reserve(rows * D, name: name + "out"),
                cache1: acts.reserve(norm1.cacheCount(rows: rows), name: name + "norm1.cache"),
                cache2: acts.reserve(norm2.cacheCount(rows: rows), name: name + "norm2.cache")))
        }
        blocks = reversed.reversed()
        positionEmbedding = registry.parameter(prefix + "pos_embed", shape: [1, T, D],
                                               initRule: .truncatedNormal(std: 0.02), decay: false)
        classToken = registry.parameter(prefix + "cls_token", shape: [1, 1, D], initRule: .normal(std: 1e-6),
                                        decay: false)
        patchEmbedding = PatchEmbedding(inputChannels: inputChannels, height: height, width: width,
                                        patchSize: spec.patchSize, embedDim: D, name: prefix + "patch_embed.proj",
                                        registry: &registry)
        patchesSlice = acts.reserve(maxBatch * N * patchEmbedding.fanIn, name: "patches")
        patchTokens = acts.reserve(maxBatch * N * D, name: "patch tokens")
        streamStart = acts.reserve(rows * D, name: "tokens")
        classTokens = acts.reserve(maxBatch * D, name: "class tokens")
        embeddingSlice = acts.reserve(maxBatch * D, name: "embedding")
        normCache = acts.reserve(norm.cacheCount(rows: maxBatch), name: "norm.cache")
        activations = Arena(count: acts.total)
        dStream = Arena(count: rows * D)
        dSmall = Arena(count: rows * D)
        dQKV = Arena(count: rows * 3 * D)
        dHidden = Arena(count: rows * F)
        attentionScratch = Arena(count: SelfAttention(tokens: T, embedDim: D, heads: spec.heads).scratchCount)
        dClass = Arena(count: maxBatch * D)
    }

    /// D, the embedding size.
    public var embedDim: Int { spec.embedDim }
    /// Forward multiply-adds per sample: the patch embedding, every block's Linears and attention products.
    public var multiplyAddsPerSample: Int {
        blocks.reduce(patchEmbedding.multiplyAddsPerSample) { $0 + $1.multiplyAddsPerSample }
    }
    /// Backward multiply-adds per sample: the blocks' and the patch embedding's weight gradient (no image gradient).
    public var backwardMultiplyAddsPerSample: Int {
        blocks.reduce(patchEmbedding.backwardMultiplyAddsPerSample) { $0 + $1.backwardMultiplyAddsPerSample }
    }
    /// Multiply-adds per sample of a training step's forward and backward.
    public var trainingMultiplyAddsPerSample: Int { multiplyAddsPerSample + backwardMultiplyAddsPerSample }
    /// Bytes of the encoder's buffers by name: the cached activations (patches, every block's outputs, attention
    /// probabilities, norm caches), the backward buffers (stream, scratch, dQKV, dHidden, class tokens) and the
    /// attention's (T, T) scratch.
    public var arenaBytes: [(name: String, bytes: Int)] {
        [("encoder activations", activations.byteCount),
         ("encoder backward buffers", dStream.byteCount + dSmall.byteCount + dQKV.byteCount + dHidden.byteCount
            + dClass.byteCount),
         ("encoder scratch", attentionScratch.byteCount)]
    }

    /// The embeddings of the last forward: (batch, D).
    public var embeddings: UnsafeMutablePointer<Float> { activations.pointer(embeddingSlice) }

    // MARK: - Forward / backward

    /// Runs the encoder on `input` (batch, C, H, W), leaving `embeddings`; caches what backward needs. The ViT has
    /// no batch statistics, so training and evaluation modes compute the same thing (there is no dropout).
    public func forward(input: UnsafePointer<Float>, batch: Int, params: Arena) {
        precondition(batch > 0 && batch <= maxBatch, "VisionTransformer.forward: batch \(batch) not in 1...\(maxBatch)")
        let D = spec.embedDim, T = tokens, rows = batch * T
        let patchOut = activations.pointer(patchTokens)
        patchEmbedding.forward(input: input, patches: activations.pointer(patchesSlice), output: patchOut,
                               batch: batch, params: params)
        // x = [cls; patch tokens] + pos_embed.
        let x = activations.pointer(streamStart)
        let cls = params.pointer(classToken), pos = params.pointer(positionEmbedding)
        for b in 0..<batch {
            let image = x + b * T * D
            for i in 0..<D { image[i] = cls[i] + pos[i] }
            let patches = patchOut + b * (T - 1) * D
            for i in 0..<(T - 1) * D { image[D + i] = patches[i] + pos[D + i] }
        }
        var current = UnsafePointer(x)
        for block in blocks {
            let n1 = activations.pointer(block.normed1), qkv = activations.pointer(block.qkvOut)
            let attended = activations.pointer(block.attended), middle = activations.pointer(block.middle)
            let n2 = activations.pointer(block.normed2), hidden = activations.pointer(block.hidden)
            let activated = activations.pointer(block.activated), out = activations.pointer(block.output)
            block.norm1.forward(input: current, output: n1, rows: rows, params: params,
                                cache: activations.pointer(block.cache1))
            block.qkv.forward(input: n1, output: qkv, batch: rows, params: params)
            block.attention.forward(qkv: qkv, probabilities: activations.pointer(block.probabilities),
                                    output: attended, batch: batch, scratch: attentionScratch.base)
            block.proj.forward(input: attended, output: middle, batch: rows, params: params)
            Float.axpy(count: rows * D, alpha: 1, x: current, y: middle)
            block.norm2.forward(input: middle, output: n2, rows: rows, params: params,
                                cache: activations.pointer(block.cache2))
            block.fc1.forwardGELU(input: n2, output: hidden, activated: activated, batch: rows, params: params)
            block.fc2.forward(input: activated, output: out, batch: rows, params: params)
            Float.axpy(count: rows * D, alpha: 1, x: middle, y: out)
            current = UnsafePointer(out)
        }
        // Only the class token reaches the embedding, so only its rows go through the final norm.
        let classRows = activations.pointer(classTokens)
        for b in 0..<batch { (classRows + b * D).update(from: current + b * T * D, count: D) }
        norm.forward(input: classRows, output: embeddings, rows: batch, params: params,
                     cache: activations.pointer(normCache))
    }

    /// Back-propagates ∂loss/∂embeddings (batch, D) through the encoder for the batch of the last forward,
    /// **accumulating** every parameter gradient; `onReady(k)` after the final norm, each block and the embedding
    /// says the gradient-arena prefix [0, k) is final.
    public func backward(dEmbeddings: UnsafePointer<Float>, batch: Int, params: Arena, grads: Arena,
                         onReady: (Int) -> Void) {
        let D = spec.embedDim, T = tokens, rows = batch * T
        let dx = dStream.base, dSmallBase = dSmall.base
        norm.backward(dOutput: dEmbeddings, input: activations.pointer(classTokens), dInput: dClass.base,
                      accumulateInput: false, rows: batch, params: params, grads: grads,
                      cache: activations.pointer(normCache))
        onReady(norm.end)
        dx.update(repeating: 0, count: rows * D)
        for b in 0..<batch { (dx + b * T * D).update(from: dClass.base + b * D, count: D) }
        for j in stride(from: blocks.count - 1, through: 0, by: -1) {
            let block = blocks[j]
            let input = UnsafePointer(j > 0 ? activations.pointer(blocks[j - 1].output)
                                             : activations.pointer(streamStart))
            let hidden = activations.pointer(block.hidden), dH = dHidden.base
            // MLP branch: dx is ∂/∂ the block output, which is also ∂/∂ fc2's output.
            block.fc2.backward(dOutput: dx, input: activations.pointer(block.activated), dInput: dH, batch: rows,
                               params: params, grads: grads)
            block.fc1.backwardThroughGELU(dOutput: dH, output: hidden, input: activations.pointer(block.normed2),
                                          dInput: dSmallBase, batch: rows, params: params, grads: grads)
            block.norm2.backward(dOutput: dSmallBase, input: activations.pointer(block.middle), dInput: dx,
                                 accumulateInput: true, rows: rows, params: params, grads: grads,
                                 cache: activations.pointer(block.cache2))
            // Attention branch: dx is now ∂/∂ the stream after attention.
            block.proj.backward(dOutput: dx, input: activations.pointer(block.attended), dInput: dSmallBase,
                                batch: rows, params: params, grads: grads)
            block.attention.backward(dOutput: dSmallBase, qkv: activations.pointer(block.qkvOut),
                                     probabilities: activations.pointer(block.probabilities), dQKV: dQKV.base,
                                     batch: batch, scratch: attentionScratch.base)
            block.qkv.backward(dOutput: dQKV.base, input: activations.pointer(block.normed1), dInput: dSmallBase,
                               batch: rows, params: params, grads: grads)
            block.norm1.backward(dOutput: dSmallBase, input: input, dInput: dx, accumulateInput: true, rows: rows,
                                 params: params, grads: grads, cache: activations.pointer(block.cache1))
            onReady(block.end)
        }
        // x = [cls; tokens] + pos: pos gets Σ_b dx, cls Σ_b dx[b, 0], the patch tokens dx[b, 1...].
        let dPos = grads.pointer(positionEmbedding), dCls = grads.pointer(classToken)
        let dPatch = activations.pointer(patchTokens)
        for b in 0..<batch {
            let g = dx + b * T * D
            Float.axpy(count: T * D, alpha: 1, x: g, y: dPos)
            Float.axpy(count: D, alpha: 1, x: g, y: dCls)
            (dPatch + b * (T - 1) * D).update(from: g + D, count: (T - 1) * D)
        }
        patchEmbedding.backward(dOutput: dPatch, patches: activations.pointer(patchesSlice), batch: batch,
                                grads: grads)
        onReady(max(patchEmbedding.end, positionEmbedding.offset + positionEmbedding.count,
                    classToken.offset + classToken.count))
    }
}
