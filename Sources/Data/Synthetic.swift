import Tensor

// A learnable synthetic dataset for tests and smoke runs. Each class has a template: a 4×4 grid of blocks per
// channel, each block a uniform grey level in 0…255 (blocky, so ±2-pixel crops and flips keep it recognisable).
// An image is its class template plus uniform noise in [−48, 48], clamped to 0…255. Everything is a pure function
// of (seed, split, image index): templates of (seed, class) are shared by both splits.

/// Half-width of the uniform pixel noise added to the class template.
public let syntheticNoise: Float = 48

/// A deterministic synthetic dataset of `count` images (channels, height, width) in `classes` classes.
/// Label of image i = a counter-based draw of (seed, split, i); mean/std are measured on the generated pixels.
public func syntheticDataset(count: Int, classes: Int, channels: Int, height: Int, width: Int,
                             seed: UInt64, split: Split = .train) -> Dataset {
    precondition(count > 0 && classes > 0 && channels > 0 && height > 0 && width > 0,
                 "synthetic sizes must be positive: count \(count), classes \(classes), "
                     + "shape \(channels)×\(height)×\(width)")
    let rng = CounterRNG(seed: seed)
    let grid = 4
    let splitCode: UInt32 = split == .train ? 0 : 1
    var templates = [Float](repeating: 0, count: classes * channels * grid * grid)
    for k in 0..<templates.count {
        templates[k] = 255 * rng.uniform(stream: .synthetic, index: UInt64(k), substream: 0)
    }
    let plane = height * width, imageSize = channels * plane
    let images = Buffer<UInt8>(count: count * imageSize, repeating: 0)
    let labels = Buffer<Int32>(count: count, repeating: 0)
    var sum = [Double](repeating: 0, count: channels), sumSquares = [Double](repeating: 0, count: channels)
    for i in 0..<count {
        let label = rng.integer(below: classes, stream: .synthetic, index: UInt64(i), substream: 1 + splitCode)
        labels[i] = Int32(label)
        let out = images.base + i * imageSize
        for p in 0..<imageSize {
            // One Philox block per 4 pixels; word p % 4 gives this pixel's noise.
            let block = rng.block(stream: RandomStream.synthetic.rawValue, index: UInt64(i * imageSize + p) / 4,
                                  substream: 3 + splitCode)
            let word: UInt32
            switch p % 4 {
            case 0: word = block.0
            case 1: word = block.1
            case 2: word = block.2
            default: word = block.3
            }
            let noise = (Float(word >> 8) * (1.0 / 16_777_216.0) * 2 - 1) * syntheticNoise
            let c = p / plane, y = (p % plane) / width, x = p % width
            let cell = (y * grid / height) * grid + x * grid / width
            let value = templates[(label * channels + c) * grid * grid + cell] + noise
            let pixel = UInt8(max(0, min(255, value.rounded())))
            out[p] = pixel
            let v = Double(pixel) / 255
            sum[c] += v
            sumSquares[c] += v * v
        }
    }
    let n = Double(count * plane)
    let mean = sum.map { Float($0 / n) }
    let std = (0..<channels).map { c in
        Float(max(1e-6, sumSquares[c] / n - (sum[c] / n) * (sum[c] / n)).squareRoot())
    }
    return Dataset(name: "synthetic", images: images, labels: labels, count: count, channels: channels,
                   height: height, width: width, classes: classes, mean: mean, std: std)
}
