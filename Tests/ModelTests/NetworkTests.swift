import Testing
import Tensor
import Model

/// L = Σ cE·embeddings + Σ cL·logits (Double), so dEmbeddings = cE and dLogits = cL.
final class NetworkProbe {
    let net: Network
    let input: Arena, cE: Arena, cL: Arena
    let batch: Int

    init(config: NetworkConfig, batch: Int, seed: UInt64) {
        net = Network(config: config, maxBatch: batch + 1, seed: seed)
        self.batch = batch
        input = Arena(count: batch * config.inputSize)
        cE = Arena(count: batch * config.embedDim)
        cL = Arena(count: batch * config.classes)
        fillUniform(input.base, count: input.count, seed: seed &+ 1)
        fillUniform(cE.base, count: cE.count, seed: seed &+ 2)
        fillUniform(cL.base, count: cL.count, seed: seed &+ 3)
    }

    func loss() -> Double {
        try! net.forward(input: input.base, batch: batch)
        return weightedSum(net.embeddings, cE.base, count: cE.count) + weightedSum(net.logits, cL.base, count: cL.count)
    }

    /// Forward, zero grads, backward; returns the onReady values.
    @discardableResult
    func gradients() -> [Int] {
        _ = loss()
        net.zeroGradients()
        var ready: [Int] = []
        try! net.backward(dEmbeddings: cE.base, dLogits: cL.base, batch: batch) { ready.append($0) }
        return ready
    }
}

@Suite struct NetworkTests {
    static let tinyMLP = NetworkConfig(inputChannels: 1, height: 4, width: 3, convWidths: [], hiddenWidths: [6, 5],
                                       embedDim: 4, classes: 3)
    static let tinyCNN = NetworkConfig(inputChannels: 2, height: 8, width: 6, convWidths: [3, 4], hiddenWidths: [5],
                                       embedDim: 4, classes: 3)

    /// Every parameter of a small mlp and a small cnn against central differences (ε = 1e-3 in Float, loss in
    /// Double). Tolerance atol 2e-3 + rtol 2e-2: Float forward noise ≈ 1e-7·|L|/ε plus rare ReLU/maxpool
    /// kink crossings, which a fixed seed keeps away.
    @Test(arguments: [tinyMLP, tinyCNN])
    func wholeNetworkFiniteDifferences(config: NetworkConfig) {
        let probe = NetworkProbe(config: config, batch: 3, seed: 30)
        probe.gradients()
        let analytic = probe.net.grads.toArray()
        for slice in probe.net.parameters {
            let fd = centralDifferences(probe.net.params.pointer(slice), count: slice.count, eps: 1e-3,
                                        loss: probe.loss)
            assertClose(Array(analytic[slice.offset..<(slice.offset + slice.count)]), fd, rtol: 2e-2, atol: 2e-3,
                        slice.name)
        }
    }

    /// The real cnn (1×28×28, 32/64 channels) on a batch of 2: for every parameter, the element with the
    /// largest |gradient| and one fixed random element.
    ///
    /// A conv bias moves ~400 ReLU/max-pool inputs at once, so at this size the loss has a kink every ~3e-4
    /// along it (measured) and central differences straddle kinks. The check therefore takes one-sided
    /// differences with ε = 1e-4 and passes if the analytic value (the derivative of the linear piece the
    /// network is on) matches either side. Tolerance: atol 1e-3·max|g| + rtol 1e-2.
    @Test func realCNNSampledFiniteDifferences() {
        let probe = NetworkProbe(config: NetworkConfig(kind: .cnn), batch: 2, seed: 31)
        probe.gradients()
        let g = probe.net.grads.toArray()
        let scale = Double(g.map { abs($0) }.max()!)
        let rng = CounterRNG(seed: 32)
        let center = probe.loss()
        for (n, slice) in probe.net.parameters.enumerated() {
            var largest = 0
            for i in 0..<slice.count where abs(g[slice.offset + i]) > abs(g[slice.offset + largest]) { largest = i }
            let random = rng.integer(below: slice.count, stream: .test, index: UInt64(n))
            for i in [largest, random] {
                let p = probe.net.params.pointer(slice) + i
                let saved = p.pointee, up = saved + 1e-4, down = saved - 1e-4
                p.pointee = up
                let right = (probe.loss() - center) / (Double(up) - Double(saved))
                p.pointee = down
                let left = (center - probe.loss()) / (Double(saved) - Double(down))
                p.pointee = saved
                let analytic = Double(g[slice.offset + i])
                let tolerance = 1e-3 * scale + 1e-2 * abs(analytic)
                #expect(abs(analytic - right) <= tolerance || abs(analytic - left) <= tolerance,
                        "\(slice.name)[\(i)]: analytic \(analytic), one-sided \(left) / \(right)")
            }
        }
    }

    @Test func onReadyReportsFinalPrefixesInLayoutOrder() {
        let probe = NetworkProbe(config: Self.tinyCNN, batch: 2, seed: 33)
        _ = probe.loss()
        probe.net.zeroGradients()
        var ready: [Int] = [], snapshots: [[Float]] = []
        let net = probe.net
        try! net.backward(dEmbeddings: probe.cE.base, dLogits: probe.cL.base, batch: 2) { k in
            ready.append(k)
            snapshots.append(Array(net.grads.storage[0..<k]))
        }
        // One call per layer (head, 2 linears, 4 convs), strictly increasing, ending at the arena size.
        #expect(ready.count == 7)
        #expect(ready == ready.sorted() && Set(ready).count == ready.count)
        #expect(ready.first == net.head.end && ready.last == net.grads.count)
        let final = net.grads.toArray()
        for (k, snap) in zip(ready, snapshots) { #expect(snap == Array(final[0..<k]), "prefix \(k) changed later") }
        // Layout order: head first, first conv last.
        #expect(net.parameters.map(\.name) == [
            "head.weight", "head.bias", "encoder.13.weight", "encoder.13.bias", "encoder.11.weight",
            "encoder.11.bias", "encoder.7.weight", "encoder.7.bias", "encoder.5.weight", "encoder.5.bias",
            "encoder.2.weight", "encoder.2.bias", "encoder.0.weight", "encoder.0.bias",
        ])
    }

    @Test func backwardAccumulates() {
        let probe = NetworkProbe(config: Self.tinyCNN, batch: 2, seed: 34)
        probe.gradients()
        let once = probe.net.grads.toArray()
        try! probe.net.backward(dEmbeddings: probe.cE.base, dLogits: probe.cL.base, batch: 2) { _ in }
        assertClose(probe.net.grads.toArray(), once.map { 2 * Double($0) }, rtol: 1e-5, atol: 1e-7, "2× grads")
    }

    @Test func smallerBatchMatchesPrefixOfLargerBatch() {
        // Rows are independent: forwarding the first 2 samples alone gives the first 2 rows of the batch of 3.
        let probe = NetworkProbe(config: Self.tinyCNN, batch: 3, seed: 35)
        _ = probe.loss()
        let all = array(probe.net.logits, 9)
        try! probe.net.forward(input: probe.input.base, batch: 2)
        #expect(array(probe.net.logits, 6) == Array(all[0..<6]))
    }

    @Test func referenceShapesAndCounts() {
        // PyTorch parameter counts of the reference encoders plus the 128→10 head.
        let mlp = Network(config: NetworkConfig(kind: .mlp), maxBatch: 1, seed: 0)
        #expect(mlp.parameterCount == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 128 + 128 + 1290)
        #expect(mlp.flopsPerSample == 2 * (784 * 512 + 512 * 512 + 512 * 128 + 128 * 10))
        let cnn = Network(config: NetworkConfig(kind: .cnn), maxBatch: 1, seed: 0)
        #expect(cnn.parameterCount == 902_250)
        let convMACs = 784 * (32 * 9 + 32 * 288) + 196 * (64 * 288 + 64 * 576)
        #expect(cnn.flopsPerSample == 2 * (convMACs + 3136 * 256 + 256 * 128 + 1280))
        #expect(sequential(cnn).linears[0].inFeatures == 64 * 7 * 7)
        let cifar = Network(config: NetworkConfig(kind: .cnn, inputChannels: 3, height: 32, width: 32, classes: 100),
                            maxBatch: 2, seed: 0)
        #expect(sequential(cifar).linears[0].inFeatures == 64 * 8 * 8)
        #expect(sequential(cifar).stages[0].first.inChannels == 3)
        let x = Arena(count: 2 * 3 * 32 * 32)
        fillUniform(x.base, count: x.count, seed: 36)
        try! cifar.forward(input: x.base, batch: 2)
        #expect(array(cifar.logits, 200).allSatisfy { $0.isFinite })
        for (slice, next) in zip(cnn.parameters, cnn.parameters.dropFirst()) {
            #expect(slice.offset % 16 == 0 && slice.offset + slice.count <= next.offset)
        }
    }

    @Test func initialisationMatchesPyTorchDefaults() {
        let a = Network(config: NetworkConfig(kind: .cnn), maxBatch: 1, seed: 7)
        let b = Network(config: NetworkConfig(kind: .cnn), maxBatch: 1, seed: 7)
        let c = Network(config: NetworkConfig(kind: .cnn), maxBatch: 1, seed: 8)
        #expect(a.params.toArray() == b.params.toArray())
        var differing = 0
        for i in 0..<a.params.count where a.params[i] != c.params[i] { differing += 1 }
        #expect(differing > a.parameterCount * 99 / 100)
        for slice in a.parameters {
            let bound = Double(uniformBound(a, slice))
            let v = array(a.params.pointer(slice), slice.count).map(Double.init)
            #expect(v.allSatisfy { abs($0) <= bound }, "\(slice.name) outside ±\(bound)")
            if slice.count >= 9000 {
                // U(−β, β): mean 0, variance β²/3; 5σ bands of the sample statistics.
                let n = Double(v.count), mean = v.reduce(0, +) / n
                let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
                #expect(abs(mean) < 5 * bound / (3 * n).squareRoot(), "\(slice.name) mean \(mean)")
                #expect(abs(variance / (bound * bound / 3) - 1) < 5 * (0.8 / n).squareRoot(), "\(slice.name) var")
            }
        }
        // Element j of parameter number p is uniform(stream .initialisation, index j, substream p).
        let rng = CounterRNG(seed: 7)
        let slice = a.parameters[4], bound = uniformBound(a, slice)
        #expect(slice.name == "encoder.11.weight" && bound == 1 / Float(Double(3136).squareRoot()))
        let u = rng.uniform(stream: .initialisation, index: 5, substream: 4)
        #expect(a.params.pointer(slice)[5] == (2 * u - 1) * bound)
        // The mlp's head is drawn exactly like the cnn's head (same parameter numbers, same fan-in).
        let m = Network(config: NetworkConfig(kind: .mlp), maxBatch: 1, seed: 7)
        #expect(array(m.params.pointer(m.head.weight), 1280) == array(a.params.pointer(a.head.weight), 1280))
        // Parameters are independent of maxBatch.
        let big = Network(config: NetworkConfig(kind: .cnn), maxBatch: 4, seed: 7)
        #expect(big.params.toArray() == a.params.toArray())
    }
}

/// The sequential encoder of an `mlp`/`cnn` network.
func sequential(_ net: Network) -> SequentialEncoder {
    guard case .sequential(let e) = net.body else { preconditionFailure("not a sequential encoder") }
    return e
}

/// The U(−β, β) bound of the parameter at `slice` (PyTorch default: β = 1/√fan_in).
func uniformBound(_ net: Network, _ slice: Slice) -> Float {
    guard case .uniform(let bound) = net.registry.parameter(named: slice.name)?.initRule else {
        preconditionFailure("\(slice.name) is not uniformly initialised")
    }
    return bound
}
