import Collective
import Data
import Foundation
import Loss
import Model
import Testing
@testable import Train

/// `dtrain bench`'s counts and memory report on a small synthetic problem (in-process ranks).
@Suite struct BenchmarkTests {
    static func config(model: String) -> TrainConfig {
        TrainConfig.synthetic(model: model, batchSize: 8, trainLimit: 64, testLimit: 16)
    }

    @Test(arguments: [1, 2])
    func countsAndArenas(ranks: Int) throws {
        let config = Self.config(model: "mlp")
        let (train, test) = try loadDatasets(config)
        let reports = try LocalGroup.run(size: ranks) { comm in
            try runBenchmark(config: config, comm: comm, train: train, test: test, steps: 1, warmup: 0)
        }
        let r = reports[0]
        let net = Network(config: NetworkConfig(kind: .mlp, inputChannels: train.channels, height: train.height,
                                                width: train.width, classes: max(train.classes, test.classes)),
                          maxBatch: 1, seed: 0)
        let views = 2 * config.batchSize
        #expect(r.trainFlopsPerView == net.trainingFlopsPerSample)
        // One rank: the symmetric form (4·N²·D); two: each rank's anchors against every row (6·(N/2)·N·D each).
        #expect(r.lossFlopsPerStep == Double((ranks == 1 ? 4 : 6) * views * views * 128))
        #expect(r.trainFlopsPerImage == (Double(views * net.trainingFlopsPerSample) + r.lossFlopsPerStep)
                / Double(config.batchSize))
        // The ranks' flops add up to the whole step's.
        let summed = r.perRank.reduce(0) { $0 + $1.flopsPerStep }
        #expect(abs(summed - r.trainFlopsPerImage * Double(config.batchSize)) <= 1e-6 * summed)
        for rank in r.perRank {
            let names = rank.arenas.map(\.name)
            for name in ["parameters", "gradients", "encoder activations", "loss similarity block",
                         "step gathered embeddings", "optimiser (SGD momentum)"] {
                #expect(names.contains(name), "rank \(rank.rank) reports \(name)")
            }
            #expect(rank.arenas.first { $0.name == "parameters" }?.bytes == 4 * net.params.count)
            #if os(Linux)
            // The kernel updates its counters in batches (64 pages per thread), and ProcessMemoryTests may reset the
            // peak of this shared test process in between: a few MiB of slack.
            #expect((rank.peakResidentBytes ?? 0) >= (rank.currentResidentBytes ?? .max) - (8 << 20))
            #expect((rank.currentResidentBytes ?? 0) > 0)
            #endif
        }
        let json = try JSONEncoder().encode(r)
        let back = try JSONDecoder().decode(BenchmarkReport.self, from: json)
        #expect(back.perRank.map(\.arenas) == r.perRank.map(\.arenas))
        #expect(r.table().contains("sum of arenas"))
    }
}
