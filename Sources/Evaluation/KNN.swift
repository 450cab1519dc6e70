// k-nearest-neighbour classification of frozen embeddings: cosine similarity, k = 20 by default in training's
// evaluation, similarity-weighted vote exp(sim/T) as in the k-NN monitors of InstDisc/MoCo/SupCon codebases.
//
// Legend: n = reference rows, m = queries, D = embedDim, K = classes, k = neighbours.
import Foundation
import Tensor

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

/// The weighted k-NN vote among `reference` of each query (m): the predicted class of every row of `queries`.
///
/// reference: (n, D), queries: (m, D), both raw embeddings (copied and L2-normalised here, so similarity = cosine).
/// For each query the k most similar reference rows vote for their label with weight exp(sim/T), T =
/// `temperature` (0.07 by default; T → ∞ is a plain majority vote); the class of the largest total wins, ties
/// going to the lower class. Similarities come from `gemm` on blocks of queries, so memory is O(block·n).
/// Preconditions: labels in 0..<classes, k ≥ 1 (k is capped at n). `progress` is called after every block.
public func knnPredictions(reference: UnsafeBufferPointer<Float>, referenceLabels: UnsafeBufferPointer<Int32>,
                           queries: UnsafeBufferPointer<Float>, embedDim D: Int, classes K: Int, k: Int,
                           temperature: Float = knnTemperature, progress: (() -> Void)? = nil) -> [Int32] {
    let n = referenceLabels.count, m = queries.count / max(D, 1)
    var predictions = [Int32](repeating: 0, count: m)
    precondition(reference.count == n * D,
                 "knnPredictions: reference has \(reference.count) elements, expected \(n)×\(D)")
    precondition(queries.count == m * D,
                 "knnPredictions: queries have \(queries.count) elements, expected \(m)×\(D)")
    precondition(k >= 1 && temperature > 0,
                 "knnPredictions: k \(k) must be >= 1 and temperature \(temperature) > 0")
    if m == 0 || n == 0 { return predictions }
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
                precondition(label >= 0 && label < K, "knnPredictions: reference label \(label) outside 0..<\(K)")
                // sim ≤ 1, so exp(sim/T) ≤ exp(1/0.07) ≈ 1.6e6: no overflow in Double.
                votes[label] += Foundation.exp(Double(topSim[t] / temperature))
            }
            var best = 0
            for c in 1..<K where votes[c] > votes[best] { best = c }
            predictions[first + r] = Int32(best)
        }
        first += rows
        progress?()
    }
    return predictions
}

/// Number of `queries` (m, D) whose weighted k-NN vote among `reference` gives their label (see `knnPredictions`).
public func knnCorrect(reference: UnsafeBufferPointer<Float>, referenceLabels: UnsafeBufferPointer<Int32>,
                       queries: UnsafeBufferPointer<Float>, queryLabels: UnsafeBufferPointer<Int32>,
                       embedDim D: Int, classes K: Int, k: Int, temperature: Float = knnTemperature) -> Int {
    precondition(queries.count == queryLabels.count * D,
                 "knnCorrect: queries have \(queries.count) elements, expected \(queryLabels.count)×\(D)")
    let predicted = knnPredictions(reference: reference, referenceLabels: referenceLabels, queries: queries,
                                   embedDim: D, classes: K, k: k, temperature: temperature)
    return zip(predicted, queryLabels).filter { $0 == $1 }.count
}
