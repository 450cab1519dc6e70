import Checkpoint
import Foundation
@testable import Model
import Tensor
import Testing
@testable import Train

// The Vision Transformer (issue 13): finite-difference checks of LayerNorm, GELU, multi-head attention, the patch
// embedding, one whole block and a tiny whole ViT; parity with timm (a small VisionTransformer with random weights,
// eval-mode embeddings and logits within 1e-4 of the largest magnitude); timm's pos_embed resampling; timm's names
// for export; the decay flags. Fixtures: Fixtures/README.md, scripts/export_vit_fixtures.py.
// Loss L = Σ c_i·y_i (Double) with fixed random c, so dY = c.

/// Checks every element of `analytic` against central differences of `loss` at `p` (ε = `eps`):
/// |a − n| ≤ atol·max|a| + rtol·|n|.
func expectGradient(_ analytic: [Float], at p: UnsafeMutablePointer<Float>, eps: Float, rtol: Double, atol: Double,
                    _ what: String, loss: () -> Double, sourceLocation: SourceLocation = #_sourceLocation) {
    let numeric = centralDifferences(p, count: analytic.count, eps: eps, loss: loss)
    let scale = Double(analytic.map { abs($0) }.max() ?? 0)
    assertClose(analytic.map(Double.init), numeric, rtol: rtol, atol: atol * max(scale, 1e-6), what,
                sourceLocation: sourceLocation)
}

@Suite struct ViTTests {
    // MARK: - Layers

    /// LayerNorm: formula (eps 1e-6, biased variance) and central differences of dx, dγ, dβ, overwriting and
    /// accumulating dx.
    @Test func layerNorm() {
        let rows = 5, D = 7
        var registry = ParameterRegistry()
        let ln = LayerNorm(features: D, name: "ln", registry: &registry)
        #expect(registry.parameters.allSatisfy { !$0.decay })
        let params = Arena(count: registry.layout.total), grads = Arena(count: registry.layout.total)
        fillUniform(params.base, count: params.count, seed: 61, lo: 0.5, hi: 1.5)
        let x = Arena(count: rows * D), y = Arena(count: x.count), c = Arena(count: x.count)
        let dX = Arena(count: x.count), cache = Arena(count: ln.cacheCount(rows: rows))
        fillUniform(x.base, count: x.count, seed: 62, lo: -2, hi: 3)
        fillUniform(c.base, count: c.count, seed: 63)
        func loss() -> Double {
            ln.forward(input: x.base, output: y.base, rows: rows, params: params, cache: cache.base)
            return weightedSum(y.base, c.base, count: y.count)
        }
        _ = loss()
        let g = params.pointer(ln.weight), b = params.pointer(ln.bias)
        var expected: [Double] = []
        for r in 0..<rows {
            let v = (0..<D).map { Double(x[r * D + $0]) }
            let mean = v.reduce(0, +) / Double(D)
            let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(D)
            for i in 0..<D {
                expected.append(Double(g[i]) * (v[i] - mean) / (variance + 1e-6).squareRoot() + Double(b[i]))
            }
        }
        assertClose(y.toArray(), expected, rtol: 1e-5, atol: 1e-5, "layer norm forward")
        ln.backward(dOutput: c.base, input: x.base, dInput: dX.base, accumulateInput: false, rows: rows,
                    params: params, grads: grads, cache: cache.base)
        expectGradient(dX.toArray(), at: x.base, eps: 1e-2, rtol: 2e-3, atol: 2e-4, "ln dx", loss: loss)
        expectGradient(grads.toArray(), at: params.base, eps: 1e-2, rtol: 1e-3, atol: 2e-4, "ln dγ dβ", loss: loss)
        let once = dX.toArray()
        ln.backward(dOutput: c.base, input: x.base, dInput: dX.base, accumulateInput: true, rows: rows,
                    params: params, grads: grads, cache: cache.base)
        assertClose(dX.toArray(), once.map { 2 * Double($0) }, rtol: 1e-6, atol: 1e-6, "ln accumulated dx")
    }

    /// Exact GELU: x·Φ(x) against erf in Double, and its derivative against central differences.
    @Test func gelu() {
        let n = 64
        let x = Arena(count: n), y = Arena(count: n), c = Arena(count: n), dX = Arena(count: n)
        fillUniform(x.base, count: n, seed: 71, lo: -4, hi: 4)
        fillUniform(c.base, count: n, seed: 72)
        func loss() -> Double {
            GELU.forward(input: x.base, output: y.base, count: n)
            return weightedSum(y.base, c.base, count: n)
        }
        _ = loss()
        let expected = (0..<n).map { i -> Double in
            let v = Double(x[i]); return 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
        }
        assertClose(y.toArray(), expected, rtol: 1e-6, atol: 1e-6, "gelu forward")
        GELU.backward(dOutput: c.base, input: x.base, dInput: dX.base, count: n)
        expectGradient(dX.toArray(), at: x.base, eps: 1e-3, rtol: 2e-3, atol: 1e-3, "gelu dx", loss: loss)
        // In place.
        dX.storage.update(fromContentsOf: c.storage)
        let copy = dX.toArray()
        GELU.backward(dOutput: dX.base, input: x.base, dInput: dX.base, count: n)
        GELU.backward(dOutput: c.base, input: x.base, dInput: c.base, count: n)
        #expect(dX.toArray() == c.toArray() && copy != c.toArray())
    }

    /// The 8-lane GELU (erf8, exp8) against the libm path it replaced (`forwardScalar`, `backwardScalar`) over
    /// [−8, 8] in steps of ≈ 0.002 (a count with a tail of 5): forward and dx within 1e-6 absolute; erf8 within
    /// 5e-7 of Double erf.
    @Test func geluLanesMatchLibm() {
        let n = 8 * 1000 + 5
        let x = Arena(count: n), c = Arena(count: n)
        for i in 0..<n { x[i] = -8 + 16 * Float(i) / Float(n - 1) }
        fillUniform(c.base, count: n, seed: 73)
        let y = Arena(count: n), yRef = Arena(count: n), dX = Arena(count: n), dXRef = Arena(count: n)
        GELU.forward(input: x.base, output: y.base, count: n)
        GELU.forwardScalar(input: x.base, output: yRef.base, count: n)
        assertClose(y.toArray(), yRef.toArray().map(Double.init), rtol: 0, atol: 1e-6, "gelu lanes vs libm")
        GELU.backward(dOutput: c.base, input: x.base, dInput: dX.base, count: n)
        GELU.backwardScalar(dOutput: c.base, input: x.base, dInput: dXRef.base, count: n)
        assertClose(dX.toArray(), dXRef.toArray().map(Double.init), rtol: 0, atol: 1e-6, "gelu dx lanes vs libm")
        var worst = 0.0
        for i in stride(from: 0, to: n - 8, by: 8) {
            let e = erf8(loadLanes(x.base + i))
            for k in 0..<8 { worst = max(worst, abs(Double(e[k]) - erf(Double(x[i + k])))) }
        }
        #expect(worst <= 5e-7, "erf8 worst absolute error \(worst)")
    }

    /// Linear + GELU fused (`forwardGELU`, `backwardThroughGELU`: the bias and GELU in one pass, the GELU backward
    /// with the bias gradient) against the unfused path (forward, GELU, GELU backward, backward) within 1e-6, with
    /// 19 = 16 + 3 features (vectors and a tail); then dX, dW, db against central differences of Σ c·GELU(x Wᵀ + b).
    @Test func linearGELUFused() {
        let batch = 3, inF = 11, outF = 19
        var layout = ArenaLayout()
        let layer = Linear(inFeatures: inF, outFeatures: outF, name: "fc", layout: &layout)
        let params = Arena(count: layout.total)
        fillUniform(params.base, count: params.count, seed: 76)
        let x = Arena(count: batch * inF), c = Arena(count: batch * outF)
        fillUniform(x.base, count: x.count, seed: 77, lo: -2, hi: 2)
        fillUniform(c.base, count: c.count, seed: 78)
        let yRef = Arena(count: c.count), aRef = Arena(count: c.count), gRef = Arena(count: c.count)
        let dXRef = Arena(count: x.count), gradsRef = Arena(count: params.count)
        layer.forward(input: x.base, output: yRef.base, batch: batch, params: params)
        GELU.forward(input: yRef.base, output: aRef.base, count: c.count)
        GELU.backward(dOutput: c.base, input: yRef.base, dInput: gRef.base, count: c.count)
        layer.backward(dOutput: gRef.base, input: x.base, dInput: dXRef.base, batch: batch, params: params,
                       grads: gradsRef)
        let y = Arena(count: c.count), a = Arena(count: c.count), g = Arena(count: c.count)
        let dX = Arena(count: x.count), grads = Arena(count: params.count)
        layer.forwardGELU(input: x.base, output: y.base, activated: a.base, batch: batch, params: params)
        g.base.update(from: c.base, count: c.count)
        dX.base.update(repeating: 7, count: dX.count)    // must be overwritten
        layer.backwardThroughGELU(dOutput: g.base, output: y.base, input: x.base, dInput: dX.base, batch: batch,
                                  params: params, grads: grads)
        #expect(y.toArray() == yRef.toArray(), "the pre-activation is kept")
        // Tolerance: a value may take the 8-lane erf on one path and libm's on the other (the rows' tails differ
        // from the flat count's): ≤ 5e-7 apart, as in geluLanesMatchLibm.
        assertClose(a.toArray(), aRef.toArray().map(Double.init), rtol: 1e-6, atol: 1e-6, "activated")
        assertClose(g.toArray(), gRef.toArray().map(Double.init), rtol: 1e-6, atol: 1e-6, "dPre in place")
        assertClose(dX.toArray(), dXRef.toArray().map(Double.init), rtol: 1e-5, atol: 1e-6, "dX")
        assertClose(grads.toArray(), gradsRef.toArray().map(Double.init), rtol: 1e-5, atol: 1e-6, "grads")

        func loss() -> Double {
            layer.forwardGELU(input: x.base, output: y.base, activated: a.base, batch: batch, params: params)
            return weightedSum(a.base, c.base, count: a.count)
        }
        expectGradient(dX.toArray(), at: x.base, eps: 1e-3, rtol: 2e-3, atol: 1e-3, "linear+gelu dx", loss: loss)
        let dW = Array(UnsafeBufferPointer(start: grads.pointer(layer.weight), count: layer.weight.count))
        expectGradient(dW, at: params.pointer(layer.weight), eps: 1e-3, rtol: 2e-3, atol: 1e-3, "linear+gelu dW",
                       loss: loss)
        let dB = Array(UnsafeBufferPointer(start: grads.pointer(layer.bias), count: layer.bias.count))
        expectGradient(dB, at: params.pointer(layer.bias), eps: 1e-3, rtol: 2e-3, atol: 1e-3, "linear+gelu db",
                       loss: loss)
    }

    /// The 8-lane exp of the softmax: relative error ≤ 3e-7 against Double over [−87, 88], and softmax rows of a
    /// length with a tail (8·k + 3) sum to 1 and match Double.
    @Test func vectorExpAndSoftmax() {
        var worst = 0.0
        var x: Float = -87
        while x < 88 {
            let v = Lanes(x, x + 0.01, x + 0.02, x + 0.03, x + 0.04, x + 0.05, x + 0.06, x + 0.07)
            let e = exp8(v)
            for k in 0..<8 { worst = max(worst, abs(Double(e[k]) / exp(Double(v[k])) - 1)) }
            x += 0.0731
        }
        #expect(worst <= 3e-7, "exp8 worst relative error \(worst)")
        let row = Arena(count: 19)
        fillUniform(row.base, count: 19, seed: 75, lo: -30, hi: 5)
        let values = row.toArray().map(Double.init), m = values.max()!
        let z = values.map { exp($0 - m) }.reduce(0, +)
        softmaxRow(row.base, count: 19)
        assertClose(row.toArray(), values.map { exp($0 - m) / z }, rtol: 1e-6, atol: 1e-9, "softmax row")
    }

    struct AttentionCase: CustomStringConvertible, Sendable {
        let tokens: Int, dim: Int, heads: Int, batch: Int
        var description: String { "T \(tokens) D \(dim) heads \(heads) batch \(batch)" }
    }

    /// Multi-head attention: forward against a direct Double computation, dQKV against central differences.
    @Test(arguments: [AttentionCase(tokens: 1, dim: 4, heads: 2, batch: 2),
                      AttentionCase(tokens: 3, dim: 4, heads: 1, batch: 2),
                      AttentionCase(tokens: 5, dim: 6, heads: 2, batch: 2),
                      AttentionCase(tokens: 7, dim: 12, heads: 3, batch: 1),
                      AttentionCase(tokens: 4, dim: 8, heads: 4, batch: 3),
                      // d a multiple of 8: the lane kernels (edge tiles of 1–3 rows and 1 vector, a padded T₈).
                      AttentionCase(tokens: 6, dim: 8, heads: 1, batch: 1),
                      AttentionCase(tokens: 11, dim: 32, heads: 2, batch: 2),
                      AttentionCase(tokens: 9, dim: 48, heads: 2, batch: 1)])
    func attention(_ t: AttentionCase) {
        let attn = SelfAttention(tokens: t.tokens, embedDim: t.dim, heads: t.heads)
        let T = t.tokens, D = t.dim, d = D / t.heads
        let qkv = Arena(count: t.batch * T * 3 * D), probs = Arena(count: t.batch * attn.probabilitiesPerSample)
        let out = Arena(count: t.batch * T * D), c = Arena(count: out.count), dQKV = Arena(count: qkv.count)
        let scratch = Arena(count: attn.scratchCount)
        fillUniform(qkv.base, count: qkv.count, seed: 81, lo: -1.5, hi: 1.5)
        fillUniform(c.base, count: c.count, seed: 82)
        func loss() -> Double {
            attn.forward(qkv: qkv.base, probabilities: probs.base, output: out.base, batch: t.batch,
                         scratch: scratch.base)
            return weightedSum(out.base, c.base, count: out.count)
        }
        _ = loss()
        var expected = [Double](repeating: 0, count: out.count)
        for b in 0..<t.batch {
            for h in 0..<t.heads {
                func at(_ i: Int, _ part: Int, _ k: Int) -> Double {
                    Double(qkv[(b * T + i) * 3 * D + part * D + h * d + k])
                }
                for i in 0..<T {
                    let s = (0..<T).map { j in
                        (0..<d).map { at(i, 0, $0) * at(j, 1, $0) }.reduce(0, +) / Double(d).squareRoot()
                    }
                    let m = s.max()!, e = s.map { exp($0 - m) }, z = e.reduce(0, +)
                    for k in 0..<d {
                        expected[(b * T + i) * D + h * d + k] = (0..<T).map { e[$0] / z * at($0, 2, k) }.reduce(0, +)
                    }
                }
            }
        }
        assertClose(out.toArray(), expected, rtol: 1e-5, atol: 1e-5, "attention forward \(t)")
        attn.backward(dOutput: c.base, qkv: qkv.base, probabilities: probs.base, dQKV: dQKV.base, batch: t.batch,
                      scratch: scratch.base)
        expectGradient(dQKV.toArray(), at: qkv.base, eps: 1e-2, rtol: 3e-3, atol: 5e-4, "attention dQKV \(t)",
                       loss: loss)
    }

    /// The lane kernels against the sgemm path on the same inputs: P, O and dQKV within 1e-5 relative (of the
    /// largest magnitude), at vit-tiny's shape (T 50, d 16) and at shapes with every edge tile (d 24, T 17 and 8).
    @Test(arguments: [AttentionCase(tokens: 50, dim: 64, heads: 4, batch: 3),
                      AttentionCase(tokens: 17, dim: 48, heads: 2, batch: 2),
                      AttentionCase(tokens: 8, dim: 16, heads: 2, batch: 2)])
    func attentionLanesMatchGEMM(_ t: AttentionCase) {
        let attn = SelfAttention(tokens: t.tokens, embedDim: t.dim, heads: t.heads)
        #expect(attn.usesLaneKernels)
        let T = t.tokens, D = t.dim
        let qkv = Arena(count: t.batch * T * 3 * D), dOut = Arena(count: t.batch * T * D)
        fillUniform(qkv.base, count: qkv.count, seed: 91, lo: -2, hi: 2)
        fillUniform(dOut.base, count: dOut.count, seed: 92)
        let pLanes = Arena(count: t.batch * attn.probabilitiesPerSample), pGEMM = Arena(count: pLanes.count)
        let oLanes = Arena(count: dOut.count), oGEMM = Arena(count: dOut.count)
        let dLanes = Arena(count: qkv.count), dGEMM = Arena(count: qkv.count)
        let scratch = Arena(count: attn.scratchCount)
        #expect(attn.scratchCount >= T * T)
        dLanes.storage.update(repeating: .nan)  // every element must be written
        attn.forward(qkv: qkv.base, probabilities: pLanes.base, output: oLanes.base, batch: t.batch,
                     scratch: scratch.base)
        attn.backward(dOutput: dOut.base, qkv: qkv.base, probabilities: pLanes.base, dQKV: dLanes.base,
                      batch: t.batch, scratch: scratch.base)
        attn.forwardGEMM(qkv: qkv.base, probabilities: pGEMM.base, output: oGEMM.base, batch: t.batch)
        attn.backwardGEMM(dOutput: dOut.base, qkv: qkv.base, probabilities: pGEMM.base, dQKV: dGEMM.base,
                          batch: t.batch, scratch: scratch.base)
        func close(_ x: Arena, _ y: Arena, _ what: String) {
            let scale = Double(y.toArray().map { abs($0) }.max() ?? 1)
            assertClose(x.toArray().map(Double.init), y.toArray().map(Double.init), rtol: 1e-5, atol: 1e-5 * scale,
                        "\(what) \(t)")
        }
        close(pLanes, pGEMM, "P")
        close(oLanes, oGEMM, "O")
        close(dLanes, dGEMM, "dQKV")
    }

    /// The patch embedding is timm's Conv2d(C, D, P, stride P) + flatten + transpose: forward against a direct
    /// convolution, dW and db against central differences (3 channels, a non-square 2×3 grid, rows beyond it).
    @Test func patchEmbedding() {
        let batch = 2, C = 3, H = 9, W = 12, P = 4, D = 5
        var registry = ParameterRegistry()
        let pe = PatchEmbedding(inputChannels: C, height: H, width: W, patchSize: P, embedDim: D, name: "pe",
                                registry: &registry)
        #expect(pe.gridHeight == 2 && pe.gridWidth == 3)
        let params = Arena(count: registry.layout.total), grads = Arena(count: registry.layout.total)
        fillUniform(params.base, count: params.count, seed: 91)
        let x = Arena(count: batch * C * H * W), patches = Arena(count: batch * pe.patchCount * pe.fanIn)
        let y = Arena(count: batch * pe.patchCount * D), c = Arena(count: y.count)
        fillUniform(x.base, count: x.count, seed: 92)
        fillUniform(c.base, count: c.count, seed: 93)
        func loss() -> Double {
            pe.forward(input: x.base, patches: patches.base, output: y.base, batch: batch, params: params)
            return weightedSum(y.base, c.base, count: y.count)
        }
        _ = loss()
        let conv = naiveConv(x: x.toArray(), w: array(params.pointer(pe.weight), pe.weight.count),
                             b: array(params.pointer(pe.bias), D), batch: batch, inC: C, outC: D, h: H, wd: W, k: P,
                             stride: P, padding: 0)
        // conv: (B, D, 2, 3) → tokens (B, 6, D).
        var expected = [Double](repeating: 0, count: y.count)
        for b in 0..<batch {
            for o in 0..<D { for n in 0..<6 { expected[(b * 6 + n) * D + o] = conv[(b * D + o) * 6 + n] } }
        }
        assertClose(y.toArray(), expected, rtol: 1e-5, atol: 1e-5, "patch embedding forward")
        pe.backward(dOutput: c.base, patches: patches.base, batch: batch, grads: grads)
        expectGradient(grads.toArray(), at: params.base, eps: 1e-2, rtol: 1e-3, atol: 2e-4, "patch embedding dW db",
                       loss: loss)
    }

    // MARK: - Whole networks

    /// Every parameter gradient of a ViT (head included) against central differences. With one image, the
    /// gradient of `pos_embed` is the gradient with respect to the first block's input tokens.
    func checkWholeViT(_ spec: ViTSpec, channels: Int, height: Int, width: Int, batch: Int, seed: UInt64) throws {
        let config = NetworkConfig(inputChannels: channels, height: height, width: width, encoder: .vit(spec),
                                   classes: 3)
        let net = Network(config: config, maxBatch: batch, seed: seed)
        // Working-scale weights (timm's init is tiny): U(−1, 1)/√fan-in for matrices, around 1 for the norms'
        // γ, U(−0.3, 0.3) for the rest.
        for (j, entry) in net.registry.parameters.enumerated() {
            let p = net.params.pointer(entry.slice), n = entry.slice.count
            if entry.name.contains("norm") && entry.name.hasSuffix(".weight") {
                fillUniform(p, count: n, seed: seed, lo: 0.7, hi: 1.3, substream: UInt32(j))
            } else if entry.shape.count >= 2 && !entry.name.hasSuffix("pos_embed")
                        && !entry.name.hasSuffix("cls_token") {
                let bound = Float(3.0.squareRoot() / Double(entry.shape.dropFirst().reduce(1, *)).squareRoot())
                fillUniform(p, count: n, seed: seed, lo: -bound, hi: bound, substream: UInt32(j))
            } else {
                fillUniform(p, count: n, seed: seed, lo: -0.3, hi: 0.3, substream: UInt32(j))
            }
        }
        let x = Arena(count: batch * config.inputSize)
        fillUniform(x.base, count: x.count, seed: seed + 1)
        let D = config.embedDim
        let cE = Arena(count: batch * D), cL = Arena(count: batch * 3)
        fillUniform(cE.base, count: cE.count, seed: seed + 2)
        fillUniform(cL.base, count: cL.count, seed: seed + 3)
        func loss() -> Double {
            try! net.forward(input: x.base, batch: batch)
            return weightedSum(net.embeddings, cE.base, count: cE.count)
                + weightedSum(net.logits, cL.base, count: cL.count)
        }
        _ = loss()
        net.zeroGradients()
        var ready: [Int] = []
        try net.backward(dEmbeddings: cE.base, dLogits: cL.base, batch: batch) { ready.append($0) }
        #expect(ready == ready.sorted() && ready.last == net.grads.count && ready.count == spec.depth + 3,
                "onReady must grow to the arena size once per block: \(ready)")
        let analytic = net.grads.toArray()
        for entry in net.registry.parameters {
            expectGradient(Array(analytic[entry.slice.offset..<(entry.slice.offset + entry.slice.count)]),
                           at: net.params.pointer(entry.slice), eps: 1e-2, rtol: 5e-3, atol: 2e-3, entry.name,
                           loss: loss)
        }
    }

    /// One block (depth 1) with one image: every parameter and, through pos_embed, the block's input gradient.
    @Test func wholeBlock() throws {
        try checkWholeViT(ViTSpec(patchSize: 2, embedDim: 8, depth: 1, heads: 2, mlpRatio: 2), channels: 1,
                          height: 4, width: 6, batch: 1, seed: 100)
    }

    /// A tiny whole ViT: two blocks, 2 channels, a non-square grid, three images, MLP ratio 1.5.
    @Test func tinyWholeViT() throws {
        try checkWholeViT(ViTSpec(patchSize: 3, embedDim: 6, depth: 2, heads: 3, mlpRatio: 1.5), channels: 2,
                          height: 6, width: 9, batch: 3, seed: 110)
    }

    // MARK: - timm

    static let fixtureSpec = ViTSpec(patchSize: 4, embedDim: 24, depth: 2, heads: 3, mlpRatio: 2.5)
    /// The fixture's network on 12×16 images of `channels` channels, 5 classes.
    static func fixtureConfig(channels: Int) -> NetworkConfig {
        NetworkConfig(inputChannels: channels, height: 12, width: 16, encoder: .vit(fixtureSpec), classes: 5)
    }

    /// A bare timm state dict loads (naming detected) and reproduces timm's eval-mode embedding and logits.
    @Test func matchesTimm() throws {
        let io = try fixture("vit.io.safetensors")
        let net = Network(config: Self.fixtureConfig(channels: 3), maxBatch: 2, seed: 0)
        let report = try net.load(weights: fixture("vit.weights.safetensors"))
        #expect(report.naming == .timm && report.notes.isEmpty, "\(report)")
        net.mode = .eval
        let input = try io.floats("input", shape: [2, 3, 12, 16])
        try input.withUnsafeBufferPointer { try net.forward(input: $0.baseAddress!, batch: 2) }
        expectParity(net.embeddings, try io.floats("embedding", shape: [2, 24]), "vit embedding")
        expectParity(net.logits, try io.floats("logits", shape: [2, 5]), "vit logits")
    }

    /// The peer's `ViTEncoder` names (`encoder.vit.<timm name>`, `head.*`) load as the bare timm names do.
    @Test func peerViTNames() throws {
        let timm = try fixture("vit.weights.safetensors")
        var peer = SafeTensors()
        for name in timm.names { peer.add(name.hasPrefix("head.") ? name : "encoder.vit." + name, timm[name]!) }
        let config = Self.fixtureConfig(channels: 3)
        let a = Network(config: config, maxBatch: 1, seed: 0), b = Network(config: config, maxBatch: 1, seed: 1)
        #expect(try a.load(weights: peer).naming == .peerViT)
        _ = try b.load(weights: timm)
        #expect(a.params.toArray() == b.params.toArray())
    }

    /// `weightTensors(naming: .timm)` has exactly the timm state dict's names and shapes (what
    /// `load_state_dict(strict=True)` checks), and round-trips through `load`.
    @Test func exportsTimmNames() throws {
        let timm = try fixture("vit.weights.safetensors")
        let net = Network(config: Self.fixtureConfig(channels: 3), maxBatch: 1, seed: 3)
        let exported = net.weightTensors(naming: .timm)
        #expect(Set(exported.names) == Set(timm.names))
        for name in timm.names { #expect(exported[name]?.shape == timm[name]?.shape, "\(name)") }
        let copy = Network(config: net.config, maxBatch: 1, seed: 4)
        #expect(try copy.load(weights: exported).naming == .timm)
        #expect(copy.params.toArray() == net.params.toArray())
        // For the manual strict-load check in timm (see docs/PERFORMANCE.md … the issue 13 report).
        if let path = ProcessInfo.processInfo.environment["DTRAIN_VIT_EXPORT"] {
            let tiny = Network(config: NetworkConfig(kind: .vitTiny, classes: 10), maxBatch: 1, seed: 0)
            try tiny.weightTensors(naming: .timm).write(to: path)
        }
    }

    /// timm's resample_abs_pos_embed (bicubic, antialiased) from a 4×4 grid to 3×5, 7×7 and 2×2, directly and through
    /// `load` of a file made for another image size.
    @Test func positionEmbeddingResampling() throws {
        let file = try fixture("vit_posembed.safetensors")
        let pos = try file.floats("pos_embed", shape: [1, 17, 8])
        for (rows, cols) in [(3, 5), (7, 7), (2, 2)] {
            let expected = try file.floats("to_\(rows)x\(cols)", shape: [1, 1 + rows * cols, 8])
            let actual = resamplePositionEmbedding(pos, embedDim: 8, prefixTokens: 1, oldGrid: (4, 4),
                                                   newGrid: (rows, cols))
            actual.withUnsafeBufferPointer { expectParity($0.baseAddress!, expected, "pos_embed to \(rows)×\(cols)") }
        }
        // A 16×16-image file (4×4 grid of 4-pixel patches) loaded for 12×20 images (3×5 grid).
        let spec = ViTSpec(patchSize: 4, embedDim: 8, depth: 1, heads: 2, mlpRatio: 2)
        let source = Network(config: NetworkConfig(inputChannels: 1, height: 16, width: 16, encoder: .vit(spec),
                                                   classes: 2), maxBatch: 1, seed: 0)
        let entry = source.registry.parameter(named: "encoder.pos_embed")!
        source.params.view(entry.slice).update(fromContentsOf: pos)
        let target = Network(config: NetworkConfig(inputChannels: 1, height: 12, width: 20, encoder: .vit(spec),
                                                   classes: 2), maxBatch: 1, seed: 0)
        let report = try target.load(weights: source.weightTensors(naming: .timm))
        #expect(report.notes.count == 1 && report.notes[0].contains("4×4 patch grid resampled to 3×5"),
                "\(report.notes)")
        let loaded = target.params.pointer(target.registry.parameter(named: "encoder.pos_embed")!.slice)
        expectParity(loaded, try file.floats("to_3x5", shape: [1, 16, 8]), "loaded pos_embed")
    }

    /// A timm file without a head (num_classes=0) keeps the fresh head; RGB patch weights on grayscale images are
    /// summed over the channels.
    @Test func headlessAndGrayscale() throws {
        let rgb = try fixture("vit.weights.safetensors")
        var headless = SafeTensors()
        for name in rgb.names where !name.hasPrefix("head.") { headless.add(name, rgb[name]!) }
        let net = Network(config: Self.fixtureConfig(channels: 1), maxBatch: 1, seed: 0)
        let head = Array(net.params.view(net.head.weight))
        let report = try net.load(weights: headless)
        #expect(report.notes.count == 2, "\(report.notes)")
        #expect(Array(net.params.view(net.head.weight)) == head)
        let w3 = rgb["patch_embed.proj.weight"]!.values(as: Float.self)
        let w1 = Array(net.params.view(net.registry.parameter(named: "encoder.patch_embed.proj.weight")!.slice))
        #expect(w1[0] == w3[0] + w3[16] + w3[32] && w1[16] == w3[48] + w3[64] + w3[80])
    }

    // MARK: - Shapes, init, decay

    /// timm's names and parameter counts (vit_{tiny,small,base}_patch16_224 with 1000 classes), the vit-tiny preset,
    /// the initialisation rules and the decay flags.
    @Test func namesCountsInitAndDecay() {
        for (kind, count) in [(EncoderKind.vitTinyPatch16, 5_717_416), (.vitSmallPatch16, 22_050_664),
                              (.vitBasePatch16, 86_567_656)] {
            let net = Network(config: NetworkConfig(kind: kind, inputChannels: 3, height: 224, width: 224,
                                                    classes: 1000), maxBatch: 1, seed: 0)
            #expect(net.parameterCount == count, "\(kind): \(net.parameterCount)")
        }
        let net = Network(config: NetworkConfig(kind: .vitTiny, classes: 10), maxBatch: 1, seed: 0)
        let r = net.registry
        #expect(r.parameter(named: "encoder.pos_embed")?.shape == [1, 50, 64])
        #expect(r.parameter(named: "encoder.cls_token")?.shape == [1, 1, 64])
        #expect(r.parameter(named: "encoder.patch_embed.proj.weight")?.shape == [64, 1, 4, 4])
        #expect(r.parameter(named: "encoder.blocks.5.attn.qkv.weight")?.shape == [192, 64])
        #expect(r.parameter(named: "encoder.blocks.0.mlp.fc1.weight")?.shape == [128, 64])
        #expect(r.parameter(named: "encoder.norm.weight")?.initRule == .constant(1))
        #expect(r.parameter(named: "encoder.blocks.2.attn.proj.weight")?.initRule == .truncatedNormal(std: 0.02))
        #expect(r.parameter(named: "head.weight")?.initRule == .truncatedNormal(std: 0.02))
        #expect(r.parameter(named: "encoder.cls_token")?.initRule == .normal(std: 1e-6))
        #expect(r.parameter(named: "encoder.pos_embed")?.initRule == .truncatedNormal(std: 0.02))
        #expect(r.parameters.count == 4 + 12 * 6 + 2 + 2)
        // Decayed: the matrices (Linear and patch weights); not decayed: biases, norms, pos_embed, cls_token.
        for p in r.parameters {
            let decays = p.name.hasSuffix(".weight") && p.shape.count >= 2
            #expect(p.decay == decays, "\(p.name)")
        }
        // Initial values follow the rules: std ≈ 0.02, within ±2 (truncation), zeros, ones.
        let qkv = Array(net.params.view(r.parameter(named: "encoder.blocks.0.attn.qkv.weight")!.slice))
        let std = (qkv.map { Double($0 * $0) }.reduce(0, +) / Double(qkv.count)).squareRoot()
        #expect(abs(std - 0.02) < 0.001, "qkv std \(std)")
        func values(_ name: String) -> [Float] { Array(net.params.view(r.parameter(named: name)!.slice)) }
        #expect(values("encoder.blocks.0.attn.qkv.bias").allSatisfy { $0 == 0 })
        #expect(values("encoder.blocks.0.norm1.weight").allSatisfy { $0 == 1 })
        // ResNets and the sequential encoders keep decaying everything.
        for kind in [EncoderKind.mlp, .cnn, .resnet20] {
            #expect(Network(config: NetworkConfig(kind: kind), maxBatch: 1, seed: 0).registry.noDecayRanges.isEmpty)
        }
    }

    /// SGD and AdamW skip weight decay on the registry's no-decay ranges (zero gradients: only decay moves p).
    @Test func optimisersHonourDecayFlags() {
        let net = Network(config: NetworkConfig(kind: .vitTiny, classes: 10), maxBatch: 1, seed: 0)
        let ranges = net.registry.noDecayRanges
        let before = net.params.toArray()
        net.zeroGradients()
        let sgd = SGD(params: net.params, grads: net.grads, momentum: 0.9, weightDecay: 0.1, noDecay: ranges)
        sgd.step(lr: 0.5)
        let afterSGD = net.params.toArray()
        for p in net.registry.parameters {
            for i in p.slice.offset..<(p.slice.offset + p.slice.count) {
                let expected = p.decay ? before[i] - 0.5 * 0.1 * before[i] : before[i]
                if abs(afterSGD[i] - expected) > 1e-7 * max(1, abs(expected)) {
                    Issue.record("SGD \(p.name)[\(i - p.slice.offset)]: \(afterSGD[i]) vs \(expected)"); return
                }
            }
        }
        net.params.storage.update(fromContentsOf: before)
        let adam = AdamW(params: net.params, grads: net.grads, weightDecay: 0.1, noDecay: ranges)
        adam.step(lr: 0.5)
        let afterAdam = net.params.toArray()
        for p in net.registry.parameters {
            let i = p.slice.offset
            let expected = p.decay ? before[i] * Float(1 - 0.5 * 0.1) : before[i]
            #expect(afterAdam[i] == expected, "AdamW \(p.name): \(afterAdam[i]) vs \(expected)")
        }
    }
}
