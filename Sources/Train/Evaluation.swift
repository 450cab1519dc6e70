// Scoring a trained encoder on the test split: the trained head (argmax of its logits on one un-augmented view).
// Every rank scores a contiguous share of the test set; the correct counts are summed across ranks.
import Collective
import Data
import Tensor

extension Trainer {
    /// Runs the network (un-augmented, no gradient) over `dataset[range]` in chunks, calling `body(first, count)` after
    /// each chunk with the network's `embeddings`/`logits` holding rows for images first..<first+count.
    func forEachChunk(of dataset: Dataset, range: Range<Int>, _ body: (Int, Int) throws -> Void) rethrows {
        let filler = BatchFiller(dataset: dataset, seed: config.seed)
        let chunk = Trainer.evalChunk
        let input = Arena(count: chunk * dataset.imageSize)
        let labels = Buffer<Int32>(count: chunk)
        var first = range.lowerBound
        while first < range.upperBound {
            let count = min(chunk, range.upperBound - first)
            filler.fillEvaluationBatch(indices: first..<(first + count), input: input.storage, labels: labels.storage)
            network.forward(input: input.base, batch: count)
            try body(first, count)
            first += count
        }
    }

    /// Test accuracy of the trained head, identical on every rank.
    public func headAccuracy() throws -> Double {
        let share = ShardLayout.even(total: test.count, parts: comm.size).range(of: comm.rank)
        var correct = 0.0
        forEachChunk(of: test, range: share) { first, count in
            let logits = network.logits
            for r in 0..<count {
                let row = logits + r * classes
                var best = 0
                for c in 1..<classes where row[c] > row[best] { best = c }
                if Int32(best) == test.labels[first + r] { correct += 1 }
            }
        }
        return try comm.sum(correct) / Double(test.count)
    }
}
