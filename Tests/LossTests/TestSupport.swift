// Shared helpers of the loss tests: closeness assertions, array wrappers around the pointer API, random problems
// and a plain loop-based reference implementation of the contrastive losses (independent of the fused kernels).

import Foundation
import Testing
import Tensor
import Loss

// MARK: - Closeness

/// Records an issue unless |actual_i − expected_i| ≤ atol + rtol·|expected_i| for every i; the message names the
/// first failing index, both values, the number of failures and the largest difference.
func assertClose(_ actual: [Double], _ expected: [Double], rtol: Double = 0, atol: Double = 0, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var firstBad = -1, bad = 0, maxDiff = 0.0
    for i in actual.indices {
        let diff = abs(actual[i] - expected[i])
        if !(diff <= atol + rtol * abs(expected[i])) {   // also catches NaN
            bad += 1
            if firstBad < 0 { firstBad = i }
        }
        maxDiff = max(maxDiff, diff.isNaN ? .infinity : diff)
    }
    if bad > 0 {
        let message = "\(what): \(bad)/\(actual.count) values differ; first at index \(firstBad): "
            + "\(actual[firstBad]) vs expected \(expected[firstBad]); max |diff| \(maxDiff) "
            + "(rtol \(rtol), atol \(atol))"
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    }
}

/// assertClose on one value.
func assertClose(_ actual: Double, _ expected: Double, rtol: Double = 0, atol: Double = 0, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    assertClose([actual], [expected], rtol: rtol, atol: atol, what, sourceLocation: sourceLocation)
}

/// Largest |v|.
func maxAbs(_ v: [Double]) -> Double { v.reduce(0) { max($0, abs($1)) } }

// MARK: - Array wrappers around the API

/// Result of one contrastive call, as Double arrays.
struct ContrastiveResult {
    var loss: Double
    var perAnchor: [Double]
    var dEmbeddings: [Double]
}

/// Runs `contrastiveLoss` in precision T on Double data (rows = labels.count, row-major x of width dim).
func runContrastive<T: BLASScalar>(_ loss: ContrastiveLoss, x: [Double], labels: [Int32], dim: Int, tau: Double,
                                   anchors: Range<Int>? = nil, globalCount: Int? = nil, scale: Double = 1,
                                   maxAnchors: Int? = nil, as _: T.Type) -> ContrastiveResult {
    let rows = labels.count
    let anchorRows = anchors ?? 0..<rows
    let workspace = ContrastiveWorkspace<T>(rows: rows, embedDim: dim, maxAnchors: maxAnchors)
    let xs = x.map { T($0) }
    var dx = [T](repeating: .nan, count: rows * dim)
    var per = [Double](repeating: .nan, count: anchorRows.count)
    let value = xs.withUnsafeBufferPointer { xb in
        labels.withUnsafeBufferPointer { lb in
            dx.withUnsafeMutableBufferPointer { db in
                per.withUnsafeMutableBufferPointer { pb in
                    contrastiveLoss(loss, embeddings: xb, labels: lb, anchorRows: anchorRows,
                                    globalCount: globalCount ?? rows, tau: T(tau), scale: T(scale),
                                    workspace: workspace, dEmbeddings: db, perAnchor: pb)
                }
            }
        }
    }
    return ContrastiveResult(loss: value, perAnchor: per, dEmbeddings: dx.map { Double($0) })
}

/// Result of one cross-entropy forward+backward.
struct CrossEntropyResult {
    var loss: Double
    var perAnchor: [Double]
    var dLogits: [Double]
}

/// Runs `crossEntropy` and `crossEntropyBackward` in precision T.
func runCrossEntropy<T: BLASScalar>(logits: [Double], labels: [Int32], classes: Int, globalCount: Int? = nil,
                                    scale: Double = 1, as _: T.Type) -> CrossEntropyResult {
    let rows = labels.count
    let z = logits.map { T($0) }
    var probs = [T](repeating: .nan, count: rows * classes)
    var d = [T](repeating: .nan, count: rows * classes)
    var per = [Double](repeating: .nan, count: rows)
    let value = z.withUnsafeBufferPointer { zb in
        labels.withUnsafeBufferPointer { lb in
            probs.withUnsafeMutableBufferPointer { pb in
                let v = per.withUnsafeMutableBufferPointer { perb in
                    crossEntropy(logits: zb, labels: lb, classes: classes, globalCount: globalCount ?? rows,
                                 probs: pb, perAnchor: perb)
                }
                d.withUnsafeMutableBufferPointer { db in
                    crossEntropyBackward(probs: UnsafeBufferPointer(pb), labels: lb, classes: classes,
                                         globalCount: globalCount ?? rows, scale: T(scale), dLogits: db)
                }
                return v
            }
        }
    }
    return CrossEntropyResult(loss: value, perAnchor: per, dLogits: d.map { Double($0) })
}

/// Result of one `LossComputer.compute` call.
struct BlendResult {
    var value: LossValue
    var dEmbeddings: [Double]
    var dLogits: [Double]
}

/// Runs `LossComputer.compute` in precision T. `logits`/`localLabels` are the anchor rows' (default: all rows).
func runBlend<T: BLASScalar>(_ kind: LossKind, x: [Double], labels: [Int32], dim: Int, logits: [Double],
                             classes: Int, tau: Double, lambda: Double, beta: Double, anchors: Range<Int>? = nil,
                             globalCount: Int? = nil, as _: T.Type) -> BlendResult {
    let rows = labels.count
    let anchorRows = anchors ?? 0..<rows
    let localLabels = Array(labels[anchorRows])
    let computer = LossComputer<T>(rows: rows, embedDim: dim, localRows: max(1, anchorRows.count), classes: classes)
    let xs = x.map { T($0) }, zs = logits.map { T($0) }
    var dx = [T](repeating: .nan, count: rows * dim)
    var dz = [T](repeating: .nan, count: logits.count)
    let value = xs.withUnsafeBufferPointer { xb in
        labels.withUnsafeBufferPointer { lb in
            localLabels.withUnsafeBufferPointer { llb in
                zs.withUnsafeBufferPointer { zb in
                    dx.withUnsafeMutableBufferPointer { dxb in
                        dz.withUnsafeMutableBufferPointer { dzb in
                            computer.compute(kind: kind, gatheredEmbeddings: xb, labels: lb, anchorRows: anchorRows,
                                             localLogits: zb, localLabels: llb, globalCount: globalCount ?? rows,
                                             tau: T(tau), lambda: lambda, beta: T(beta),
                                             dEmbeddings: dxb, dLogits: dzb)
                        }
                    }
                }
            }
        }
    }
    return BlendResult(value: value, dEmbeddings: dx.map { Double($0) }, dLogits: dz.map { Double($0) })
}

// MARK: - Random problems

/// A random problem: row-major embeddings (rows, dim), labels, logits (rows, classes).
struct Problem {
    var rows: Int, dim: Int, classes: Int
    var x: [Double]
    var labels: [Int32]
    var logits: [Double]
}

/// Normal embeddings and logits from `CounterRNG(seed)`, labels uniform in 0..<classes except the last row, which
/// gets the unique label `classes` (an anchor without positives) when `loneRow` is set.
func randomProblem(rows: Int, dim: Int, classes: Int, seed: UInt64, loneRow: Bool = true) -> Problem {
    let rng = CounterRNG(seed: seed)
    let x = (0..<(rows * dim)).map { rng.normal(stream: .test, index: UInt64($0)) }
    let logits = (0..<(rows * (classes + 1))).map { rng.normal(stream: .test, index: UInt64($0), substream: 1) }
    var labels = (0..<rows).map { Int32(rng.integer(below: classes, stream: .test, index: UInt64($0), substream: 2)) }
    if loneRow { labels[rows - 1] = Int32(classes) }
    return Problem(rows: rows, dim: dim, classes: classes + 1, x: x, labels: labels, logits: logits)
}

// MARK: - Loop-based reference

/// The contrastive losses written straight from their definitions (exp without log-space tricks, fine for τ ≥ 0.2
/// and small batches). Returns (1/globalCount)·Σ_{i∈anchors} l_i, the l_i, and the weights w_ik used (0 off Neg).
/// `frozenWeights`, when given, replaces the computed w_ik (for checking the detached gradient).
func referenceContrastive(_ loss: ContrastiveLoss, x: [Double], labels: [Int32], dim: Int, tau: Double,
                          anchors: Range<Int>? = nil, globalCount: Int? = nil,
                          frozenWeights: [[Double]]? = nil)
    -> (loss: Double, perAnchor: [Double], weights: [[Double]]) {
    let n = labels.count
    let z: [[Double]] = (0..<n).map { i in
        let row = Array(x[(i * dim)..<((i + 1) * dim)])
        let norm = max(row.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        return row.map { $0 / norm }
    }
    var per: [Double] = []
    var weights = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
    for i in anchors ?? 0..<n {
        var s = [Double](repeating: 0, count: n)
        for j in 0..<n { s[j] = zip(z[i], z[j]).reduce(0) { $0 + $1.0 * $1.1 } / tau }
        let pos = (0..<n).filter { $0 != i && labels[$0] == labels[i] }
        let neg = (0..<n).filter { labels[$0] != labels[i] }
        let sumBeta = neg.reduce(0) { $0 + exp(loss.beta * s[$1]) }
        for k in neg { weights[i][k] = Double(neg.count) * exp(loss.beta * s[k]) / sumBeta }
        let w = frozenWeights?[i] ?? weights[i]
        if pos.isEmpty { per.append(0); continue }
        let g = neg.reduce(0) { $0 + w[$1] * exp(s[$1]) }
        let sp = pos.reduce(0) { $0 + exp(s[$1]) }
        let np = Double(pos.count)
        switch loss.form {
        case .pooled(.inside):
            per.append(-log(sp / np / (sp + g)))
        case .pooled(.outside):
            per.append(-pos.reduce(0) { $0 + log(exp(s[$1]) / (sp + g)) } / np)
        case .perPositive:
            per.append(-pos.reduce(0) { $0 + log(exp(s[$1]) / (exp(s[$1]) + g)) } / np)
        }
    }
    return (per.reduce(0, +) / Double(globalCount ?? n), per, weights)
}

/// Central differences of f at x: (f(x + h e_k) − f(x − h e_k)) / 2h for every k.
func centralDifferences(_ x: [Double], h: Double, _ f: ([Double]) -> Double) -> [Double] {
    var out = [Double](repeating: 0, count: x.count)
    var xp = x
    for k in x.indices {
        xp[k] = x[k] + h
        let up = f(xp)
        xp[k] = x[k] - h
        let down = f(xp)
        xp[k] = x[k]
        out[k] = (up - down) / (2 * h)
    }
    return out
}
