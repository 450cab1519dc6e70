// Legend: B = batch, C = channels, H×W = input size, (H/2)×(W/2) = output size (floor, as PyTorch).

/// 2×2 max pooling with stride 2 (PyTorch `MaxPool2d(2)`), caching the argmax of each window for backward.
///
/// x: (B, C, H, W), y: (B, C, ⌊H/2⌋, ⌊W/2⌋). Odd trailing rows/columns are dropped. Ties go to the first
/// element in scan order (top-left, top-right, bottom-left, bottom-right) and a NaN wins, as in PyTorch's CPU
/// kernel. `indices` (one Int32 per output element, owned by the caller) holds the argmax as the offset
/// c·H·W + y·W + x within the sample.
public struct MaxPool2d: Sendable {
    public let channels: Int, height: Int, width: Int
    public init(channels: Int, height: Int, width: Int) {
        precondition(channels > 0 && height >= 2 && width >= 2,
                     "MaxPool2d: C=\(channels) H=\(height) W=\(width) (need H, W ≥ 2)")
        self.channels = channels; self.height = height; self.width = width
    }
    public var outHeight: Int { height / 2 }
    public var outWidth: Int { width / 2 }
    /// Elements per input sample, C·H·W.
    public var inputSize: Int { channels * height * width }
    /// Elements per output sample (and indices per sample), C·⌊H/2⌋·⌊W/2⌋.
    public var outputSize: Int { channels * outHeight * outWidth }

    // MARK: - Forward / backward

    /// y = max over each 2×2 window; caches the argmax in `indices` (B·outputSize Int32).
    @inlinable
    public func forward(input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                        indices: UnsafeMutablePointer<Int32>, batch: Int) {
        let oh = outHeight, ow = outWidth, p = height * width
        for n in 0..<batch {
            let x = input + n * inputSize
            let y = output + n * outputSize, ix = indices + n * outputSize
            for c in 0..<channels {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let top = c * p + 2 * oy * width + 2 * ox
                        var best = top, bestValue = x[top]
                        for j in 1..<4 {
                            let candidate = top + (j >> 1) * width + (j & 1)
                            let v = x[candidate]
                            if v > bestValue || (v.isNaN && !bestValue.isNaN) { best = candidate; bestValue = v }
                        }
                        let o = (c * oh + oy) * ow + ox
                        y[o] = bestValue
                        ix[o] = Int32(truncatingIfNeeded: best)
                    }
                }
            }
        }
    }

    /// dX[argmax] = dY, zero elsewhere (windows do not overlap). dOutput: (B, C, H/2, W/2), dInput:
    /// (B, C, H, W) is **overwritten**. Uses the `indices` cached by `forward`.
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
