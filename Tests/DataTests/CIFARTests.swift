import Testing
import Data
import Tensor

/// Pixel k of CIFAR test record i: (i + 3k) mod 256.
func cifarPixels(record i: Int) -> [UInt8] {
    (0..<3072).map { k in UInt8((i + 3 * k) % 256) }
}

/// CIFAR records: label byte(s) then 3072 pixels, pixel k of record i = (i + 3k) mod 256.
func cifarBytes(labels: [[UInt8]]) -> [UInt8] {
    var bytes: [UInt8] = []
    for (i, label) in labels.enumerated() {
        bytes += label
        bytes += cifarPixels(record: i)
    }
    return bytes
}

@Suite("CIFAR readers")
struct CIFARTests {
    @Test func roundTripsCIFAR10AcrossBatchFiles() throws {
        let directory = try TemporaryDirectory()
        for b in 1...5 {
            try directory.write("cifar-10-batches-bin/data_batch_\(b).bin",
                                cifarBytes(labels: (0..<2).map { [UInt8((2 * b + $0) % 10)] }))
        }
        try directory.write("cifar-10-batches-bin/test_batch.bin", cifarBytes(labels: [[9], [0], [4]]))
        let train = try loadDataset(name: "cifar10", directory: directory.path, split: .train)
        #expect(train.count == 10 && train.channels == 3 && train.height == 32 && train.width == 32)
        #expect(Array(train.labels.storage) == [2, 3, 4, 5, 6, 7, 8, 9, 0, 1])
        // Image 3 is record 1 of data_batch_2.
        #expect(Array(train.image(3)) == cifarPixels(record: 1))
        #expect(train.mean == [0.4914, 0.4822, 0.4465])
        let test = try loadDataset(name: "cifar10", directory: directory.path, split: .test)
        #expect(Array(test.labels.storage) == [9, 0, 4])
        let limited = try loadDataset(name: "cifar10", directory: directory.path, split: .train, limit: 3)
        #expect(limited.count == 3 && Array(limited.labels.storage) == [2, 3, 4])
    }

    @Test func roundTripsCIFAR100FineLabels() throws {
        let directory = try TemporaryDirectory()
        try directory.write("train.bin", cifarBytes(labels: [[19, 99], [0, 0], [5, 42]]))
        let train = try loadDataset(name: "cifar100", directory: directory.path, split: .train)
        #expect(train.classes == 100)
        #expect(Array(train.labels.storage) == [99, 0, 42])
        #expect(Array(train.image(2)) == cifarPixels(record: 2))
    }

    @Test func rejectsTruncatedRecord() throws {
        let bytes = cifarBytes(labels: [[1], [2]]).dropLast(5)
        let error = expectDataError(.badRecordSize) { _ = try parseCIFAR(Array(bytes), name: "data_batch_1.bin",
                                                                          variant: .cifar10) }
        #expect(error?.description == "data_batch_1.bin: size 6141 is not a multiple of the 3073-byte record: "
                    + "1 records + 3068 bytes (truncated record?)")
        expectDataError(.truncated) { _ = try parseCIFAR([], name: "empty.bin", variant: .cifar100) }
    }

    @Test func rejectsLabelOutOfRange() {
        expectDataError(.labelOutOfRange) { _ = try parseCIFAR(cifarBytes(labels: [[3], [10]]), name: "b",
                                                               variant: .cifar10) }
        expectDataError(.labelOutOfRange) { _ = try parseCIFAR(cifarBytes(labels: [[3, 100]]), name: "b",
                                                               variant: .cifar100) }
        expectDataError(.labelOutOfRange) { _ = try parseCIFAR(cifarBytes(labels: [[20, 1]]), name: "b",
                                                               variant: .cifar100) }
    }

    @Test func missingBatchFile() throws {
        let directory = try TemporaryDirectory()
        try directory.write("data_batch_1.bin", cifarBytes(labels: [[1]]))
        let error = expectDataError(.missingFile) {
            _ = try loadDataset(name: "cifar10", directory: directory.path, split: .train)
        }
        #expect(error?.description.contains("data_batch_2.bin") == true)
    }
}
