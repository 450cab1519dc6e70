import Foundation
import Testing
import Data
import Tensor

/// Set DTRAIN_FASHION_MNIST_DIR (e.g. /usr/share/datasets/fashion-mnist) to run against the real files.
let fashionMNISTDirectory = ProcessInfo.processInfo.environment["DTRAIN_FASHION_MNIST_DIR"]

@Suite("Fashion-MNIST files (DTRAIN_FASHION_MNIST_DIR)", .enabled(if: fashionMNISTDirectory != nil))
struct FashionMNISTTests {
    @Test func loadsBothSplits() throws {
        let directory = fashionMNISTDirectory!
        let t0 = monotonicSeconds()
        let train = try loadDataset(name: "fashion-mnist", directory: directory, split: .train)
        let t1 = monotonicSeconds()
        let test = try loadDataset(name: "fashion-mnist", directory: directory, split: .test)
        print("fashion-mnist: train loaded in \(t1 - t0) s, test in \(monotonicSeconds() - t1) s")
        #expect(train.count == 60000 && test.count == 10000)
        #expect(train.height == 28 && train.width == 28 && train.channels == 1)
        for dataset in [train, test] {
            var perClass = [Int](repeating: 0, count: 10)
            for label in dataset.labels.storage {
                #expect(label >= 0 && label < 10)
                perClass[Int(label)] += 1
            }
            // Fashion-MNIST is balanced: 6000 / 1000 per class.
            #expect(perClass == [Int](repeating: dataset.count / 10, count: 10))
        }
        // The published normalisation constants match the data.
        var sum = 0.0, sumSquares = 0.0
        for pixel in train.images.storage { let v = Double(pixel) / 255; sum += v; sumSquares += v * v }
        let n = Double(train.images.count), mean = sum / n, std = (sumSquares / n - mean * mean).squareRoot()
        #expect(abs(mean - 0.2860) < 5e-4 && abs(std - 0.3530) < 5e-4, "mean \(mean), std \(std)")
    }
}
