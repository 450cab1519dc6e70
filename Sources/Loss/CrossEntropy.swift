import RealModule
import Tensor

// Cross-entropy of a linear head, mean over the global batch.
//
// Legend: n = local rows (this rank's), K = classes, N = globalCount (the divisor, the global batch size).
//
//   l_i = logsumexp_c(logits_ic) − logits_{i,y_i}          (per row, log-sum-exp with the row maximum removed)
//   L   = (1/N) Σ_{i local} l_i                             (summed over ranks this is the global mean)
//   ∂(scale·L)/∂logits_ic = (scale/N)·(p_ic − [c = y_i]),   p_i = softmax(logits_i)
//
// `scale` carries the blend weight (1 − λ), so the backward writes the gradient of the weighted term directly.

// MARK: - Forward

/// Cross-entropy forward: writes the softmax `probs` and returns (1/globalCount)·Σ_i l_i over the given rows.
///
/// logits, probs: (rows, classes); labels: rows values in [0, classes). `perAnchor`, when given, receives the
/// undivided l_i (rows values). Accumulates in Double. Precondition: globalCount ≥ 1.
@_specialize(exported: true, where T == Float)
@_specialize(where T == Double)
public func crossEntropy<T: BLASScalar>(logits: UnsafeBufferPointer<T>, labels: UnsafeBufferPointer<Int32>,
                                        classes: Int, globalCount: Int, probs: UnsafeMutableBufferPointer<T>,
                                        perAnchor: UnsafeMutableBufferPointer<Double>? = nil) -> Double {
    let rows = labels.count
    precondition(classes >= 1, "crossEntropy: classes must be >= 1, got \(classes)")
    precondition(logits.count == rows * classes, "crossEntropy: logits has \(logits.count) elements, "
                 + "expected rows \(rows) × classes \(classes)")
    precondition(probs.count >= rows * classes,
                 "crossEntropy: probs has \(probs.count) elements, need \(rows * classes)")
    precondition(globalCount >= 1, "crossEntropy: globalCount must be >= 1, got \(globalCount)")
    if let perAnchor {
        precondition(perAnchor.count >= rows, "crossEntropy: perAnchor \(perAnchor.count) < rows \(rows)")
    }
    let z = logits.baseAddress!, p = probs.baseAddress!
    var total = 0.0
    for i in 0..<rows {
        let y = Int(labels[i])
        precondition(y >= 0 && y < classes, "crossEntropy: label \(y) at row \(i) outside 0..<\(classes)")
        let row = z + i * classes, out = p + i * classes
        var m = -T.infinity
        for c in 0..<classes { m = max(m, row[c]) }
        // exp(z − m) ≤ 1: no overflow whatever the logit scale.
        var sum: T = 0
        for c in 0..<classes {
            let e = T.exp(row[c] - m)
            out[c] = e
            sum += e
        }
        let inv = 1 / sum
        for c in 0..<classes { out[c] *= inv }
        let l = Double(m) + Double(T.log(sum)) - Double(row[y])
        perAnchor?[i] = l
        total += l
    }
    return total / Double(globalCount)
}

// MARK: - Backward

/// Cross-entropy backward: overwrites dLogits with ∂(scale·L)/∂logits = (scale/globalCount)·(probs − onehot(labels)).
///
/// probs (from `crossEntropy`), dLogits: (rows, classes); labels: rows values.
@_specialize(exported: true, where T == Float)
@_specialize(where T == Double)
public func crossEntropyBackward<T: BLASScalar>(probs: UnsafeBufferPointer<T>, labels: UnsafeBufferPointer<Int32>,
                                                classes: Int, globalCount: Int, scale: T,
                                                dLogits: UnsafeMutableBufferPointer<T>) {
    let rows = labels.count
    precondition(probs.count >= rows * classes, "crossEntropyBackward: probs has \(probs.count) elements, "
                 + "need \(rows * classes)")
    precondition(dLogits.count >= rows * classes, "crossEntropyBackward: dLogits has \(dLogits.count) elements, "
                 + "need \(rows * classes)")
    precondition(globalCount >= 1, "crossEntropyBackward: globalCount must be >= 1, got \(globalCount)")
    let factor = scale / T(globalCount)
    let p = probs.baseAddress!, d = dLogits.baseAddress!
    for i in 0..<rows {
        let row = p + i * classes, out = d + i * classes
        for c in 0..<classes { out[c] = factor * row[c] }
        out[Int(labels[i])] -= factor
    }
}
