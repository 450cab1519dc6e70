import Collective
import Data
import Foundation
import Tensor
import Testing
@testable import Train

/// Embeddings of `count` points in `classes` well-separated clusters: class c is centred on a random direction,
/// plus Gaussian noise of std `noise`. Returns (features (count, D), labels).
func clusteredEmbeddings(count: Int, classes: Int, embedDim D: Int, noise: Double, seed: UInt64,
                         offset: Int = 0) -> ([Float], [Int32]) {
    let rng = CounterRNG(seed: seed)
    var centres = [Float](repeating: 0, count: classes * D)
    for i in 0..<centres.count { centres[i] = Float(rng.normal(stream: .test, index: UInt64(i), substream: 0)) }
    var x = [Float](repeating: 0, count: count * D), y = [Int32](repeating: 0, count: count)
    for i in 0..<count {
        let c = (i + offset) % classes
        y[i] = Int32(c)
        for j in 0..<D {
            let e = rng.normal(stream: .test, index: UInt64((i + offset) * D + j), substream: 1)
            x[i * D + j] = centres[c * D + j] + Float(noise * e)
        }
    }
    return (x, y)
}

@Suite struct EvaluationTests {
    @Test func knnSeparatesClusters() {
        let (train, trainLabels) = clusteredEmbeddings(count: 600, classes: 5, embedDim: 16, noise: 0.3, seed: 1)
        let (test, testLabels) = clusteredEmbeddings(count: 200, classes: 5, embedDim: 16, noise: 0.3, seed: 1,
                                                     offset: 600)
        for k in [1, 20, 5000] {
            let correct = train.withUnsafeBufferPointer { r in
                trainLabels.withUnsafeBufferPointer { rl in
                    test.withUnsafeBufferPointer { q in
                        testLabels.withUnsafeBufferPointer { ql in
                            knnCorrect(reference: r, referenceLabels: rl, queries: q, queryLabels: ql, embedDim: 16,
                                       classes: 5, k: k)
                        }
                    }
                }
            }
            // k = 5000 > n: every reference point votes, weighted by exp(sim/0.07), still dominated by the nearest.
            #expect(correct >= 196, "k \(k): \(correct)/200")
        }
    }

    @Test func knnVotesAndTies() {
        // Reference: two of class 1 close to the query, three of class 0 further away.
        let D = 2
        let reference: [Float] = [1, 0.05, 1, -0.05, 0.2, 1, 0.2, -1, -1, 0.1]
        let labels: [Int32] = [1, 1, 0, 0, 0]
        let query: [Float] = [1, 0], queryLabel: [Int32] = [1]
        func run(_ k: Int, _ t: Float) -> Int {
            reference.withUnsafeBufferPointer { r in labels.withUnsafeBufferPointer { rl in
                query.withUnsafeBufferPointer { q in queryLabel.withUnsafeBufferPointer { ql in
                    knnCorrect(reference: r, referenceLabels: rl, queries: q, queryLabels: ql, embedDim: D,
                               classes: 2, k: k, temperature: t)
                } }
            } }
        }
        #expect(run(1, 0.07) == 1)
        #expect(run(5, 0.07) == 1)        // the two close neighbours outweigh three far ones
        #expect(run(5, 1e6) == 0)         // a plain majority vote (T → ∞) picks class 0
        // An exact tie (both neighbours orthogonal to the query) goes to the lower class.
        let tieReference: [Float] = [0, 1, 0, -1], tieLabels: [Int32] = [1, 0]
        for (label, expected) in [(Int32(0), 1), (Int32(1), 0)] {
            let got = tieReference.withUnsafeBufferPointer { r in tieLabels.withUnsafeBufferPointer { rl in
                query.withUnsafeBufferPointer { q in [label].withUnsafeBufferPointer { ql in
                    knnCorrect(reference: r, referenceLabels: rl, queries: q, queryLabels: ql, embedDim: D,
                               classes: 2, k: 2)
                } }
            } }
            #expect(got == expected)
        }
    }

    @Test func linearProbeFitsSeparableEmbeddingsDeterministically() {
        let D = 32, K = 10
        let (train, trainLabels) = clusteredEmbeddings(count: 2000, classes: K, embedDim: D, noise: 1.0, seed: 2)
        let (test, testLabels) = clusteredEmbeddings(count: 500, classes: K, embedDim: D, noise: 1.0, seed: 2,
                                                     offset: 2000)
        func fit() -> LinearProbe {
            train.withUnsafeBufferPointer { x in trainLabels.withUnsafeBufferPointer { y in
                LinearProbe(features: x, labels: y, embedDim: D, classes: K, epochs: 10, seed: 0)
            } }
        }
        let probe = fit()
        let correct = test.withUnsafeBufferPointer { x in testLabels.withUnsafeBufferPointer { y in
            probe.correct(features: x, labels: y)
        } }
        #expect(correct >= 490, "\(correct)/500")
        #expect(fit().params.toArray() == probe.params.toArray())
    }

    @Test(arguments: [1, 2, 3])
    func trainerEvaluationsAgreeAcrossRankCounts(ranks: Int) throws {
        var config = TrainConfig()
        config.dataset = "synthetic"; config.trainLimit = 300; config.testLimit = 120
        config.batchSize = 30; config.epochs = 1; config.loss = "ce"; config.quiet = true
        config.eval = [.head, .knn, .linearProbe]; config.knnK = 5; config.probeEpochs = 3
        let train = try loadDataset(name: "synthetic", directory: "", split: .train, limit: 300)
        let test = try loadDataset(name: "synthetic", directory: "", split: .test, limit: 120)
        let results = try LocalGroup.run(size: ranks) { comm in
            try runTraining(config: config, comm: comm, train: train, test: test)
        }
        let reference = try LocalGroup.run(size: 1) { comm in
            try runTraining(config: config, comm: comm, train: train, test: test)
        }[0]
        for r in results {
            #expect(r.eval == "head" && r.testAccuracy == r.accuracies["head"])
            #expect(Set(r.accuracies.keys) == ["head", "knn", "linear-probe"])
            for (mode, value) in r.accuracies {
                // Reductions across ranks are the only difference: at most a couple of flipped test images.
                #expect(abs(value - reference.accuracies[mode]!) <= 2.0 / 120, "\(mode): \(value) vs \(reference)")
            }
        }
        // The synthetic classes are learnable: after one epoch all three evaluations beat chance (10%) clearly.
        #expect(reference.accuracies.values.allSatisfy { $0 > 0.3 }, "\(reference.accuracies)")
    }
}
