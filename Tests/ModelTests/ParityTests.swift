import Checkpoint
import Foundation
import Model
import Tensor
import Testing
@testable import Train

// Parity with PyTorch: eval-mode embeddings and logits of weights exported from PyTorch (resnet20, the peer's
// ResNet20 with trained-looking BatchNorm statistics) and of a torchvision resnet18 whose weights follow a formula
// this test re-implements (the real weights are 45 MB); see Fixtures/README.md and scripts/export_fixtures.py.
// Tolerance: 1e-4 of the largest magnitude of each output.

func fixture(_ name: String) throws -> SafeTensors {
    guard let url = Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil) else {
        throw WeightFileError(message: "fixture \(name) not found")
    }
    return try SafeTensors.read(path: url.path, requireChecksum: false)
}

/// |a − b| ≤ 1e-4 · max|b| elementwise.
func expectParity(_ actual: UnsafePointer<Float>, _ expected: [Float], _ what: String,
                  sourceLocation: SourceLocation = #_sourceLocation) {
    let scale = expected.map { abs($0) }.max() ?? 0
    var worst: Float = 0
    for i in expected.indices { worst = max(worst, abs(actual[i] - expected[i])) }
    #expect(worst <= 1e-4 * scale, "\(what): max |diff| \(worst), scale \(scale)", sourceLocation: sourceLocation)
}

/// The resnet18 fixture's formula value of element i of the torchvision tensor `name` of `shape`.
func formulaValues(name: String, shape: [Int]) -> [Float] {
    var h: UInt32 = 2_166_136_261
    for b in name.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
    let count = shape.reduce(1, *), fanIn = shape.dropFirst().reduce(1, *)
    return (0..<count).map { i in
        var x = (UInt64(h) << 32) ^ UInt64(i)
        x = x &+ 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z = z ^ (z >> 31)
        let r = 2 * (Double(z >> 11) / 9_007_199_254_740_992) - 1
        if shape.count >= 2 { return Float(r * 3.0.squareRoot() * (1 / Double(fanIn)).squareRoot()) }
        if name.hasSuffix("running_mean") { return Float(0.1 * r) }
        if name.hasSuffix("running_var") { return Float(1 + 0.5 * r) }
        if name.hasSuffix(".weight") { return Float(1 + 0.2 * r) }
        return Float(0.1 * r)
    }
}

/// A bare torchvision state dict for `net` with formula values (counters 1000).
func formulaStateDict(for net: Network) -> SafeTensors {
    var file = SafeTensors()
    for entry in net.registry.parameters {
        let name = WeightNaming.torchvision.fileName(of: entry.name, kind: "param")
        file.add(name, formulaValues(name: name, shape: entry.shape), shape: entry.shape)
    }
    for entry in net.registry.buffers {
        let name = WeightNaming.torchvision.fileName(of: entry.name, kind: "buffer")
        file.add(name, formulaValues(name: name, shape: entry.shape), shape: entry.shape)
    }
    for counter in net.registry.counters {
        file.add(WeightNaming.torchvision.fileName(of: counter, kind: "counter"), [Int64(1000)], shape: [])
    }
    return file
}

@Suite struct ParityTests {
    @Test func resnet20MatchesPyTorch() throws {
        let io = try fixture("resnet20.io.safetensors")
        let net = Network(config: NetworkConfig(kind: .resnet20, classes: 10), maxBatch: 4, seed: 0)
        let report = try net.load(weights: fixture("resnet20.weights.safetensors"))
        #expect(report.naming == .dtrain && report.notes.isEmpty)
        #expect(net.counters.toArray().allSatisfy { $0 == 5 })
        let input = try io.floats("input", shape: [4, 1, 28, 28])
        net.mode = .eval
        try input.withUnsafeBufferPointer { try net.forward(input: $0.baseAddress!, batch: 4) }
        expectParity(net.embeddings, try io.floats("embedding", shape: [4, 64]), "resnet20 eval embedding")
        expectParity(net.logits, try io.floats("logits", shape: [4, 10]), "resnet20 eval logits")

        // Training mode: batch statistics, and the stem's running statistics move as PyTorch's.
        net.mode = .train
        try input.withUnsafeBufferPointer { try net.forward(input: $0.baseAddress!, batch: 4) }
        expectParity(net.embeddings, try io.floats("train_embedding", shape: [4, 64]), "resnet20 train embedding")
        guard case .resnet(let r) = net.body, case .batch(let bn) = r.stemNorm else {
            Issue.record("resnet20 has no BatchNorm stem"); return
        }
        expectParity(net.buffers.pointer(bn.runningMean), try io.floats("train_bn1_running_mean", shape: [16]),
                     "running mean")
        expectParity(net.buffers.pointer(bn.runningVar), try io.floats("train_bn1_running_var", shape: [16]),
                     "running var")
        #expect(net.counters[bn.counter] == 6)
    }

    /// torchvision resnet18 (both stems) from a bare torchvision state dict, as `--init` reads it.
    @Test(arguments: [StemKind.imagenet, .cifar])
    func torchvisionResNet18MatchesPyTorch(stem: StemKind) throws {
        let io = try fixture("resnet18.io.safetensors")
        let net = Network(config: NetworkConfig(kind: .resnet18, inputChannels: 3, height: 32, width: 32, classes: 7,
                                                stem: stem), maxBatch: 2, seed: 0)
        let report = try net.load(weights: formulaStateDict(for: net))
        #expect(report.naming == .torchvision)
        net.mode = .eval
        let input = try io.floats("input", shape: [2, 3, 32, 32])
        try input.withUnsafeBufferPointer { try net.forward(input: $0.baseAddress!, batch: 2) }
        let prefix = stem == .cifar ? "cifar_" : ""
        expectParity(net.embeddings, try io.floats(prefix + "embedding", shape: [2, 512]), "\(stem) embedding")
        expectParity(net.logits, try io.floats(prefix + "logits", shape: [2, 7]), "\(stem) logits")
    }

    /// A file that does not fit is refused with the names listed, and the network is left as it was.
    @Test func mismatchedFilesAreRefusedWholesale() throws {
        let net = Network(config: NetworkConfig(kind: .resnet20, classes: 10), maxBatch: 1, seed: 0)
        let before = net.params.toArray()
        // resnet18 weights into a resnet20: missing, unexpected and mis-shaped tensors, all listed.
        let r18 = Network(config: NetworkConfig(kind: .resnet18, inputChannels: 3, height: 32, width: 32, classes: 10),
                          maxBatch: 1, seed: 0)
        do {
            _ = try net.load(weights: formulaStateDict(for: r18))
            Issue.record("a resnet18 file loaded into resnet20")
        } catch let e as WeightFileError {
            #expect(e.message.contains("30 missing: layer3.2.bn2.weight (64)"), "\(e.message)")
            #expect(e.message.contains("30 unexpected: layer4.1.bn2.weight"), "\(e.message)")
            #expect(e.message.contains("76 mis-shaped: fc.weight: file (10, 512), model (10, 64)"), "\(e.message)")
        }
        #expect(net.params.toArray() == before)
        // A missing tensor is named with its shape.
        var partial = try fixture("resnet20.weights.safetensors")
        var kept = SafeTensors()
        for name in partial.names where name != "encoder.layer2.1.bn2.running_var" { kept.add(name, partial[name]!) }
        partial = kept
        #expect(throws: WeightFileError.self) { _ = try net.load(weights: partial) }
        #expect(net.params.toArray() == before)
    }

    /// Input-channel adaptation (timm's adapt_input_conv) and the head rules.
    @Test func inputChannelsAndHead() throws {
        let rgb = Network(config: NetworkConfig(kind: .resnet18, inputChannels: 3, height: 32, width: 32, classes: 7,
                                                stem: .cifar), maxBatch: 2, seed: 0)
        let file = formulaStateDict(for: rgb)
        // 3-channel weights on 1-channel data, 5 classes: stem summed over channels, head dropped with a note.
        let gray = Network(config: NetworkConfig(kind: .resnet18, inputChannels: 1, height: 32, width: 32, classes: 5,
                                                 stem: .cifar), maxBatch: 2, seed: 0)
        let freshHead = Array(gray.params.view(gray.head.weight))
        let report = try gray.load(weights: file)
        #expect(report.notes.count == 2, "\(report.notes)")
        #expect(Array(gray.params.view(gray.head.weight)) == freshHead)
        let w3 = formulaValues(name: "conv1.weight", shape: [64, 3, 3, 3])
        let w1 = Array(gray.params.view(gray.registry.parameter(named: "encoder.conv1.weight")!.slice))
        #expect(w1[0] == w3[0] + w3[9] + w3[18] && w1[9] == w3[27] + w3[36] + w3[45])
        // Same classes but --init-head no: the head keeps its initialisation.
        let again = Network(config: NetworkConfig(kind: .resnet18, inputChannels: 3, height: 32, width: 32, classes: 7,
                                                  stem: .cifar), maxBatch: 2, seed: 0)
        let head = Array(again.params.view(again.head.weight))
        _ = try again.load(weights: file, includeHead: false)
        #expect(Array(again.params.view(again.head.weight)) == head)
        _ = try again.load(weights: file)
        #expect(Array(again.params.view(again.head.weight)) == formulaValues(name: "fc.weight", shape: [7, 512]))
    }

    /// F16 and BF16 weight files load as their exact F32 widening.
    @Test func halfPrecisionFilesLoad() throws {
        let net = Network(config: NetworkConfig(kind: .resnet20, classes: 10), maxBatch: 1, seed: 0)
        let source = try fixture("resnet20.weights.safetensors")
        for dtype in [DType.f16, .bf16] {
            var half = SafeTensors()
            for name in source.names {
                let t = source[name]!
                guard t.dtype == .f32 else { half.add(name, t); continue }
                let bits: [UInt16] = t.values(as: Float.self).map { v in
                    dtype == .bf16 ? UInt16(truncatingIfNeeded: v.bitPattern >> 16) : Float16(v).bitPattern
                }
                half.add(name, TensorData(dtype: dtype, shape: t.shape,
                                          bytes: bits.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }))
            }
            _ = try net.load(weights: half)
            let w = net.params.view(net.registry.parameter(named: "head.weight")!.slice)
            let original = source["head.weight"]!.values(as: Float.self)
            for i in 0..<10 {
                let expected = dtype == .bf16 ? Float(bitPattern: original[i].bitPattern & 0xFFFF_0000)
                    : Float(Float16(original[i]))
                #expect(w[i] == expected)
            }
        }
    }
}
