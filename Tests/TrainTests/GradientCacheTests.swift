import Collective
import Data
import Foundation
import Model
import Testing
@testable import Train

// Gradient caching (`--chunk-size`): the chunked step computes the unchunked step's loss and gradient, on every
// encoder without batch statistics, on one rank and on two with uneven shards; BatchNorm is refused.

/// 13 images per step: one rank holds 13 (chunks 3, 3, 3, 3, 1), two ranks 7 and 6 (3, 3, 1 and 3, 3).
private func cacheConfig(model: String, chunk: Int?) -> TrainConfig {
    var c = TrainConfig.synthetic(model: model, batchSize: 13, trainLimit: 130, testLimit: 20)
    c.maxSteps = 2
    c.warmupEpochs = 0
    c.lr = model.hasPrefix("vit") ? 1e-3 : 0.1
    c.optimizer = model.hasPrefix("vit") ? "adamw" : "sgd"
    c.chunkSize = chunk
    if model == "resnet20" {
        c.norm = .group
        c.normGroups = 4
    }
    return c
}

private let cacheData: (train: Dataset, test: Dataset) = {
    try! loadDatasets(cacheConfig(model: "mlp", chunk: nil))
}()

/// Two steps on `ranks` in-process ranks: each step's (loss, ce, contrastive) and the first step's all-reduced gradient.
private func twoSteps(_ config: TrainConfig, ranks: Int) throws -> (values: [[Double]], grads: [Float], chunked: Bool) {
    try LocalGroup.run(size: ranks) { comm in
        let trainer = try Trainer(config: config, comm: comm, train: cacheData.train, test: cacheData.test)
        var values = [[Double]](), grads = [Float]()
        for s in 0..<2 {
            let r = try trainer.runStep()
            values.append([r.loss, r.ce, r.contrastive])
            if s == 0 { grads = trainer.network.grads.toArray() }
        }
        return (values, grads, trainer.chunkImages != nil)
    }[0]
}

@Suite struct GradientCacheTests {
    /// Chunks of 3 images give the whole batch's gradient: element-wise within 1e-5 of the largest gradient, the
    /// losses of two steps within 1e-5 relative.
    @Test(arguments: ["mlp", "cnn", "resnet20", "vit-tiny"], [1, 2])
    func chunkedStepMatchesTheWholeBatch(model: String, ranks: Int) throws {
        let whole = try twoSteps(cacheConfig(model: model, chunk: nil), ranks: ranks)
        let chunked = try twoSteps(cacheConfig(model: model, chunk: 3), ranks: ranks)
        #expect(!whole.chunked && chunked.chunked)
        for (a, b) in zip(whole.values.joined(), chunked.values.joined()) {
            #expect(abs(a - b) <= 1e-5 * max(abs(a), 1e-6), "\(model), \(ranks) rank(s): loss \(a) vs \(b)")
        }
        let scale = whole.grads.map { abs($0) }.max()!
        var worst: Float = 0
        for (a, b) in zip(whole.grads, chunked.grads) { worst = max(worst, abs(a - b)) }
        #expect(scale > 0 && worst <= 1e-5 * scale, "\(model), \(ranks) rank(s): gradient differs by \(worst) (max \(scale))")
    }

    /// BatchNorm's statistics depend on the chunk: refused with a message naming --norm group, unless the chunk holds
    /// every rank's whole share (then the step is the ordinary one).
    @Test func batchNormIsRefusedUnlessTheChunkIsTheWholeShare() throws {
        var config = cacheConfig(model: "resnet20", chunk: 3)
        config.norm = .batch
        do {
            _ = try twoSteps(config, ranks: 2)
            Issue.record("BatchNorm with --chunk-size 3 was accepted")
        } catch let e as TrainingError {
            #expect(e.isUsage && e.message.contains("--norm group") && e.message.contains("at least 7"), "\(e.message)")
        }
        config.chunkSize = 7
        let whole = try twoSteps(config, ranks: 2)
        #expect(!whole.chunked && whole.values.allSatisfy { $0.allSatisfy(\.isFinite) })
    }
}
