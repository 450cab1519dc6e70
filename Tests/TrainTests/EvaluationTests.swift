import Collective
import Data
import Foundation
import Testing
@testable import Train

@Suite struct TrainerEvaluationTests {
    @Test(arguments: [1, 2, 3])
    func trainerEvaluationsAgreeAcrossRankCounts(ranks: Int) throws {
        var config = TrainConfig.synthetic(loss: "ce", batchSize: 30, trainLimit: 300, testLimit: 120)
        config.epochs = 1
        config.eval = [.head, .knn, .linearProbe]; config.knnK = 5; config.probeEpochs = 3
        let train = try loadDataset(name: "synthetic", directory: "", split: .train, limit: 300)
        let test = try loadDataset(name: "synthetic", directory: "", split: .test, limit: 120)
        let results = try LocalGroup.run(size: ranks) { comm in
            try runTraining(config: config, comm: comm, train: train, test: test)
        }
        let reference = try LocalGroup.run(size: 1) { comm in
            try runTraining(config: config, comm: comm, train: train, test: test)
        }[0]
        for r in results {
            #expect(r.eval == "head" && r.testAccuracy == r.accuracies["head"])
            #expect(Set(r.accuracies.keys) == ["head", "knn", "linear-probe"])
            for (mode, value) in r.accuracies {
                // Reductions across ranks are the only difference: at most a couple of flipped test images.
                #expect(abs(value - reference.accuracies[mode]!) <= 2.0 / 120, "\(mode): \(value) vs \(reference)")
            }
        }
        // The synthetic classes are learnable: after one epoch all three evaluations beat chance (10%) clearly.
        #expect(reference.accuracies.values.allSatisfy { $0 > 0.3 }, "\(reference.accuracies)")
    }

    /// Evaluations report their progress (the watchdog's sign of life): once per embedding chunk of 500 images,
    /// per k-NN block and per probe objective evaluation.
    @Test func evaluationsReportProgress() throws {
        var config = TrainConfig.synthetic(loss: "ce", batchSize: 30, trainLimit: 300, testLimit: 1100)
        config.maxSteps = 1
        let (train, test) = try loadDatasets(config)
        let counts = try LocalGroup.run(size: 1) { comm -> [Int] in
            let trainer = try Trainer(config: config, comm: comm, train: train, test: test)
            var calls = 0
            trainer.evaluationProgress = { calls += 1 }
            _ = try trainer.evaluate([.head])
            let head = calls
            _ = try trainer.evaluate([.knn])
            let knn = calls - head
            _ = try trainer.evaluate([.linearProbe])
            return [head, knn, calls - head - knn]
        }[0]
        // 1100 test images: chunks of 500, 500, 100. k-NN: the 300 training images (one chunk), the test chunks,
        // one block of queries. The probe: the same chunks, then at least two objective evaluations.
        #expect(counts[0] == 3 && counts[1] == 1 + 3 + 1 && counts[2] >= 1 + 3 + 2, "\(counts)")
    }
}
