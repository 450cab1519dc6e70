import ArgumentParser
import Checkpoint
import Collective
import Data
import Evaluation
import FileIO
import Foundation
import Model
import Testing
@testable import Train
@testable import dtrain

// `dtrain embed` and `dtrain export` on checkpoints of two-step synthetic runs (resnet20, and mlp for the refusals).

/// A fresh, empty temporary folder.
private func freshFolder(_ name: String) -> String {
    let dir = NSTemporaryDirectory() + "dtrain-embed-\(name)-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// The config of a two-step run of `model` on a few synthetic images, writing its checkpoint to `out`.
private func tinyConfig(model: String, out: String) throws -> TrainConfig {
    var c = TrainConfig.synthetic(model: model, batchSize: 8, trainLimit: 32, testLimit: 20)
    c.maxSteps = 2
    c.warmupEpochs = 0
    c.lr = 0.1
    c.epochEval = false
    try c.set("eval", to: "head")
    c.out = out
    return c
}

/// Trains `config` for its two steps on one in-process rank (writing the checkpoint).
private func trainTiny(_ config: TrainConfig) throws {
    let (train, test) = try loadDatasets(config)
    _ = try LocalGroup.run(size: 1) { comm in
        try runTraining(config: config, comm: comm, train: train, test: test)
    }
}

/// A resnet20 run folder shared by the tests (trained once).
private let resnetRun: String = {
    let dir = freshFolder("resnet20") + "/run"
    try! trainTiny(try! tinyConfig(model: "resnet20", out: dir))
    return dir
}()

@Suite struct EmbedExportTests {
    @Test func embedOfCheckpointEqualsTrainersEvalEmbeddings() throws {
        let config = try checkpointConfig(directory: resnetRun)
        let result = try embedSplit(config: config, weights: checkpointPath(directory: resnetRun), split: .test,
                                    limit: nil)
        #expect(result.count == 2000 && result.embedDim == 64 && result.classes == 10)

        // The trainer restored from the same checkpoint, embedding the test split its own way.
        let (train, _) = try loadDatasets(config)
        let test = try loadSplit(config, split: .test, limit: nil)
        let (embeddings, logits) = try LocalGroup.run(size: 1) { comm -> ([Float], [Float]) in
            var longer = config
            longer.maxSteps = 3  // restore refuses a checkpoint at the run's last step
            let trainer = try Trainer(config: longer, comm: comm, train: train, test: test)
            try trainer.restore(from: SafeTensors.read(path: checkpointPath(directory: resnetRun)))
            var logits = [Float](repeating: 0, count: test.count * 10)
            let embedder = Embedder(network: trainer.network, comm: comm, chunk: 500)
            try embedder.forEachChunk(of: test, range: 0..<test.count) { first, count in
                for i in 0..<(count * 10) { logits[first * 10 + i] = trainer.network.logits[i] }
            }
            let e = try embedder.embeddings(of: test, range: 0..<test.count)
            return (e, logits)
        }[0]
        let worstE = zip(result.embeddings, embeddings).map { abs($0 - $1) }.max()!
        let worstL = zip(result.logits, logits).map { abs($0 - $1) }.max()!
        #expect(worstE <= 1e-5 && worstL <= 1e-5, "embeddings differ by \(worstE), logits by \(worstL)")

        // --limit: the first N rows.
        let first = try embedSplit(config: config, weights: checkpointPath(directory: resnetRun), split: .test,
                                   limit: 7)
        // (Chunks of 7 rather than 64 images: the BLAS may round differently, so a tolerance.)
        #expect(first.count == 7 && first.embeddings.count == 7 * 64)
        #expect(zip(first.embeddings, result.embeddings).allSatisfy { abs($0 - $1) <= 1e-5 })
    }

    @Test func npyHeaderParsesAndDataRoundTrips() throws {
        let dir = freshFolder("npy")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let values: [Float] = (0..<15).map { Float($0) * 0.37 - 2 } + [.infinity, -0.0, .leastNonzeroMagnitude]
        let path = dir + "/a.npy"
        try writeNPY(values, shape: [6, 3], to: path)
        let bytes = try FileIO.readFileBytes(path)
        #expect(Array(bytes[0..<8]) == [0x93] + Array("NUMPY".utf8) + [1, 0])
        let length = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect((10 + length) % 64 == 0 && bytes.count == 10 + length + values.count * 4)
        let header = String(decoding: bytes[10..<(10 + length)], as: UTF8.self)
        #expect(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (6, 3), }"))
        #expect(header.hasSuffix(" \n"))
        let parsed = try parseNPYFloat32(bytes)
        #expect(parsed.shape == [6, 3])
        #expect(parsed.values.map { $0.bitPattern } == values.map { $0.bitPattern })
        // A one-dimensional array has numpy's (n,) shape.
        let one = npyBytes([1, 2].withUnsafeBufferPointer { $0 }, shape: [2])
        #expect(String(decoding: one[10..<64], as: UTF8.self).contains("'shape': (2,)"))
        #expect(try parseNPYFloat32(one).shape == [2])
    }

    @Test(arguments: [WeightNaming.dtrain, .torchvision])
    func exportLoadsBackIdentically(naming: WeightNaming) throws {
        let config = try checkpointConfig(directory: resnetRun)
        let dir = freshFolder("export-\(naming.rawValue)")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/w.safetensors"
        try exportCheckpoint(directory: resnetRun, naming: naming).write(to: path)
        let file = try SafeTensors.read(path: path, requireChecksum: false)
        #expect(file.names.contains(naming == .dtrain ? "encoder.conv1.weight" : "conv1.weight"))
        #expect(file.names.contains(naming == .dtrain ? "head.weight" : "fc.weight"))
        #expect(!file.names.contains { $0.hasPrefix("param/") || $0.hasPrefix("optimizer") })
        let tracked = file.names.filter { $0.hasSuffix("num_batches_tracked") }
        #expect(!tracked.isEmpty && tracked.allSatisfy { file[$0]!.dtype == .i64 && file[$0]!.shape == [] })

        func network(seed: UInt64) throws -> Network {
            var c = config
            c.seed = seed
            return try makeNetwork(config: c, channels: 1, height: 28, width: 28, classes: 10, maxBatch: 1)
        }
        let reference = try network(seed: 1)
        _ = try reference.load(weights: SafeTensors.read(path: checkpointPath(directory: resnetRun)))
        let fresh = try network(seed: 2)
        #expect(Array(fresh.params.storage) != Array(reference.params.storage))
        let report = try fresh.load(weights: file)
        #expect(report.naming == naming && report.notes.isEmpty)
        #expect(Array(fresh.params.storage) == Array(reference.params.storage))
        #expect(Array(fresh.buffers.storage) == Array(reference.buffers.storage))
        let counters = reference.registry.counters.indices
        #expect(counters.map { fresh.counters[$0] } == counters.map { reference.counters[$0] })
        #expect(counters.allSatisfy { reference.counters[$0] == 2 }, "two training steps are tracked")
    }

    @Test func exportRefusesTorchvisionNamesForMLP() throws {
        let folder = freshFolder("mlp"), run = folder + "/run"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try trainTiny(try tinyConfig(model: "mlp", out: run))
        do {
            _ = try exportCheckpoint(directory: run, naming: .torchvision)
            Issue.record("torchvision names accepted for mlp")
        } catch {
            #expect("\(error)".contains("not a torchvision ResNet"), "\(error)")
        }
        let file = try exportCheckpoint(directory: run, naming: .dtrain)
        #expect(file.names.contains("head.weight") && file.names.contains { $0.hasPrefix("encoder.") })
    }

    /// A ViT checkpoint (--model vit with a smaller shape) exports under timm names (the export of the checkpoint's
    /// weights, loaded back identically and detected as timm); timm names are refused for the mlp and a ResNet.
    @Test func exportTimmNamesForViT() throws {
        let folder = freshFolder("vit"), run = folder + "/run"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var config = try tinyConfig(model: "vit", out: run)
        config.embedDim = 16; config.depth = 2; config.heads = 2; config.patchSize = 7
        try trainTiny(config)
        let file = try exportCheckpoint(directory: run, naming: .timm)
        for name in ["cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.1.attn.qkv.bias",
                     "blocks.0.mlp.fc2.weight", "norm.weight", "head.weight"] {
            #expect(file.names.contains(name), "\(name) missing from \(file.names)")
        }
        #expect(file["pos_embed"]?.shape == [1, 17, 16])
        let saved = try checkpointConfig(directory: run)
        let net = try makeNetwork(config: saved, channels: 1, height: 28, width: 28, classes: 10, maxBatch: 1)
        let report = try net.load(weights: file)
        #expect(report.naming == .timm && report.notes.isEmpty)
        let reference = try makeNetwork(config: saved, channels: 1, height: 28, width: 28, classes: 10, maxBatch: 1)
        _ = try reference.load(weights: SafeTensors.read(path: checkpointPath(directory: run)))
        #expect(Array(net.params.storage) == Array(reference.params.storage))
        do {
            _ = try exportCheckpoint(directory: resnetRun, naming: .timm)
            Issue.record("timm names accepted for resnet20")
        } catch {
            #expect("\(error)".contains("not a ViT"), "\(error)")
        }
    }

    @Test func commandLineValidation() throws {
        let dir = freshFolder("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let existing = dir + "/exists.safetensors"
        FileManager.default.createFile(atPath: existing, contents: Data([1]))

        func message(_ type: any ParsableCommand.Type, _ arguments: [String]) -> String? {
            do { _ = try type.parse(arguments); return nil } catch { return type.message(for: error) }
        }
        #expect(message(EmbedCommand.self, ["--out", "e.npy"])?.contains("--checkpoint DIR or --init FILE") == true)
        #expect(message(EmbedCommand.self, ["--init", "w", "--checkpoint", resnetRun, "--out", "e.npy"])?
            .contains("exclude each other") == true)
        #expect(message(EmbedCommand.self, ["--init", "w", "--out", "e.npy"])?.contains("--init needs --model") == true)
        #expect(message(EmbedCommand.self, ["--checkpoint", resnetRun, "--out", "e.npy", "--limit", "0"])?
            .contains("--limit must be >= 1") == true)
        #expect(message(EmbedCommand.self, ["--checkpoint", dir, "--out", "e.npy"])?.contains("--checkpoint") == true)
        #expect(message(EmbedCommand.self, ["--checkpoint", resnetRun, "--out", "e.npy", "--split", "val"]) != nil)
        #expect(message(EmbedCommand.self, ["--checkpoint", resnetRun, "--out", "e.npy"]) == nil)
        // Outputs that exist are kept unless --force (export's rule), for embed's two files and the two folders.
        #expect(message(EmbedCommand.self, ["--checkpoint", resnetRun, "--out", existing])?
            .contains("--out \(existing) exists; give --force") == true)
        #expect(message(EmbedCommand.self, ["--checkpoint", resnetRun, "--out", "e.npy", "--logits", existing])?
            .contains("--logits \(existing) exists; give --force") == true)
        #expect(message(EmbedCommand.self, ["--checkpoint", resnetRun, "--out", existing, "--force"]) == nil)
        #expect(message(EmbedCommand.self, ["--checkpoint", resnetRun, "--out", dir, "--force"])?
            .contains("is a folder") == true)
        #expect(message(EvalCommand.self, ["--checkpoint", resnetRun, "--stall-timeout", "-1"])?
            .contains("--stall-timeout must be >= 0") == true)
        #expect(message(FewShotCommand.self, ["--checkpoint", resnetRun, "--classes", "0,1", "--stall-timeout", "inf"])?
            .contains("--stall-timeout must be >= 0") == true)
        #expect(message(EvalCommand.self, ["--checkpoint", resnetRun, "--stall-timeout", "0"]) == nil)
        let empty = dir + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        for type in [EvalCommand.self, AnalyzeCommand.self] as [any ParsableCommand.Type] {
            #expect(message(type, ["--checkpoint", resnetRun, "--out", dir])?.contains("give --force") == true)
            #expect(message(type, ["--checkpoint", resnetRun, "--out", dir, "--force"]) == nil)
            #expect(message(type, ["--checkpoint", resnetRun, "--out", empty]) == nil)
            #expect(message(type, ["--checkpoint", resnetRun, "--out", dir + "/new"]) == nil)
            #expect(message(type, ["--checkpoint", resnetRun, "--out", existing, "--force"])?
                .contains("is a file, not a folder") == true)
        }

        #expect(message(ExportCommand.self, ["--checkpoint", resnetRun, "--out", existing])?.contains("--force") == true)
        #expect(message(ExportCommand.self, ["--checkpoint", resnetRun, "--out", existing, "--force"]) == nil)
        #expect(message(ExportCommand.self, ["--checkpoint", resnetRun, "--out", dir, "--force"])?
            .contains("is a folder") == true)
        #expect(message(ExportCommand.self, ["--checkpoint", resnetRun, "--out", "x", "--names", "onnx"]) != nil)
        #expect(message(ExportCommand.self, ["--out", "x"]) != nil)
    }
}
