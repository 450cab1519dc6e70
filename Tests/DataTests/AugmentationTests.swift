import Testing
import Data
import Tensor

/// The reference transform written out naively, straight from torch_peer.py's `augment`: normalise, zero-pad by 2,
/// crop at (dy, dx), flip.  Returns (channels, height, width).
func referenceView(_ dataset: Dataset, index: Int, crop: CropFlip) -> [Float] {
    let h = dataset.height, w = dataset.width, pad = CropFlip.padding
    let image = Array(dataset.image(index))
    var out: [Float] = []
    for c in 0..<dataset.channels {
        // padded[c][py][px], (h + 4, w + 4), zeros around the normalised image.
        var padded = [[Float]](repeating: [Float](repeating: 0, count: w + 2 * pad), count: h + 2 * pad)
        for y in 0..<h {
            for x in 0..<w {
                let v = image[(c * h + y) * w + x]
                padded[y + pad][x + pad] = (Float(v) / 255 - dataset.mean[c]) / dataset.std[c]
            }
        }
        var cropped = (0..<h).map { y in (0..<w).map { x in padded[y + crop.dy][x + crop.dx] } }
        if crop.flip { cropped = cropped.map { Array($0.reversed()) } }
        out += cropped.flatMap { $0 }
    }
    return out
}

func smallDataset(count: Int = 40, channels: Int = 3, height: Int = 6, width: Int = 5) -> Dataset {
    syntheticDataset(count: count, classes: 4, channels: channels, height: height, width: width, seed: 5)
}

@Suite("Augmentation and batch filling")
struct AugmentationTests {
    @Test func everyCropAndFlipMatchesTheReferenceTransform() {
        for dataset in [smallDataset(), smallDataset(channels: 1, height: 28, width: 28),
                        smallDataset(channels: 1, height: 3, width: 1)] {
            let filler = BatchFiller(dataset: dataset, seed: 1)
            var out = [Float](repeating: .nan, count: dataset.imageSize)
            for dx in 0...4 {
                for dy in 0...4 {
                    for flip in [false, true] {
                        let crop = CropFlip(dx: dx, dy: dy, flip: flip)
                        out.withUnsafeMutableBufferPointer {
                            filler.fillView(index: 3, crop: crop, output: $0.baseAddress!)
                        }
                        #expect(out == referenceView(dataset, index: 3, crop: crop), "crop \(crop)")
                    }
                }
            }
        }
    }

    @Test func identityCropIsTheNormalisedImage() {
        let dataset = smallDataset()
        let filler = BatchFiller(dataset: dataset, seed: 1)
        var view = [Float](repeating: .nan, count: dataset.imageSize), plain = view
        view.withUnsafeMutableBufferPointer { filler.fillView(index: 7, crop: .identity, output: $0.baseAddress!) }
        plain.withUnsafeMutableBufferPointer { filler.fillPlain(index: 7, output: $0.baseAddress!) }
        let image = Array(dataset.image(7)), plane = dataset.height * dataset.width
        let expected = (0..<dataset.imageSize).map { p in
            (Float(image[p]) / 255 - dataset.mean[p / plane]) / dataset.std[p / plane]
        }
        #expect(view == expected)
        #expect(plain == expected)
    }

    @Test func paddingIsZeroInNormalisedSpace() {
        // All-white 1×4×4 images: every real pixel normalises to (1 − mean)/std ≠ 0, padding stays exactly 0.
        let images = Buffer<UInt8>(count: 16, repeating: 255), labels = Buffer<Int32>(count: 1, repeating: 0)
        let dataset = Dataset(name: "white", images: images, labels: labels, count: 1, channels: 1, height: 4,
                              width: 4, classes: 1, mean: [0.5], std: [0.25])
        let filler = BatchFiller(dataset: dataset, seed: 0)
        var out = [Float](repeating: .nan, count: 16)
        out.withUnsafeMutableBufferPointer {
            filler.fillView(index: 0, crop: CropFlip(dx: 0, dy: 4, flip: false), output: $0.baseAddress!)
        }
        // Shifted right by 2 and up by 2: rows 2, 3 and columns 0, 1 are padding.
        let white: Float = 2
        let expected: [Float] = [0, 0, white, white,
                                 0, 0, white, white,
                                 0, 0, 0, 0,
                                 0, 0, 0, 0]
        #expect(out == expected)
        out.withUnsafeMutableBufferPointer {
            filler.fillView(index: 0, crop: CropFlip(dx: 0, dy: 4, flip: true), output: $0.baseAddress!)
        }
        #expect(out == [white, white, 0, 0, white, white, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func drawsCoverOffsetsAndFlipHalfTheTime() {
        var dxCounts = [Int](repeating: 0, count: 5), dyCounts = dxCounts, flips = 0
        let n = 20_000
        for index in 0..<n / 2 {
            for view in 0..<2 {
                let crop = CropFlip.draw(seed: 3, epoch: 1, index: index, view: view)
                dxCounts[crop.dx] += 1
                dyCounts[crop.dy] += 1
                flips += crop.flip ? 1 : 0
            }
        }
        // Each offset has probability 1/5 (4000 expected, σ ≈ 57); flips 1/2 (10000 expected, σ ≈ 71).
        for k in 0..<5 {
            #expect(abs(dxCounts[k] - n / 5) < 400, "dx = \(k): \(dxCounts[k])")
            #expect(abs(dyCounts[k] - n / 5) < 400, "dy = \(k): \(dyCounts[k])")
        }
        #expect(abs(flips - n / 2) < 500, "flips \(flips)")
        // Views, epochs and seeds draw independently.
        let same = (0..<1000).filter {
            CropFlip.draw(seed: 3, epoch: 1, index: $0, view: 0) == CropFlip.draw(seed: 3, epoch: 1, index: $0, view: 1)
        }.count
        #expect(same < 150)  // 1/50 expected
        #expect((0..<100).contains {
            CropFlip.draw(seed: 3, epoch: 1, index: $0, view: 0) != CropFlip.draw(seed: 3, epoch: 2, index: $0, view: 0)
        })
    }

    @Test(arguments: [2, 3, 4])
    func viewsAreIndependentOfRankAndBatch(ranks: Int) throws {
        let dataset = smallDataset(count: 100, channels: 1, height: 28, width: 28)
        let filler = BatchFiller(dataset: dataset, seed: 11)
        let sampler = try EpochSampler(count: dataset.count, globalBatch: 10, ranks: ranks, seed: 11)
        let epoch = 3, step = 4, size = dataset.imageSize, batch = sampler.globalBatch
        let permutation = sampler.permutation(epoch: epoch)
        // One rank fills the whole global batch.
        let whole = Buffer<Float>(count: 2 * batch * size), wholeLabels = Buffer<Int32>(count: 2 * batch)
        filler.fillTrainingBatch(permutation: permutation, positions: sampler.globalPositions(step: step),
                                 epoch: epoch, input: whole.storage, labels: wholeLabels.storage)
        // Each rank fills its share; its rows must equal the matching rows of the whole batch, per view.
        for rank in 0..<ranks {
            let local = sampler.localPositions(step: step, rank: rank)
            let b = local.count
            let part = Buffer<Float>(count: 2 * b * size), partLabels = Buffer<Int32>(count: 2 * b)
            filler.fillTrainingBatch(permutation: permutation, positions: local, epoch: epoch, input: part.storage,
                                     labels: partLabels.storage)
            let offset = local.lowerBound - sampler.globalPositions(step: step).lowerBound
            for view in 0..<2 {
                for row in 0..<b {
                    let mine = Array(part.storage[(view * b + row) * size ..< (view * b + row + 1) * size])
                    let global = view * batch + offset + row
                    let theirs = Array(whole.storage[global * size ..< (global + 1) * size])
                    #expect(mine == theirs, "rank \(rank) view \(view) row \(row)")
                    #expect(partLabels[view * b + row] == wholeLabels[global])
                    #expect(partLabels[view * b + row] == dataset.labels[permutation[local.lowerBound + row]])
                }
            }
        }
        // And a single image filled on its own gives the same view.
        let index = permutation[sampler.globalPositions(step: step).lowerBound + 1]
        var single = [Float](repeating: 0, count: 2 * size)
        var singleLabels = [Int32](repeating: -1, count: 2)
        single.withUnsafeMutableBufferPointer { input in
            singleLabels.withUnsafeMutableBufferPointer { labels in
                filler.fillTrainingBatch(indices: [index], epoch: epoch, input: input, labels: labels)
            }
        }
        #expect(Array(single[size...]) == Array(whole.storage[(batch + 1) * size ..< (batch + 2) * size]))
        #expect(singleLabels == [dataset.labels[index], dataset.labels[index]])
    }

    @Test func evaluationBatchIsPlainAndInOrder() {
        let dataset = smallDataset()
        let filler = BatchFiller(dataset: dataset, seed: 0)
        let size = dataset.imageSize
        let input = Buffer<Float>(count: 5 * size), labels = Buffer<Int32>(count: 5)
        filler.fillEvaluationBatch(indices: 10..<15, input: input.storage, labels: labels.storage)
        for row in 0..<5 {
            #expect(Array(input.storage[row * size ..< (row + 1) * size])
                        == referenceView(dataset, index: 10 + row, crop: .identity))
            #expect(labels[row] == dataset.labels[10 + row])
        }
    }

    @Test func throughput() throws {
        // Timing only (no assertion: debug builds are slow); run `swift test -c release` for real numbers.
        let dataset = syntheticDataset(count: 2048, classes: 10, channels: 1, height: 28, width: 28, seed: 1)
        let filler = BatchFiller(dataset: dataset, seed: 1)
        let sampler = try EpochSampler(count: dataset.count, globalBatch: 512, ranks: 1, seed: 1)
        let permutation = sampler.permutation(epoch: 0)
        let input = Buffer<Float>(count: 2 * 512 * dataset.imageSize), labels = Buffer<Int32>(count: 2 * 512)
        var best = Double.infinity
        for step in 0..<4 {
            let t0 = monotonicSeconds()
            filler.fillTrainingBatch(permutation: permutation, positions: sampler.globalPositions(step: step), epoch: 0,
                                     input: input.storage, labels: labels.storage)
            best = min(best, monotonicSeconds() - t0)
        }
        print("augmentation: 512 images × 2 views (28×28) in \(best * 1e3) ms = "
              + "\(best * 1e3 / 5.12) ms per 100 images")
    }
}

@Suite("Synthetic dataset")
struct SyntheticTests {
    @Test func isDeterministicAndInRange() {
        let a = syntheticDataset(count: 200, classes: 7, channels: 2, height: 9, width: 11, seed: 4)
        let b = syntheticDataset(count: 200, classes: 7, channels: 2, height: 9, width: 11, seed: 4)
        let c = syntheticDataset(count: 200, classes: 7, channels: 2, height: 9, width: 11, seed: 5)
        #expect(Array(a.images.storage) == Array(b.images.storage))
        #expect(Array(a.labels.storage) == Array(b.labels.storage))
        #expect(Array(a.images.storage) != Array(c.images.storage))
        #expect(a.labels.storage.allSatisfy { $0 >= 0 && $0 < 7 })
        #expect(Set(a.labels.storage).count == 7)
        #expect(a.mean.count == 2 && a.std.allSatisfy { $0 > 0.05 })
    }

    @Test func isLearnableByNearestClassMean() {
        // Class means from the train split classify the test split (same templates, fresh noise) almost perfectly.
        let train = syntheticDataset(count: 500, classes: 10, channels: 1, height: 28, width: 28, seed: 2,
                                     split: .train)
        let test = syntheticDataset(count: 200, classes: 10, channels: 1, height: 28, width: 28, seed: 2, split: .test)
        #expect(Array(train.images.storage.prefix(784)) != Array(test.images.storage.prefix(784)))
        let size = train.imageSize
        var means = [Double](repeating: 0, count: 10 * size), counts = [Double](repeating: 0, count: 10)
        for i in 0..<train.count {
            let k = Int(train.labels[i])
            counts[k] += 1
            for p in 0..<size { means[k * size + p] += Double(train.images[i * size + p]) }
        }
        for k in 0..<10 { for p in 0..<size { means[k * size + p] /= max(1, counts[k]) } }
        var correct = 0
        for i in 0..<test.count {
            var best = 0, bestDistance = Double.infinity
            for k in 0..<10 {
                var d = 0.0
                for p in 0..<size { let e = Double(test.images[i * size + p]) - means[k * size + p]; d += e * e }
                if d < bestDistance { bestDistance = d; best = k }
            }
            correct += best == Int(test.labels[i]) ? 1 : 0
        }
        #expect(correct >= 190, "nearest class mean: \(correct)/200")
    }
}
