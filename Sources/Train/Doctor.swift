// `dtrain doctor`: the first command on a new machine or cluster. Every rank reports its host, BLAS threads and
// sgemm rate; every collective is checked on random data against its closed-form answer (uneven counts included);
// all-reduce and all-gather bandwidth are measured. Works on any `Communicator`, so tests run it in-process.
import Collective
import Foundation
import Tensor

/// What one rank measured about itself.
public struct RankReport: Codable, Sendable, Equatable {
    public var rank: Int
    public var host: String
    public var blasThreads: Int
    public var sgemmGFLOPs: Double
}

/// One collective checked against its closed form.
public struct CollectiveCheck: Codable, Sendable {
    public var name: String
    public var ok: Bool
    /// Largest |got − expected| / max(1, |expected|) on any rank.
    public var maxRelativeError: Double
}

/// One bandwidth measurement.
public struct BandwidthSample: Codable, Sendable {
    public var collective: String
    public var bytes: Int
    public var seconds: Double
    /// Algorithm bandwidth: bytes / seconds.
    public var algorithmGBps: Double
    /// Bus bandwidth as nccl-tests defines it (2(n−1)/n for all-reduce, (n−1)/n for all-gather).
    public var busGBps: Double
}

/// Everything `doctor` found; `ok` is true only if every check passed.
public struct DoctorReport: Codable, Sendable {
    public var ok: Bool
    public var ranks: Int
    public var blasConfig: String
    public var perRank: [RankReport]
    public var checks: [CollectiveCheck]
    public var bandwidth: [BandwidthSample]
    /// How the processes were started (mpirun, srun/pmix, singleton), when the caller told.
    public var launcher: Launcher?
}

/// Options of a doctor run.
public struct DoctorOptions: Sendable {
    public var seed: UInt64 = 0
    public var sgemmSize = 512
    public var bandwidthBytes: [Int] = [4 << 10, 256 << 10, 4 << 20, 16 << 20]
    public var bandwidthIterations = 10
    /// A rank that throws after the first checks (tests that a failing rank takes the job down).
    public var failOnRank: Int? = nil
    /// How the processes were started, reported as given (see `Launcher.detect(environment:)`).
    public var launcher: Launcher? = nil
    public init() {}
}

/// Thrown by the rank named in `--fail-on-rank`.
public struct InjectedFailure: Error, CustomStringConvertible {
    public let rank: Int
    public var description: String { "injected failure on rank \(rank) (--fail-on-rank)" }
}

/// Runs the doctor on every rank; every rank returns the same report.
public func runDoctor<C: Communicator>(_ comm: C, options: DoctorOptions = DoctorOptions()) throws -> DoctorReport {
    // 1. Who and how fast each rank is.
    let gflops = measureSgemmGFLOPs(size: options.sgemmSize, seed: options.seed)
    let me = RankReport(rank: comm.rank, host: comm.hostName, blasThreads: BLASThreads.current, sgemmGFLOPs: gflops)
    var mine = Array(try JSONEncoder().encode(me))
    var perRank = [RankReport]()
    for r in 0..<comm.size {
        var bytes = r == comm.rank ? mine : []
        try comm.broadcast(bytes: &bytes, root: r)
        perRank.append(try JSONDecoder().decode(RankReport.self, from: Foundation.Data(bytes)))
    }
    mine.removeAll()

    // 2. Every collective against its closed form.
    var checks = [CollectiveCheck]()
    let uneven = ShardLayout(counts: (0..<comm.size).map { r in r == 1 ? 0 : 3 * r + 1 + (r % 2) * 1000 })
    let equal = ShardLayout.even(total: 4099 * comm.size, parts: comm.size)
    for (name, layout) in [("even", equal), ("uneven", uneven)] {
        checks.append(try checkAllGather(comm, layout: layout, Float.self, name: "allgather/float/\(name)", seed: options.seed))
        checks.append(try checkAllGather(comm, layout: layout, Double.self, name: "allgather/double/\(name)", seed: options.seed))
        checks.append(try checkReduceScatter(comm, layout: layout, Float.self, name: "reducescatter/float/\(name)", seed: options.seed))
        checks.append(try checkReduceScatter(comm, layout: layout, Double.self, name: "reducescatter/double/\(name)", seed: options.seed))
    }
    if let f = options.failOnRank, f == comm.rank { throw InjectedFailure(rank: f) }
    checks.append(try checkAllReduce(comm, count: 10_007, Float.self, blocking: true, seed: options.seed))
    checks.append(try checkAllReduce(comm, count: 10_007, Double.self, blocking: true, seed: options.seed))
    checks.append(try checkAllReduce(comm, count: 10_007, Float.self, blocking: false, seed: options.seed))
    checks.append(try checkBroadcast(comm, count: 1_001, seed: options.seed))
    try comm.barrier()
    checks.append(CollectiveCheck(name: "barrier", ok: true, maxRelativeError: 0))
    if let announced = options.launcher?.announcedSize {
        // srun without PMIx (or a foreign PMIx) starts N singletons that each see a world of 1, without complaint.
        checks.append(CollectiveCheck(name: "world size = launcher's (\(announced))", ok: announced == comm.size,
                                      maxRelativeError: announced == comm.size ? 0 : 1))
    }

    // Agree on the verdict: a check passes only if it passed on every rank.
    for i in checks.indices {
        checks[i].maxRelativeError = try comm.max(checks[i].maxRelativeError)
        checks[i].ok = try comm.sum(checks[i].ok ? 0 : 1) == 0
    }

    // 3. Bandwidth.
    var bandwidth = [BandwidthSample]()
    for bytes in options.bandwidthBytes {
        bandwidth.append(try measureBandwidth(comm, bytes: bytes, iterations: options.bandwidthIterations, allReduce: true))
        bandwidth.append(try measureBandwidth(comm, bytes: bytes, iterations: options.bandwidthIterations, allReduce: false))
    }
    return DoctorReport(ok: checks.allSatisfy(\.ok), ranks: comm.size, blasConfig: BLASThreads.configuration,
                        perRank: perRank, checks: checks, bandwidth: bandwidth, launcher: options.launcher)
}

// MARK: - Closed-form checks

/// The value rank `r` contributes at element `i`: any rank can compute any other rank's data.
private func probeValue<T: BinaryFloatingPoint>(_ seed: UInt64, rank: Int, index: Int, salt: UInt32) -> T {
    T(CounterRNG(seed: seed).uniform(stream: .test, index: UInt64(index), substream: UInt32(rank) &* 977 &+ salt)) - 0.5
}

private func relativeError<T: BinaryFloatingPoint>(_ got: T, _ want: T) -> Double {
    Double(abs(got - want)) / max(1, Double(abs(want)))
}

private func verdict(_ name: String, _ err: Double, _ tol: Double) -> CollectiveCheck {
    CollectiveCheck(name: name, ok: err <= tol && err.isFinite, maxRelativeError: err)
}

private func tolerance<T: BinaryFloatingPoint>(_: T.Type, ranks: Int) -> Double {
    (T.self == Float.self ? 1e-6 : 1e-14) * Double(max(1, ranks))
}

private func checkAllGather<T: BinaryFloatingPoint & CollectiveScalar, C: Communicator>(
    _ comm: C, layout: ShardLayout, _: T.Type, name: String, seed: UInt64) throws -> CollectiveCheck {
    let range = layout.range(of: comm.rank)
    let send = range.map { i -> T in probeValue(seed, rank: comm.rank, index: i, salt: 1) }
    var recv = [T](repeating: .nan, count: layout.total)
    try send.withUnsafeBufferPointer { s in
        try recv.withUnsafeMutableBufferPointer { try comm.allGather(send: s, into: $0, layout: layout) }
    }
    var err = 0.0
    for r in 0..<layout.parts {
        for i in layout.range(of: r) { err = max(err, relativeError(recv[i], probeValue(seed, rank: r, index: i, salt: 1) as T)) }
    }
    return verdict(name, err.isNaN ? .infinity : err, 0)
}

private func checkReduceScatter<T: BinaryFloatingPoint & CollectiveScalar, C: Communicator>(
    _ comm: C, layout: ShardLayout, _: T.Type, name: String, seed: UInt64) throws -> CollectiveCheck {
    let send = (0..<layout.total).map { i -> T in probeValue(seed, rank: comm.rank, index: i, salt: 2) }
    var recv = [T](repeating: .nan, count: layout.counts[comm.rank])
    try send.withUnsafeBufferPointer { s in
        try recv.withUnsafeMutableBufferPointer { try comm.reduceScatterSum(send: s, into: $0, layout: layout) }
    }
    var err = 0.0
    for (k, i) in layout.range(of: comm.rank).enumerated() {
        var want = 0.0
        for r in 0..<comm.size { want += Double(probeValue(seed, rank: r, index: i, salt: 2) as T) }
        err = max(err, relativeError(Double(recv[k]), want))
    }
    return verdict(name, err.isNaN ? .infinity : err, tolerance(T.self, ranks: comm.size))
}

private func checkAllReduce<T: BinaryFloatingPoint & CollectiveScalar, C: Communicator>(
    _ comm: C, count: Int, _: T.Type, blocking: Bool, seed: UInt64) throws -> CollectiveCheck {
    var buf = (0..<count).map { i -> T in probeValue(seed, rank: comm.rank, index: i, salt: 3) }
    try buf.withUnsafeMutableBufferPointer { b in
        if blocking { try comm.allReduceSum(b) } else {
            var request = try comm.startAllReduceSum(b)
            try comm.wait(&request)
        }
    }
    var err = 0.0
    for i in 0..<count {
        var want = 0.0
        for r in 0..<comm.size { want += Double(probeValue(seed, rank: r, index: i, salt: 3) as T) }
        err = max(err, relativeError(Double(buf[i]), want))
    }
    let name = "allreduce/\(T.self == Float.self ? "float" : "double")\(blocking ? "" : "/nonblocking")"
    return verdict(name, err.isNaN ? .infinity : err, tolerance(T.self, ranks: comm.size))
}

private func checkBroadcast<C: Communicator>(_ comm: C, count: Int, seed: UInt64) throws -> CollectiveCheck {
    let root = comm.size - 1
    var buf = (0..<count).map { i -> Float in comm.rank == root ? probeValue(seed, rank: root, index: i, salt: 4) : .nan }
    try buf.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: root) }
    var err = 0.0
    for i in 0..<count { err = max(err, relativeError(buf[i], probeValue(seed, rank: root, index: i, salt: 4) as Float)) }
    return verdict("broadcast/float", err.isNaN ? .infinity : err, 0)
}

// MARK: - Bandwidth

private func measureBandwidth<C: Communicator>(_ comm: C, bytes: Int, iterations: Int, allReduce: Bool) throws
    -> BandwidthSample {
    let n = comm.size
    let floats = max(n, bytes / 4) / n * n
    let total = Arena(count: floats)
    let layout = ShardLayout.even(total: floats, parts: n)
    let local = Arena(count: layout.counts[comm.rank])
    func once() throws {
        if allReduce {
            try comm.allReduceSum(total.storage)
        } else {
            try comm.allGather(send: UnsafeBufferPointer(local.storage), into: total.storage, layout: layout)
        }
    }
    try once()
    try comm.barrier()
    let t0 = monotonicSeconds()
    for _ in 0..<iterations { try once() }
    let local_dt = (monotonicSeconds() - t0) / Double(iterations)
    let dt = try comm.max(local_dt)
    let size = floats * 4
    let factor = allReduce ? 2 * Double(n - 1) / Double(n) : Double(n - 1) / Double(n)
    return BandwidthSample(collective: allReduce ? "allreduce" : "allgather", bytes: size, seconds: dt,
                           algorithmGBps: Double(size) / dt / 1e9, busGBps: Double(size) * factor / dt / 1e9)
}

// MARK: - Rendering

extension DoctorReport {
    /// The human-readable table rank 0 prints.
    public func table() -> String {
        var out = "dtrain doctor: \(ranks) rank(s); \(blasConfig)\n"
        if let launcher { out += "launched by: \(launcher.summary)\n" }
        out += "\n"
        out += pad("rank", 6) + pad("host", 28) + pad("blas threads", 14) + "sgemm GFLOP/s\n"
        for r in perRank {
            out += pad("\(r.rank)", 6) + pad(r.host, 28) + pad("\(r.blasThreads)", 14) + String(format: "%.1f", r.sgemmGFLOPs) + "\n"
        }
        out += "\n" + pad("check", 36) + pad("result", 8) + "max rel. error\n"
        for c in checks { out += pad(c.name, 36) + pad(c.ok ? "ok" : "FAIL", 8) + String(format: "%.2e", c.maxRelativeError) + "\n" }
        out += "\n" + pad("bandwidth", 12) + pad("bytes", 12) + pad("time (us)", 12) + pad("algbw GB/s", 12) + "busbw GB/s\n"
        for b in bandwidth {
            out += pad(b.collective, 12) + pad("\(b.bytes)", 12) + pad(String(format: "%.1f", b.seconds * 1e6), 12)
                + pad(String(format: "%.2f", b.algorithmGBps), 12) + String(format: "%.2f", b.busGBps) + "\n"
        }
        out += "\n" + (ok ? "OK: every check passed.\n" : "FAILED: see the rows marked FAIL.\n")
        return out
    }

    /// One JSON object (sorted keys).
    public func json() throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try e.encode(self), as: UTF8.self)
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count)
}
