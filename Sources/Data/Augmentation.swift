import Tensor

// Two-view augmentation and batch filling, matching the PyTorch reference (../shared/peer/torch_peer.py):
//   x = (pixel/255 − mean[c]) / std[c]                    normalise first,
//   padded = F.pad(x, (2, 2, 2, 2))                        then zero-pad by 2 (so padding is 0 *after* normalising),
//   crop (H, W) at offsets dx, dy uniform in 0…4,          i.e. shift by −2…+2 with zero fill,
//   flip left–right with probability 1/2.
// Per output pixel: out[c][y][x] = x[c][y + dy − 2][x' + dx − 2] with x' = flip ? W − 1 − x : x, or 0 outside.
// The draws are one Philox block of (seed, stream .augmentation, index = image index in the dataset,
// substream = epoch·2 + view): word 0 → dx, word 1 → dy, top bit of word 2 → flip. Nothing depends on the batch,
// the rank or the order of filling, so a view is the same whichever rank produces it.

/// Crop offsets on the zero-padded image and the flip for one view.
public struct CropFlip: Equatable, Sendable {
    /// Padding on each side, in pixels.
    public static let padding = 2
    /// Column offset of the crop in the padded image, 0…2·padding (padding = no shift).
    public let dx: Int
    /// Row offset of the crop in the padded image, 0…2·padding.
    public let dy: Int
    /// Whether the crop is mirrored left–right.
    public let flip: Bool

    public init(dx: Int, dy: Int, flip: Bool) {
        precondition((0...2 * Self.padding).contains(dx) && (0...2 * Self.padding).contains(dy),
                     "crop offsets (\(dx), \(dy)) out of range 0…\(2 * Self.padding)")
        self.dx = dx
        self.dy = dy
        self.flip = flip
    }

    /// The identity view: centred crop, no flip.
    public static let identity = CropFlip(dx: padding, dy: padding, flip: false)

    /// The augmentation of view `view` (0 or 1) of image `index` at `epoch`: a pure function of its arguments.
    @inlinable
    public static func draw(seed: UInt64, epoch: Int, index: Int, view: Int) -> CropFlip {
        precondition(view == 0 || view == 1, "view must be 0 or 1, got \(view)")
        precondition(epoch >= 0 && epoch < 1 << 31, "epoch \(epoch) out of range 0..<2³¹")
        let block = CounterRNG(seed: seed).block(stream: RandomStream.augmentation.rawValue, index: UInt64(index),
                                                 substream: UInt32(epoch) << 1 | UInt32(view))
        let range = UInt64(2 * padding + 1)
        // Multiply-shift maps a 32-bit word to 0..<range (bias < range / 2³²).
        return CropFlip(dx: Int((UInt64(block.0) &* range) >> 32), dy: Int((UInt64(block.1) &* range) >> 32),
                        flip: block.2 >> 31 == 1)
    }
}

/// Writes normalised, augmented views of a dataset's images into caller buffers, without allocating.
/// Holds a (channels, 256) table of normalised values, so a pixel costs one lookup.
public struct BatchFiller: Sendable {
    public let dataset: Dataset
    /// Seed of the `.augmentation` stream.
    public let seed: UInt64
    /// table[c·256 + v] = (Float(v)/255 − mean[c]) / std[c], as the reference computes it in Float.
    let table: Buffer<Float>

    public init(dataset: Dataset, seed: UInt64) {
        self.dataset = dataset
        self.seed = seed
        table = Buffer<Float>(count: dataset.channels * 256)
        for c in 0..<dataset.channels {
            for v in 0..<256 { table[c * 256 + v] = (Float(v) / 255 - dataset.mean[c]) / dataset.std[c] }
        }
    }

    /// The normalised value of byte `value` in channel `channel`.
    public func normalised(channel: Int, value: UInt8) -> Float { table[channel * 256 + Int(value)] }

    /// Writes image `index` cropped and flipped by `crop` into `output`, (channels, height, width) Floats.
    public func fillView(index: Int, crop: CropFlip, output: UnsafeMutablePointer<Float>) {
        let height = dataset.height, width = dataset.width, plane = height * width, pad = CropFlip.padding
        let image = dataset.images.base + index * dataset.imageSize
        let dx = crop.dx, dy = crop.dy
        // Valid output columns [lo, hi): those whose source column lies inside the image.
        let lo = crop.flip ? max(0, dx - pad) : max(0, pad - dx)
        let hi = max(lo, crop.flip ? min(width, width + dx - pad) : min(width, width + pad - dx))
        for c in 0..<dataset.channels {
            let lut = table.base + c * 256
            let source = image + c * plane, destination = output + c * plane
            for y in 0..<height {
                let row = destination + y * width
                let sy = y + dy - pad
                if sy < 0 || sy >= height {
                    row.update(repeating: 0, count: width)
                    continue
                }
                let sourceRow = source + sy * width
                if lo > 0 { row.update(repeating: 0, count: lo) }
                if hi < width { (row + hi).update(repeating: 0, count: width - hi) }
                if crop.flip {
                    let mirror = sourceRow + (width - 1 + dx - pad)  // source column = (width − 1 + dx − pad) − x
                    for x in lo..<hi { row[x] = lut[Int(mirror[-x])] }
                } else {
                    let shifted = sourceRow + (dx - pad)
                    for x in lo..<hi { row[x] = lut[Int(shifted[x])] }
                }
            }
        }
    }

    /// Writes view `view` of image `index` at `epoch` (augmentation drawn by `CropFlip.draw`) into `output`.
    public func fillView(index: Int, epoch: Int, view: Int, output: UnsafeMutablePointer<Float>) {
        fillView(index: index, crop: CropFlip.draw(seed: seed, epoch: epoch, index: index, view: view),
                 output: output)
    }

    /// Writes image `index` normalised, without augmentation, into `output`.
    public func fillPlain(index: Int, output: UnsafeMutablePointer<Float>) {
        let plane = dataset.height * dataset.width
        let image = dataset.images.base + index * dataset.imageSize
        for c in 0..<dataset.channels {
            let lut = table.base + c * 256
            let source = image + c * plane, destination = output + c * plane
            for p in 0..<plane { destination[p] = lut[Int(source[p])] }
        }
    }

    /// Fills the two-view training input for the images `permutation[positions]` (b = positions.count):
    /// input rows [0, b) = view 0 of each image in order, rows [b, 2b) = view 1; labels likewise.
    /// input: (2b, channels, height, width) at least; labels: (2b) at least.
    public func fillTrainingBatch(permutation: [Int], positions: Range<Int>, epoch: Int,
                                  input: UnsafeMutableBufferPointer<Float>,
                                  labels: UnsafeMutableBufferPointer<Int32>) {
        let b = positions.count, size = dataset.imageSize
        precondition(positions.lowerBound >= 0 && positions.upperBound <= permutation.count,
                     "positions \(positions) beyond the permutation of \(permutation.count)")
        precondition(input.count >= 2 * b * size, "input holds \(input.count) Floats, need 2×\(b)×\(size)")
        precondition(labels.count >= 2 * b, "labels hold \(labels.count) entries, need 2×\(b)")
        let output = input.baseAddress!
        for (row, position) in positions.enumerated() {
            let index = permutation[position]
            precondition(index >= 0 && index < dataset.count, "image index \(index) out of range 0..<\(dataset.count)")
            let label = dataset.labels[index]
            for view in 0..<2 {
                let r = view * b + row
                fillView(index: index, epoch: epoch, view: view, output: output + r * size)
                labels[r] = label
            }
        }
    }

    /// Fills the two-view training input for the images `indices` (all of them), as `fillTrainingBatch`.
    public func fillTrainingBatch(indices: [Int], epoch: Int, input: UnsafeMutableBufferPointer<Float>,
                                  labels: UnsafeMutableBufferPointer<Int32>) {
        fillTrainingBatch(permutation: indices, positions: 0..<indices.count, epoch: epoch, input: input,
                          labels: labels)
    }

    /// Fills un-augmented images `indices` (dataset order, e.g. the test set in chunks) for evaluation:
    /// input rows [0, b) = the normalised images, labels (b).
    public func fillEvaluationBatch(indices: Range<Int>, input: UnsafeMutableBufferPointer<Float>,
                                    labels: UnsafeMutableBufferPointer<Int32>) {
        let size = dataset.imageSize
        precondition(indices.lowerBound >= 0 && indices.upperBound <= dataset.count,
                     "indices \(indices) out of range 0..<\(dataset.count)")
        precondition(input.count >= indices.count * size,
                     "input holds \(input.count) Floats, need \(indices.count)×\(size)")
        precondition(labels.count >= indices.count, "labels hold \(labels.count) entries, need \(indices.count)")
        for (row, index) in indices.enumerated() {
            fillPlain(index: index, output: input.baseAddress! + row * size)
            labels[row] = dataset.labels[index]
        }
    }
}
