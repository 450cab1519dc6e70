// `dtrain bench --chunk-size K`: the memory promise of gradient caching, measured. The same process first times an
// unchunked step at K images per rank (global batch K × ranks) and then the chunked step at the requested global
// batch, resetting the kernel's peak resident size (VmHWM) before each, so the two peaks are comparable: what the
// large batch costs over the batch that one chunk is.
import Collective
import Data
import FileIO
import Foundation

/// Both phases of a chunked benchmark, with the peak resident memory of each (largest over the ranks).
public struct ChunkMemoryReport: Codable, Sendable {
    /// Images per rank per chunk.
    public var chunkSize: Int
    /// The unchunked reference: global batch chunkSize × ranks.
    public var reference: BenchmarkReport
    /// The chunked run at the requested global batch.
    public var chunked: BenchmarkReport
    /// Peak resident bytes of the reference and the chunked phase, the largest over the ranks.
    public var referencePeakBytes: Int
    public var chunkedPeakBytes: Int
    /// chunkedPeakBytes / referencePeakBytes (the largest per-rank ratio).
    public var peakRatio: Double

    /// The lines rank 0 prints after the two tables.
    public func table() -> String {
        func mb(_ b: Int) -> String { String(format: "%.0f MB", Double(b) / 1_048_576) }
        return "peak resident memory per rank (largest over ranks): unchunked global batch \(reference.globalBatch) "
            + "\(mb(referencePeakBytes)); chunked (--chunk-size \(chunkSize)) global batch \(chunked.globalBatch) "
            + "\(mb(chunkedPeakBytes)); ratio " + String(format: "%.2f", peakRatio) + "\n"
            + String(format: "throughput: %.0f images/s unchunked at batch %d, %.0f images/s chunked at batch %d\n",
                     reference.imagesPerS, reference.globalBatch, chunked.imagesPerS, chunked.globalBatch)
    }
}

/// Runs the two phases described above; `config.chunkSize` must be set. Throws when the kernel does not let the
/// peak be reset (the comparison would be meaningless).
public func runChunkMemoryBenchmark<C: Communicator>(config: TrainConfig, comm: C, train: Dataset, test: Dataset,
                                                     steps: Int, warmup: Int) throws -> ChunkMemoryReport {
    guard let chunk = config.chunkSize else { preconditionFailure("runChunkMemoryBenchmark needs config.chunkSize") }
    var reference = config
    reference.chunkSize = nil
    reference.batchSize = chunk * comm.size
    func peak(of run: () throws -> BenchmarkReport) throws -> (BenchmarkReport, Int) {
        guard ProcessMemory.resetPeak() else {
            throw TrainingError("bench --chunk-size: cannot reset the peak resident size (/proc/self/clear_refs)")
        }
        let report = try run()
        guard let bytes = ProcessMemory.peakResidentBytes() else {
            throw TrainingError("bench --chunk-size: cannot read the peak resident size (/proc/self/status VmHWM)")
        }
        return (report, bytes)
    }
    // The reference first: memory it leaves behind can only raise the chunked peak, never hide it.
    let (a, peakA) = try peak { try runBenchmark(config: reference, comm: comm, train: train, test: test, steps: steps,
                                                 warmup: warmup) }
    let (b, peakB) = try peak { try runBenchmark(config: config, comm: comm, train: train, test: test, steps: steps,
                                                 warmup: warmup) }
    let ratio = try comm.max(Double(peakB) / Double(peakA))
    return ChunkMemoryReport(chunkSize: chunk, reference: a, chunked: b,
                             referencePeakBytes: Int(try comm.max(Double(peakA))),
                             chunkedPeakBytes: Int(try comm.max(Double(peakB))), peakRatio: ratio)
}
