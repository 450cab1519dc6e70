import Checkpoint
import Collective
import Data
import Foundation
import Model
import Testing
@testable import Train

/// A small synthetic problem shared by the trainer tests.
private func smallConfig(loss: String = "clce", model: String = "mlp", batch: Int = 26) -> TrainConfig {
    var c = TrainConfig.synthetic(model: model, loss: loss, batchSize: batch, trainLimit: 260, testLimit: 100)
    c.maxSteps = 3
    c.warmupEpochs = 0
    c.lr = 0.2
    c.logEvery = 1
    return c
}

private let datasets: (train: Dataset, test: Dataset) = {
    try! loadDatasets(smallConfig())
}()

@Suite struct TrainerTests {
    /// Every rank count gives the same all-reduced gradient and the same per-step values (relative 1e-4).
    @Test(arguments: ["clce", "ce", "supcon", "ce+hscl", "clce-no-hnm"])
    func rankCountInvariance(loss: String) throws {
        try expectRankCountInvariance(smallConfig(loss: loss))
    }

    /// ResNets too: BatchNorm's statistics are global (the batch of 26 splits unevenly over 3 and 4 ranks), and
    /// GroupNorm needs nothing from other ranks.
    ///
    /// The gradient of a ReLU network is discontinuous in its parameters: after the first update, the 1e-8
    /// differences that the rank count makes to Float summation order flip a few of the ResNet's ~10⁶ ReLUs whose
    /// input lies within ~1e-7 of zero, and the gradient norm then moves by up to 2e-3 (relative) while the loss
    /// agrees to 1e-7 (measured over seeds 0–3, 5 steps, 1 vs 3 ranks). The same jump appears on one rank when its
    /// step-1 parameters are replaced by another rank count's (equal to 1.5e-8): it is the function, not the
    /// distribution. So: losses 1e-4 at every step, the first step's gradient element-wise 1e-4, later gradient
    /// norms 1e-2 (measured under mpirun: up to 4.6e-3).
    ///
    /// Since the 3×3 convolutions run several images per gemm, an image's outputs also depend at rounding level on
    /// its column position in the gemm (OpenBLAS's edge tiles), and so on how the rank count groups the images: with
    /// BatchNorm that can flip a ReLU in the first step already, which moves every weight gradient that unit feeds
    /// (measured, 1 vs 3 ranks, one BLAS thread: 434 of 272k elements beyond 1e-4 of the largest, the worst 2.5e-5 =
    /// 6.6e-4 of it; with one image per gemm, none). So with BatchNorm the first step's gradient may have 1 % of its
    /// elements beyond 1e-4 of the largest, none beyond 1e-3; GroupNorm keeps every element within 1e-4.
    @Test(arguments: ["batch", "group"])
    func resnetRankCountInvariance(norm: String) throws {
        var config = smallConfig(loss: "clce", model: "resnet20")
        config.norm = NormKind(rawValue: norm)!
        config.normGroups = 4
        config.lr = nil
        try expectRankCountInvariance(config, laterGradientNorms: 1e-2, firstGradientOutliers: norm == "batch" ? 1e-2 : 0)
    }

    /// Every rank count in `rankCounts` (default 1–4) gives the same all-reduced gradient and the same per-step values (relative 1e-4;
    /// gradient norms after the first step within `laterGradientNorms`).
    func expectRankCountInvariance(_ config: TrainConfig, laterGradientNorms: Double = 1e-4,
                                   firstGradientOutliers: Double = 0,
                                   ranks rankCounts: [Int] = [1, 2, 3, 4]) throws {
        var reference: [[Double]]? = nil
        var referenceGrads: [Float]? = nil
        for ranks in rankCounts {
            let perRank = try LocalGroup.run(size: ranks) { comm -> ([[Double]], [Float]) in
                let trainer = try Trainer(config: config, comm: comm, train: datasets.train, test: datasets.test)
                var values = [[Double]]()
                var firstGrads = [Float]()
                for s in 0..<3 {
                    let r = try trainer.runStep()
                    values.append([r.loss, r.ce, r.contrastive, r.gradNorm])
                    if s == 0 { firstGrads = trainer.network.grads.toArray() }
                }
                return (values, firstGrads)
            }
            // Every rank of one run agrees exactly (the values are global).
            for r in perRank { #expect(r.0 == perRank[0].0) }
            if let reference, let referenceGrads {
                for (step, (expected, actual)) in zip(reference, perRank[0].0).enumerated() {
                    for (i, (a, b)) in zip(expected, actual).enumerated() {
                        let tolerance = i == 3 && step > 0 ? laterGradientNorms : 1e-4
                        #expect(abs(a - b) <= tolerance * max(abs(a), 1e-6),
                                "ranks \(ranks) step \(step + 1) value \(i): \(a) vs \(b)")
                    }
                }
                let scale = referenceGrads.map { abs($0) }.max()!
                var worst: Float = 0, outliers = 0
                for (a, b) in zip(referenceGrads, perRank[0].1) {
                    worst = max(worst, abs(a - b))
                    if abs(a - b) > 1e-4 * scale { outliers += 1 }
                }
                if firstGradientOutliers == 0 {
                    #expect(worst <= 1e-4 * scale, "ranks \(ranks): gradient differs by \(worst) (max |g| \(scale))")
                } else {
                    #expect(worst <= 1e-3 * scale && Double(outliers) <= firstGradientOutliers * Double(scale > 0 ? referenceGrads.count : 0),
                            "ranks \(ranks): gradient differs by \(worst) (max |g| \(scale)), \(outliers) elements beyond 1e-4")
                }
            } else {
                reference = perRank[0].0
                referenceGrads = perRank[0].1
            }
        }
    }

    /// vit-tiny (timm's ViT, no batch statistics) is rank-count invariant too: 1, 2 and 4 ranks, 3 steps of CLCE with
    /// AdamW (decay flags in play), loss values and first-step gradients within 1e-4.
    @Test func vitTinyRankCountInvariance() throws {
        var config = smallConfig(model: "vit-tiny", batch: 8)
        config.optimizer = "adamw"
        config.lr = 1e-3
        config.weightDecay = 0.05
        try expectRankCountInvariance(config, ranks: [1, 2, 4])
    }

    /// Summed over ranks, the gradient is the single-process one: the reduce-scatter really sums.
    @Test func wholeGradientMatchesFiniteDifferences() throws {
        var config = smallConfig()
        config.seed = 3
        let results = try LocalGroup.run(size: 2) { comm in
            try checkWholeGradient(config: config, comm: comm, train: datasets.train, test: datasets.test)
        }
        #expect(results[0].passed, "worst relative error \(results[0].worstRelativeError)")
    }

    @Test func trainingLearnsAndReportsSummary() throws {
        var config = smallConfig()
        config.maxSteps = nil
        config.trainLimit = 2000
        config.batchSize = 50
        config.epochs = 2
        config.warmupEpochs = 1
        config.lr = nil
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-e2e-\(getpid())").path
        config.out = out
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (train, test) = try loadDatasets(config)
        let summaries = try LocalGroup.run(size: 2) { comm in
            try runTraining(config: config, comm: comm, train: train, test: test)
        }
        let s = summaries[0]
        #expect(s.testAccuracy > 0.5, "accuracy \(s.testAccuracy) should be well above chance (0.1)")
        #expect(s.steps == 80 && s.epochs == 2 && s.ranks == 2 && s.globalBatch == 50)
        #expect(s.finalLoss.isFinite)
        let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let objects = try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let steps = objects.filter { $0["step"] != nil }, epochs = objects.filter { $0["test_accuracy"] != nil }
        #expect(epochs.count == 2)
        for key in ["step", "epoch", "loss", "ce", "contrastive", "lr", "grad_norm", "images_per_s"] {
            #expect(steps.allSatisfy { $0[key] != nil }, "metrics lines lack \(key)")
        }
        let saved = try TrainConfig.load(path: out + "/config.json")
        #expect(saved == config)
    }

    @Test func nonFiniteLossStopsWithTheStepNumber() throws {
        var config = smallConfig()
        config.lr = 1e30
        config.maxSteps = 20
        #expect(throws: TrainingError.self) {
            _ = try LocalGroup.run(size: 2) { comm in
                try runTraining(config: config, comm: comm, train: datasets.train, test: datasets.test)
            }
        }
    }

    /// A finite loss with a gradient too large for Float (its squared norm overflows) stops the run naming the
    /// gradient norm, not the loss: the encoder's weights are scaled until the squared gradient overflows while the
    /// CE of the huge logits stays finite.
    @Test func finiteLossWithInfiniteGradientNormIsNamed() throws {
        var config = smallConfig(loss: "ce")
        config.maxSteps = 2
        var found: String?
        for scale in [Float(1e4), 1e5, 1e6, 1e7, 1e8] where found == nil {
            let message = try LocalGroup.run(size: 1) { comm -> String? in
                let trainer = try Trainer(config: config, comm: comm, train: datasets.train, test: datasets.test)
                let p = trainer.network.params
                for i in 0..<p.count { p.storage[i] *= scale }
                do { try trainer.runStep() } catch let e as TrainingError { return e.message }
                return nil
            }[0]
            if let message, message.contains("non-finite gradient norm") { found = message }
        }
        let message = try #require(found, "no scale gave a finite loss with an infinite gradient norm")
        #expect(message.contains("at step 1 (loss ") && !message.contains("loss inf") && !message.contains("loss nan")
                && message.contains("gradient norm inf"), "\(message)")
    }

    @Test func batchSmallerThanRanksIsRejected() {
        var config = smallConfig()
        config.batchSize = 2
        #expect(throws: DataError.self) {
            _ = try LocalGroup.run(size: 3) { comm in
                try Trainer(config: config, comm: comm, train: datasets.train, test: datasets.test)
            }
        }
    }
}

@Suite struct InitWeightsTests {
    /// `--init` of a finished run's checkpoint starts from its parameters and BatchNorm statistics; `--init-head no`
    /// keeps the fresh head; a missing or foreign file stops the run with the path in the message.
    @Test func initFromCheckpointAndErrors() throws {
        var config = smallConfig(model: "resnet20")
        config.maxSteps = 2
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-init-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        config.out = out
        _ = try LocalGroup.run(size: 2) { comm in
            try runTraining(config: config, comm: comm, train: datasets.train, test: datasets.test)
        }
        let saved = try SafeTensors.read(path: checkpointPath(directory: out))
        var fresh = smallConfig(model: "resnet20")
        fresh.seed = 9
        fresh.initWeights = checkpointPath(directory: out)
        let trainer = try LocalGroup.run(size: 1) { comm in
            try Trainer(config: fresh, comm: comm, train: datasets.train, test: datasets.test)
        }[0]
        #expect(trainer.initReport?.naming == .checkpoint)
        for entry in trainer.network.registry.parameters {
            #expect(Array(trainer.network.params.view(entry.slice)) == saved["param/" + entry.name]!.values(as: Float.self))
        }
        for entry in trainer.network.registry.buffers {
            #expect(Array(trainer.network.buffers.view(entry.slice)) == saved["buffer/" + entry.name]!.values(as: Float.self))
        }
        fresh.initHead = false
        let headless = try LocalGroup.run(size: 1) { comm in
            try Trainer(config: fresh, comm: comm, train: datasets.train, test: datasets.test)
        }[0]
        let head = headless.network.registry.parameter(named: "head.weight")!.slice
        #expect(Array(headless.network.params.view(head)) != saved["param/head.weight"]!.values(as: Float.self))

        fresh.initWeights = out + "/no-such.safetensors"
        do {
            _ = try LocalGroup.run(size: 2) { comm in
                try Trainer(config: fresh, comm: comm, train: datasets.train, test: datasets.test)
            }
            Issue.record("a missing --init file was accepted")
        } catch let e as TrainingError {
            #expect(e.message.contains("--init") && e.message.contains("no-such.safetensors"), "\(e.message)")
        }
        var mlp = smallConfig(model: "mlp")
        mlp.initWeights = checkpointPath(directory: out)
        do {
            _ = try LocalGroup.run(size: 1) { comm in
                try Trainer(config: mlp, comm: comm, train: datasets.train, test: datasets.test)
            }
            Issue.record("resnet20 weights were accepted by an mlp")
        } catch let e as TrainingError {
            #expect(e.message.contains("missing") && e.message.contains("unexpected"), "\(e.message)")
        }
    }
}
