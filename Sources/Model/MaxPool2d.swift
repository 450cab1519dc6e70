import Tensor

// Legend: B = batch, C = channels, H×W = input size, Ho×Wo = output size (floor, as PyTorch), k = kernel,
// s = stride, p = padding.

/// k×k max pooling with stride s and padding p (PyTorch `MaxPool2d(k, s, p)`), caching the argmax of each window.
///
/// x: (B, C, H, W), y: (B, C, Ho, Wo), Ho = ⌊(H + 2p − k)/s⌋ + 1 (trailing rows/columns that fit no window are
/// dropped; padding never wins, as PyTorch pads with −∞). Ties go to the first element in row-major scan order of
/// the window and a NaN wins, as in PyTorch's CPU kernel. `indices` (one Int32 per output element, owned by the
/// caller) holds the argmax as the offset c·H·W + y·W + x within the sample. The `cnn` encoder uses 2×2/2, the
/// ImageNet ResNet stem 3×3/2 with padding 1.
public struct MaxPool2d: Sendable {
    public let channels: Int, height: Int, width: Int
    public let kernel: Int, stride: Int, padding: Int

    /// 2×2 pooling with stride 2 (PyTorch `MaxPool2d(2)`).
    public init(channels: Int, height: Int, width: Int) {
        self.init(channels: channels, height: height, width: width, kernel: 2, stride: 2, padding: 0)
    }

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, padding: Int) {
        precondition(channels > 0 && kernel > 0 && stride > 0 && padding >= 0 && 2 * padding <= kernel
                     && height + 2 * padding >= kernel && width + 2 * padding >= kernel,
                     "MaxPool2d: C=\(channels) H=\(height) W=\(width) k=\(kernel) s=\(stride) p=\(padding) "
                     + "(need H, W ≥ k − 2p and p ≤ k/2)")
        self.channels = channels; self.height = height; self.width = width
        self.kernel = kernel; self.stride = stride; self.padding = padding
    }
    public var outHeight: Int { (height + 2 * padding - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * padding - kernel) / stride + 1 }
    /// Elements per input sample, C·H·W.
    public var inputSize: Int { channels * height * width }
    /// Elements per output sample (and indices per sample), C·Ho·Wo.
    public var outputSize: Int { channels * outHeight * outWidth }

    // MARK: - Forward / backward

    /// y = max over each window; caches the argmax in `indices` (B·outputSize Int32).
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                        indices: UnsafeMutablePointer<Int32>, batch: Int) {
        if kernel == 2 && stride == 2 && padding == 0 {
            forward2x2(input: input, output: output, indices: indices, batch: batch)
            return
        }
        let oh = outHeight, ow = outWidth, p = height * width
        for n in 0..<batch {
            let x = input + n * inputSize
            let y = output + n * outputSize, ix = indices + n * outputSize
            for c in 0..<channels {
                for oy in 0..<oh {
                    let y0 = max(0, oy * stride - padding), y1 = min(height, oy * stride - padding + kernel)
                    for ox in 0..<ow {
                        let x0 = max(0, ox * stride - padding), x1 = min(width, ox * stride - padding + kernel)
                        var best = c * p + y0 * width + x0, bestValue = x[best]
                        for sy in y0..<y1 {
                            for sx in x0..<x1 {
                                let candidate = c * p + sy * width + sx
                                let v = x[candidate]
                                if v > bestValue || (v.isNaN && !bestValue.isNaN) {
                                    best = candidate; bestValue = v
                                }
                            }
                        }
                        let o = (c * oh + oy) * ow + ox
                        y[o] = bestValue
                        ix[o] = Int32(truncatingIfNeeded: best)
                    }
                }
            }
        }
    }

    /// The 2×2 / stride 2 / padding 0 forward (the `cnn`'s): each output row reads two input rows; 8 outputs at a
    /// time from 16-wide loads split into even and odd columns, the four candidates compared in scan order with
    /// the same tie and NaN rules as the general loop (a later candidate wins only if larger, or NaN over a
    /// number), then a scalar tail.
    @inlinable
    func forward2x2(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                    indices: UnsafeMutablePointer<Int32>, batch: Int) {
        let oh = outHeight, ow = outWidth, p = height * width, w = width
        let lane = SIMD8<Int32>(0, 2, 4, 6, 8, 10, 12, 14)
        let offsets = (SIMD8<Int32>(repeating: 1), SIMD8<Int32>(repeating: Int32(w)),
                       SIMD8<Int32>(repeating: Int32(w + 1)))
        @inline(__always) func wins(_ v: Lanes, _ best: Lanes) -> SIMDMask<SIMD8<Int32>> {
            (v .> best) .| ((v .!= v) .& (best .== best))
        }
        for n in 0..<batch {
            let x = input + n * inputSize
            let y = output + n * outputSize, ix = indices + n * outputSize
            for c in 0..<channels {
                for oy in 0..<oh {
                    let rowOffset = c * p + 2 * oy * w
                    let a = x + rowOffset, b = a + w
                    let yRow = y + (c * oh + oy) * ow, iRow = ix + (c * oh + oy) * ow
                    var ox = 0
                    while ox + 8 <= ow {
                        let ra = UnsafeRawPointer(a + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                        let rb = UnsafeRawPointer(b + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                        var best = ra.evenHalf, offset = SIMD8<Int32>.zero
                        var v = ra.oddHalf, m = wins(v, best)
                        best.replace(with: v, where: m); offset.replace(with: offsets.0, where: m)
                        v = rb.evenHalf; m = wins(v, best)
                        best.replace(with: v, where: m); offset.replace(with: offsets.1, where: m)
                        v = rb.oddHalf; m = wins(v, best)
                        best.replace(with: v, where: m); offset.replace(with: offsets.2, where: m)
                        storeLanes(best, yRow + ox)
                        let index = offset &+ lane &+ Int32(truncatingIfNeeded: rowOffset + 2 * ox)
                        UnsafeMutableRawPointer(iRow + ox).storeBytes(of: index, as: SIMD8<Int32>.self)
                        ox += 8
                    }
                    while ox < ow {
                        let i0 = 2 * ox
                        var best = i0, bestValue = a[i0]
                        @inline(__always) func consider(_ candidate: Int, _ v: Float) {
                            if v > bestValue || (v.isNaN && !bestValue.isNaN) { best = candidate; bestValue = v }
                        }
                        consider(i0 + 1, a[i0 + 1])
                        consider(w + i0, b[i0])
                        consider(w + i0 + 1, b[i0 + 1])
                        yRow[ox] = bestValue
                        iRow[ox] = Int32(truncatingIfNeeded: rowOffset + best)
                        ox += 1
                    }
                }
            }
        }
    }

    /// dX[argmax] += dY, zero elsewhere (overlapping windows add). dOutput: (B, C, Ho, Wo), dInput: (B, C, H, W)
    /// is **overwritten**. Uses the `indices` cached by `forward`.
    @inlinable
    public func backward(dOutput: UnsafePointer<Float>, indices: UnsafePointer<Int32>,
                         dInput: UnsafeMutablePointer<Float>, batch: Int) {
        dInput.update(repeating: 0, count: batch * inputSize)
        for n in 0..<batch {
            let dX = dInput + n * inputSize, dY = dOutput + n * outputSize, ix = indices + n * outputSize
            for o in 0..<outputSize { dX[Int(ix[o])] += dY[o] }
        }
    }
}
