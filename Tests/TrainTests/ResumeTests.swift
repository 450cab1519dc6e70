import Checkpoint
import Collective
import Data
import Foundation
import Testing
@testable import Train
@testable import dtrain

// Checkpoints and --resume with in-process ranks (LocalGroup) on a small synthetic problem: 260 images, global
// batch 26, so 10 steps per epoch and evaluations at step 10 and at the end of a 12-step run.

private func resumeConfig(optimizer: String = "sgd", model: String = "mlp", out: String) -> TrainConfig {
    var c = TrainConfig.synthetic(model: model, batchSize: 26, trainLimit: 260, testLimit: 100)
    c.maxSteps = 12
    c.warmupEpochs = 0.3
    c.lr = optimizer == "sgd" ? 0.2 : 0.001
    c.optimizer = optimizer
    c.logEvery = 1
    c.checkpointEvery = 4
    c.out = out
    return c
}

private let resumeData: (train: Dataset, test: Dataset) = {
    try! loadDatasets(resumeConfig(out: ""))
}()

/// A fresh, empty temporary folder.
private func freshFolder(_ name: String) -> String {
    let dir = NSTemporaryDirectory() + "dtrain-resume-\(name)-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    return dir
}

/// The metrics lines of `dir`, without the timing fields (images_per_s, seconds).
private func metricLines(_ dir: String) throws -> [[String: String]] {
    let text = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
    return try text.split(separator: "\n").map { line in
        let object = try JSONSerialization.jsonObject(with: Foundation.Data(line.utf8)) as! [String: Any]
        var fields: [String: String] = [:]
        for (k, v) in object where k != "images_per_s" && k != "seconds" { fields[k] = "\(v)" }
        return fields
    }
}

/// Runs `config` on `ranks` in-process ranks.
@discardableResult
private func train(_ config: TrainConfig, ranks: Int, control: RunControl = RunControl()) throws -> RunSummary {
    try LocalGroup.run(size: ranks) { comm in
        try runTraining(config: config, comm: comm, train: resumeData.train, test: resumeData.test,
                        control: control)
    }[0]
}

/// Runs to step 12 with a failure after step 9 (last checkpoint: step 8; the default epoch checkpoint is at step 10),
/// then resumes in the same folder.
private func interruptedAndResumed(_ config: TrainConfig, ranks: Int, resumeRanks: Int) throws {
    #expect(throws: TrainingError.self) {
        try train(config, ranks: ranks, control: RunControl(failAtStep: 9, failRank: ranks - 1))
    }
    let checkpoint = try SafeTensors.read(path: checkpointPath(directory: config.out!))
    #expect(checkpoint.metadata[CheckpointKey.step] == "8")
    try train(config, ranks: resumeRanks, control: RunControl(resume: config.out!))
}

@Suite(.serialized) struct ResumeTests {
    /// Same rank count: every metrics line (loss, ce, contrastive, lr, grad_norm, the epoch-10 evaluation) and the
    /// final parameters and optimiser state are bit-identical to the uninterrupted run's.
    /// resnet20: the BatchNorm running statistics and `num_batches_tracked` are saved and restored too (the
    /// epoch-10 evaluation uses them).
    @Test(arguments: [("sgd", "mlp"), ("adamw", "mlp"), ("sgd", "resnet20")])
    func resumedRunIsBitIdentical(optimizer: String, model: String) throws {
        let full = freshFolder("full-\(optimizer)-\(model)"), cut = freshFolder("cut-\(optimizer)-\(model)")
        defer { for d in [full, cut] { try? FileManager.default.removeItem(atPath: d) } }
        try train(resumeConfig(optimizer: optimizer, model: model, out: full), ranks: 2)
        try interruptedAndResumed(resumeConfig(optimizer: optimizer, model: model, out: cut), ranks: 2,
                                  resumeRanks: 2)
        if model == "resnet20" {
            let saved = try SafeTensors.read(path: checkpointPath(directory: full))
            #expect(saved.names.contains("buffer/encoder.layer3.2.bn2.running_var"))
            #expect(saved["counter/encoder.bn1.num_batches_tracked"]?.values(as: Int64.self) == [12])
        }

        let a = try metricLines(full), b = try metricLines(cut)
        #expect(a.count == 14 && a == b, "\(a.count) vs \(b.count) lines")
        let steps = b.compactMap { $0["step"].flatMap(Int.init) }
        #expect(steps == Array(1...12), "steps logged: \(steps)")

        let x = try SafeTensors.read(path: checkpointPath(directory: full))
        let y = try SafeTensors.read(path: checkpointPath(directory: cut))
        #expect(x.names == y.names && x.names.count > 2)
        for name in x.names { #expect(x[name] == y[name], "tensor \(name) differs") }
        #expect(x.metadata[CheckpointKey.step] == "12" && x.metadata[TrainCheckpointKey.optimizer] == optimizer)
    }

    /// Gradient caching (`--chunk-size 5`: each rank's 13 images in chunks of 5, 5 and 3) resumes bit-identically:
    /// the chunks are refilled from the counter RNG, nothing of a step outlives it.
    @Test func chunkedRunResumesBitIdentical() throws {
        let full = freshFolder("full-chunked"), cut = freshFolder("cut-chunked")
        defer { for d in [full, cut] { try? FileManager.default.removeItem(atPath: d) } }
        var a = resumeConfig(out: full), b = resumeConfig(out: cut)
        a.chunkSize = 5
        b.chunkSize = 5
        try train(a, ranks: 2)
        try interruptedAndResumed(b, ranks: 2, resumeRanks: 2)
        #expect(try metricLines(full) == metricLines(cut))
        let x = try SafeTensors.read(path: checkpointPath(directory: full))
        let y = try SafeTensors.read(path: checkpointPath(directory: cut))
        #expect(x.names == y.names && x.names.count > 2)
        for name in x.names { #expect(x[name] == y[name], "tensor \(name) differs") }
    }

    /// Another rank count (2 → 3 and 2 → 1): the same global batch, so values agree within 1e-4 relative.
    @Test(arguments: [3, 1])
    func resumeWithAnotherRankCount(resumeRanks: Int) throws {
        let full = freshFolder("full-n"), cut = freshFolder("cut-n\(resumeRanks)")
        defer { for d in [full, cut] { try? FileManager.default.removeItem(atPath: d) } }
        try train(resumeConfig(out: full), ranks: 2)
        try interruptedAndResumed(resumeConfig(out: cut), ranks: 2, resumeRanks: resumeRanks)

        let a = try metricLines(full), b = try metricLines(cut)
        #expect(a.count == b.count)
        for (p, q) in zip(a, b) {
            #expect(p["step"] == q["step"] && p["epoch"] == q["epoch"])
            for key in ["loss", "ce", "contrastive", "lr", "grad_norm"] where p[key] != nil {
                let u = Double(p[key]!)!, v = Double(q[key]!)!
                #expect(abs(u - v) <= 1e-4 * max(abs(u), 1e-6), "step \(p["step"]!) \(key): \(u) vs \(v)")
            }
        }
        let x = try SafeTensors.read(path: checkpointPath(directory: full))
        let y = try SafeTensors.read(path: checkpointPath(directory: cut))
        for name in x.names where name.hasPrefix("param/") {
            let u = x[name]!.values(as: Float.self), v = y[name]!.values(as: Float.self)
            let scale = u.map { abs($0) }.max()!
            let worst = zip(u, v).map { abs($0 - $1) }.max()!
            #expect(worst <= 1e-4 * scale, "\(name): worst difference \(worst), scale \(scale)")
        }
    }

    /// The file holds PyTorch state-dict names with layer shapes, the optimiser state, and the metadata listed in
    /// Trainer+Checkpoint.swift; extending --max-steps continues a finished run.
    @Test func layoutAndExtension() throws {
        let dir = freshFolder("layout")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = resumeConfig(out: dir)
        config.maxSteps = 4
        try train(config, ranks: 2)
        let file = try SafeTensors.read(path: checkpointPath(directory: dir))
        #expect(file["param/head.weight"]?.shape == [10, 128] && file["param/head.bias"]?.shape == [10])
        #expect(file["param/encoder.1.weight"]?.shape == [512, 784])
        #expect(file["momentum/encoder.5.bias"]?.shape == [128])
        #expect(file["step"]?.values(as: Int64.self) == [4])
        for key in ["format", "format_version", "config", "step", "epoch", "seed", "optimizer", "ranks",
                    "train_images", "total_steps", "metrics_bytes", "rng", "dtrain.crc32"] {
            #expect(file.metadata[key] != nil, "metadata lacks \(key)")
        }
        #expect(try savedConfig(of: file) == config)

        config.maxSteps = 6
        let summary = try train(config, ranks: 2, control: RunControl(resume: dir))
        #expect(summary.steps == 6 && summary.resumedAtStep == 4 && summary.shareRunNow == 2.0 / 6)
        let steps = try metricLines(dir).compactMap { $0["step"].flatMap(Int.init) }
        #expect(steps == Array(1...6), "steps logged: \(steps)")
    }

    /// Bad checkpoints given to --resume: each is a clear error naming the file, never a crash or a silent start.
    @Test func corruptMissingAndMismatchedCheckpointsAreClearErrors() throws {
        let dir = freshFolder("bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = resumeConfig(out: dir)
        var short = config
        short.maxSteps = 4
        try train(short, ranks: 2)
        let path = checkpointPath(directory: dir)
        let good = try Foundation.Data(contentsOf: URL(fileURLWithPath: path))
        func expectError(_ config: TrainConfig, _ text: String, ranks: Int = 2) {
            do {
                try train(config, ranks: ranks, control: RunControl(resume: dir))
                Issue.record("resume accepted; expected \(text)")
            } catch {
                #expect("\(error)".contains(text), "error: \(error)")
            }
        }

        // Settings that change the trajectory.
        var other = config
        other.batchSize = 20
        other.loss = "supcon"
        expectError(other, "--loss: checkpoint clce, this run supcon; --batch-size: checkpoint 26, this run 20")
        other = config
        other.model = "cnn"
        expectError(other, "--model: checkpoint mlp, this run cnn")
        other = config
        other.optimizer = "adamw"
        expectError(other, "--optimizer: checkpoint sgd, this run adamw")
        // Already at the end.
        expectError(short, "it is at step 4 and this run ends at step 4; raise --epochs or --max-steps")

        // A different training set behind the same settings (another --data-dir): re-saved with a valid CRC.
        var edited = try SafeTensors.read(path: path)
        edited.metadata[TrainCheckpointKey.trainImages] = "400"
        try edited.write(to: path)
        expectError(config, "it was trained on 400 images, this run has 260")

        // One flipped bit in the data section; the file cut short; no file.
        var bytes = [UInt8](good)
        bytes[bytes.count - 100] ^= 0x10
        try Foundation.Data(bytes).write(to: URL(fileURLWithPath: path))
        expectError(config, "checksum mismatch")
        try Foundation.Data(good.prefix(good.count / 2)).write(to: URL(fileURLWithPath: path))
        expectError(config, "truncated")
        try FileManager.default.removeItem(atPath: path)
        expectError(config, "\(path): no such file")

        // A valid safetensors file that is not a dtrain checkpoint.
        var foreign = SafeTensors(metadata: ["format": "pt"])
        foreign.add("weight", [Float(1)], shape: [1])
        try foreign.write(to: path)
        expectError(config, "no metadata key \"format_version\"")
    }

    /// Flags: --resume takes the checkpoint's settings and --out defaults to DIR; checkpoints need --out; a
    /// corrupt --resume is a validation error naming the file.
    @Test func commandLine() throws {
        let dir = freshFolder("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = resumeConfig(out: dir)
        config.maxSteps = 2
        config.tau = 0.3
        try train(config, ranks: 1)

        let cmd = try TrainCommand.parse(["--resume", dir, "--max-steps", "5"])
        let c = try cmd.trainConfig()
        #expect(c.tau == 0.3 && c.batchSize == 26 && c.maxSteps == 5 && c.out == dir && c.checkpointEvery == 4)
        let moved = try TrainCommand.parse(["--resume", dir, "--out", dir + "/b", "--checkpoint-every", "2"])
        #expect(try moved.trainConfig().out == dir + "/b")
        #expect(try moved.trainConfig().checkpointEvery == 2)

        for args in [["--checkpoint-every", "5"], ["--checkpoint-every-epochs", "1"], ["--checkpoint-every", "-1"],
                     ["--fail-at-step", "0"], ["--fail-rank", "-1"], ["--resume", dir + "/nowhere"]] {
            do {
                _ = try TrainCommand.parse(args)
                Issue.record("\(args) was accepted")
            } catch {
                let message = TrainCommand.message(for: error)
                #expect(message.contains(args[0]) || message.contains("no such file"), "\(args): \(message)")
            }
        }
        var bytes = [UInt8](try Foundation.Data(contentsOf: URL(fileURLWithPath: checkpointPath(directory: dir))))
        bytes[bytes.count - 1] ^= 1
        try Foundation.Data(bytes).write(to: URL(fileURLWithPath: checkpointPath(directory: dir)))
        do {
            _ = try TrainCommand.parse(["--resume", dir])
            Issue.record("a corrupt checkpoint was accepted")
        } catch {
            #expect(TrainCommand.message(for: error).contains("checksum mismatch"))
        }
    }
}
