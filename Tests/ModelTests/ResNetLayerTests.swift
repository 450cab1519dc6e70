import Testing
import Tensor
import Model

// Finite-difference checks of the ResNet layers: general Conv2d (strided, padded, 1×1, 7×7, without bias),
// BatchNorm2d in training mode, GroupNorm, 3×3/2 max-pool with padding, and whole tiny ResNets (basic and
// bottleneck blocks, both stems, both norms). Loss L = Σ c_i·y_i (Double) with fixed random c, so dY = c.

/// Direct convolution in Double: y[n,o,oy,ox] = b[o] + Σ W[o,c,ky,kx]·x[n,c,oy·s+ky−p,ox·s+kx−p].
func naiveConv(x: [Float], w: [Float], b: [Float]?, batch: Int, inC: Int, outC: Int, h: Int, wd: Int, k: Int,
               stride s: Int, padding p: Int) -> [Double] {
    let oh = (h + 2 * p - k) / s + 1, ow = (wd + 2 * p - k) / s + 1
    var y = [Double](repeating: 0, count: batch * outC * oh * ow)
    for n in 0..<batch {
        for o in 0..<outC {
            for yy in 0..<oh {
                for xx in 0..<ow {
                    var sum = b.map { Double($0[o]) } ?? 0
                    for c in 0..<inC {
                        for ky in 0..<k {
                            for kx in 0..<k {
                                let sy = yy * s + ky - p, sx = xx * s + kx - p
                                if sy < 0 || sy >= h || sx < 0 || sx >= wd { continue }
                                sum += Double(w[((o * inC + c) * k + ky) * k + kx])
                                    * Double(x[((n * inC + c) * h + sy) * wd + sx])
                            }
                        }
                    }
                    y[((n * outC + o) * oh + yy) * ow + xx] = sum
                }
            }
        }
    }
    return y
}

@Suite struct ResNetLayerTests {
    struct ConvCase: CustomStringConvertible, Sendable {
        let inC: Int, outC: Int, k: Int, stride: Int, padding: Int, bias: Bool, h: Int, w: Int
        var description: String { "\(inC)→\(outC) k\(k) s\(stride) p\(padding) bias \(bias) \(h)×\(w)" }
    }
    static let convCases = [
        ConvCase(inC: 2, outC: 3, k: 3, stride: 2, padding: 1, bias: false, h: 7, w: 6),
        ConvCase(inC: 3, outC: 2, k: 1, stride: 1, padding: 0, bias: false, h: 4, w: 5),
        ConvCase(inC: 3, outC: 4, k: 1, stride: 2, padding: 0, bias: false, h: 5, w: 5),
        ConvCase(inC: 2, outC: 2, k: 7, stride: 2, padding: 3, bias: false, h: 9, w: 8),
        ConvCase(inC: 2, outC: 3, k: 3, stride: 1, padding: 0, bias: true, h: 5, w: 4),
        ConvCase(inC: 1, outC: 2, k: 4, stride: 4, padding: 0, bias: true, h: 8, w: 8),
        ConvCase(inC: 3, outC: 2, k: 3, stride: 1, padding: 1, bias: false, h: 5, w: 4),   // the fast path, no bias
    ]

    /// The general path (and the 3×3 fast path without bias) matches a direct convolution, and its gradients match central differences; a second
    /// backward with `accumulateInput` doubles dX.
    @Test(arguments: convCases)
    func generalConvolution(_ t: ConvCase) {
        let batch = 2
        var registry = ParameterRegistry()
        let conv = Conv2d(inChannels: t.inC, outChannels: t.outC, kernel: t.k, stride: t.stride, padding: t.padding,
                          bias: t.bias, height: t.h, width: t.w, name: "conv", registry: &registry)
        #expect(conv.isSame3x3 == (t.k == 3 && t.stride == 1 && t.padding == 1))
        let params = Arena(count: registry.layout.total), grads = Arena(count: registry.layout.total)
        let x = Arena(count: batch * conv.inputSize), y = Arena(count: batch * conv.outputSize)
        let c = Arena(count: y.count), dX = Arena(count: x.count), scratch = Arena(count: conv.scratchCount)
        fillUniform(params.base, count: params.count, seed: 11)
        fillUniform(x.base, count: x.count, seed: 12)
        fillUniform(c.base, count: c.count, seed: 13)
        func loss() -> Double {
            conv.forward(input: x.base, output: y.base, batch: batch, params: params, scratch: scratch.base)
            return weightedSum(y.base, c.base, count: y.count)
        }
        _ = loss()
        let expected = naiveConv(x: x.toArray(), w: array(params.pointer(conv.weight), conv.weight.count),
                                 b: t.bias ? array(params.pointer(conv.bias), conv.bias.count) : nil, batch: batch,
                                 inC: t.inC, outC: t.outC, h: t.h, wd: t.w, k: t.k, stride: t.stride,
                                 padding: t.padding)
        assertClose(y.toArray(), expected, rtol: 1e-5, atol: 1e-5, "forward \(t)")
        conv.backward(dOutput: c.base, input: x.base, dInput: dX.base, batch: batch, params: params, grads: grads,
                      scratch: scratch.base)
        // Linear in every input: ε = 1e-2 leaves Float rounding only.
        let fdX = centralDifferences(x.base, count: x.count, eps: 1e-2, loss: loss)
        assertClose(dX.toArray(), fdX, rtol: 1e-3, atol: 2e-4, "dX \(t)")
        let fdW = centralDifferences(params.pointer(conv.weight), count: conv.weight.count, eps: 1e-2, loss: loss)
        assertClose(array(grads.pointer(conv.weight), conv.weight.count), fdW, rtol: 1e-3, atol: 2e-4, "dW \(t)")
        if t.bias {
            let fdB = centralDifferences(params.pointer(conv.bias), count: conv.bias.count, eps: 1e-2, loss: loss)
            assertClose(array(grads.pointer(conv.bias), conv.bias.count), fdB, rtol: 1e-3, atol: 2e-4, "db \(t)")
        }
        conv.backward(dOutput: c.base, input: x.base, dInput: dX.base, batch: batch, params: params, grads: grads,
                      scratch: scratch.base, accumulateInput: true)
        assertClose(dX.toArray(), fdX.map { 2 * $0 }, rtol: 1e-3, atol: 4e-4, "accumulated dX \(t)")
    }

    /// BatchNorm2d in training mode: output is the batch-normalised input; dX, dγ, dβ match central differences;
    /// running statistics follow PyTorch (momentum 0.1, unbiased variance); evaluation uses them.
    @Test func batchNormTraining() throws {
        let batch = 3, C = 4, h = 3, w = 2, P = h * w
        var registry = ParameterRegistry()
        let bn = BatchNorm2d(channels: C, height: h, width: w, name: "bn", registry: &registry)
        let params = Arena(count: registry.layout.total), grads = Arena(count: registry.layout.total)
        let buffers = Arena(count: registry.bufferLayout.total), counters = Buffer<Int64>(count: 1, repeating: 0)
        registry.initialise(params: params, buffers: buffers, counters: counters, seed: 0)
        fillUniform(params.base, count: params.count, seed: 21, lo: 0.5, hi: 1.5)
        let x = Arena(count: batch * C * P), y = Arena(count: x.count), c = Arena(count: x.count)
        let dX = Arena(count: x.count), out = Arena(count: x.count)
        let cache = Buffer<Double>(count: bn.cacheCount, repeating: 0)
        fillUniform(x.base, count: x.count, seed: 22, lo: -2, hi: 3)
        fillUniform(c.base, count: c.count, seed: 23)
        func loss() -> Double {
            try! bn.forward(input: x.base, output: y.base, batch: batch, mode: .train, relu: false, params: params,
                            buffers: buffers, counters: counters, cache: cache.base, reducer: .identity)
            return weightedSum(y.base, c.base, count: y.count)
        }
        // Forward against the formula (biased batch variance).
        _ = loss()
        #expect(counters[0] == 1)
        let g = params.pointer(bn.weight), b = params.pointer(bn.bias)
        for ch in 0..<C {
            var values: [Double] = []
            for n in 0..<batch { for i in 0..<P { values.append(Double(x[(n * C + ch) * P + i])) } }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            for n in 0..<batch {
                for i in 0..<P {
                    let k = (n * C + ch) * P + i
                    let expected = Double(g[ch]) * (Double(x[k]) - mean) / (variance + 1e-5).squareRoot() + Double(b[ch])
                    #expect(abs(Double(y[k]) - expected) < 1e-5, "y[\(k)] \(y[k]) vs \(expected)")
                }
            }
            let rm = buffers.pointer(bn.runningMean), rv = buffers.pointer(bn.runningVar)
            #expect(abs(Double(rm[ch]) - 0.1 * mean) < 1e-6)
            let unbiased = variance * Double(values.count) / Double(values.count - 1)
            #expect(abs(Double(rv[ch]) - (0.9 + 0.1 * unbiased)) < 1e-5)
        }
        try bn.backward(dOutput: c.base, input: x.base, output: y.base, relu: false, dInput: dX.base,
                        accumulateInput: false, batch: batch, params: params, grads: grads, cache: cache.base,
                        reducer: .identity)
        // Smooth in every input; ε = 1e-2 with Double loss: rtol 2e-3.
        let fdX = centralDifferences(x.base, count: x.count, eps: 1e-2, loss: loss)
        assertClose(dX.toArray(), fdX, rtol: 2e-3, atol: 2e-4, "bn dX")
        let fdG = centralDifferences(g, count: C, eps: 1e-2, loss: loss)
        assertClose(array(grads.pointer(bn.weight), C), fdG, rtol: 1e-3, atol: 2e-4, "bn dγ")
        let fdB = centralDifferences(b, count: C, eps: 1e-2, loss: loss)
        assertClose(array(grads.pointer(bn.bias), C), fdB, rtol: 1e-3, atol: 2e-4, "bn dβ")

        // Evaluation: the running statistics, not the batch's.
        try bn.forward(input: x.base, output: out.base, batch: batch, mode: .eval, relu: true, params: params,
                       buffers: buffers, counters: counters, cache: cache.base, reducer: .identity)
        let rm = buffers.pointer(bn.runningMean), rv = buffers.pointer(bn.runningVar)
        for k in 0..<x.count {
            let ch = (k / P) % C
            let expected = max(0, Double(g[ch]) * (Double(x[k]) - Double(rm[ch])) / (Double(rv[ch]) + 1e-5).squareRoot()
                               + Double(b[ch]))
            #expect(abs(Double(out[k]) - expected) < 1e-5)
        }
    }

    /// GroupNorm: formula and central differences (2 groups of 2 channels, and 1 group).
    @Test(arguments: [1, 2]) func groupNorm(groups: Int) {
        let batch = 2, C = 4, h = 3, w = 3
        var registry = ParameterRegistry()
        let gn = GroupNorm(groups: groups, channels: C, height: h, width: w, name: "gn", registry: &registry)
        let params = Arena(count: registry.layout.total), grads = Arena(count: registry.layout.total)
        fillUniform(params.base, count: params.count, seed: 31, lo: 0.5, hi: 1.5)
        let x = Arena(count: batch * gn.size), y = Arena(count: x.count), c = Arena(count: x.count)
        let dX = Arena(count: x.count), cache = Buffer<Double>(count: batch * gn.cachePerSample, repeating: 0)
        fillUniform(x.base, count: x.count, seed: 32, lo: -1, hi: 2)
        fillUniform(c.base, count: c.count, seed: 33)
        func loss() -> Double {
            gn.forward(input: x.base, output: y.base, batch: batch, relu: false, params: params, cache: cache.base)
            return weightedSum(y.base, c.base, count: y.count)
        }
        _ = loss()
        let m = C / groups * h * w
        for n in 0..<batch {
            for q in 0..<groups {
                let start = n * gn.size + q * m
                let values = (0..<m).map { Double(x[start + $0]) }
                let mean = values.reduce(0, +) / Double(m)
                let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(m)
                for i in 0..<m {
                    let ch = q * (C / groups) + i / (h * w)
                    let expected = Double(params.pointer(gn.weight)[ch]) * (values[i] - mean)
                        / (variance + 1e-5).squareRoot() + Double(params.pointer(gn.bias)[ch])
                    #expect(abs(Double(y[start + i]) - expected) < 1e-5)
                }
            }
        }
        gn.backward(dOutput: c.base, input: x.base, output: y.base, relu: false, dInput: dX.base,
                    accumulateInput: false, batch: batch, params: params, grads: grads, cache: cache.base)
        assertClose(dX.toArray(), centralDifferences(x.base, count: x.count, eps: 1e-2, loss: loss),
                    rtol: 2e-3, atol: 2e-4, "gn dX")
        assertClose(grads.toArray(), centralDifferences(params.base, count: params.count, eps: 1e-2, loss: loss),
                    rtol: 1e-3, atol: 2e-4, "gn dγ, dβ")
    }

    /// 3×3/2 max-pool with padding 1 (the ImageNet stem's): maximum over each clipped window; dX by central
    /// differences (inputs distinct, so no ties); overlapping windows add.
    @Test func maxPoolStridedPadded() {
        let batch = 2, C = 2, h = 5, w = 6
        let pool = MaxPool2d(channels: C, height: h, width: w, kernel: 3, stride: 2, padding: 1)
        #expect(pool.outHeight == 3 && pool.outWidth == 3)
        let x = Arena(count: batch * pool.inputSize), y = Arena(count: batch * pool.outputSize)
        let c = Arena(count: y.count), dX = Arena(count: x.count)
        let indices = Buffer<Int32>(count: y.count, repeating: 0)
        // Distinct values 0.05 apart (a permutation), so ε = 1e-2 never changes an argmax.
        let perm = CounterRNG(seed: 41).permutation(count: x.count, stream: .test, key: 0)
        for i in 0..<x.count { x[i] = Float(perm[i]) * 0.05 }
        fillUniform(c.base, count: c.count, seed: 42)
        func loss() -> Double {
            pool.forward(input: x.base, output: y.base, indices: indices.base, batch: batch)
            return weightedSum(y.base, c.base, count: y.count)
        }
        _ = loss()
        for n in 0..<batch {
            for ch in 0..<C {
                for oy in 0..<3 {
                    for ox in 0..<3 {
                        var best = -Float.infinity
                        for sy in max(0, 2 * oy - 1)..<min(h, 2 * oy + 2) {
                            for sx in max(0, 2 * ox - 1)..<min(w, 2 * ox + 2) {
                                best = max(best, x[((n * C + ch) * h + sy) * w + sx])
                            }
                        }
                        #expect(y[((n * C + ch) * 3 + oy) * 3 + ox] == best)
                    }
                }
            }
        }
        pool.backward(dOutput: c.base, indices: indices.base, dInput: dX.base, batch: batch)
        assertClose(dX.toArray(), centralDifferences(x.base, count: x.count, eps: 1e-2, loss: loss),
                    rtol: 1e-4, atol: 1e-5, "pool dX")
    }

    struct TinyResNet: CustomStringConvertible, Sendable {
        let block: ResidualBlockKind, stem: StemKind, norm: NormKind, size: Int
        var description: String { "\(block) \(stem) \(norm) \(size)px" }
    }

    /// Whole tiny ResNets (head included): every parameter gradient against central differences, in training mode.
    @Test(arguments: [
        TinyResNet(block: .basic, stem: .cifar, norm: .batch, size: 6),
        TinyResNet(block: .basic, stem: .imagenet, norm: .group, size: 12),
        TinyResNet(block: .bottleneck, stem: .cifar, norm: .group, size: 6),
        TinyResNet(block: .bottleneck, stem: .imagenet, norm: .batch, size: 12),
    ])
    func wholeResNetGradient(_ t: TinyResNet) throws {
        let spec = ResNetSpec(block: t.block, blocksPerStage: [1, 2], widths: [4, 4], stemWidth: 4, cifarOnly: false)
        let config = NetworkConfig(inputChannels: 2, height: t.size, width: t.size,
                                   encoder: .resnet(spec, stem: t.stem, norm: t.norm, groups: 2), classes: 3)
        let batch = 3
        let net = Network(config: config, maxBatch: batch, seed: 5)
        // Non-trivial norm affine parameters, so the check sees them act.
        for entry in net.registry.parameters where entry.initRule == .constant(1) || entry.initRule == .constant(0) {
            fillUniform(net.params.pointer(entry.slice), count: entry.slice.count, seed: 50, lo: 0.5, hi: 1.5,
                        substream: UInt32(entry.slice.offset))
        }
        let x = Arena(count: batch * config.inputSize)
        fillUniform(x.base, count: x.count, seed: 51)
        let D = config.embedDim
        let cE = Arena(count: batch * D), cL = Arena(count: batch * 3)
        fillUniform(cE.base, count: cE.count, seed: 52)
        fillUniform(cL.base, count: cL.count, seed: 53)
        func loss() -> Double {
            try! net.forward(input: x.base, batch: batch)
            return weightedSum(net.embeddings, cE.base, count: cE.count) + weightedSum(net.logits, cL.base, count: cL.count)
        }
        _ = loss()
        net.zeroGradients()
        var ready: [Int] = []
        try net.backward(dEmbeddings: cE.base, dLogits: cL.base, batch: batch) { ready.append($0) }
        #expect(ready == ready.sorted() && ready.last == net.grads.count, "onReady must grow to the arena size")
        let analytic = net.grads.toArray()
        // ReLU kinks, max-pool switches and BatchNorm's curvature make entries inexact at large ε (at ε = 1e-2 the
        // stem conv of the bottleneck/ImageNet case is off by up to 8 %, at 1e-3 by 4 %, at 2e-4 it agrees): ε = 2e-4,
        // every parameter compared with a tolerance relative to the largest gradient, 98 % within a tight one.
        var worst: Double = 0, tight = 0, total = 0
        var largest: Float = 0
        for g in analytic { largest = max(largest, abs(g)) }
        let scale = Double(largest)
        for entry in net.registry.parameters {
            for i in 0..<entry.slice.count {
                let k = entry.slice.offset + i
                let numeric = centralDifference(net.params.base + k, eps: 2e-4, loss: loss)
                let error: Double = abs(Double(analytic[k]) - numeric)
                worst = max(worst, error / scale)
                if error <= 2e-3 * scale + 1e-3 * abs(numeric) { tight += 1 }
                total += 1
            }
        }
        #expect(Double(tight) >= 0.98 * Double(total), "\(t): only \(tight) of \(total) gradients within 2e-3")
        #expect(worst < 5e-2, "\(t): worst gradient error \(worst) of the largest")
    }

    /// torchvision's names and shapes for resnet18 (a few) and the parameter count of resnet18/50 and resnet20.
    @Test func namesAndCounts() {
        let r18 = Network(config: NetworkConfig(kind: .resnet18, inputChannels: 3, height: 32, width: 32,
                                                classes: 1000), maxBatch: 1, seed: 0)
        let names = Set(r18.registry.parameters.map(\.name))
        for n in ["encoder.conv1.weight", "encoder.bn1.weight", "encoder.layer1.0.conv1.weight",
                  "encoder.layer2.0.downsample.0.weight", "encoder.layer2.0.downsample.1.bias",
                  "encoder.layer4.1.bn2.weight", "head.weight"] {
            #expect(names.contains(n), "missing \(n)")
        }
        #expect(r18.registry.buffers.map(\.name).contains("encoder.layer3.1.bn2.running_var"))
        #expect(r18.registry.counters.contains("encoder.bn1.num_batches_tracked"))
        #expect(r18.registry.parameter(named: "encoder.conv1.weight")?.shape == [64, 3, 7, 7])
        // torchvision: resnet18 11,689,512 and resnet50 25,557,032 parameters with a 1000-class fc.
        #expect(r18.parameterCount == 11_689_512)
        let r50 = Network(config: NetworkConfig(kind: .resnet50, inputChannels: 3, height: 32, width: 32,
                                                classes: 1000), maxBatch: 1, seed: 0)
        #expect(r50.parameterCount == 25_557_032)
        #expect(r50.registry.parameter(named: "encoder.layer3.5.conv3.weight")?.shape == [1024, 256, 1, 1])
        let r20 = Network(config: NetworkConfig(kind: .resnet20, classes: 10), maxBatch: 1, seed: 0)
        #expect(r20.config.embedDim == 64)
        #expect(r20.registry.parameter(named: "encoder.conv1.weight")?.shape == [16, 1, 3, 3])
    }
}
