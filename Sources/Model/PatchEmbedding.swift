import Tensor

// Legend: B = batch, C = input channels, H×W = image, P = patch size, Gh×Gw = (H/P)×(W/P) grid, N = Gh·Gw
// patches, K = C·P·P, D = embedDim. NCHW input, row-major.

/// timm's `PatchEmbed`: `proj` = Conv2d(C, D, kernel P, stride P) with bias, then `flatten(2).transpose(1, 2)`,
/// computed as one sgemm over the whole batch: tokens = patches·Wᵀ + b.
///
/// patches[b·N + n, c·P² + ky·P + kx] = x[b, c, gy·P + ky, gx·P + kx] with n = gy·Gw + gx (row-major grid);
/// W: (D, C, P, P) = (D, K); tokens: (B·N, D). Rows and columns beyond Gh·P, Gw·P are dropped, as the convolution
/// does. Initialisation as PyTorch's Conv2d (timm leaves it): W, b ~ U(−1/√K, 1/√K); the bias is not decayed.
public struct PatchEmbedding: Sendable {
    public let inputChannels: Int
    public let height: Int
    public let width: Int
    public let patchSize: Int
    public let embedDim: Int
    /// (D, C, P, P).
    public let weight: Slice
    /// (D).
    public let bias: Slice

    /// Reserves `name.weight`, then `name.bias`, in `registry`.
    public init(inputChannels: Int, height: Int, width: Int, patchSize: Int, embedDim: Int, name: String,
                registry: inout ParameterRegistry) {
        precondition(inputChannels > 0 && patchSize > 0 && height >= patchSize && width >= patchSize && embedDim > 0,
                     "PatchEmbedding \(name): image \(inputChannels)×\(height)×\(width), patch \(patchSize)")
        self.inputChannels = inputChannels
        self.height = height
        self.width = width
        self.patchSize = patchSize
        self.embedDim = embedDim
        let bound = InitRule.uniform(bound: 1 / Float(Double(inputChannels * patchSize * patchSize).squareRoot()))
        weight = registry.parameter(name + ".weight", shape: [embedDim, inputChannels, patchSize, patchSize],
                                    initRule: bound)
        bias = registry.parameter(name + ".bias", shape: [embedDim], initRule: bound, decay: false)
    }

    /// Gh, the grid's rows.
    public var gridHeight: Int { height / patchSize }
    /// Gw, the grid's columns.
    public var gridWidth: Int { width / patchSize }
    /// N = Gh·Gw.
    public var patchCount: Int { gridHeight * gridWidth }
    /// K = C·P².
    public var fanIn: Int { inputChannels * patchSize * patchSize }
    /// C·H·W.
    public var inputSize: Int { inputChannels * height * width }
    /// One past the last arena element this layer owns.
    public var end: Int { max(weight.offset + weight.count, bias.offset + bias.count) }
    /// Forward multiply-adds per sample: N·K·D.
    public var multiplyAddsPerSample: Int { patchCount * fanIn * embedDim }
    /// Backward multiply-adds per sample: N·K·D for dW only (the image gets no gradient).
    public var backwardMultiplyAddsPerSample: Int { multiplyAddsPerSample }

    // MARK: - Forward / backward

    /// Rearranges input (B, C, H, W) into patches (B·N, K), every element written.
    @inlinable
    public func extractPatches(input: UnsafePointer<Float>, patches: UnsafeMutablePointer<Float>, batch: Int) {
        let P = patchSize, Gw = gridWidth, K = fanIn
        for b in 0..<batch {
            let image = input + b * inputSize
            for gy in 0..<gridHeight {
                for gx in 0..<Gw {
                    let row = patches + (b * patchCount + gy * Gw + gx) * K
                    for c in 0..<inputChannels {
                        for ky in 0..<P {
                            let src = image + (c * height + gy * P + ky) * width + gx * P
                            (row + (c * P + ky) * P).update(from: src, count: P)
                        }
                    }
                }
            }
        }
    }

    /// tokens = patches(input)·Wᵀ + b. input: (B, C, H, W); patches: (B·N, K) ← the rearranged input (cached for
    /// backward); output: (B·N, D).
    @inlinable
    public func forward(input: UnsafePointer<Float>, patches: UnsafeMutablePointer<Float>,
                        output: UnsafeMutablePointer<Float>, batch: Int, params: Arena) {
        extractPatches(input: input, patches: patches, batch: batch)
        let rows = batch * patchCount
        gemm(.none, .transposed, m: rows, n: embedDim, k: fanIn, a: patches, lda: fanIn, b: params.pointer(weight),
             ldb: fanIn, beta: 0, c: output, ldc: embedDim)
        addRowBias(output, rows: rows, cols: embedDim, bias: params.pointer(bias), relu: false)
    }

    /// Accumulates dW += dTokensᵀ·patches and db += Σ_rows dTokens. dOutput: (B·N, D); patches: the forward's.
    /// The image gets no gradient (the patch embedding reads the input).
    @inlinable
    public func backward(dOutput: UnsafePointer<Float>, patches: UnsafePointer<Float>, batch: Int, grads: Arena) {
        let rows = batch * patchCount
        addColumnSums(dOutput, rows: rows, cols: embedDim, into: grads.pointer(bias))
        gemm(.transposed, .none, m: embedDim, n: fanIn, k: rows, a: dOutput, lda: embedDim, b: patches, ldb: fanIn,
             beta: 1, c: grads.pointer(weight), ldc: fanIn)
    }
}
