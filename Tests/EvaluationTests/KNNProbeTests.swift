import Foundation
import Tensor
import Testing
@testable import Evaluation

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
            LinearProbe(features: train, labels: trainLabels, embedDim: D, classes: K)
        }
        let probe = fit()
        let correct = zip(probe.predict(test), testLabels).filter { $0 == $1 }.count
        #expect(correct >= 490, "\(correct)/500")
        #expect(probe.model.result.converged, "\(probe.model.result)")
        #expect(fit().model.parameters == probe.model.parameters)
    }

}
