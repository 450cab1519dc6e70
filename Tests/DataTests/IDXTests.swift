import Testing
import Data
import Tensor

@Suite("IDX reader and loader")
struct IDXTests {
    let count = 12, height = 5, width = 4

    func writePair(_ directory: TemporaryDirectory, prefix: String = "train", gzip: Bool = false,
                   labels: [UInt8]? = nil) throws {
        let images = idxBytes(dimensions: [UInt32(count), UInt32(height), UInt32(width)],
                              data: patternImages(count: count, height: height, width: width))
        let labelBytes = idxBytes(dimensions: [UInt32(count)], data: labels ?? (0..<count).map { UInt8($0 % 10) })
        if gzip {
            try directory.write("\(prefix)-images-idx3-ubyte.gz", systemGzip(images))
            try directory.write("\(prefix)-labels-idx1-ubyte.gz", systemGzip(labelBytes))
        } else {
            try directory.write("\(prefix)-images-idx3-ubyte", images)
            try directory.write("\(prefix)-labels-idx1-ubyte", labelBytes)
        }
    }

    func checkPattern(_ dataset: Dataset, count expected: Int) {
        #expect(dataset.count == expected)
        #expect(dataset.channels == 1 && dataset.height == height && dataset.width == width)
        #expect(dataset.classes == 10)
        #expect(Array(dataset.images.storage) == patternImages(count: expected, height: height, width: width))
        #expect(Array(dataset.labels.storage) == (0..<expected).map { Int32($0 % 10) })
    }

    @Test func roundTripsPlainFiles() throws {
        let directory = try TemporaryDirectory()
        try writePair(directory)
        let dataset = try loadDataset(name: "mnist", directory: directory.path, split: .train)
        checkPattern(dataset, count: count)
        #expect(dataset.mean == [0.1307] && dataset.std == [0.3081])
        let limited = try loadDataset(name: "mnist", directory: directory.path, split: .train, limit: 5)
        checkPattern(limited, count: 5)
    }

    @Test(.enabled(if: hasGzip)) func roundTripsGzipFiles() throws {
        let directory = try TemporaryDirectory()
        try writePair(directory, prefix: "t10k", gzip: true)
        let dataset = try loadDataset(name: "fashion-mnist", directory: directory.path, split: .test)
        checkPattern(dataset, count: count)
        #expect(dataset.mean == [0.2860] && dataset.std == [0.3530])
    }

    @Test func gzipIsDetectedByContentNotName() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write("labels", gzipVector)  // gzip of "gzip member\n": not IDX inside
        let error = expectDataError(.badMagic) { _ = try readIDX(path: path) }
        #expect(error?.description.hasPrefix("labels: bad magic") == true)
    }

    @Test func rejectsBadMagic() {
        let bytes = idxBytes(dimensions: [2], data: [0, 1], magic: (0x1F, 0x00))
        let error = expectDataError(.badMagic) { _ = try parseIDX(bytes, name: "x-labels-idx1-ubyte") }
        #expect(error?.description == "x-labels-idx1-ubyte: bad magic 0x1F000801: not an IDX file "
                    + "(expected 0x00000803 for images, 0x00000801 for labels)")
    }

    @Test func rejectsWrongDataType() {
        let bytes = idxBytes(dimensions: [1], data: [0, 0, 0, 0], dtype: 0x0D)
        let error = expectDataError(.badDataType) { _ = try parseIDX(bytes, name: "f") }
        #expect(error?.description.contains("0x0D (float)") == true)
    }

    @Test func rejectsWrongDimensionCount() {
        let labelsAsImages = idxBytes(dimensions: [3], data: [0, 1, 2])
        expectDataError(.badMagic) { _ = try parseIDX(labelsAsImages, name: "i", expectedDimensions: 3) }
        expectDataError(.badDimensions) { _ = try parseIDX(idxBytes(dimensions: [], data: []), name: "z") }
    }

    @Test func rejectsTruncatedData() {
        let bytes = idxBytes(dimensions: [60000, 28, 28], data: [UInt8](repeating: 0, count: 1000))
        let error = expectDataError(.truncated) { _ = try parseIDX(bytes, name: "train-images-idx3-ubyte.gz") }
        #expect(error?.description == "train-images-idx3-ubyte.gz: truncated: header says 60000×28×28 = "
                    + "47040000 bytes of data, file has 1000")
        expectDataError(.truncated) { _ = try parseIDX([0, 0, 8], name: "h") }
        expectDataError(.truncated) { _ = try parseIDX([0, 0, 8, 3, 0, 0, 0, 1], name: "h") }
    }

    @Test func rejectsTrailingBytes() {
        let bytes = idxBytes(dimensions: [2, 2], data: [1, 2, 3, 4, 5, 6])
        let error = expectDataError(.trailingBytes) { _ = try parseIDX(bytes, name: "t") }
        #expect(error?.description.contains("2 trailing bytes") == true)
    }

    @Test func rejectsHugeAndOverflowingDimensions() {
        // A hostile header must fail on its sizes, never allocate what it claims.
        let huge = idxBytes(dimensions: [0xFFFF_FFFF, 28, 28], data: [1, 2, 3])
        expectDataError(.badDimensions) { _ = try parseIDX(huge, name: "huge") }
        let big = UInt32(idxMaxDimension)
        let overflow = idxBytes(dimensions: [big, big, big], data: [1, 2, 3])
        expectDataError(.badDimensions) { _ = try parseIDX(overflow, name: "overflow") }
        let large = idxBytes(dimensions: [big, big], data: [1, 2, 3])  // 2⁵⁶: no overflow, but truncated
        expectDataError(.truncated) { _ = try parseIDX(large, name: "large") }
    }

    @Test func rejectsCountMismatch() throws {
        let directory = try TemporaryDirectory()
        try writePair(directory)
        let short = idxBytes(dimensions: [11], data: [UInt8](repeating: 1, count: 11))
        try directory.write("train-labels-idx1-ubyte", short)
        let error = expectDataError(.countMismatch) {
            _ = try loadDataset(name: "mnist", directory: directory.path, split: .train)
        }
        #expect(error?.description == "train-labels-idx1-ubyte: 11 labels, but train-images-idx3-ubyte has 12 images")
    }

    @Test func rejectsLabelOutOfRange() throws {
        let directory = try TemporaryDirectory()
        var labels = (0..<count).map { UInt8($0 % 10) }
        labels[7] = 10
        try writePair(directory, labels: labels)
        let error = expectDataError(.labelOutOfRange) {
            _ = try loadDataset(name: "mnist", directory: directory.path, split: .train, limit: 3)
        }
        #expect(error?.description.contains("label 10 at index 7 is out of range 0..<10") == true)
    }

    @Test func missingFileNamesPathAndRemedy() throws {
        let directory = try TemporaryDirectory()
        let error = expectDataError(.missingFile) {
            _ = try loadDataset(name: "fashion-mnist", directory: directory.path, split: .train)
        }
        let text = error?.description ?? ""
        #expect(text.hasPrefix(directory.path + "/train-images-idx3-ubyte: no such file"))
        #expect(text.contains("train-images-idx3-ubyte.gz"))
        #expect(text.contains("apt-get install dataset-fashion-mnist"))
        #expect(text.contains("--data-dir"))
        expectDataError(.missingFile) { _ = try readIDX(path: directory.path + "/nothing") }
    }

    @Test func rejectsUnknownDatasetAndBadLimit() {
        expectDataError(.unknownDataset) { _ = try loadDataset(name: "imagenet", directory: "/", split: .train) }
        expectDataError(.badSampling) { _ = try loadDataset(name: "synthetic", directory: "", split: .train, limit: 0) }
    }
}
