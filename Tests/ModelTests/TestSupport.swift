import Testing
import Tensor
import Model

/// Checks |actual − expected| ≤ atol + rtol·|expected| elementwise; reports the first offending index, both
/// values and the max difference.
func assertClose(_ actual: [Double], _ expected: [Double], rtol: Double, atol: Double,
                 _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(what): count \(actual.count) vs \(expected.count)",
            sourceLocation: sourceLocation)
    var maxDiff = 0.0, firstBad = -1
    for i in 0..<min(actual.count, expected.count) {
        let d = abs(actual[i] - expected[i])
        maxDiff = max(maxDiff, d)
        if firstBad < 0 && !(d <= atol + rtol * abs(expected[i])) { firstBad = i }
    }
    if firstBad >= 0 {
        let message = "\(what): index \(firstBad): actual \(actual[firstBad]) expected \(expected[firstBad]); "
            + "max |diff| \(maxDiff) (rtol \(rtol), atol \(atol))"
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    }
}

func assertClose(_ actual: [Float], _ expected: [Double], rtol: Double, atol: Double, _ what: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    assertClose(actual.map(Double.init), expected, rtol: rtol, atol: atol, what, sourceLocation: sourceLocation)
}

/// Fills `count` floats at `p` with uniform values in [lo, hi) from the test stream.
func fillUniform(_ p: UnsafeMutablePointer<Float>, count: Int, seed: UInt64, lo: Float = -1, hi: Float = 1,
                 substream: UInt32 = 0) {
    let rng = CounterRNG(seed: seed)
    for i in 0..<count {
        p[i] = lo + (hi - lo) * rng.uniform(stream: .test, index: UInt64(i), substream: substream)
    }
}

/// Uniform values in [lo, hi) whose magnitude is at least `margin` (kept away from ReLU's kink).
func fillAwayFromZero(_ p: UnsafeMutablePointer<Float>, count: Int, seed: UInt64, margin: Float) {
    fillUniform(p, count: count, seed: seed)
    for i in 0..<count { p[i] = p[i] < 0 ? p[i] - margin : p[i] + margin }
}

/// Σ c_i·y_i in Double.
func weightedSum(_ y: UnsafePointer<Float>, _ c: UnsafePointer<Float>, count: Int) -> Double {
    var s = 0.0
    for i in 0..<count { s += Double(c[i]) * Double(y[i]) }
    return s
}

/// Central difference (L(x+ε) − L(x−ε)) / (x₊ − x₋) for the Float at `p`, restoring it afterwards.
func centralDifference(_ p: UnsafeMutablePointer<Float>, eps: Float, loss: () -> Double) -> Double {
    let saved = p.pointee
    let up = saved + eps, down = saved - eps
    p.pointee = up
    let plus = loss()
    p.pointee = down
    let minus = loss()
    p.pointee = saved
    return (plus - minus) / (Double(up) - Double(down))
}

/// Central differences for every element of `count` floats at `p`.
func centralDifferences(_ p: UnsafeMutablePointer<Float>, count: Int, eps: Float, loss: () -> Double) -> [Double] {
    (0..<count).map { centralDifference(p + $0, eps: eps, loss: loss) }
}

func array(_ p: UnsafePointer<Float>, _ count: Int) -> [Float] { Array(UnsafeBufferPointer(start: p, count: count)) }

/// A Conv2d of `shape` = (inChannels, outChannels, height, width, batch) with its own parameter and gradient arenas
/// and one batch of buffers: parameters ~ U(−1, 1) from `seed`, input x from `seed + 1`, loss weights c (same shape
/// as the output y) from `seed + 2`.
struct ConvFixture {
    let conv: Conv2d
    let batch: Int
    let params: Arena, grads: Arena
    let x: Arena, y: Arena, c: Arena, dX: Arena, scratch: Arena

    init(_ shape: (Int, Int, Int, Int, Int), seed: UInt64) {
        let (inC, outC, h, w, batch) = shape
        var layout = ArenaLayout()
        conv = Conv2d(inChannels: inC, outChannels: outC, height: h, width: w, name: "conv", layout: &layout)
        self.batch = batch
        params = Arena(count: layout.total)
        grads = Arena(count: layout.total)
        x = Arena(count: batch * conv.inputSize)
        y = Arena(count: batch * conv.outputSize)
        c = Arena(count: y.count)
        dX = Arena(count: x.count)
        scratch = Arena(count: conv.scratchCount)
        fillUniform(params.base, count: params.count, seed: seed)
        fillUniform(x.base, count: x.count, seed: seed + 1)
        fillUniform(c.base, count: c.count, seed: seed + 2)
    }
}
