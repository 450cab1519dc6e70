import Foundation
import Testing
import Data
import FileIO
import Tensor

/// Collects progress lines from the loader.
final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [String] = []
    var all: [String] { lock.lock(); defer { lock.unlock() }; return stored }
    func add(_ line: String) { lock.lock(); stored.append(line); lock.unlock() }
}

/// A smooth (height, width, channels) image, so JPEG's loss stays small.
func gradientImage(width: Int, height: Int, channels: Int, seed: Int = 0) -> DecodedImage {
    var pixels: [UInt8] = []
    for y in 0..<height {
        for x in 0..<width {
            for c in 0..<channels { pixels.append(UInt8((40 + 8 * x + 5 * y + 30 * c + 3 * seed) % 256)) }
        }
    }
    return DecodedImage(width: width, height: height, channels: channels, pixels: pixels)
}

@Suite("Image folders and npy arrays")
struct ImageFolderTests {
    @Test func pngFolderDecodesToTheIDXPixels() throws {
        let (count, height, width) = (12, 5, 4)
        let directory = try TemporaryDirectory()
        let pixels = patternImages(count: count, height: height, width: width)
        let labels = (0..<count).map { UInt8($0 % 3) }
        try directory.write("idx/train-images-idx3-ubyte",
                            idxBytes(dimensions: [UInt32(count), UInt32(height), UInt32(width)], data: pixels))
        try directory.write("idx/train-labels-idx1-ubyte", idxBytes(dimensions: [UInt32(count)], data: labels))
        let idx = try loadDataset(name: "mnist", directory: directory.path + "/idx", split: .train)
        for i in 0..<count {
            let image = DecodedImage(width: width, height: height, channels: 1, pixels: Array(idx.image(i)))
            let name = String(format: "folder/%@/%@/img%03d.png", "train", "\(labels[i])", i)
            try directory.write(name, encodePNG(image))
            if i < 6 {
                try directory.write(String(format: "folder/test/%d/img%03d.png", labels[i], i), encodePNG(image))
            }
        }
        let folder = try loadDataset(name: "folder", directory: directory.path + "/folder", split: .train)
        #expect(folder.count == count && folder.channels == 1 && folder.height == height && folder.width == width)
        #expect(folder.classes == 3)
        // ImageFolder's order: class by class, files sorted.
        let order = (0..<count).sorted { (labels[$0], $0) < (labels[$1], $1) }
        for (k, i) in order.enumerated() {
            #expect(Array(folder.image(k)) == Array(idx.image(i)), "image \(k) is not IDX image \(i)")
            #expect(folder.labels[k] == Int32(labels[i]))
        }
        let test = try loadDataset(name: "folder", directory: directory.path + "/folder", split: .test)
        #expect(test.count == 6 && test.classes == 3)
    }

    @Test func rgbAndJPEGAndSortedClassIds() throws {
        let directory = try TemporaryDirectory()
        // Class folders "b", "a", "C": ids in code point order, C=0, a=1, b=2 (Python's sorted, as ImageFolder).
        let rgb = gradientImage(width: 6, height: 5, channels: 3)
        try directory.write("train/b/x.png", encodePNG(rgb))
        try directory.write("train/a/y.jpg", encodeJPEG(gradientImage(width: 6, height: 5, channels: 3, seed: 1),
                                                       quality: 100))
        try directory.write("train/C/z.JPEG", encodeJPEG(gradientImage(width: 6, height: 5, channels: 3, seed: 2),
                                                        quality: 100))
        try directory.write("train/C/notes.txt", Array("not an image".utf8))
        try directory.write("val/a/v.png", encodePNG(rgb))
        let data = try loadDataset(name: "folder", directory: directory.path, split: .train)
        #expect(data.count == 3 && data.channels == 3 && data.classes == 3)
        #expect(Array(data.labels.storage) == [0, 1, 2])
        // The PNG (class b, last) is exact, in (channels, height, width) order.
        let plane = 30
        for c in 0..<3 { for p in 0..<plane { #expect(data.image(2)[c * plane + p] == rgb.pixels[p * 3 + c]) } }
        // The JPEGs within JPEG's loss of the originals.
        let original = gradientImage(width: 6, height: 5, channels: 3, seed: 1)
        var worst = 0
        for c in 0..<3 {
            for p in 0..<plane {
                worst = max(worst, abs(Int(data.image(1)[c * plane + p]) - Int(original.pixels[p * 3 + c])))
            }
        }
        #expect(worst <= 12, "JPEG at quality 100 differs by \(worst)")
        let test = try loadDataset(name: "folder", directory: directory.path, split: .test)   // val/ for test
        #expect(test.count == 1 && test.labels[0] == 1)
    }

    @Test func grayscaleJPEGHasOneChannel() throws {
        let image = gradientImage(width: 8, height: 8, channels: 1)
        let decoded = try decodeJPEG(encodeJPEG(image, quality: 100), name: "g.jpg")
        #expect(decoded.channels == 1 && decoded.width == 8 && decoded.height == 8)
    }

    @Test func corruptFilesAreNamed() throws {
        let directory = try TemporaryDirectory()
        let png = encodePNG(gradientImage(width: 6, height: 5, channels: 1))
        let jpeg = encodeJPEG(gradientImage(width: 16, height: 16, channels: 1))
        try directory.write("train/a/ok.png", png)
        try directory.write("train/a/truncated.png", Array(png.prefix(png.count / 2)))
        #expect { _ = try loadDataset(name: "folder", directory: directory.path, split: .train) } throws: { error in
            let e = error as! DataError
            return e.kind == .corruptImage && e.description.contains("truncated.png")
        }
        let second = try TemporaryDirectory()
        try second.write("train/a/cut.jpg", Array(jpeg.prefix(jpeg.count / 2)))
        #expect { _ = try loadDataset(name: "folder", directory: second.path, split: .train) } throws: { error in
            let e = error as! DataError
            return e.kind == .corruptImage && e.description.contains("cut.jpg") && e.description.contains("JPEG")
        }
        let third = try TemporaryDirectory()
        try third.write("train/a/text.png", Array("hello, not a png".utf8))
        #expect { _ = try loadDataset(name: "folder", directory: third.path, split: .train) } throws: { error in
            (error as! DataError).description.contains("text.png: not a PNG or JPEG file")
        }
    }

    @Test func emptyClassMixedChannelsAndMixedSizesAreErrors() throws {
        let directory = try TemporaryDirectory()
        try directory.write("train/a/1.png", encodePNG(gradientImage(width: 6, height: 5, channels: 1)))
        try FileManager.default.createDirectory(atPath: directory.path + "/train/b", withIntermediateDirectories: true)
        #expect { _ = try loadDataset(name: "folder", directory: directory.path, split: .train) } throws: { error in
            let e = error as! DataError
            return e.kind == .emptyClass && e.file.hasSuffix("train/b")
        }
        try directory.write("train/b/2.png", encodePNG(gradientImage(width: 6, height: 5, channels: 3)))
        #expect { _ = try loadDataset(name: "folder", directory: directory.path, split: .train) } throws: { error in
            let e = error as! DataError
            return e.kind == .mixedChannels && e.file.hasSuffix("train/b/2.png") && e.detail.contains("a/1.png")
        }
        try directory.write("train/b/2.png", encodePNG(gradientImage(width: 7, height: 5, channels: 1)))
        #expect { _ = try loadDataset(name: "folder", directory: directory.path, split: .train) } throws: { error in
            let e = error as! DataError
            return e.kind == .mixedSizes && e.detail.contains("--image-size")
        }
        // With a target size every image is resized bilinearly, as Dataset.resized does.
        let options = ImageLoadOptions(imageSize: 4, cacheDirectory: directory.path + "/cache")
        let data = try loadDataset(name: "folder", directory: directory.path, split: .train, images: options)
        #expect(data.count == 2 && data.height == 4 && data.width == 4)
        let source = gradientImage(width: 7, height: 5, channels: 1).pixels
        var expected = [UInt8](repeating: 0, count: 16)
        source.withUnsafeBufferPointer { s in
            expected.withUnsafeMutableBufferPointer {
                resizeBilinear(s, planes: 1, height: 5, width: 7, into: $0, outHeight: 4, outWidth: 4)
            }
        }
        #expect(Array(data.image(1)) == expected)
    }

    @Test func decodedImagesAreCachedUntilAFileChanges() throws {
        let directory = try TemporaryDirectory()
        for i in 0..<4 {
            try directory.write("train/\(i % 2)/\(i).png", encodePNG(gradientImage(width: 5, height: 5, channels: 3,
                                                                                    seed: i)))
        }
        func load() throws -> (Dataset, [String]) {
            let lines = Lines()
            let options = ImageLoadOptions(progress: { lines.add($0) })
            return (try loadDataset(name: "folder", directory: directory.path, split: .train, images: options),
                    lines.all)
        }
        let (first, firstLines) = try load()
        #expect(firstLines.contains { $0.contains("decoded 4/4 images") })
        #expect(firstLines.contains { $0.contains("cached the decoded images in \(directory.path)/.dtrain-cache/") })
        let (again, againLines) = try load()
        #expect(againLines.count == 1 && againLines[0].contains("from the cache"))
        #expect(Array(again.images.storage) == Array(first.images.storage))
        #expect(Array(again.labels.storage) == Array(first.labels.storage))
        #expect(again.mean == first.mean && again.std == first.std)
        // A changed file (other size, so other key) is decoded again.
        try directory.write("train/1/3.png", encodePNG(gradientImage(width: 5, height: 5, channels: 3, seed: 9)))
        let (_, changedLines) = try load()
        #expect(changedLines.contains { $0.contains("decoded 4/4") })
    }

    @Test func meanAndStdAreMeasuredPerChannel() throws {
        let images = Buffer<UInt8>([0, 255, 10, 10, 255, 0, 10, 10])   // 2 images × 2 channels × 2 pixels
        let stats = channelStatistics(images, count: 2, channels: 2, planeSize: 2)
        #expect(stats.mean[0] == 0.5 && abs(stats.std[0] - 0.5) < 1e-6)
        #expect(abs(stats.mean[1] - 10 / 255) < 1e-6 && stats.std[1] == 1)   // a constant channel: std 1
    }

    @Test func npyArraysLoadInChannelFirstOrder() throws {
        let directory = try TemporaryDirectory()
        // (N, H, W, C) = (3, 2, 2, 3), pixel value 100·n + 10·c + p.
        var hwc: [UInt8] = []
        for n in 0..<3 { for p in 0..<4 { for c in 0..<3 { hwc.append(UInt8(100 * n + 10 * c + p)) } } }
        try directory.write("train/images.npy", npyBytes(uint8: hwc, shape: [3, 2, 2, 3]))
        try directory.write("train/labels.npy", npyBytes(int64: [0, 4, 2], shape: [3]))
        try directory.write("test/images.npy", npyBytes(uint8: Array(hwc.prefix(12)), shape: [1, 2, 2, 3]))
        try directory.write("test/labels.npy", npyBytes(int64: [3], shape: [1]))
        let train = try loadDataset(name: "npy", directory: directory.path, split: .train)
        #expect(train.count == 3 && train.channels == 3 && train.height == 2 && train.width == 2)
        #expect(train.classes == 5 && Array(train.labels.storage) == [0, 4, 2])
        for n in 0..<3 { for c in 0..<3 { for p in 0..<4 {
            #expect(train.image(n)[c * 4 + p] == UInt8(100 * n + 10 * c + p))
        } } }
        let test = try loadDataset(name: "npy", directory: directory.path, split: .test)
        #expect(test.count == 1 && test.classes == 5 && test.labels[0] == 3)
        // Grayscale (N, H, W).
        try directory.write("gray/train/images.npy", npyBytes(uint8: [1, 2, 3, 4], shape: [1, 2, 2]))
        try directory.write("gray/train/labels.npy", npyBytes(int64: [0], shape: [1]))
        #expect(try loadDataset(name: "npy", directory: directory.path + "/gray", split: .train).channels == 1)
        // Errors name the file.
        try directory.write("bad/train/images.npy", npyBytes(int64: [1, 2, 3, 4], shape: [1, 2, 2]))
        try directory.write("bad/train/labels.npy", npyBytes(int64: [0], shape: [1]))
        #expect { _ = try loadDataset(name: "npy", directory: directory.path + "/bad", split: .train) } throws: {
            let e = $0 as! DataError
            return e.file.hasSuffix("bad/train/images.npy") && e.detail.contains("uint8")
        }
        try directory.write("bad/train/images.npy", npyBytes(uint8: [1, 2, 3, 4], shape: [1, 2, 2]))
        try directory.write("bad/train/labels.npy", npyBytes(int64: [0, 1], shape: [2]))
        #expect { _ = try loadDataset(name: "npy", directory: directory.path + "/bad", split: .train) } throws: {
            ($0 as! DataError).file.hasSuffix("bad/train/labels.npy")
        }
        #expect { _ = try loadDataset(name: "npy", directory: directory.path + "/nowhere", split: .train) } throws: {
            ($0 as! DataError).kind == .missingFile
        }
    }
}
