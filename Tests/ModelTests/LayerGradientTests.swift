import Testing
import Tensor
import Model

// Central finite-difference checks of every layer on small shapes: loss L = Σ c_i·y_i (Double) with fixed
// random c, so dY = c. Linear and Conv2d are linear in each input/parameter, so ε = 1e-2 leaves only Float
// rounding (≈ 1e-6 in L, ≈ 1e-4 in the quotient); ReLU and MaxPool inputs are kept ≥ 2ε from kinks and ties.

@Suite struct LayerGradientTests {
    @Test func linearGradients() {
        let batch = 3, inF = 5, outF = 4
        var layout = ArenaLayout()
        let layer = Linear(inFeatures: inF, outFeatures: outF, name: "fc", layout: &layout)
        let params = Arena(count: layout.total), grads = Arena(count: layout.total)
        fillUniform(params.base, count: params.count, seed: 1)
        let x = Arena(count: batch * inF), y = Arena(count: batch * outF), c = Arena(count: batch * outF)
        let dX = Arena(count: batch * inF)
        fillUniform(x.base, count: x.count, seed: 2)
        fillUniform(c.base, count: c.count, seed: 3)
        func loss() -> Double {
            layer.forward(input: x.base, output: y.base, batch: batch, params: params)
            return weightedSum(y.base, c.base, count: y.count)
        }
        _ = loss()
        layer.backward(dOutput: c.base, input: x.base, dInput: dX.base, batch: batch, params: params, grads: grads)
        // Tolerances: rtol 1e-3, atol 1e-4 (see file comment).
        let fdX = centralDifferences(x.base, count: x.count, eps: 1e-2, loss: loss)
        assertClose(dX.toArray(), fdX, rtol: 1e-3, atol: 1e-4, "dX")
        let fdW = centralDifferences(params.pointer(layer.weight), count: layer.weight.count, eps: 1e-2, loss: loss)
        assertClose(array(grads.pointer(layer.weight), layer.weight.count), fdW, rtol: 1e-3, atol: 1e-4, "dW")
        let fdB = centralDifferences(params.pointer(layer.bias), count: layer.bias.count, eps: 1e-2, loss: loss)
        assertClose(array(grads.pointer(layer.bias), layer.bias.count), fdB, rtol: 1e-3, atol: 1e-4, "db")

        // Backward accumulates into parameter grads, overwrites dX unless asked to accumulate.
        let once = grads.toArray()
        layer.backward(dOutput: c.base, input: x.base, dInput: dX.base, batch: batch, params: params, grads: grads,
                       accumulateInput: true)
        assertClose(grads.toArray(), once.map { 2 * Double($0) }, rtol: 1e-6, atol: 0, "accumulated grads")
        assertClose(dX.toArray(), fdX.map { 2 * $0 }, rtol: 1e-3, atol: 2e-4, "accumulated dX")
    }

    @Test func reluGradients() {
        let n = 40
        let x = Arena(count: n), y = Arena(count: n), c = Arena(count: n), dX = Arena(count: n)
        fillAwayFromZero(x.base, count: n, seed: 4, margin: 0.05)
        fillUniform(c.base, count: n, seed: 5)
        let relu = ReLU()
        func loss() -> Double {
            relu.forward(input: x.base, output: y.base, count: n)
            return weightedSum(y.base, c.base, count: n)
        }
        _ = loss()
        for i in 0..<n { #expect(y[i] == max(x[i], 0)) }
        relu.backward(dOutput: c.base, output: y.base, dInput: dX.base, count: n)
        // Tolerance: piecewise linear away from 0, so FD is exact up to rounding: atol 1e-5.
        assertClose(dX.toArray(), centralDifferences(x.base, count: n, eps: 1e-2, loss: loss),
                    rtol: 1e-4, atol: 1e-5, "relu dX")
        // In place: output == input, dInput == dOutput.
        let z = Arena(count: n)
        z.base.update(from: x.base, count: n)
        relu.forward(input: z.base, output: z.base, count: n)
        #expect(z.toArray() == y.toArray())
        let g = Arena(count: n)
        g.base.update(from: c.base, count: n)
        relu.backward(dOutput: g.base, output: z.base, dInput: g.base, count: n)
        #expect(g.toArray() == dX.toArray())
    }

    @Test(arguments: [(2, 3, 4, 5, 2), (1, 2, 3, 3, 1), (3, 2, 6, 2, 2)])
    func conv2dGradients(shape: (Int, Int, Int, Int, Int)) {
        let f = ConvFixture(shape, seed: 6)
        let (conv, batch, params, grads, x, y, c, dX, scratch) = (f.conv, f.batch, f.params, f.grads, f.x, f.y, f.c, f.dX,
                                                                  f.scratch)
        func loss() -> Double {
            conv.forward(input: x.base, output: y.base, batch: batch, params: params, scratch: scratch.base)
            return weightedSum(y.base, c.base, count: y.count)
        }
        _ = loss()
        dX.base.update(repeating: 7, count: dX.count)   // must be overwritten
        conv.backward(dOutput: c.base, input: x.base, dInput: dX.base, batch: batch, params: params, grads: grads,
                      scratch: scratch.base)
        // Tolerances: rtol 1e-3, atol 2e-4 (linear in every variable; Float rounding only).
        assertClose(dX.toArray(), centralDifferences(x.base, count: x.count, eps: 1e-2, loss: loss),
                    rtol: 1e-3, atol: 2e-4, "conv dX")
        let fdW = centralDifferences(params.pointer(conv.weight), count: conv.weight.count, eps: 1e-2, loss: loss)
        assertClose(array(grads.pointer(conv.weight), conv.weight.count), fdW, rtol: 1e-3, atol: 2e-4, "conv dW")
        let fdB = centralDifferences(params.pointer(conv.bias), count: conv.bias.count, eps: 1e-2, loss: loss)
        assertClose(array(grads.pointer(conv.bias), conv.bias.count), fdB, rtol: 1e-3, atol: 2e-4, "conv db")
    }

    @Test(arguments: [(2, 4, 6, 3), (1, 5, 7, 2)])
    func maxPoolGradients(shape: (Int, Int, Int, Int)) {
        let (channels, h, w, batch) = shape
        let pool = MaxPool2d(channels: channels, height: h, width: w)
        let n = batch * pool.inputSize, m = batch * pool.outputSize
        let x = Arena(count: n), y = Arena(count: m), c = Arena(count: m), dX = Arena(count: n)
        let indices = Buffer<Int32>(count: m, repeating: -1)
        // Distinct values 0.05 apart (a permutation), so ε = 1e-2 never changes an argmax.
        let order = CounterRNG(seed: 9).permutation(count: n, stream: .test, key: 0)
        for i in 0..<n { x[i] = 0.05 * Float(order[i]) - 1 }
        fillUniform(c.base, count: m, seed: 10)
        func loss() -> Double {
            pool.forward(input: x.base, output: y.base, indices: indices.base, batch: batch)
            return weightedSum(y.base, c.base, count: m)
        }
        _ = loss()
        dX.base.update(repeating: 3, count: n)
        pool.backward(dOutput: c.base, indices: indices.base, dInput: dX.base, batch: batch)
        assertClose(dX.toArray(), centralDifferences(x.base, count: n, eps: 1e-2, loss: loss),
                    rtol: 1e-4, atol: 1e-5, "maxpool dX")
        #expect(pool.outHeight == h / 2 && pool.outWidth == w / 2)
    }

    @Test func maxPoolTiesGoToFirstInScanOrder() {
        // One sample, one channel, 4×5 (odd width: last column dropped). Window values:
        // all equal → top-left; top-right == bottom-left max → top-right (first in scan order).
        let pool = MaxPool2d(channels: 1, height: 4, width: 5)
        let x: [Float] = [
            1, 1, 0, 2, 9,
            1, 1, 2, 0, 9,
            0, 3, 5, 5, 9,
            3, 0, 5, 5, 9,
        ]
        let input = Arena(x), y = Arena(count: 4), indices = Buffer<Int32>(count: 4, repeating: -1)
        pool.forward(input: input.base, output: y.base, indices: indices.base, batch: 1)
        #expect(y.toArray() == [1, 2, 3, 5])
        #expect(indices.toArray() == [0, 3, 11, 12])
        let dX = Arena(count: 20), dY = Arena([1, 2, 3, 4])
        pool.backward(dOutput: dY.base, indices: indices.base, dInput: dX.base, batch: 1)
        var expected = [Float](repeating: 0, count: 20)
        expected[0] = 1; expected[3] = 2; expected[11] = 3; expected[12] = 4
        #expect(dX.toArray() == expected)
    }

    @Test func flattenIsIdentity() {
        let f = Flatten(channels: 2, height: 3, width: 4)
        #expect(f.features == 24)
        let x = Arena(count: 48), y = Arena(count: 48), dX = Arena(count: 48)
        fillUniform(x.base, count: 48, seed: 11)
        f.forward(input: x.base, output: y.base, batch: 2)
        #expect(y.toArray() == x.toArray())
        f.backward(dOutput: y.base, dInput: dX.base, batch: 2)
        #expect(dX.toArray() == x.toArray())
        f.forward(input: x.base, output: x.base, batch: 2)   // in place: no-op
        #expect(y.toArray() == x.toArray())
    }
}
