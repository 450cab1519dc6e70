// Bilinear resizing of image planes, matching PyTorch's
//   torch.nn.functional.interpolate(x, size=(H', W'), mode="bilinear", align_corners=False, antialias=False)
// on CPU, for upsampling and downsampling alike (no antialiasing: downsampling reads only 2×2 neighbours).
//
// Legend: H, W input height and width; H', W' output height and width; a plane is one channel of one image.
//
// Per axis (input size n, output size n'), for output index d, computed in Float as PyTorch does:
//   n' = n:  i0 = i1 = d, λ0 = 1, λ1 = 0                       (a plain copy)
//   else:    scale = n / n'
//            s  = max(fma(scale, d + 0.5, −0.5), 0)            (source coordinate, clamped at the first pixel;
//                                                              one fused multiply-add, as PyTorch's CPU kernels)
//            i0 = min(⌊s⌋, n − 1),  i1 = i0 + (i0 < n − 1 ? 1 : 0)   (neighbours clamped at the last pixel)
//            λ1 = min(max(s − i0, 0), 1),  λ0 = 1 − λ1
// and then, with (y0, y1, μ0, μ1) the row taps and (x0, x1, λ0, λ1) the column taps,
//   out[y][x] = μ0 · (λ0 · in[y0][x0] + λ1 · in[y0][x1]) + μ1 · (λ0 · in[y1][x0] + λ1 · in[y1][x1]).
//
// Bytes are resized the way torchvision's `Resize` treats a uint8 tensor: interpolate in Float as above, round half
// to even, clamp to 0…255.

// MARK: - Taps

/// The two source indices and weights of each output index along one axis of a bilinear resize.
struct LinearTaps {
    /// Lower source index i0 of each output index, (outputSize).
    let index0: [Int]
    /// Upper source index i1 (= i0, or i0 + 1), (outputSize).
    let index1: [Int]
    /// Weight λ0 of `index0`, (outputSize).
    let weight0: [Float]
    /// Weight λ1 of `index1`, (outputSize).
    let weight1: [Float]

    /// The taps mapping an axis of `inputSize` onto `outputSize` (formula at the top of the file).
    init(inputSize n: Int, outputSize m: Int) {
        precondition(n >= 1 && m >= 1, "resize axis sizes must be positive, got \(n) → \(m)")
        var index0 = [Int](repeating: 0, count: m), index1 = index0
        var weight0 = [Float](repeating: 1, count: m), weight1 = [Float](repeating: 0, count: m)
        if n == m {
            for d in 0..<m { index0[d] = d; index1[d] = d }
        } else {
            let scale = Float(n) / Float(m)
            for d in 0..<m {
                // One fused multiply-add, as PyTorch's CPU kernels compute it (built with FMA contraction on AVX2
                // and later): rounding the product first moves s by an ulp, λ by up to 1e-6, and a 28 → 20 resize
                // of bytes by 2e-4.
                let s = max((-0.5 as Float).addingProduct(scale, Float(d) + 0.5), 0)
                let i0 = min(Int(s.rounded(.down)), n - 1)
                let lambda1 = min(max(s - Float(i0), 0), 1)
                index0[d] = i0
                index1[d] = i0 + (i0 < n - 1 ? 1 : 0)
                weight1[d] = lambda1
                weight0[d] = 1 - lambda1
            }
        }
        self.index0 = index0
        self.index1 = index1
        self.weight0 = weight0
        self.weight1 = weight1
    }
}

// MARK: - Kernels

/// Resizes `planes` planes of (height, width) Floats to (outHeight, outWidth) by bilinear interpolation, as
/// `F.interpolate(mode="bilinear", align_corners=False, antialias=False)` does (formula at the top of the file).
/// input: (planes, height, width), output: (planes, outHeight, outWidth), both row-major; output is overwritten.
/// Allocates the two axes' taps: a load-time routine, not for a training step.
public func resizeBilinear(_ input: UnsafeBufferPointer<Float>, planes: Int, height: Int, width: Int,
                           into output: UnsafeMutableBufferPointer<Float>, outHeight: Int, outWidth: Int) {
    resizePlanes(input, planes: planes, height: height, width: width, into: output, outHeight: outHeight,
                 outWidth: outWidth, load: { $0 }, store: { $0 })
}

/// Resizes `planes` planes of (height, width) bytes to (outHeight, outWidth) as torchvision's `Resize` does for a
/// uint8 tensor (antialias off): the Float bilinear interpolation of `resizeBilinear`, rounded half to even and
/// clamped to 0…255. input: (planes, height, width), output: (planes, outHeight, outWidth); output is overwritten.
public func resizeBilinear(_ input: UnsafeBufferPointer<UInt8>, planes: Int, height: Int, width: Int,
                           into output: UnsafeMutableBufferPointer<UInt8>, outHeight: Int, outWidth: Int) {
    resizePlanes(input, planes: planes, height: height, width: width, into: output, outHeight: outHeight,
                 outWidth: outWidth, load: { Float($0) },
                 store: { UInt8(min(max($0.rounded(.toNearestOrEven), 0), 255)) })
}

/// The shared loop: reads elements as Float through `load`, interpolates in Float, writes through `store`.
private func resizePlanes<In, Out>(
    _ input: UnsafeBufferPointer<In>, planes: Int, height: Int, width: Int,
    into output: UnsafeMutableBufferPointer<Out>, outHeight: Int, outWidth: Int,
    load: (In) -> Float, store: (Float) -> Out
) {
    precondition(planes >= 0, "resize: planes must be >= 0, got \(planes)")
    precondition(input.count == planes * height * width,
                 "resize: input holds \(input.count) elements, expected \(planes)×\(height)×\(width)")
    precondition(output.count == planes * outHeight * outWidth,
                 "resize: output holds \(output.count) elements, expected \(planes)×\(outHeight)×\(outWidth)")
    let rows = LinearTaps(inputSize: height, outputSize: outHeight)
    let columns = LinearTaps(inputSize: width, outputSize: outWidth)
    for p in 0..<planes {
        let source = p * height * width, target = p * outHeight * outWidth
        for y in 0..<outHeight {
            let row0 = source + rows.index0[y] * width, row1 = source + rows.index1[y] * width
            let mu0 = rows.weight0[y], mu1 = rows.weight1[y]
            for x in 0..<outWidth {
                let x0 = columns.index0[x], x1 = columns.index1[x]
                let lambda0 = columns.weight0[x], lambda1 = columns.weight1[x]
                let top = lambda0 * load(input[row0 + x0]) + lambda1 * load(input[row0 + x1])
                let bottom = lambda0 * load(input[row1 + x0]) + lambda1 * load(input[row1 + x1])
                output[target + y * outWidth + x] = store(mu0 * top + mu1 * bottom)
            }
        }
    }
}
