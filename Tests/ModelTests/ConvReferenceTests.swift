import Testing
import Tensor
import Model

@Suite struct ConvReferenceTests {
    /// Direct 3×3 convolution in Double: y[n,o,y,x] = b[o] + Σ_{c,ky,kx} W[o,c,ky,kx]·x[n,c,y+ky−1,x+kx−1].
    func naiveConv(x: [Float], w: [Float], b: [Float], batch: Int, inC: Int, outC: Int, h: Int, wd: Int) -> [Double] {
        var y = [Double](repeating: 0, count: batch * outC * h * wd)
        for n in 0..<batch {
            for o in 0..<outC {
                for yy in 0..<h {
                    for xx in 0..<wd {
                        var s = Double(b[o])
                        for c in 0..<inC {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let sy = yy + ky - 1, sx = xx + kx - 1
                                    if sy < 0 || sy >= h || sx < 0 || sx >= wd { continue }
                                    s += Double(w[((o * inC + c) * 3 + ky) * 3 + kx])
                                        * Double(x[((n * inC + c) * h + sy) * wd + sx])
                                }
                            }
                        }
                        y[((n * outC + o) * h + yy) * wd + xx] = s
                    }
                }
            }
        }
        return y
    }

    @Test(arguments: [(3, 4, 5, 7, 2), (1, 2, 1, 1, 3), (2, 3, 2, 9, 1)])
    func forwardMatchesDirectConvolution(shape: (Int, Int, Int, Int, Int)) {
        let (inC, outC, h, w, batch) = shape
        let f = ConvFixture(shape, seed: 20)
        let (conv, params, x, y, scratch) = (f.conv, f.params, f.x, f.y, f.scratch)
        conv.forward(input: x.base, output: y.base, batch: batch, params: params, scratch: scratch.base)
        let expected = naiveConv(x: x.toArray(), w: array(params.pointer(conv.weight), conv.weight.count),
                                 b: array(params.pointer(conv.bias), conv.bias.count),
                                 batch: batch, inC: inC, outC: outC, h: h, wd: w)
        // Tolerance: Float sums of ≤ 28 terms of magnitude ≤ 1: atol 1e-5.
        assertClose(y.toArray(), expected, rtol: 1e-5, atol: 1e-5, "conv forward")
    }

    @Test func col2imIsTheAdjointOfIm2col() {
        // ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩ for random x, c.
        var layout = ArenaLayout()
        let conv = Conv2d(inChannels: 2, outChannels: 1, height: 4, width: 3, name: "c", layout: &layout)
        let x = Arena(count: conv.inputSize), col = Arena(count: conv.scratchCount)
        let c = Arena(count: conv.scratchCount), back = Arena(count: conv.inputSize)
        fillUniform(x.base, count: x.count, seed: 22)
        fillUniform(c.base, count: c.count, seed: 23)
        conv.im2col(image: x.base, col: col.base)
        conv.col2im(col: c.base, image: back.base)
        let lhs = weightedSum(col.base, c.base, count: col.count), rhs = weightedSum(x.base, back.base, count: x.count)
        #expect(abs(lhs - rhs) < 1e-5)
    }
}
