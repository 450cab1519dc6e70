// The collective operations the trainer needs, behind one protocol with two implementations:
// `MPICommunicator` (Open MPI; a one-rank world without mpirun) and `LocalCommunicator` (N threads in one
// process, for tests). Counts are element counts; uneven shards are described by a `ShardLayout`.

/// Element types the collectives move: Float and Double (sums), Int32 and UInt8 (gathers, broadcasts).
public protocol CollectiveScalar: Sendable {
    /// How the element is described to MPI and summed by the in-process group.
    static var collectiveType: CollectiveType { get }
}

/// The element types a collective call can carry.
public enum CollectiveType: Sendable { case float, double, int32, byte }

extension Float: CollectiveScalar { public static var collectiveType: CollectiveType { .float } }
extension Double: CollectiveScalar { public static var collectiveType: CollectiveType { .double } }
extension Int32: CollectiveScalar { public static var collectiveType: CollectiveType { .int32 } }
extension UInt8: CollectiveScalar { public static var collectiveType: CollectiveType { .byte } }

/// How a global buffer is split into per-rank shards, in rank order: rank r owns `range(of: r)`.
public struct ShardLayout: Sendable, Equatable {
    /// Elements (or rows) owned by each rank.
    public let counts: [Int]
    /// Start of each rank's shard in the global buffer.
    public let offsets: [Int]
    /// Sum of `counts`.
    public let total: Int
    /// `counts` and `offsets` as Int32, kept so MPI calls need no conversion (no allocation) in the step.
    public let counts32: [Int32]
    public let offsets32: [Int32]

    /// A layout from per-rank counts (each ≥ 0).
    public init(counts: [Int]) {
        precondition(!counts.isEmpty, "ShardLayout needs at least one rank")
        precondition(counts.allSatisfy { $0 >= 0 }, "ShardLayout counts must be >= 0, got \(counts)")
        var offsets = [Int](), running = 0
        for c in counts { offsets.append(running); running += c }
        precondition(running <= Int(Int32.max), "ShardLayout total \(running) exceeds Int32 range")
        self.counts = counts
        self.offsets = offsets
        self.total = running
        self.counts32 = counts.map { Int32($0) }
        self.offsets32 = offsets.map { Int32($0) }
    }

    /// `total` split over `parts` ranks as evenly as possible; the first `total % parts` ranks get one more.
    public static func even(total: Int, parts: Int) -> ShardLayout {
        precondition(parts >= 1 && total >= 0, "even split needs parts >= 1, total >= 0 (got \(parts), \(total))")
        return ShardLayout(counts: (0..<parts).map { total / parts + ($0 < total % parts ? 1 : 0) })
    }

    /// Number of ranks.
    public var parts: Int { counts.count }

    /// The global index range owned by `rank`.
    public func range(of rank: Int) -> Range<Int> { offsets[rank]..<(offsets[rank] + counts[rank]) }

    /// Preconditions of a collective over this layout on `rank` of `ranks`: the shard buffer holds this rank's
    /// count and the whole buffer the total (a programmer error otherwise).
    public func checkBuffers(_ op: String, rank: Int, ranks: Int, shard: Int, whole: Int) {
        precondition(parts == ranks, "\(op): layout has \(parts) parts for \(ranks) ranks")
        precondition(shard == counts[rank], "\(op): shard buffer holds \(shard) elements, layout needs \(counts[rank])")
        precondition(whole == total, "\(op): whole buffer holds \(whole) elements, layout needs \(total)")
    }

    /// The same split with every count multiplied by `factor` (rows → elements of rows × factor).
    public func scaled(by factor: Int) -> ShardLayout { ShardLayout(counts: counts.map { $0 * factor }) }
}

/// A failed collective: the MPI call and MPI's own message, or a peer's abort in the in-process group.
public struct CollectiveError: Error, CustomStringConvertible, Sendable {
    public let call: String
    public let code: Int
    public let message: String
    public init(call: String, code: Int, message: String) {
        self.call = call; self.code = code; self.message = message
    }
    public var description: String { "\(call) failed (code \(code)): \(message)" }
}

/// A pending non-blocking collective; complete it with `Communicator.wait(_:)`.
public struct CollectiveRequest: Sendable {
    /// Implementation-defined handle (an MPI_Request index, or -1 when already complete).
    public var handle: Int
    public init(handle: Int) { self.handle = handle }
    /// A request that needs no waiting.
    public static let completed = CollectiveRequest(handle: -1)
}

/// The collectives of one process's rank in a group of `size` ranks. Every rank must issue the same
/// collectives in the same order; buffers must hold exactly the counts the layout gives.
public protocol Communicator: AnyObject {
    /// This process's rank in 0..<size.
    var rank: Int { get }
    /// Number of ranks.
    var size: Int { get }
    /// The host this rank runs on.
    var hostName: String { get }

    /// Concatenates every rank's `send` (count `layout.counts[rank]`) into `recv` (count `layout.total`), in rank
    /// order, on every rank.
    func allGather<T: CollectiveScalar>(send: UnsafeBufferPointer<T>, into recv: UnsafeMutableBufferPointer<T>,
                                        layout: ShardLayout) throws
    /// Replaces `buffer` on every rank by the element-wise sum over ranks.
    func allReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws
    /// Sums `send` (count `layout.total`) over ranks and leaves on each rank its own shard in `recv`
    /// (count `layout.counts[rank]`): the backward of `allGather`.
    func reduceScatterSum<T: CollectiveScalar>(send: UnsafeBufferPointer<T>, into recv: UnsafeMutableBufferPointer<T>,
                                               layout: ShardLayout) throws
    /// Copies `buffer` from `root` to every rank.
    func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws
    /// Starts an in-place sum all-reduce of `buffer`, which must stay untouched until `wait` returns.
    func startAllReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws -> CollectiveRequest
    /// Completes a request from `startAllReduceSum`.
    func wait(_ request: inout CollectiveRequest) throws
    /// Lets a pending request progress; returns true (and completes it) if it has finished.
    func test(_ request: inout CollectiveRequest) throws -> Bool
    /// Blocks until every rank has arrived.
    func barrier() throws
    /// Ends the whole job (every rank) with `code`.
    func abort(code: Int32) -> Never
}

extension Communicator {
    /// Convenience: all-gather of one value per rank.
    public func allGather<T: CollectiveScalar & Numeric>(value: T) throws -> [T] {
        var send = [value]
        var recv = [T](repeating: 0, count: size)
        try send.withUnsafeMutableBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { r in
                try allGather(send: UnsafeBufferPointer(s), into: r, layout: ShardLayout(counts: .init(repeating: 1, count: size)))
            }
        }
        return recv
    }

    /// Convenience: a sum over ranks of one Double.
    public func sum(_ value: Double) throws -> Double {
        var v = [value]
        try v.withUnsafeMutableBufferPointer { try allReduceSum($0) }
        return v[0]
    }

    /// Convenience: the maximum over ranks of one Double (gathered, then reduced locally).
    public func max(_ value: Double) throws -> Double { try allGather(value: value).max()! }

    /// Broadcasts a byte string (e.g. a JSON config) from `root`; other ranks' `bytes` are replaced.
    public func broadcast(bytes: inout [UInt8], root: Int) throws {
        var count = [Int32(bytes.count)]
        try count.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(count[0])) }
        try bytes.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
    }
}
