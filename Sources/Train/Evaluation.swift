// Scoring a trained encoder on the test split, three ways (`EvalMode`):
//   head          argmax of the trained head's logits on one un-augmented view;
//   knn           cosine k-nearest neighbours of each test embedding among the training-set embeddings;
//   linear-probe  a multinomial logistic regression fitted on frozen, un-augmented training-set embeddings.
// All ranks cooperate: each rank embeds an even share of a split (`forEachChunk`); the training-set embeddings are
// all-gathered so every rank holds the full (n, D) matrix; each rank scores its share of the test set and the
// correct counts are summed across ranks. The collectives are issued in the same order on every rank.
//
// Legend: n = training images, m = test images (or a rank's share), D = embedDim, K = classes, k = neighbours.
import Collective
import Data
import Foundation
import Loss
import Model
import Tensor

// MARK: - Embedding whole splits

extension Trainer {
    /// Runs the network (un-augmented, no gradient) over `dataset[range]` in chunks, calling `body(first, count)` after
    /// each chunk with the network's `embeddings`/`logits` holding rows for images first..<first+count.
    /// The network runs in evaluation mode (BatchNorm with its running statistics) and is back in training mode
    /// afterwards.
    func forEachChunk(of dataset: Dataset, range: Range<Int>, _ body: (Int, Int) throws -> Void) throws {
        let filler = BatchFiller(dataset: dataset, seed: config.seed)
        let chunk = min(Trainer.evalChunk, network.maxBatch)
        network.mode = .eval
        defer { network.mode = .train }
        let input = Arena(count: chunk * dataset.imageSize)
        let labels = Buffer<Int32>(count: chunk)
        var first = range.lowerBound
        while first < range.upperBound {
            let count = min(chunk, range.upperBound - first)
            filler.fillEvaluationBatch(indices: first..<(first + count), input: input.storage, labels: labels.storage)
            try network.forward(input: input.base, batch: count)
            try body(first, count)
            first += count
        }
    }

    /// This rank's even share of `dataset` (rank order, contiguous).
    func share(of dataset: Dataset) -> Range<Int> {
        ShardLayout.even(total: dataset.count, parts: comm.size).range(of: comm.rank)
    }

    /// Embeddings (rows, D) of the images `dataset[range]`, un-augmented.
    func embeddings(of dataset: Dataset, range: Range<Int>) throws -> Arena {
        let D = embedDim
        let out = Arena(count: range.count * D)
        try forEachChunk(of: dataset, range: range) { first, count in
            (out.base + (first - range.lowerBound) * D).update(from: network.embeddings, count: count * D)
        }
        return out
    }

    /// Embeddings (n, D) of every image of `dataset`, identical on every rank: each rank embeds its even share,
    /// then one all-gather concatenates the shares in rank order.
    func gatheredEmbeddings(of dataset: Dataset) throws -> Arena {
        let layout = ShardLayout.even(total: dataset.count, parts: comm.size)
        let local = try embeddings(of: dataset, range: layout.range(of: comm.rank))
        let all = Arena(count: dataset.count * embedDim)
        try comm.allGather(send: UnsafeBufferPointer(local.storage), into: all.storage,
                           layout: layout.scaled(by: embedDim))
        return all
    }

    // MARK: - Accuracy under each evaluation

    /// Test accuracy of the trained head, identical on every rank.
    public func headAccuracy() throws -> Double {
        let share = share(of: test)
        var correct = 0.0
        try forEachChunk(of: test, range: share) { first, count in
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

    /// Test accuracy of every mode in `modes`, by `EvalMode.rawValue`; identical on every rank. The training-set
    /// embeddings and this rank's test embeddings are computed once and shared by k-NN and the linear probe.
    public func evaluate(_ modes: [EvalMode]) throws -> [String: Double] {
        var out = [String: Double]()
        var trainFeatures: Arena?, testFeatures: Arena?
        let share = share(of: test)
        for mode in modes where out[mode.rawValue] == nil {
            switch mode {
            case .head:
                out[mode.rawValue] = try headAccuracy()
            case .knn, .linearProbe:
                if trainFeatures == nil {
                    trainFeatures = try gatheredEmbeddings(of: train)
                    testFeatures = try embeddings(of: test, range: share)
                }
                let reference = UnsafeBufferPointer(trainFeatures!.storage)
                let queries = UnsafeBufferPointer(testFeatures!.storage)
                let queryLabels = UnsafeBufferPointer(rebasing: UnsafeBufferPointer(test.labels.storage)[share])
                let trainLabels = UnsafeBufferPointer(train.labels.storage)
                let correct: Int
                if mode == .knn {
                    correct = knnCorrect(reference: reference, referenceLabels: trainLabels, queries: queries,
                                         queryLabels: queryLabels, embedDim: embedDim, classes: classes,
                                         k: config.knnK)
                } else {
                    let probe = LinearProbe(features: reference, labels: trainLabels, embedDim: embedDim,
                                            classes: classes, epochs: config.probeEpochs, seed: config.seed)
                    correct = probe.correct(features: queries, labels: queryLabels)
                }
                out[mode.rawValue] = try comm.sum(Double(correct)) / Double(test.count)
            }
        }
        return out
    }
}

// MARK: - k-nearest neighbours

/// Temperature of the k-NN vote weights exp(sim/T), as in the k-NN monitors of InstDisc/MoCo/SupCon codebases.
public let knnTemperature: Float = 0.07

/// Normalises each of the `rows` rows of `x` (rows, D) to unit L2 norm in place (an all-zero row stays zero).
public func l2NormaliseRows(_ x: UnsafeMutableBufferPointer<Float>, embedDim D: Int) {
    precondition(D >= 1 && x.count % D == 0, "l2NormaliseRows: \(x.count) elements are not rows of \(D)")
    let p = x.baseAddress!
    for r in 0..<(x.count / D) {
        let row = p + r * D
        var s: Float = 0
        for j in 0..<D { s += row[j] * row[j] }
        let inv = s > 0 ? 1 / s.squareRoot() : 0
        for j in 0..<D { row[j] *= inv }
    }
}

/// Number of `queries` whose weighted k-NN vote among `reference` gives their label.
///
/// reference: (n, D), queries: (m, D), both raw embeddings (copied and L2-normalised here, so similarity = cosine).
/// For each query the k most similar reference rows vote for their label with weight exp(sim/T), T =
/// `temperature` (0.07 by default; T → ∞ is a plain majority vote); the class of the largest total wins, ties
/// going to the lower class. Similarities come from `gemm` on blocks of queries, so memory is O(block·n).
/// Preconditions: labels in 0..<classes, k ≥ 1 (k is capped at n).
public func knnCorrect(reference: UnsafeBufferPointer<Float>, referenceLabels: UnsafeBufferPointer<Int32>,
                       queries: UnsafeBufferPointer<Float>, queryLabels: UnsafeBufferPointer<Int32>,
                       embedDim D: Int, classes K: Int, k: Int, temperature: Float = knnTemperature) -> Int {
    let n = referenceLabels.count, m = queryLabels.count
    precondition(reference.count == n * D, "knnCorrect: reference has \(reference.count) elements, expected \(n)×\(D)")
    precondition(queries.count == m * D, "knnCorrect: queries have \(queries.count) elements, expected \(m)×\(D)")
    precondition(k >= 1 && temperature > 0, "knnCorrect: k \(k) must be >= 1 and temperature \(temperature) > 0")
    if m == 0 || n == 0 { return 0 }
    let kk = min(k, n)
    let ref = Arena(count: n * D), query = Arena(count: m * D)
    ref.storage.baseAddress!.update(from: reference.baseAddress!, count: n * D)
    query.storage.baseAddress!.update(from: queries.baseAddress!, count: m * D)
    l2NormaliseRows(ref.storage, embedDim: D)
    l2NormaliseRows(query.storage, embedDim: D)
    // About 4M similarities (16 MB) per block.
    let block = max(1, min(m, (1 << 22) / n))
    let sims = Arena(count: block * n)
    var topSim = [Float](repeating: 0, count: kk), topIndex = [Int](repeating: 0, count: kk)
    var votes = [Double](repeating: 0, count: K)
    var correct = 0
    var first = 0
    while first < m {
        let rows = min(block, m - first)
        gemm(.none, .transposed, m: rows, n: n, k: D, a: query.base + first * D, lda: D, b: ref.base, ldb: D,
             c: sims.base, ldc: n)
        for r in 0..<rows {
            let row = sims.base + r * n
            // Top-k by similarity, kept sorted in decreasing order; ties keep the lower reference index.
            // `floor` is the k-th best so far (−∞ until k are held): most rows fail this one comparison.
            var filled = 0, floor = -Float.infinity
            for j in 0..<n {
                let s = row[j]
                if s <= floor { continue }
                var pos = filled == kk ? kk - 1 : filled
                if filled < kk { filled += 1 }
                while pos > 0 && topSim[pos - 1] < s {
                    topSim[pos] = topSim[pos - 1]; topIndex[pos] = topIndex[pos - 1]
                    pos -= 1
                }
                topSim[pos] = s; topIndex[pos] = j
                if filled == kk { floor = topSim[kk - 1] }
            }
            for c in 0..<K { votes[c] = 0 }
            for t in 0..<kk {
                let label = Int(referenceLabels[topIndex[t]])
                precondition(label >= 0 && label < K, "knnCorrect: reference label \(label) outside 0..<\(K)")
                // sim ≤ 1, so exp(sim/T) ≤ exp(1/0.07) ≈ 1.6e6: no overflow in Double.
                votes[label] += Foundation.exp(Double(topSim[t] / temperature))
            }
            var best = 0
            for c in 1..<K where votes[c] > votes[best] { best = c }
            if Int32(best) == queryLabels[first + r] { correct += 1 }
        }
        first += rows
    }
    return correct
}

// MARK: - Linear probe

/// A multinomial logistic-regression classifier fitted on frozen embeddings: the standard linear-evaluation
/// protocol, made deterministic so every rank fitting it on the same gathered features gets the same weights.
///
/// Features are standardised per dimension with the training set's mean and std (a constant dimension gets
/// std 1). The classifier is a `Linear` (D → K) trained with `crossEntropy`/`crossEntropyBackward` (mean over
/// each mini-batch), `SGD` with momentum 0.9 and weight decay `weightDecay`, mini-batches of `batch` rows drawn by
/// a `CounterRNG` permutation per epoch (stream `.probe`), and a cosine learning-rate decay from `learningRate` to
/// zero over `epochs` epochs, no warm-up. On standardised features this converges in ~10 epochs (see the tests).
public final class LinearProbe {
    public let embedDim: Int
    public let classes: Int
    /// Per-dimension mean and 1/std of the training features (D each).
    public let mean: [Float], invStd: [Float]
    public let layer: Linear
    public let params: Arena

    /// Default mini-batch rows.
    public static let defaultBatch = 256
    /// Default base learning rate.
    public static let defaultLearningRate = 0.1
    /// Default L2 weight decay.
    public static let defaultWeightDecay = 1e-4

    /// Fits the probe on `features` (n, D) with `labels` (n, values in 0..<classes). Allocates its buffers once.
    public init(features: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>, embedDim D: Int,
                classes K: Int, epochs: Int, seed: UInt64, batch: Int = LinearProbe.defaultBatch,
                learningRate: Double = LinearProbe.defaultLearningRate,
                weightDecay: Double = LinearProbe.defaultWeightDecay) {
        let n = labels.count
        precondition(features.count == n * D,
                     "LinearProbe: features have \(features.count) elements, expected \(n)×\(D)")
        precondition(n >= 1 && epochs >= 1 && batch >= 1, "LinearProbe: n \(n), epochs \(epochs), batch \(batch)")
        embedDim = D
        classes = K
        var layout = ArenaLayout()
        layer = Linear(inFeatures: D, outFeatures: K, name: "probe", layout: &layout)
        params = Arena(count: layout.total)
        let grads = Arena(count: layout.total)

        // Standardisation statistics, accumulated in Double.
        var sum = [Double](repeating: 0, count: D), sumSquares = [Double](repeating: 0, count: D)
        for i in 0..<n {
            for j in 0..<D {
                let v = Double(features[i * D + j])
                sum[j] += v; sumSquares[j] += v * v
            }
        }
        mean = sum.map { Float($0 / Double(n)) }
        invStd = (0..<D).map { j in
            let m = sum[j] / Double(n), variance = max(0, sumSquares[j] / Double(n) - m * m)
            return variance > 1e-12 ? Float(1 / variance.squareRoot()) : 1
        }
        let x = Arena(count: n * D)
        standardise(features, into: x.storage)

        // Zero initialisation: the problem is convex, and zero makes the fit independent of any init stream.
        let optimiser = SGD(params: params, grads: grads, momentum: 0.9, weightDecay: Float(weightDecay))
        let stepsPerEpoch = (n + batch - 1) / batch
        let schedule = LearningRateSchedule(base: learningRate, warmupSteps: 0, totalSteps: epochs * stepsPerEpoch)
        let input = Arena(count: batch * D)
        let batchLabels = Buffer<Int32>(count: batch)
        let logits = Arena(count: batch * K), probs = Arena(count: batch * K), dLogits = Arena(count: batch * K)
        let rng = CounterRNG(seed: seed)
        var step = 0
        for epoch in 0..<epochs {
            let order = rng.permutation(count: n, stream: .probe, key: UInt32(epoch))
            for s in 0..<stepsPerEpoch {
                let rows = min(batch, n - s * batch)
                for r in 0..<rows {
                    let i = order[s * batch + r]
                    (input.base + r * D).update(from: x.base + i * D, count: D)
                    batchLabels[r] = labels[i]
                }
                let z = UnsafeMutableBufferPointer(rebasing: logits.storage[0..<(rows * K)])
                layer.forward(input: input.base, output: z.baseAddress!, batch: rows, params: params)
                let y = UnsafeBufferPointer(rebasing: UnsafeBufferPointer(batchLabels.storage)[0..<rows])
                _ = crossEntropy(logits: UnsafeBufferPointer(z), labels: y, classes: K, globalCount: rows,
                                 probs: probs.storage)
                crossEntropyBackward(probs: UnsafeBufferPointer(probs.storage), labels: y, classes: K,
                                     globalCount: rows, scale: 1, dLogits: dLogits.storage)
                grads.zero()
                layer.backward(dOutput: dLogits.base, input: input.base, dInput: nil, batch: rows, params: params,
                               grads: grads)
                optimiser.step(lr: schedule.rate(at: step))
                step += 1
            }
        }
    }

    /// Writes (x − mean)·invStd of `features` (rows, D) into `output` (rows, D).
    func standardise(_ features: UnsafeBufferPointer<Float>, into output: UnsafeMutableBufferPointer<Float>) {
        let D = embedDim
        for r in 0..<(features.count / D) {
            for j in 0..<D { output[r * D + j] = (features[r * D + j] - mean[j]) * invStd[j] }
        }
    }

    /// Number of rows of `features` (m, D) whose argmax class (ties → lower class) equals `labels` (m).
    public func correct(features: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>) -> Int {
        let m = labels.count, D = embedDim, K = classes
        precondition(features.count == m * D, "LinearProbe.correct: \(features.count) elements, expected \(m)×\(D)")
        if m == 0 { return 0 }
        let x = Arena(count: m * D), logits = Arena(count: m * K)
        standardise(features, into: x.storage)
        layer.forward(input: x.base, output: logits.base, batch: m, params: params)
        var correct = 0
        for r in 0..<m {
            let row = logits.base + r * K
            var best = 0
            for c in 1..<K where row[c] > row[best] { best = c }
            if Int32(best) == labels[r] { correct += 1 }
        }
        return correct
    }
}
