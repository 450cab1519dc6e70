// `dtrain bench`: the training step's throughput, split into phases, with the machine's sgemm rate beside it so
// every figure comes with its ceiling. Works on any communicator: per-rank figures are gathered to every rank.
import Collective
import Data
import FileIO
import Foundation
import Loss
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
    /// Achieved GFLOP/s of this rank: `flopsPerStep` per measured step time.
    public var achievedGFLOPs: Double
    /// FLOPs this rank performs per step: the model's forward and backward on its views as performed
    /// (`Network.trainingFlopsPerSample`) plus the loss gemms of its anchors (`LossComputer.performedFlops`).
    public var flopsPerStep: Double
    /// sgemm GFLOP/s measured in this process, just before the timed steps.
    public var sgemmGFLOPs: Double
    /// Peak resident set size of this rank's process after the timed steps (`ProcessMemory`; nil if unknown).
    public var peakResidentBytes: Int?
    /// Resident set size after the timed steps (nil if unknown).
    public var currentResidentBytes: Int?
    /// Bytes of every buffer the trainer holds, by name (`Trainer.arenaBytes`).
    public var arenas: [ArenaBytes]
}

/// Bytes of one named buffer (or group of buffers).
public struct ArenaBytes: Codable, Sendable, Equatable {
    public var name: String
    public var bytes: Int
    public init(name: String, bytes: Int) { self.name = name; self.bytes = bytes }
}

/// What `dtrain bench` reports.
public struct BenchmarkReport: Codable, Sendable {
    public var model: String
    public var loss: String
    public var ranks: Int
    public var globalBatch: Int
    public var steps: Int
    public var overlap: Bool
    /// Forward FLOPs of one view through encoder and head (2 × multiply-adds of the products).
    public var forwardFlopsPerView: Int
    /// FLOPs of one view's forward and backward as performed (3 × forward minus the first layer's skipped input
    /// gradient): see docs/PERFORMANCE.md for the counting rule.
    public var trainFlopsPerView: Int
    /// FLOPs of the loss gemms per step, all ranks.
    public var lossFlopsPerStep: Double
    /// Training FLOPs per image as performed: two views' `trainFlopsPerView` plus the loss gemms' share.
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

    // Gradient caching runs every view forward twice, except those of the first chunk.
    let rerun = trainer.chunkImages.map { trainer.localRows - 2 * $0 } ?? 0
    let viewFlops = trainer.network.trainingFlopsPerSample
    let myLossFlops = LossComputer<Float>.performedFlops(
        anchors: trainer.localRows, rows: trainer.globalRows, embedDim: trainer.embedDim, kind: trainer.kind,
        lambda: config.lambda)
    let myFlops = Double(trainer.localRows * viewFlops + rerun * trainer.network.flopsPerSample) + myLossFlops
    let myImages = Double(trainer.localRows / 2)
    let lossFlops = try comm.sum(myLossFlops)
    let flopsPerImage = try comm.sum(myFlops) / Double(config.batchSize)
    var phases = [String: Double]()
    for (name, seconds) in trainer.times.phases { phases[name] = 1000 * seconds / Double(steps) }
    let mine = RankBenchmark(rank: comm.rank, host: comm.hostName, imagesPerS: myImages * Double(steps) / elapsed,
                             phaseMs: phases, stepMs: 1000 * elapsed / Double(steps),
                             achievedGFLOPs: myFlops * Double(steps) / elapsed / 1e9, flopsPerStep: myFlops,
                             sgemmGFLOPs: sgemm, peakResidentBytes: ProcessMemory.peakResidentBytes(),
                             currentResidentBytes: ProcessMemory.currentResidentBytes(),
                             arenas: trainer.arenaBytes.map { ArenaBytes(name: $0.name, bytes: $0.bytes) })
    var perRank = [RankBenchmark]()
    for r in 0..<comm.size {
        var bytes = r == comm.rank ? Array(try JSONEncoder().encode(mine)) : []
        try comm.broadcast(bytes: &bytes, root: r)
        perRank.append(try JSONDecoder().decode(RankBenchmark.self, from: Foundation.Data(bytes)))
    }
    let images = Double(config.batchSize * steps) / slowest
    return BenchmarkReport(model: config.model, loss: config.loss, ranks: comm.size, globalBatch: config.batchSize,
                           steps: steps, overlap: config.overlap, forwardFlopsPerView: trainer.network.flopsPerSample,
                           trainFlopsPerView: viewFlops, lossFlopsPerStep: lossFlops,
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
        out += String(format: "FLOPs per image (train, 2 views, as performed): %.2f MFLOP = 2 × %.2f (model "
                      + "forward+backward; forward %.2f) + %.2f (loss gemms)\n\n", trainFlopsPerImage / 1e6,
                      Double(trainFlopsPerView) / 1e6, Double(forwardFlopsPerView) / 1e6,
                      lossFlopsPerStep / Double(globalBatch) / 1e6)
        let names = PhaseTimes().phases.map(\.0)
        out += pad("rank", 6) + names.map { pad($0, 11) }.joined() + pad("step ms", 9) + pad("img/s", 9)
            + pad("GFLOP/s", 9) + pad("sgemm GFLOP/s", 15) + "peak RSS MiB\n"
        for r in perRank {
            out += pad("\(r.rank)", 6)
            out += names.map { pad(String(format: "%.2f", r.phaseMs[$0] ?? 0), 11) }.joined()
            out += pad(String(format: "%.1f", r.stepMs), 9) + pad(String(format: "%.0f", r.imagesPerS), 9)
            out += pad(String(format: "%.1f", r.achievedGFLOPs), 9) + pad(String(format: "%.1f", r.sgemmGFLOPs), 15)
            out += (r.peakResidentBytes.map { String(format: "%.1f", mebibytes($0)) } ?? "n/a") + "\n"
        }
        out += String(format: "\ntotal: %.0f images/s (%.0f per rank), %.1f GFLOP/s achieved of %.1f sgemm GFLOP/s "
                      + "measured (%.0f%%)\n", imagesPerS, imagesPerSPerRank, achievedGFLOPs, sgemmGFLOPs,
                      100 * achievedGFLOPs / sgemmGFLOPs)
        out += memoryTable()
        return out
    }

    /// Rank 0's arenas (and any rank whose differ), with their total and every rank's resident size.
    func memoryTable() -> String {
        guard let first = perRank.first else { return "" }
        var out = "\nmemory per rank (MiB):\n"
        let distinct = perRank.filter { $0.rank == first.rank || $0.arenas != first.arenas }
        out += pad("arena", 40) + distinct.map { pad("rank \($0.rank)", 10) }.joined() + "\n"
        for (i, a) in first.arenas.enumerated() {
            out += pad(a.name, 40)
            out += distinct.map { r in
                pad(i < r.arenas.count ? String(format: "%.2f", mebibytes(r.arenas[i].bytes)) : "-", 10)
            }.joined() + "\n"
        }
        out += pad("sum of arenas", 40)
            + distinct.map { pad(String(format: "%.2f", mebibytes($0.arenas.reduce(0) { $0 + $1.bytes })), 10) }
                .joined() + "\n"
        for r in perRank {
            out += String(format: "rank %d resident: peak %@ MiB, after the steps %@ MiB\n", r.rank,
                          r.peakResidentBytes.map { String(format: "%.1f", mebibytes($0)) } ?? "n/a",
                          r.currentResidentBytes.map { String(format: "%.1f", mebibytes($0)) } ?? "n/a")
        }
        return out
    }
}

/// Bytes in MiB.
func mebibytes(_ bytes: Int) -> Double { Double(bytes) / 1_048_576 }
