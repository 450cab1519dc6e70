// N ranks as N threads of one process, implementing `Communicator` with shared memory, so `swift test` can run
// multi-rank logic (uneven shards, reduce-scatter sums, rank-count invariance) without a launcher.
#if canImport(Glibc)
import Glibc
#endif

/// Runs a closure on `size` threads, each with its own `LocalCommunicator` of one shared group.
public enum LocalGroup {
    /// Runs `body` once per rank on its own thread and returns the results in rank order. If any rank throws
    /// or aborts, the group is marked failed (peers blocked in a collective throw) and the first error is rethrown.
    public static func run<R>(size: Int, timeoutSeconds: Double = 120,
                              _ body: @escaping (LocalCommunicator) throws -> R) throws -> [R] {
        precondition(size >= 1, "LocalGroup size must be >= 1, got \(size)")
        let shared = LocalGroupState(size: size, timeoutSeconds: timeoutSeconds)
        let box = ResultBox<R>(size: size)
        var threads = [pthread_t]()
        for rank in 0..<size {
            let comm = LocalCommunicator(rank: rank, shared: shared)
            let job = ThreadJob {
                do { box.set(rank, .success(try body(comm))) } catch {
                    shared.fail()
                    box.set(rank, .failure(error))
                }
            }
            var thread = pthread_t()
            let arg = Unmanaged.passRetained(job).toOpaque()
            let rc = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<ThreadJob>.fromOpaque(raw!).takeRetainedValue()
                job.body()
                return nil
            }, arg)
            precondition(rc == 0, "pthread_create failed with \(rc)")
            threads.append(thread)
        }
        for t in threads { pthread_join(t, nil) }
        var out = [R]()
        var firstError: Error?
        for r in 0..<size {
            switch box.results[r] {
            case .success(let v)?: out.append(v)
            case .failure(let e)?:
                // Report the rank that failed, not the peers that merely saw it fail.
                if firstError == nil || (firstError is AbortedByPeer && !(e is AbortedByPeer)) { firstError = e }
            case nil:
                if firstError == nil || firstError is AbortedByPeer {
                    firstError = CollectiveError(call: "abort", code: 1, message: "rank \(r) aborted")
                }
            }
        }
        if let e = firstError { throw e }
        return out
    }
}

/// Thrown in ranks of a `LocalGroup` whose peer failed while they waited in a collective.
public struct AbortedByPeer: Error, CustomStringConvertible {
    public var description: String { "a peer rank failed; collective abandoned" }
}

final class ThreadJob {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

final class ResultBox<R>: @unchecked Sendable {
    var results: [Result<R, Error>?]
    var lock = pthread_mutex_t()
    init(size: Int) { results = .init(repeating: nil, count: size); pthread_mutex_init(&lock, nil) }
    func set(_ rank: Int, _ r: Result<R, Error>) {
        pthread_mutex_lock(&lock); results[rank] = r; pthread_mutex_unlock(&lock)
    }
}

/// Shared by the ranks of one group: pointer slots and a generation barrier that a failure breaks.
final class LocalGroupState: @unchecked Sendable {
    let size: Int
    let timeoutSeconds: Double
    var slots: [UnsafeMutableRawPointer?]
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var arrived = 0
    private var generation = 0
    private(set) var failed = false

    init(size: Int, timeoutSeconds: Double) {
        self.size = size
        self.timeoutSeconds = timeoutSeconds
        slots = .init(repeating: nil, count: size)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    func fail() {
        pthread_mutex_lock(&mutex); failed = true; pthread_cond_broadcast(&cond); pthread_mutex_unlock(&mutex)
    }

    func barrier() throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        if failed { throw AbortedByPeer() }
        let gen = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            pthread_cond_broadcast(&cond)
            return
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var deadline = timespec(tv_sec: now.tv_sec + Int(timeoutSeconds), tv_nsec: now.tv_nsec)
        while generation == gen && !failed {
            if pthread_cond_timedwait(&cond, &mutex, &deadline) == ETIMEDOUT {
                failed = true
                pthread_cond_broadcast(&cond)
                throw CollectiveError(call: "LocalGroup.barrier", code: Int(ETIMEDOUT),
                                      message: "timed out after \(timeoutSeconds) s: ranks issued different collectives")
            }
        }
        if generation == gen { throw AbortedByPeer() }
    }
}

/// One rank of a `LocalGroup`.
public final class LocalCommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public var size: Int { shared.size }
    public var hostName: String { "localhost/thread\(rank)" }
    let shared: LocalGroupState

    init(rank: Int, shared: LocalGroupState) { self.rank = rank; self.shared = shared }

    private func publish(_ p: UnsafeRawPointer?) throws {
        shared.slots[rank] = UnsafeMutableRawPointer(mutating: p)
        try shared.barrier()
    }

    public func allGather<T: CollectiveScalar>(send: UnsafeBufferPointer<T>, into recv: UnsafeMutableBufferPointer<T>,
                                               layout: ShardLayout) throws {
        layout.checkBuffers("allGather", rank: rank, ranks: size, shard: send.count, whole: recv.count)
        try publish(send.baseAddress)
        for r in 0..<size where layout.counts[r] > 0 {
            let src = shared.slots[r]!.assumingMemoryBound(to: T.self)
            (recv.baseAddress! + layout.offsets[r]).update(from: src, count: layout.counts[r])
        }
        try shared.barrier()
    }

    public func allReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws {
        try publish(buffer.baseAddress)
        let tmp = UnsafeMutableBufferPointer<T>.allocate(capacity: Swift.max(1, buffer.count))
        defer { tmp.deallocate() }
        sumSlots(into: tmp.baseAddress!, start: 0, count: buffer.count)
        try shared.barrier()   // everyone has read every buffer; now each may overwrite its own
        if buffer.count > 0 { buffer.baseAddress!.update(from: tmp.baseAddress!, count: buffer.count) }
        try shared.barrier()
    }

    public func reduceScatterSum<T: CollectiveScalar>(send: UnsafeBufferPointer<T>,
                                                      into recv: UnsafeMutableBufferPointer<T>,
                                                      layout: ShardLayout) throws {
        layout.checkBuffers("reduceScatter", rank: rank, ranks: size, shard: recv.count, whole: send.count)
        try publish(send.baseAddress)
        if recv.count > 0 { sumSlots(into: recv.baseAddress!, start: layout.offsets[rank], count: recv.count) }
        try shared.barrier()
    }

    public func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        try publish(buffer.baseAddress)
        if rank != root && buffer.count > 0 {
            buffer.baseAddress!.update(from: shared.slots[root]!.assumingMemoryBound(to: T.self), count: buffer.count)
        }
        try shared.barrier()
    }

    public func startAllReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws
        -> CollectiveRequest {
        try allReduceSum(buffer)
        return .completed
    }

    public func wait(_ request: inout CollectiveRequest) throws { request = .completed }

    public func test(_ request: inout CollectiveRequest) throws -> Bool {
        request = .completed
        return true
    }

    public func barrier() throws { try shared.barrier() }

    /// Marks the group failed (peers waiting in a collective throw `AbortedByPeer`) and ends this thread.
    public func abort(code: Int32) -> Never {
        shared.fail()
        pthread_exit(nil)
    }

    /// Sums, in rank order (so every rank gets bit-identical results), elements [start, start+count) of every
    /// published buffer into `out`.
    private func sumSlots<T: CollectiveScalar>(into out: UnsafeMutablePointer<T>, start: Int, count: Int) {
        func add<U: AdditiveArithmetic>(_: U.Type) {
            let o = UnsafeMutableRawPointer(out).assumingMemoryBound(to: U.self)
            for i in 0..<count { o[i] = .zero }
            for r in 0..<size {
                let src = shared.slots[r]!.assumingMemoryBound(to: U.self) + start
                for i in 0..<count { o[i] += src[i] }
            }
        }
        switch T.collectiveType {
        case .float: add(Float.self)
        case .double: add(Double.self)
        case .int32: add(Int32.self)
        case .byte: add(UInt8.self)
        }
    }
}
