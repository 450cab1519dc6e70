// Counts of (true class, predicted class) pairs, per-class accuracy (recall), and their CSV form.
import Foundation

/// A (K, K) confusion matrix: `counts[t * K + p]` images of true class t predicted as p.
public struct ConfusionMatrix: Sendable, Equatable {
    public let classes: Int
    public private(set) var counts: [Int]

    /// Tallies `predictions` against `labels` (same length, values in 0..<classes).
    public init(labels: [Int32], predictions: [Int32], classes K: Int) {
        precondition(labels.count == predictions.count,
                     "ConfusionMatrix: \(labels.count) labels, \(predictions.count) predictions")
        classes = K
        counts = [Int](repeating: 0, count: K * K)
        for (t, p) in zip(labels, predictions) {
            precondition(t >= 0 && Int(t) < K && p >= 0 && Int(p) < K, "ConfusionMatrix: (\(t), \(p)) ∉ 0..<\(K)")
            counts[Int(t) * K + Int(p)] += 1
        }
    }

    /// Images counted.
    public var total: Int { counts.reduce(0, +) }
    /// Fraction predicted correctly (the trace over the total; NaN for no images).
    public var accuracy: Double { Double((0..<classes).reduce(0) { $0 + counts[$1 * classes + $1] }) / Double(total) }
    /// Images of each true class.
    public var support: [Int] { (0..<classes).map { t in counts[(t * classes)..<((t + 1) * classes)].reduce(0, +) } }
    /// Fraction of each true class predicted correctly (NaN for a class with no images).
    public var perClassAccuracy: [Double] {
        let s = support
        return (0..<classes).map { Double(counts[$0 * classes + $0]) / Double(s[$0]) }
    }

    /// CSV: a header `true\predicted,<names…>`, then one row per true class with its counts.
    public func csv(names: [String]) -> String {
        precondition(names.count == classes, "ConfusionMatrix.csv: \(names.count) names for \(classes) classes")
        var lines = ["true\\predicted," + names.map(csvField).joined(separator: ",")]
        for t in 0..<classes {
            lines.append(csvField(names[t]) + "," + (0..<classes).map { "\(counts[t * classes + $0])" }
                .joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// CSV: `class,name,support,correct,accuracy` per class.
    public func perClassCSV(names: [String]) -> String {
        let s = support
        var lines = ["class,name,support,correct,accuracy"]
        for t in 0..<classes {
            let acc = s[t] > 0 ? String(format: "%.6f", perClassAccuracy[t]) : ""
            lines.append("\(t),\(csvField(names[t])),\(s[t]),\(counts[t * classes + t]),\(acc)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A CSV field, quoted when it holds a comma or quote.
func csvField(_ text: String) -> String {
    text.contains(",") || text.contains("\"") ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
}
