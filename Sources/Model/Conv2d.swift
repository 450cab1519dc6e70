import Tensor

// Legend: B = batch, C = inChannels, O = outChannels, H×W = image size (unchanged: 3×3 kernel, stride 1,
// padding 1), K = C·9 (im2col rows), P = H·W (pixels). NCHW, row-major.

/// A 3×3 convolution with stride 1 and zero padding 1 (PyTorch `Conv2d(C, O, 3, padding=1)`), by im2col + sgemm.
///
/// x: (B, C, H, W), W: (O, C, 3, 3) stored as (O, K) with column c·9 + ky·3 + kx, b: (O), y: (B, O, H, W).
/// Per image: col = im2col(x_n) (K, P), y_n = W·col + b (O, P), which is already the NCHW image, so no
/// transposes are needed; the bias (and an optional following ReLU) is one fused pass after the gemm. The im2col
/// `scratch` (`scratchCount` elements) is owned by the caller and
/// allocated once; backward recomputes im2col rather than caching it for the whole batch (B·K·P floats).
/// Initialisation (PyTorch default): W, b ~ U(−1/√K, 1/√K).
public struct Conv2d: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let height: Int
    public let width: Int
    /// (O, C·9) row-major, i.e. PyTorch's (O, C, 3, 3).
    public let weight: Slice
    /// (O).
    public let bias: Slice

    /// Reserves the weight, then the bias, in `layout`, naming them `name.weight` and `name.bias`.
    public init(inChannels: Int, outChannels: Int, height: Int, width: Int, name: String,
                layout: inout ArenaLayout) {
        precondition(inChannels > 0 && outChannels > 0 && height > 0 && width > 0,
                     "Conv2d \(name): C=\(inChannels) O=\(outChannels) H=\(height) W=\(width)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.height = height
        self.width = width
        weight = layout.reserve(outChannels * inChannels * 9, name: name + ".weight")
        bias = layout.reserve(outChannels, name: name + ".bias")
    }

    /// Fan-in used by the default initialisation: C·3·3.
    public var fanIn: Int { inChannels * 9 }
    /// One past the last arena element this layer owns.
    public var end: Int { max(weight.offset + weight.count, bias.offset + bias.count) }
    /// Elements per input image, C·H·W.
    public var inputSize: Int { inChannels * height * width }
    /// Elements per output image, O·H·W.
    public var outputSize: Int { outChannels * height * width }
    /// Elements of the scratch buffer: an im2col matrix of max(C, O)·9 rows by H·W (forward: of the input;
    /// backward: of the input, then of dY), followed by the flipped weight W̃ (C, O·9) of the input gradient.
    public var scratchCount: Int { max(inChannels, outChannels) * 9 * height * width + inChannels * outChannels * 9 }
    /// Forward multiply-adds per sample: O·C·9·H·W.
    public var multiplyAddsPerSample: Int { outChannels * inChannels * 9 * height * width }

    // MARK: - Forward / backward

    /// y = conv3×3(x, W) + b, or y = max(conv3×3(x, W) + b, 0) when `relu` (the following ReLU fused into the
    /// bias pass). input: (B, C, H, W), output: (B, O, H, W); scratch: `scratchCount` floats. Nothing is cached;
    /// backward needs `input` (and `output` when `relu`).
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                        params: Arena, scratch: UnsafeMutablePointer<Float>, relu: Bool = false) {
        let w = params.pointer(weight), b = params.pointer(bias)
        let k = inChannels * 9, p = height * width
        for n in 0..<batch {
            let y = output + n * outputSize
            im2col(image: input + n * inputSize, channels: inChannels, col: scratch)
            gemm(.none, .none, m: outChannels, n: p, k: k, a: w, lda: k, b: scratch, ldb: p,
                 beta: 0, c: y, ldc: p)
            addPlaneBias(y, planes: outChannels, planeSize: p, bias: b, relu: relu)
        }
    }

    /// Accumulates dW += Σ_n dY_n·col_nᵀ and db += Σ_{n,pixels} dY; writes dX.
    ///
    /// dOutput: (B, O, H, W); input: the forward input (B, C, H, W); dInput: (B, C, H, W) or nil to skip
    /// (first layer). `dInput` is **overwritten** and must not alias `dOutput`. scratch: `scratchCount` floats.
    /// dX is the transposed convolution dX_n = W̃·im2col(dY_n) with W̃[c, o·9 + 8 − t] = W[o, c·9 + t]
    /// (t = ky·3 + kx: the kernel flipped, channels swapped), one gemm with inner size O·9 and no col2im.
    @inlinable
    public func backward(dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                         dInput: UnsafeMutablePointer<Float>?, batch: Int, params: Arena, grads: Arena,
                         scratch: UnsafeMutablePointer<Float>) {
        backward(dOutput: dOutput, reluOutput: nil, input: input, dInput: dInput, batch: batch, params: params,
                 grads: grads, scratch: scratch)
    }

    /// The backward of `forward(…, relu: true)`: masks `dOutput` **in place** with [output > 0] (∂/∂ of the
    /// pre-activation), then as `backward`. dOutput: (B, O, H, W), ∂loss/∂ the ReLU's output on entry; output:
    /// the forward output after the ReLU. `dInput` is **overwritten** and must not alias `dOutput`.
    @inlinable
    public func backwardThroughReLU(dOutput: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>,
                                    input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                                    params: Arena, grads: Arena, scratch: UnsafeMutablePointer<Float>) {
        backward(dOutput: UnsafePointer(dOutput), reluOutput: output, input: input, dInput: dInput, batch: batch,
                 params: params, grads: grads, scratch: scratch)
    }

    /// Both backwards: `reluOutput` non-nil means `dOutput` is writable and is masked in place first.
    @inlinable
    func backward(dOutput: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?, input: UnsafePointer<Float>,
                  dInput: UnsafeMutablePointer<Float>?, batch: Int, params: Arena, grads: Arena,
                  scratch: UnsafeMutablePointer<Float>) {
        let w = params.pointer(weight)
        let dW = grads.pointer(weight), dB = grads.pointer(bias)
        let k = inChannels * 9, kOut = outChannels * 9, p = height * width
        let col = scratch, flipped = scratch + max(inChannels, outChannels) * 9 * p
        if dInput != nil {
            for o in 0..<outChannels {
                for c in 0..<inChannels {
                    let src = w + o * k + c * 9, dst = flipped + c * kOut + o * 9
                    for t in 0..<9 { dst[8 - t] = src[t] }
                }
            }
        }
        for n in 0..<batch {
            let dY = dOutput + n * outputSize
            if let reluOutput {
                reluMaskPlaneSums(UnsafeMutablePointer(mutating: dY), output: reluOutput + n * outputSize,
                                  planes: outChannels, planeSize: p, into: dB)
            } else {
                addPlaneSums(dY, planes: outChannels, planeSize: p, into: dB)
            }
            im2col(image: input + n * inputSize, channels: inChannels, col: col)
            gemm(.none, .transposed, m: outChannels, n: k, k: p, a: dY, lda: p, b: col, ldb: p,
                 beta: 1, c: dW, ldc: k)
            if let dInput {
                im2col(image: dY, channels: outChannels, col: col)
                gemm(.none, .none, m: inChannels, n: p, k: kOut, a: flipped, lda: kOut, b: col, ldb: p,
                     beta: 0, c: dInput + n * inputSize, ldc: p)
            }
        }
    }

    // MARK: - im2col / col2im

    /// col[c·9 + ky·3 + kx, y·W + x] = image[c, y + ky − 1, x + kx − 1], zero outside the image.
    /// image: (C, H, W), col: (C·9, H·W); every element of col is written.
    @inlinable
    public func im2col(image: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>) {
        im2col(image: image, channels: inChannels, col: col)
    }

    /// `im2col` of an image of `channels` planes of this layer's H×W (the input, or dY for the input gradient).
    @inlinable
    func im2col(image: UnsafePointer<Float>, channels: Int, col: UnsafeMutablePointer<Float>) {
        let p = height * width
        for c in 0..<channels {
            let plane = image + c * p
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let row = col + ((c * 3 + ky) * 3 + kx) * p
                    let dx = kx - 1
                    // Columns x with 0 ≤ x + dx < W: x ∈ [x0, x1).
                    let x0 = max(0, -dx), x1 = min(width, width - dx)
                    for y in 0..<height {
                        let dst = row + y * width
                        let sy = y + ky - 1
                        if sy < 0 || sy >= height {
                            dst.update(repeating: 0, count: width)
                            continue
                        }
                        if x0 > 0 { dst[0] = 0 }
                        if x1 < width { dst[width - 1] = 0 }
                        if x1 > x0 { (dst + x0).update(from: plane + sy * width + x0 + dx, count: x1 - x0) }
                    }
                }
            }
        }
    }

    /// The adjoint of `im2col`: image[c, y + ky − 1, x + kx − 1] += col[c·9 + ky·3 + kx, y·W + x].
    /// image: (C, H, W) is **overwritten** (zeroed, then accumulated).
    @inlinable
    public func col2im(col: UnsafePointer<Float>, image: UnsafeMutablePointer<Float>) {
        let p = height * width
        image.update(repeating: 0, count: inChannels * p)
        for c in 0..<inChannels {
            let plane = image + c * p
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let row = col + ((c * 3 + ky) * 3 + kx) * p
                    let dx = kx - 1
                    let x0 = max(0, -dx), x1 = min(width, width - dx)
                    for y in 0..<height {
                        let sy = y + ky - 1
                        if sy < 0 || sy >= height { continue }
                        let src = row + y * width
                        let dst = plane + sy * width + dx
                        for x in x0..<max(x0, x1) { dst[x] += src[x] }
                    }
                }
            }
        }
    }
}
