import Testing
import Tensor
import Model

// The 2×2 / stride 2 max-pool's 8-lane forward against a plain loop over each window in scan order (the first
// maximum wins, a NaN wins over a number), on rows wide enough for the vector part, with ties and NaNs.

@Suite struct MaxPoolKernelTests {
    @Test(arguments: [(3, 28, 28, 2), (2, 6, 35, 1), (1, 5, 17, 3), (4, 14, 14, 2)])
    func vectorForwardMatchesScanOrder(shape: (Int, Int, Int, Int)) {
        let (channels, h, w, batch) = shape
        let pool = MaxPool2d(channels: channels, height: h, width: w)
        let x = Arena(count: batch * pool.inputSize), y = Arena(count: batch * pool.outputSize)
        let indices = Buffer<Int32>(count: batch * pool.outputSize, repeating: -1)
        fillUniform(x.base, count: x.count, seed: 50)
        // Coarse values make ties common; a few NaNs (one window with two).
        for i in 0..<x.count { x.base[i] = (x.base[i] * 4).rounded() }
        for i in stride(from: 5, to: x.count, by: 97) { x.base[i] = .nan }
        x.base[1] = .nan; x.base[w + 1] = .nan
        pool.forward(input: x.base, output: y.base, indices: indices.base, batch: batch)
        let oh = pool.outHeight, ow = pool.outWidth
        for n in 0..<batch {
            let img = x.base + n * pool.inputSize
            for c in 0..<channels {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var best = c * h * w + 2 * oy * w + 2 * ox
                        for (dy, dx) in [(0, 1), (1, 0), (1, 1)] {
                            let i = c * h * w + (2 * oy + dy) * w + 2 * ox + dx
                            if img[i] > img[best] || (img[i].isNaN && !img[best].isNaN) { best = i }
                        }
                        let o = n * pool.outputSize + (c * oh + oy) * ow + ox
                        #expect(Int(indices.base[o]) == best, "index n\(n) c\(c) \(oy),\(ox)")
                        let v = y.base[o], e = img[best]
                        #expect(v == e || (v.isNaN && e.isNaN), "value n\(n) c\(c) \(oy),\(ox)")
                    }
                }
            }
        }
    }
}
