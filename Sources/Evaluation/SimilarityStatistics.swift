// Positive and negative cosine-similarity statistics of labelled embeddings (the CLCE paper's Figs. 3–4).
// Every unordered pair {i, j}, i ≠ j, of L2-normalised embeddings is positive when the labels agree and negative
// otherwise. Means and standard deviations are exact (Double sums); quantiles are read from a histogram of
// `SimilarityHistogram.fineBins` bins on [−1, 1] (resolution 0.001, the bin's midpoint); the histogram overlap is
// Σ_b min(p_b, q_b) of the two normalised histograms with `plotBins` bins (width 0.02): 1 for identical
// distributions, 0 for separated ones. For a class c, positives are pairs inside c and negatives the pairs of one
// image in c and one outside.
//
// Legend: n = rows, D = embedDim.
import Foundation
import Tensor

/// A histogram of similarities in [−1, 1] with running moments.
public struct SimilarityHistogram: Sendable, Equatable, Codable {
    /// Bins of the quantile histogram.
    public static let fineBins = 2000
    /// Bins of the plotted histogram and of the overlap.
    public static let plotBins = 100
    public var counts = [Int](repeating: 0, count: SimilarityHistogram.fineBins)
    public var sum = 0.0, sumSquares = 0.0
    public var pairs = 0

    public init() {}

    mutating func add(_ s: Double) {
        let b = min(SimilarityHistogram.fineBins - 1,
                    max(0, Int(((s + 1) / 2 * Double(SimilarityHistogram.fineBins)).rounded(.down))))
        counts[b] += 1
        sum += s; sumSquares += s * s; pairs += 1
    }

    public var mean: Double { sum / Double(pairs) }
    public var std: Double { max(0, sumSquares / Double(pairs) - mean * mean).squareRoot() }

    /// The q-quantile (0 ≤ q ≤ 1) as the midpoint of the fine bin where the cumulative count reaches q·pairs.
    public func quantile(_ q: Double) -> Double {
        let target = q * Double(pairs)
        var cumulative = 0
        for (b, c) in counts.enumerated() {
            cumulative += c
            if Double(cumulative) >= target && c > 0 || b == counts.count - 1 {
                return -1 + (Double(b) + 0.5) * 2 / Double(SimilarityHistogram.fineBins)
            }
        }
        return .nan
    }

    /// Counts in `plotBins` equal bins on [−1, 1].
    public var plotCounts: [Int] {
        let group = SimilarityHistogram.fineBins / SimilarityHistogram.plotBins
        return (0..<SimilarityHistogram.plotBins).map { b in counts[(b * group)..<((b + 1) * group)].reduce(0, +) }
    }
}

/// Σ_b min(p_b, q_b) of the normalised plotted histograms of `a` and `b`.
public func histogramOverlap(_ a: SimilarityHistogram, _ b: SimilarityHistogram) -> Double {
    guard a.pairs > 0 && b.pairs > 0 else { return .nan }
    return zip(a.plotCounts, b.plotCounts).reduce(0) {
        $0 + min(Double($1.0) / Double(a.pairs), Double($1.1) / Double(b.pairs))
    }
}

/// Positive and negative histograms overall and for each class of `classes`.
public struct SimilarityStatistics: Sendable {
    public var positive = SimilarityHistogram(), negative = SimilarityHistogram()
    public var perClass: [Int32: (positive: SimilarityHistogram, negative: SimilarityHistogram)] = [:]

    /// Tallies every pair of rows of `embeddings` (n, D) with `labels` (n); per-class histograms for `classes`.
    public init(embeddings: [Float], labels: [Int32], embedDim D: Int, classes: [Int32] = []) {
        let n = labels.count
        precondition(embeddings.count == n * D, "SimilarityStatistics: \(embeddings.count) values, expected \(n)×\(D)")
        let x = normalisedRows(embeddings, embedDim: D)
        let tracked = Set(classes)
        for c in classes { perClass[c] = (SimilarityHistogram(), SimilarityHistogram()) }
        // Blocks of rows against all later rows: memory O(block·n).
        let block = max(1, min(n, (1 << 20) / max(n, 1)))
        var sims = [Double](repeating: 0, count: block * n)
        var first = 0
        while first < n {
            let rows = min(block, n - first)
            x.withUnsafeBufferPointer { xp in sims.withUnsafeMutableBufferPointer { s in
                gemm(.none, .transposed, m: rows, n: n, k: D, a: xp.baseAddress! + first * D, lda: D,
                     b: xp.baseAddress!, ldb: D, c: s.baseAddress!, ldc: n)
            } }
            for r in 0..<rows {
                let i = first + r
                for j in (i + 1)..<max(n, i + 1) {
                    let s = sims[r * n + j], same = labels[i] == labels[j]
                    if same { positive.add(s) } else { negative.add(s) }
                    if tracked.isEmpty { continue }
                    let a = labels[i], b = labels[j]
                    if same {
                        if tracked.contains(a) { perClass[a]!.positive.add(s) }
                    } else {
                        if tracked.contains(a) { perClass[a]!.negative.add(s) }
                        if tracked.contains(b) { perClass[b]!.negative.add(s) }
                    }
                }
            }
            first += rows
        }
    }
}

/// The JSON summary of one positive/negative pair of histograms.
public struct SimilaritySummary: Codable, Sendable, Equatable {
    public var positiveMean: Double, negativeMean: Double, positiveStd: Double, negativeStd: Double
    /// The 5%, 25%, 50%, 75% and 95% quantiles.
    public var positiveQuantiles: [String: Double], negativeQuantiles: [String: Double]
    public var overlap: Double
    public var positivePairs: Int, negativePairs: Int

    enum CodingKeys: String, CodingKey {
        case positiveMean = "positive_mean", negativeMean = "negative_mean", positiveStd = "positive_std"
        case negativeStd = "negative_std", positiveQuantiles = "positive_quantiles"
        case negativeQuantiles = "negative_quantiles", overlap, positivePairs = "positive_pairs"
        case negativePairs = "negative_pairs"
    }

    public init(positive: SimilarityHistogram, negative: SimilarityHistogram) {
        let qs = [0.05, 0.25, 0.5, 0.75, 0.95]
        func table(_ h: SimilarityHistogram) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: qs.map { (String(format: "%.2f", $0), h.quantile($0)) })
        }
        positiveMean = positive.mean; negativeMean = negative.mean
        positiveStd = positive.std; negativeStd = negative.std
        positiveQuantiles = table(positive); negativeQuantiles = table(negative)
        overlap = histogramOverlap(positive, negative)
        positivePairs = positive.pairs; negativePairs = negative.pairs
    }
}

/// CSV of the plotted histograms: `bin_low,bin_high,positive,negative` (counts).
public func histogramCSV(positive: SimilarityHistogram, negative: SimilarityHistogram) -> String {
    let bins = SimilarityHistogram.plotBins
    var lines = ["bin_low,bin_high,positive,negative"]
    let p = positive.plotCounts, q = negative.plotCounts
    for b in 0..<bins {
        let lo = -1 + 2 * Double(b) / Double(bins), hi = -1 + 2 * Double(b + 1) / Double(bins)
        lines.append(String(format: "%.2f,%.2f,%d,%d", lo, hi, p[b], q[b]))
    }
    return lines.joined(separator: "\n") + "\n"
}
