import Tensor

// Legend: B = batch, C = inChannels, O = outChannels, H×W = input size, Ho×Wo = output size, k = kernel,
// K = C·k·k (im2col rows), P = Ho·Wo (output pixels). NCHW, row-major.

/// A 2-d convolution, PyTorch `Conv2d(C, O, k, stride, padding, bias)`, by im2col + sgemm.
///
/// x: (B, C, H, W), W: (O, C, k, k) stored as (O, K) with column c·k² + ky·k + kx, b: (O) (optional),
/// y: (B, O, Ho, Wo) with Ho = ⌊(H + 2·padding − k)/stride⌋ + 1. Per image: col = im2col(x_n) (K, P),
/// y_n = W·col + b (O, P), which is already the NCHW image, so no transposes are needed. The im2col `scratch`
/// (`scratchCount` elements) is owned by the caller and allocated once; backward recomputes im2col rather than
/// caching it for the whole batch (B·K·P floats).
///
/// Two paths: the 3×3 / stride 1 / padding 1 convolution (the `cnn` encoder's, with bias, and most ResNet convs,
/// without) keeps its fused bias+ReLU pass and computes dX as one gemm with the flipped kernel (no col2im); every
/// other shape uses the general path (dcol = Wᵀ·dY, then col2im). Initialisation: given by the caller (`InitRule`); the default is
/// PyTorch's, W, b ~ U(−1/√K, 1/√K).
public struct Conv2d: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    /// Input height and width.
    public let height: Int
    public let width: Int
    public let kernel: Int
    public let stride: Int
    public let padding: Int
    /// (O, C·k·k) row-major, i.e. PyTorch's (O, C, k, k).
    public let weight: Slice
    /// (O), or an empty slice when the convolution has no bias.
    public let bias: Slice

    /// Reserves the weight, then the bias, in `layout`, naming them `name.weight` and `name.bias`: the `cnn`
    /// encoder's 3×3 / stride 1 / padding 1 convolution with bias and PyTorch's default initialisation.
    public init(inChannels: Int, outChannels: Int, height: Int, width: Int, name: String,
                layout: inout ArenaLayout) {
        var registry = ParameterRegistry(layout: layout)
        self.init(inChannels: inChannels, outChannels: outChannels, kernel: 3, stride: 1, padding: 1, bias: true,
                  height: height, width: width, name: name, registry: &registry)
        layout = registry.layout
    }

    /// Reserves `name.weight` (then `name.bias` when `bias`) in `registry`. `weightInit` defaults to PyTorch's
    /// U(−1/√K, 1/√K); the bias always uses that rule.
    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool,
                height: Int, width: Int, name: String, registry: inout ParameterRegistry,
                weightInit: InitRule? = nil) {
        precondition(inChannels > 0 && outChannels > 0 && height > 0 && width > 0 && kernel > 0 && stride > 0
                     && padding >= 0 && height + 2 * padding >= kernel && width + 2 * padding >= kernel,
                     "Conv2d \(name): C=\(inChannels) O=\(outChannels) H=\(height) W=\(width) k=\(kernel) "
                     + "stride=\(stride) padding=\(padding)")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        let fanIn = inChannels * kernel * kernel
        let bound = 1 / Float(Double(fanIn).squareRoot())
        weight = registry.parameter(name + ".weight", shape: [outChannels, inChannels, kernel, kernel],
                                    initRule: weightInit ?? .uniform(bound: bound))
        self.bias = bias ? registry.parameter(name + ".bias", shape: [outChannels], initRule: .uniform(bound: bound))
            : Slice(offset: weight.offset + weight.count, count: 0, name: name + ".bias")
    }

    /// Whether this is the 3×3 / stride 1 / padding 1 convolution (the fast path).
    @inlinable public var isSame3x3: Bool { kernel == 3 && stride == 1 && padding == 1 }
    /// Output height ⌊(H + 2p − k)/s⌋ + 1.
    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    /// Output width ⌊(W + 2p − k)/s⌋ + 1.
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Fan-in used by the default initialisation: C·k·k.
    public var fanIn: Int { inChannels * kernel * kernel }
    /// Fan-out used by torchvision's kaiming initialisation: O·k·k.
    public var fanOut: Int { outChannels * kernel * kernel }
    /// One past the last arena element this layer owns.
    public var end: Int { max(weight.offset + weight.count, bias.offset + bias.count) }
    /// Elements per input image, C·H·W.
    public var inputSize: Int { inChannels * height * width }
    /// Elements per output image, O·Ho·Wo.
    public var outputSize: Int { outChannels * outHeight * outWidth }
    /// Elements of the scratch buffer. Fast path: an im2col matrix of max(C, O)·9 rows by H·W (forward: of the
    /// input; backward: of the input, then of dY), then the flipped weight W̃ (C, O·9). General path: col and
    /// dcol, each (K, P).
    public var scratchCount: Int {
        isSame3x3 ? scratchCount3x3(group: imageGroup) : 2 * fanIn * outHeight * outWidth
    }
    /// The fast path's scratch for `group` images per gemm: the im2col matrix (max(C, O)·9, G·H·W), then (G > 1)
    /// the staging matrix (max(C, O), G·H·W), then W̃ (C, O·9).
    @inlinable public func scratchCount3x3(group: Int) -> Int {
        let wide = max(inChannels, outChannels) * group * height * width
        return 9 * wide + (group > 1 ? wide : 0) + inChannels * outChannels * 9
    }
    /// The columns the fast path aims for in one gemm (G·H·W): several images per call widen the gemm's N.
    public static let groupColumns = 1024
    /// Images per gemm on the fast path: ⌊groupColumns / (H·W)⌋ clamped to 1…16 (1 on the general path). The
    /// scratch grows with it: at most 10·max(C, O)·max(groupColumns, H·W) + C·O·9 floats.
    public var imageGroup: Int {
        isSame3x3 ? max(1, min(16, Conv2d.groupColumns / (height * width))) : 1
    }
    /// Forward multiply-adds per sample: O·K·P.
    public var multiplyAddsPerSample: Int { outChannels * fanIn * outHeight * outWidth }
    /// Backward multiply-adds per sample: O·K·P for dW, plus O·K·P for dX when the input gradient is computed
    /// (`dInput` non-nil). Both paths perform that many: the fast path's dX gemm is (C, O·9)·(O·9, H·W) = O·K·P,
    /// the general path's Wᵀ·dY is (K, O)·(O, P).
    public func backwardMultiplyAddsPerSample(inputGradient: Bool) -> Int {
        (inputGradient ? 2 : 1) * multiplyAddsPerSample
    }

    // MARK: - Forward / backward

    /// y = conv(x, W) + b, or y = max(conv(x, W) + b, 0) when `relu` (the following ReLU fused into the bias
    /// pass). input: (B, C, H, W), output: (B, O, Ho, Wo); scratch: `scratchCount` floats. Nothing is cached;
    /// backward needs `input` (and `output` when `relu`).
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                        params: Arena, scratch: UnsafeMutablePointer<Float>, relu: Bool = false) {
        if isSame3x3 && imageGroup > 1 {
            forwardGrouped(input: input, output: output, batch: batch, group: imageGroup, params: params,
                           scratch: scratch, relu: relu)
            return
        }
        let w = params.pointer(weight)
        let k = fanIn, p = outHeight * outWidth
        let direct = kernel == 1 && stride == 1 && padding == 0
        for n in 0..<batch {
            let y = output + n * outputSize, x = input + n * inputSize
            // A 1×1 / stride-1 convolution's im2col is the image itself.
            if isSame3x3 {
                im2col3x3(image: x, channels: inChannels, col: scratch)
            } else if !direct {
                im2col(image: x, col: scratch)
            }
            gemm(.none, .none, m: outChannels, n: p, k: k, a: w, lda: k, b: direct ? x : UnsafePointer(scratch),
                 ldb: p, beta: 0, c: y, ldc: p)
            if bias.count > 0 {
                addPlaneBias(y, planes: outChannels, planeSize: p, bias: params.pointer(bias), relu: relu)
            } else if relu {
                for i in 0..<outputSize { y[i] = max(y[i], 0) }
            }
        }
    }

    /// The fast path's forward with `group` images per gemm (`group` ≤ the scratch's, see `scratchCount3x3`):
    /// col = [im2col(x_n) … im2col(x_{n+G−1})] (C·9, G·P), Z = W·col (O, G·P) in the staging matrix, then one
    /// pass scatters Z back to NCHW with the bias (and ReLU). The per-image path (`group` 1) is the reference.
    @inlinable
    public func forwardGrouped(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, batch: Int,
                               group: Int, params: Arena, scratch: UnsafeMutablePointer<Float>, relu: Bool = false) {
        precondition(isSame3x3 && group >= 1, "Conv2d.forwardGrouped: the 3×3 / stride 1 / padding 1 path only")
        let w = params.pointer(weight), b: UnsafePointer<Float>? = bias.count > 0 ? UnsafePointer(params.pointer(bias)) : nil
        let k = fanIn, p = height * width
        let col = scratch, stage = scratch + max(inChannels, outChannels) * 9 * group * p
        var n0 = 0
        while n0 < batch {
            let g = min(group, batch - n0), ld = g * p
            for j in 0..<g {
                im2col3x3(image: input + (n0 + j) * inputSize, channels: inChannels, col: col + j * p, ldCol: ld)
            }
            if g == 1 {
                let y = output + n0 * outputSize
                gemm(.none, .none, m: outChannels, n: p, k: k, a: w, lda: k, b: col, ldb: p, beta: 0, c: y, ldc: p)
                if b != nil || relu {
                    for o in 0..<outChannels {
                        copyPlane(from: y + o * p, to: y + o * p, count: p, bias: b?[o] ?? 0, relu: relu)
                    }
                }
                n0 += 1
                continue
            }
            gemm(.none, .none, m: outChannels, n: ld, k: k, a: w, lda: k, b: col, ldb: ld, beta: 0, c: stage,
                 ldc: ld)
            for j in 0..<g {
                let y = output + (n0 + j) * outputSize
                for o in 0..<outChannels {
                    copyPlane(from: stage + o * ld + j * p, to: y + o * p, count: p, bias: b?[o] ?? 0, relu: relu)
                }
            }
            n0 += g
        }
    }

    /// Accumulates dW += Σ_n dY_n·col_nᵀ and db += Σ_{n,pixels} dY; writes (or adds to) dX.
    ///
    /// dOutput: (B, O, Ho, Wo); input: the forward input (B, C, H, W); dInput: (B, C, H, W) or nil to skip
    /// (first layer). `dInput` is **overwritten**, or **accumulated** into when `accumulateInput`; it must not
    /// alias `dOutput`. scratch: `scratchCount` floats. Fast path: dX is the transposed convolution
    /// dX_n = W̃·im2col(dY_n) with W̃[c, o·9 + 8 − t] = W[o, c·9 + t] (t = ky·3 + kx: the kernel flipped, channels
    /// swapped), one gemm with inner size O·9 and no col2im. General path: dX_n = col2im(Wᵀ·dY_n).
    @inlinable
    public func backward(dOutput: UnsafePointer<Float>, input: UnsafePointer<Float>,
                         dInput: UnsafeMutablePointer<Float>?, batch: Int, params: Arena, grads: Arena,
                         scratch: UnsafeMutablePointer<Float>, accumulateInput: Bool = false) {
        backward(dOutput: dOutput, reluOutput: nil, input: input, dInput: dInput, batch: batch, params: params,
                 grads: grads, scratch: scratch, accumulateInput: accumulateInput)
    }

    /// The backward of `forward(…, relu: true)`: masks `dOutput` **in place** with [output > 0] (∂/∂ of the
    /// pre-activation), then as `backward`. dOutput: (B, O, Ho, Wo), ∂loss/∂ the ReLU's output on entry; output:
    /// the forward output after the ReLU. `dInput` is **overwritten** and must not alias `dOutput`.
    @inlinable
    public func backwardThroughReLU(dOutput: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>,
                                    input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                                    params: Arena, grads: Arena, scratch: UnsafeMutablePointer<Float>) {
        backward(dOutput: UnsafePointer(dOutput), reluOutput: output, input: input, dInput: dInput, batch: batch,
                 params: params, grads: grads, scratch: scratch, accumulateInput: false)
    }

    /// Both backwards: `reluOutput` non-nil means `dOutput` is writable and is masked in place first.
    @inlinable
    func backward(dOutput: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?, input: UnsafePointer<Float>,
                  dInput: UnsafeMutablePointer<Float>?, batch: Int, params: Arena, grads: Arena,
                  scratch: UnsafeMutablePointer<Float>, accumulateInput: Bool) {
        guard isSame3x3 else {
            backwardGeneral(dOutput: dOutput, reluOutput: reluOutput, input: input, dInput: dInput, batch: batch,
                            params: params, grads: grads, scratch: scratch, accumulateInput: accumulateInput)
            return
        }
        backwardGrouped(dOutput: dOutput, reluOutput: reluOutput, input: input, dInput: dInput, batch: batch,
                    group: imageGroup, params: params, grads: grads, scratch: scratch,
                    accumulateInput: accumulateInput)
    }

    /// The fast path's backward with `group` images per gemm: after the per-image ReLU mask and bias sums, the
    /// group's dY is gathered into the staging matrix (O, G·P) and dW += dY_G·col_Gᵀ is one gemm with inner size
    /// G·P; dX_G = W̃·im2col(dY_G) (C, G·P) is one gemm into the staging matrix, scattered back to NCHW. With
    /// `group` 1 no staging is used (the per-image reference path). `reluOutput` non-nil: `dOutput` is masked in
    /// place first (as `backwardThroughReLU`). scratch: `scratchCount3x3(group:)` floats.
    @inlinable
    public func backwardGrouped(dOutput: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?,
                                input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                                group: Int, params: Arena, grads: Arena, scratch: UnsafeMutablePointer<Float>,
                                accumulateInput: Bool) {
        precondition(isSame3x3 && group >= 1, "Conv2d.backwardGrouped: the 3×3 / stride 1 / padding 1 path only")
        let w = params.pointer(weight)
        let dW = grads.pointer(weight), dB = grads.pointer(bias)
        let k = inChannels * 9, kOut = outChannels * 9, p = height * width
        let wide = max(inChannels, outChannels) * group * p
        let col = scratch, stage = scratch + 9 * wide, flipped = stage + (group > 1 ? wide : 0)
        if dInput != nil {
            for o in 0..<outChannels {
                for c in 0..<inChannels {
                    let src = w + o * k + c * 9, dst = flipped + c * kOut + o * 9
                    for t in 0..<9 { dst[8 - t] = src[t] }
                }
            }
        }
        var n0 = 0
        while n0 < batch {
            let g = min(group, batch - n0), ld = g * p
            for j in 0..<g {
                let n = n0 + j, dY = dOutput + n * outputSize
                if bias.count == 0 {
                    if let reluOutput {
                        maskReLUGradient(UnsafeMutablePointer(mutating: dY), output: reluOutput + n * outputSize,
                                         count: outputSize)
                    }
                } else if let reluOutput {
                    reluMaskPlaneSums(UnsafeMutablePointer(mutating: dY), output: reluOutput + n * outputSize,
                                      planes: outChannels, planeSize: p, into: dB)
                } else {
                    addPlaneSums(dY, planes: outChannels, planeSize: p, into: dB)
                }
                im2col3x3(image: input + n * inputSize, channels: inChannels, col: col + j * p, ldCol: ld)
                if g > 1 {
                    for o in 0..<outChannels {
                        (stage + o * ld + j * p).update(from: dY + o * p, count: p)
                    }
                }
            }
            let dYG = g > 1 ? UnsafePointer(stage) : dOutput + n0 * outputSize
            gemm(.none, .transposed, m: outChannels, n: k, k: ld, a: dYG, lda: ld, b: col, ldb: ld,
                 beta: 1, c: dW, ldc: k)
            if let dInput {
                for j in 0..<g {
                    im2col3x3(image: dOutput + (n0 + j) * outputSize, channels: outChannels, col: col + j * p,
                              ldCol: ld)
                }
                if g == 1 {
                    gemm(.none, .none, m: inChannels, n: p, k: kOut, a: flipped, lda: kOut, b: col, ldb: p,
                         beta: accumulateInput ? 1 : 0, c: dInput + n0 * inputSize, ldc: p)
                } else {
                    gemm(.none, .none, m: inChannels, n: ld, k: kOut, a: flipped, lda: kOut, b: col, ldb: ld,
                         beta: 0, c: stage, ldc: ld)
                    for j in 0..<g {
                        let dX = dInput + (n0 + j) * inputSize
                        for c in 0..<inChannels {
                            if accumulateInput {
                                addPlane(from: stage + c * ld + j * p, to: dX + c * p, count: p)
                            } else {
                                (dX + c * p).update(from: stage + c * ld + j * p, count: p)
                            }
                        }
                    }
                }
            }
            n0 += g
        }
    }

    /// The general path's backward (any kernel, stride, padding; bias optional).
    @inlinable
    func backwardGeneral(dOutput: UnsafePointer<Float>, reluOutput: UnsafePointer<Float>?,
                         input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>?, batch: Int,
                         params: Arena, grads: Arena, scratch: UnsafeMutablePointer<Float>, accumulateInput: Bool) {
        let w = params.pointer(weight), dW = grads.pointer(weight)
        let k = fanIn, p = outHeight * outWidth
        let direct = kernel == 1 && stride == 1 && padding == 0
        let col = scratch, dCol = scratch + k * p
        for n in 0..<batch {
            let dY = dOutput + n * outputSize, x = input + n * inputSize
            if let reluOutput {
                let m = UnsafeMutablePointer(mutating: dY), y = reluOutput + n * outputSize
                for i in 0..<outputSize where !(y[i] > 0) { m[i] = 0 }
            }
            if bias.count > 0 { addPlaneSums(dY, planes: outChannels, planeSize: p, into: grads.pointer(bias)) }
            if !direct { im2col(image: x, col: col) }
            gemm(.none, .transposed, m: outChannels, n: k, k: p, a: dY, lda: p, b: direct ? x : UnsafePointer(col),
                 ldb: p, beta: 1, c: dW, ldc: k)
            guard let dInput else { continue }
            let dX = dInput + n * inputSize
            if direct {
                gemm(.transposed, .none, m: k, n: p, k: outChannels, a: w, lda: k, b: dY, ldb: p,
                     beta: accumulateInput ? 1 : 0, c: dX, ldc: p)
            } else {
                gemm(.transposed, .none, m: k, n: p, k: outChannels, a: w, lda: k, b: dY, ldb: p,
                     beta: 0, c: dCol, ldc: p)
                col2im(col: dCol, image: dX, accumulate: accumulateInput)
            }
        }
    }

    // MARK: - im2col / col2im

    /// col[c·k² + ky·k + kx, oy·Wo + ox] = image[c, oy·s + ky − p, ox·s + kx − p], zero outside the image.
    /// image: (C, H, W), col: (C·k², Ho·Wo); every element of col is written.
    @inlinable
    public func im2col(image: UnsafePointer<Float>, col: UnsafeMutablePointer<Float>) {
        let oh = outHeight, ow = outWidth, p = oh * ow
        for c in 0..<inChannels {
            let plane = image + c * height * width
            for ky in 0..<kernel {
                for kx in 0..<kernel {
                    let row = col + ((c * kernel + ky) * kernel + kx) * p
                    let shift = kx - padding, (x0, x1) = validColumns(shift: shift)
                    for oy in 0..<oh {
                        let dst = row + oy * ow
                        let sy = oy * stride + ky - padding
                        if sy < 0 || sy >= height {
                            dst.update(repeating: 0, count: ow)
                            continue
                        }
                        let src = plane + sy * width + shift
                        for ox in 0..<x0 { dst[ox] = 0 }
                        if stride == 1 {
                            if x1 > x0 { (dst + x0).update(from: src + x0, count: x1 - x0) }
                        } else {
                            for ox in x0..<x1 { dst[ox] = src[ox * stride] }
                        }
                        for ox in x1..<ow { dst[ox] = 0 }
                    }
                }
            }
        }
    }

    /// The fast path's im2col of an image of `channels` planes of this layer's H×W (the input, or dY for the
    /// input gradient), 3×3 / stride 1 / padding 1: the same layout as `im2col` with k = 3, rows `ldCol` apart
    /// (default H·W; G·H·W when G images share one col matrix, image j at column j·H·W).
    @inlinable
    public func im2col3x3(image: UnsafePointer<Float>, channels: Int, col: UnsafeMutablePointer<Float>, ldCol: Int? = nil) {
        let p = height * width, ld = ldCol ?? p
        for c in 0..<channels {
            let plane = image + c * p
            for ky in 0..<3 {
                for kx in 0..<3 {
                    let row = col + ((c * 3 + ky) * 3 + kx) * ld
                    // Row (c, ky, kx) is the plane shifted by s = (ky − 1)·W + kx − 1: one block copy of the
                    // in-range part (source rows 0 ≤ y + ky − 1 < H, clipped to the plane), zeros before and
                    // after, then the column that wrapped around (x = 0 for kx = 0, x = W − 1 for kx = 2) zeroed.
                    let shift = (ky - 1) * width + kx - 1
                    let lo = max(ky == 0 ? width : 0, -shift)
                    let hi = max(lo, min(ky == 2 ? p - width : p, p - shift))
                    if lo > 0 { row.update(repeating: 0, count: lo) }
                    if hi > lo { (row + lo).update(from: plane + lo + shift, count: hi - lo) }
                    if hi < p { (row + hi).update(repeating: 0, count: p - hi) }
                    if kx != 1 {
                        var i = kx == 0 ? 0 : width - 1
                        while i < p { row[i] = 0; i += width }
                    }
                }
            }
        }
    }

    /// The output columns [x0, x1) whose source column ox·s + shift lies inside the image [0, W).
    @inlinable
    func validColumns(shift: Int) -> (Int, Int) {
        let ow = outWidth
        let x0 = min(ow, max(0, (-shift + stride - 1) / stride))
        let last = width - 1 - shift  // ox·s ≤ last
        return (x0, last < 0 ? x0 : max(x0, min(ow, last / stride + 1)))
    }

    /// The adjoint of `im2col`: image[c, oy·s + ky − p, ox·s + kx − p] += col[c·k² + ky·k + kx, oy·Wo + ox].
    /// image: (C, H, W) is **overwritten** (zeroed, then accumulated), or **accumulated** into when `accumulate`.
    @inlinable
    public func col2im(col: UnsafePointer<Float>, image: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        let oh = outHeight, ow = outWidth, p = oh * ow
        if !accumulate { image.update(repeating: 0, count: inputSize) }
        for c in 0..<inChannels {
            let plane = image + c * height * width
            for ky in 0..<kernel {
                for kx in 0..<kernel {
                    let row = col + ((c * kernel + ky) * kernel + kx) * p
                    let shift = kx - padding, (x0, x1) = validColumns(shift: shift)
                    for oy in 0..<oh {
                        let sy = oy * stride + ky - padding
                        if sy < 0 || sy >= height { continue }
                        let src = row + oy * ow, dst = plane + sy * width + shift
                        for ox in x0..<x1 { dst[ox * stride] += src[ox] }
                    }
                }
            }
        }
    }
}
