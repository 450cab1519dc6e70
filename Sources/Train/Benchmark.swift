// `dtrain bench`: the training step's throughput, split into phases, with the machine's sgemm rate beside it so
// every figure comes with its ceiling. Works on any communicator: per-rank figures are gathered to every rank.
import Collective
import Data
import Foundation
import Tensor

/// One rank's measurement.
public struct RankBenchmark: Codable, Sendable {
    public var rank: Int
    public var host: String
    /// Images of this rank's share per second.
    public var imagesPerS: Double
    /// Milliseconds per step in each phase, in step order.
    public var phaseMs: [String: Double]
    public var stepMs: Double
    /// Achieved GFLOP/s of this rank (model forward+backward on its views, plus its share of the loss gemms).
    public var achievedGFLOPs: Double
    /// sgemm GFLOP/s measured in this process, just before the timed steps.
    public var sgemmGFLOPs: Double
}

/// What `dtrain bench` reports.
public struct BenchmarkReport: Codable, Sendable {
    public var model: String
    public var loss: String
    public var ranks: Int
    public var globalBatch: Int
    public var steps: Int
    public var overlap: Bool
    /// Forward FLOPs of one view through encoder and head.
    public var forwardFlopsPerView: Int
    /// Training FLOPs per image: two views × (forward + backward ≈ 3 × forward) plus the loss gemms' share.
    public var trainFlopsPerImage: Double
    /// Global images per second (slowest rank's step time).
    public var imagesPerS: Double
    public var imagesPerSPerRank: Double
    public var achievedGFLOPs: Double
    public var sgemmGFLOPs: Double
    public var perRank: [RankBenchmark]
}

/// Times `steps` training steps after `warmup` untimed ones.
public func runBenchmark<C: Communicator>(config: TrainConfig, comm: C, train: Dataset, test: Dataset, steps: Int,
                                          warmup: Int) throws -> BenchmarkReport {
    var config = config
    config.maxSteps = nil
    config.steps = nil
    config.epochs = max(config.epochs, (steps + warmup) / max(1, train.count / config.batchSize) + 1)
    let trainer = try Trainer(config: config, comm: comm, train: train, test: test)
    for _ in 0..<warmup { try trainer.runStep() }
    let sgemm = measureSgemmGFLOPs(size: 512)
    try comm.barrier()
    trainer.times = PhaseTimes()
    let t0 = monotonicSeconds()
    for _ in 0..<steps { try trainer.runStep() }
    let elapsed = monotonicSeconds() - t0
    let slowest = try comm.max(elapsed)

    let views = 2 * config.batchSize
    let modelFlops = 3 * Double(trainer.network.flopsPerSample)            // per view, forward + backward
    let lossFlops = trainer.contrastiveWeight == 0 ? 0 : 3 * 2 * Double(views) * Double(views) * Double(trainer.embedDim)
    let flopsPerImage = 2 * modelFlops + lossFlops / Double(config.batchSize)
    let myImages = Double(trainer.localRows / 2)
    let myFlops = Double(trainer.localRows) * modelFlops + lossFlops * Double(trainer.localRows) / Double(views)
    var phases = [String: Double]()
    for (name, seconds) in trainer.times.phases { phases[name] = 1000 * seconds / Double(steps) }
    let mine = RankBenchmark(rank: comm.rank, host: comm.hostName, imagesPerS: myImages * Double(steps) / elapsed,
                             phaseMs: phases, stepMs: 1000 * elapsed / Double(steps),
                             achievedGFLOPs: myFlops * Double(steps) / elapsed / 1e9, sgemmGFLOPs: sgemm)
    var perRank = [RankBenchmark]()
    for r in 0..<comm.size {
        var bytes = r == comm.rank ? Array(try JSONEncoder().encode(mine)) : []
        try comm.broadcast(bytes: &bytes, root: r)
        perRank.append(try JSONDecoder().decode(RankBenchmark.self, from: Foundation.Data(bytes)))
    }
    let images = Double(config.batchSize * steps) / slowest
    return BenchmarkReport(model: config.model, loss: config.loss, ranks: comm.size, globalBatch: config.batchSize,
                           steps: steps, overlap: config.overlap, forwardFlopsPerView: trainer.network.flopsPerSample,
                           trainFlopsPerImage: flopsPerImage, imagesPerS: images,
                           imagesPerSPerRank: images / Double(comm.size),
                           achievedGFLOPs: images * flopsPerImage / 1e9,
                           sgemmGFLOPs: perRank.reduce(0) { $0 + $1.sgemmGFLOPs }, perRank: perRank)
}

extension BenchmarkReport {
    /// The table rank 0 prints.
    public func table() -> String {
        var out = String(format: "dtrain bench: %@ / %@, %d rank(s), global batch %d (%d views), %d steps, overlap %@\n",
                         model, loss, ranks, globalBatch, 2 * globalBatch, steps, overlap ? "on" : "off")
        out += String(format: "FLOPs per image (train, 2 views): %.1f MFLOP\n\n", trainFlopsPerImage / 1e6)
        let names = PhaseTimes().phases.map(\.0)
        out += pad("rank", 6) + names.map { pad($0, 11) }.joined() + pad("step ms", 9) + pad("img/s", 9)
            + pad("GFLOP/s", 9) + "sgemm GFLOP/s\n"
        for r in perRank {
            out += pad("\(r.rank)", 6)
            out += names.map { pad(String(format: "%.2f", r.phaseMs[$0] ?? 0), 11) }.joined()
            out += pad(String(format: "%.1f", r.stepMs), 9) + pad(String(format: "%.0f", r.imagesPerS), 9)
            out += pad(String(format: "%.1f", r.achievedGFLOPs), 9) + String(format: "%.1f", r.sgemmGFLOPs) + "\n"
        }
        out += String(format: "\ntotal: %.0f images/s (%.0f per rank), %.1f GFLOP/s achieved of %.1f sgemm GFLOP/s "
                      + "measured (%.0f%%)\n", imagesPerS, imagesPerSPerRank, achievedGFLOPs, sgemmGFLOPs,
                      100 * achievedGFLOPs / sgemmGFLOPs)
        return out
    }
}
