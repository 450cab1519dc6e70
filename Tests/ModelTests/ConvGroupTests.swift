import Testing
import Tensor
import Model

// The 3×3 fast path with several images per gemm (`forwardGrouped`, `backwardGrouped`) against the per-image
// path (group 1), and its gradients against central differences with a batch that leaves a partial last group.

@Suite struct ConvGroupTests {
    struct Case: CustomStringConvertible, Sendable {
        let inC: Int, outC: Int, h: Int, w: Int, batch: Int, group: Int, bias: Bool
        var description: String { "C\(inC) O\(outC) \(h)×\(w) B\(batch) G\(group) bias \(bias)" }
    }
    static let cases = [
        Case(inC: 3, outC: 5, h: 5, w: 7, batch: 7, group: 3, bias: true),
        Case(inC: 1, outC: 4, h: 6, w: 6, batch: 5, group: 4, bias: true),
        Case(inC: 6, outC: 2, h: 4, w: 3, batch: 4, group: 4, bias: false),
        Case(inC: 4, outC: 4, h: 9, w: 9, batch: 3, group: 2, bias: false),
    ]

    static func make(_ t: Case) -> (Conv2d, Arena) {
        var registry = ParameterRegistry()
        let conv = Conv2d(inChannels: t.inC, outChannels: t.outC, kernel: 3, stride: 1, padding: 1, bias: t.bias,
                          height: t.h, width: t.w, name: "conv", registry: &registry)
        let params = Arena(count: registry.layout.total)
        fillUniform(params.base, count: params.count, seed: 41)
        return (conv, params)
    }

    /// Grouped forward (with and without the fused ReLU) and backward (plain, through the ReLU, accumulating
    /// into dX) match the per-image path to 1e-5 relative (1e-6 absolute).
    @Test(arguments: cases)
    func groupedMatchesPerImage(_ t: Case) {
        let (conv, params) = Self.make(t)
        let batch = t.batch
        let x = Arena(count: batch * conv.inputSize), c = Arena(count: batch * conv.outputSize)
        fillUniform(x.base, count: x.count, seed: 42)
        fillUniform(c.base, count: c.count, seed: 43)
        for relu in [false, true] {
            for accumulate in [false, true] {
                var y: [[Float]] = [], g: [[Float]] = [], dX: [[Float]] = [], grads: [[Float]] = []
                for group in [1, t.group] {
                    let scratch = Arena(count: conv.scratchCount3x3(group: group))
                    let yA = Arena(count: c.count), gA = Arena(count: c.count), dXA = Arena(count: x.count)
                    let gradsA = Arena(count: params.count)
                    fillUniform(dXA.base, count: dXA.count, seed: 44)
                    fillUniform(gradsA.base, count: gradsA.count, seed: 45)
                    conv.forwardGrouped(input: x.base, output: yA.base, batch: batch, group: group, params: params,
                                        scratch: scratch.base, relu: relu)
                    gA.base.update(from: c.base, count: c.count)
                    conv.backwardGrouped(dOutput: gA.base, reluOutput: relu ? UnsafePointer(yA.base) : nil,
                                         input: x.base, dInput: dXA.base, batch: batch, group: group,
                                         params: params, grads: gradsA, scratch: scratch.base,
                                         accumulateInput: accumulate)
                    y.append(yA.toArray()); g.append(gA.toArray()); dX.append(dXA.toArray())
                    grads.append(gradsA.toArray())
                }
                // A wider gemm may block the inner sums differently: equal to rounding, not bit for bit.
                assertClose(y[1], y[0].map(Double.init), rtol: 1e-5, atol: 1e-6, "forward \(t) relu \(relu)")
                assertClose(g[1], g[0].map(Double.init), rtol: 1e-5, atol: 1e-6, "masked dY \(t) relu \(relu)")
                assertClose(dX[1], dX[0].map(Double.init), rtol: 1e-5, atol: 1e-6, "dX \(t) relu \(relu)")
                assertClose(grads[1], grads[0].map(Double.init), rtol: 1e-5, atol: 1e-6, "grads \(t) relu \(relu)")
            }
        }
    }

    /// The grouped path's gradients match central differences (batch 5 in groups of 2: a partial last group).
    @Test func groupedFiniteDifferences() {
        let t = Case(inC: 2, outC: 3, h: 4, w: 5, batch: 5, group: 2, bias: true)
        let (conv, params) = Self.make(t)
        let batch = t.batch, scratch = Arena(count: conv.scratchCount3x3(group: t.group))
        let x = Arena(count: batch * conv.inputSize), y = Arena(count: batch * conv.outputSize)
        let c = Arena(count: y.count), dX = Arena(count: x.count), grads = Arena(count: params.count)
        fillUniform(x.base, count: x.count, seed: 46)
        fillUniform(c.base, count: c.count, seed: 47)
        func loss() -> Double {
            conv.forwardGrouped(input: x.base, output: y.base, batch: batch, group: t.group, params: params,
                                scratch: scratch.base)
            return weightedSum(y.base, c.base, count: y.count)
        }
        _ = loss()
        dX.base.update(repeating: 7, count: dX.count)   // must be overwritten
        conv.backwardGrouped(dOutput: c.base, reluOutput: nil, input: x.base, dInput: dX.base, batch: batch,
                             group: t.group, params: params, grads: grads, scratch: scratch.base,
                             accumulateInput: false)
        // Tolerances as LayerGradientTests.conv2dGradients (linear in every variable; Float rounding only).
        assertClose(dX.toArray(), centralDifferences(x.base, count: x.count, eps: 1e-2, loss: loss),
                    rtol: 1e-3, atol: 2e-4, "dX")
        let fdW = centralDifferences(params.pointer(conv.weight), count: conv.weight.count, eps: 1e-2, loss: loss)
        assertClose(array(grads.pointer(conv.weight), conv.weight.count), fdW, rtol: 1e-3, atol: 2e-4, "dW")
        let fdB = centralDifferences(params.pointer(conv.bias), count: conv.bias.count, eps: 1e-2, loss: loss)
        assertClose(array(grads.pointer(conv.bias), conv.bias.count), fdB, rtol: 1e-3, atol: 2e-4, "db")
    }

    /// The fast path's block-copy im2col equals the general im2col (k = 3, stride 1, padding 1), thin images
    /// included, and writes every element of a strided col matrix.
    @Test(arguments: [(2, 5, 7), (1, 1, 1), (3, 1, 4), (2, 4, 1), (1, 2, 2), (2, 28, 28)])
    func im2col3x3MatchesGeneral(shape: (Int, Int, Int)) {
        let (c, h, w) = shape
        var registry = ParameterRegistry()
        let conv = Conv2d(inChannels: c, outChannels: 1, kernel: 3, stride: 1, padding: 1, bias: false, height: h,
                          width: w, name: "conv", registry: &registry)
        let p = h * w, ld = 2 * p + 3
        let x = Arena(count: conv.inputSize), ref = Arena(count: c * 9 * p), col = Arena(count: c * 9 * ld)
        fillUniform(x.base, count: x.count, seed: 48)
        conv.im2col(image: x.base, col: ref.base)
        col.base.update(repeating: .nan, count: col.count)
        conv.im2col3x3(image: x.base, channels: c, col: col.base + p, ldCol: ld)
        for r in 0..<(c * 9) {
            #expect(Array(UnsafeBufferPointer(start: col.base + r * ld + p, count: p))
                    == Array(UnsafeBufferPointer(start: ref.base + r * p, count: p)), "row \(r) of \(shape)")
        }
    }

    /// The group size stays within 1…16 and the scratch within the documented bound.
    @Test func groupSizeAndScratchBound() {
        for (c, o, hw) in [(1, 16, 28), (16, 16, 28), (32, 32, 14), (64, 64, 7), (32, 64, 14), (3, 8, 2)] {
            var registry = ParameterRegistry()
            let conv = Conv2d(inChannels: c, outChannels: o, kernel: 3, stride: 1, padding: 1, bias: false,
                              height: hw, width: hw, name: "conv", registry: &registry)
            #expect((1...16).contains(conv.imageGroup))
            #expect(conv.scratchCount <= 10 * max(c, o) * max(Conv2d.groupColumns, hw * hw) + c * o * 9)
        }
    }
}
