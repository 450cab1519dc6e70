import Testing
import Tensor
import Model

// The fused layer kernels (bias + ReLU in the forward epilogue, ReLU mask + bias reduction in the backward
// prologue) against the unfused path (layer, then `ReLU`), and by central finite differences of
// L = Σ c_i·relu(layer(x))_i. Shapes make the 8-lane loops run both full vectors and scalar tails (19 = 16 + 3
// features, 5×7 = 32 + 3 pixels). Pre-activations are not kept away from 0 for the fused-vs-unfused checks
// (both paths must agree exactly on the mask); for finite differences the inputs are fixed so no pre-activation
// lies within ε of 0 (checked).

@Suite struct FusedLayerTests {
    @Test func linearFusedMatchesUnfused() {
        let batch = 3, inF = 11, outF = 19
        var layout = ArenaLayout()
        let layer = Linear(inFeatures: inF, outFeatures: outF, name: "fc", layout: &layout)
        let params = Arena(count: layout.total)
        fillUniform(params.base, count: params.count, seed: 21)
        let x = Arena(count: batch * inF), c = Arena(count: batch * outF)
        fillUniform(x.base, count: x.count, seed: 22)
        fillUniform(c.base, count: c.count, seed: 23)

        // Unfused: forward, ReLU, ReLU backward, backward.
        let yRef = Arena(count: batch * outF), gRef = Arena(count: batch * outF), dXRef = Arena(count: x.count)
        let gradsRef = Arena(count: params.count)
        layer.forward(input: x.base, output: yRef.base, batch: batch, params: params)
        ReLU().forward(input: yRef.base, output: yRef.base, count: yRef.count)
        ReLU().backward(dOutput: c.base, output: yRef.base, dInput: gRef.base, count: gRef.count)
        layer.backward(dOutput: gRef.base, input: x.base, dInput: dXRef.base, batch: batch, params: params,
                       grads: gradsRef)

        // Fused.
        let y = Arena(count: batch * outF), g = Arena(count: batch * outF), dX = Arena(count: x.count)
        let grads = Arena(count: params.count)
        layer.forward(input: x.base, output: y.base, batch: batch, params: params, relu: true)
        g.base.update(from: c.base, count: c.count)
        dX.base.update(repeating: 7, count: dX.count)    // must be overwritten
        layer.backwardThroughReLU(dOutput: g.base, output: y.base, input: x.base, dInput: dX.base, batch: batch,
                                  params: params, grads: grads)
        #expect(y.toArray() == yRef.toArray())
        #expect(g.toArray() == gRef.toArray(), "dOutput is masked in place")
        // Tolerance: same products in the same order; the bias sum may differ in summation order only.
        assertClose(dX.toArray(), dXRef.toArray().map(Double.init), rtol: 1e-6, atol: 1e-7, "dX")
        assertClose(grads.toArray(), gradsRef.toArray().map(Double.init), rtol: 1e-5, atol: 1e-6, "grads")
    }

    @Test func linearThroughReLUFiniteDifferences() {
        let batch = 2, inF = 5, outF = 9
        var layout = ArenaLayout()
        let layer = Linear(inFeatures: inF, outFeatures: outF, name: "fc", layout: &layout)
        let params = Arena(count: layout.total), grads = Arena(count: layout.total)
        fillUniform(params.base, count: params.count, seed: 24)
        let x = Arena(count: batch * inF), y = Arena(count: batch * outF), c = Arena(count: batch * outF)
        let dX = Arena(count: x.count)
        fillUniform(x.base, count: x.count, seed: 25)
        fillUniform(c.base, count: c.count, seed: 26)
        let eps: Float = 1e-3
        func loss() -> Double {
            layer.forward(input: x.base, output: y.base, batch: batch, params: params, relu: true)
            return weightedSum(y.base, c.base, count: y.count)
        }
        // Kinks: one ±ε step moves a pre-activation by at most ε·max(|x|, |w|, 1) = 1e-3, so every pre-activation
        // must be ≥ 5e-3 from 0.
        layer.forward(input: x.base, output: y.base, batch: batch, params: params)
        for i in 0..<y.count { #expect(abs(y[i]) > 5e-3, "pre-activation \(i) = \(y[i]) too close to the kink") }
        _ = loss()
        let g = Arena(count: c.count)
        g.base.update(from: c.base, count: c.count)
        layer.backwardThroughReLU(dOutput: g.base, output: y.base, input: x.base, dInput: dX.base, batch: batch,
                                  params: params, grads: grads)
        // Tolerances: piecewise linear, Float rounding of L ≈ 1e-7 over 2ε: atol 2e-4, rtol 1e-3.
        assertClose(dX.toArray(), centralDifferences(x.base, count: x.count, eps: eps, loss: loss),
                    rtol: 1e-3, atol: 2e-4, "dX")
        let fdW = centralDifferences(params.pointer(layer.weight), count: layer.weight.count, eps: eps, loss: loss)
        assertClose(array(grads.pointer(layer.weight), layer.weight.count), fdW, rtol: 1e-3, atol: 2e-4, "dW")
        let fdB = centralDifferences(params.pointer(layer.bias), count: layer.bias.count, eps: eps, loss: loss)
        assertClose(array(grads.pointer(layer.bias), layer.bias.count), fdB, rtol: 1e-3, atol: 2e-4, "db")
    }

    @Test(arguments: [(3, 5, 5, 7, 2), (1, 4, 3, 3, 2), (4, 2, 4, 4, 1)])
    func convFusedMatchesUnfused(shape: (Int, Int, Int, Int, Int)) {
        let (inC, _, h, w, _) = shape
        let f = ConvFixture(shape, seed: 27)
        let (conv, batch, params, x, c, scratch) = (f.conv, f.batch, f.params, f.x, f.c, f.scratch)
        let outC = conv.outChannels

        // Unfused reference: forward, ReLU; ReLU backward, then dX by Wᵀ·dY + col2im (the adjoint of im2col).
        let yRef = Arena(count: c.count), gRef = Arena(count: c.count), dXRef = Arena(count: x.count)
        let gradsRef = Arena(count: params.count)
        conv.forward(input: x.base, output: yRef.base, batch: batch, params: params, scratch: scratch.base)
        ReLU().forward(input: yRef.base, output: yRef.base, count: yRef.count)
        ReLU().backward(dOutput: c.base, output: yRef.base, dInput: gRef.base, count: gRef.count)
        conv.backward(dOutput: gRef.base, input: x.base, dInput: nil, batch: batch, params: params,
                      grads: gradsRef, scratch: scratch.base)
        let k = inC * 9, p = h * w
        let dCol = Arena(count: k * p)
        for n in 0..<batch {
            gemm(.transposed, .none, m: k, n: p, k: outC, a: params.pointer(conv.weight), lda: k,
                 b: gRef.base + n * conv.outputSize, ldb: p, beta: 0, c: dCol.base, ldc: p)
            conv.col2im(col: dCol.base, image: dXRef.base + n * conv.inputSize)
        }

        // Fused.
        let y = Arena(count: c.count), g = Arena(count: c.count), dX = Arena(count: x.count)
        let grads = Arena(count: params.count)
        conv.forward(input: x.base, output: y.base, batch: batch, params: params, scratch: scratch.base, relu: true)
        g.base.update(from: c.base, count: c.count)
        dX.base.update(repeating: 7, count: dX.count)    // must be overwritten
        conv.backwardThroughReLU(dOutput: g.base, output: y.base, input: x.base, dInput: dX.base, batch: batch,
                                 params: params, grads: grads, scratch: scratch.base)
        #expect(y.toArray() == yRef.toArray())
        #expect(g.toArray() == gRef.toArray(), "dOutput is masked in place")
        // Tolerance: the transposed convolution sums the same products in another order.
        assertClose(dX.toArray(), dXRef.toArray().map(Double.init), rtol: 1e-5, atol: 1e-6, "dX")
        assertClose(grads.toArray(), gradsRef.toArray().map(Double.init), rtol: 1e-5, atol: 1e-6, "grads")
    }

    @Test func convThroughReLUFiniteDifferences() {
        let f = ConvFixture((2, 3, 4, 5, 2), seed: 30)
        let (conv, batch, params, grads, x, y, c, dX, scratch) = (f.conv, f.batch, f.params, f.grads, f.x, f.y, f.c, f.dX,
                                                                  f.scratch)
        let eps: Float = 1e-3
        func loss() -> Double {
            conv.forward(input: x.base, output: y.base, batch: batch, params: params, scratch: scratch.base,
                         relu: true)
            return weightedSum(y.base, c.base, count: y.count)
        }
        // Kinks: one ±ε step moves a pre-activation by at most ε·max(|x|, |w|, 1) = 1e-3; keep a 0.02 margin.
        conv.forward(input: x.base, output: y.base, batch: batch, params: params, scratch: scratch.base)
        var near = 0
        for i in 0..<y.count where abs(y[i]) < 0.02 { near += 1 }
        #expect(near == 0, "\(near) pre-activations within 0.02 of the kink")
        _ = loss()
        let g = Arena(count: c.count)
        g.base.update(from: c.base, count: c.count)
        conv.backwardThroughReLU(dOutput: g.base, output: y.base, input: x.base, dInput: dX.base, batch: batch,
                                 params: params, grads: grads, scratch: scratch.base)
        // Tolerances: rtol 1e-3, atol 3e-4 (piecewise linear; Float rounding of L over 2ε).
        assertClose(dX.toArray(), centralDifferences(x.base, count: x.count, eps: eps, loss: loss),
                    rtol: 1e-3, atol: 3e-4, "conv dX")
        let fdW = centralDifferences(params.pointer(conv.weight), count: conv.weight.count, eps: eps, loss: loss)
        assertClose(array(grads.pointer(conv.weight), conv.weight.count), fdW, rtol: 1e-3, atol: 3e-4, "conv dW")
        let fdB = centralDifferences(params.pointer(conv.bias), count: conv.bias.count, eps: eps, loss: loss)
        assertClose(array(grads.pointer(conv.bias), conv.bias.count), fdB, rtol: 1e-3, atol: 3e-4, "conv db")
    }
}
