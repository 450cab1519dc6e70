// The Open MPI implementation of `Communicator` over MPI_COMM_WORLD. Launched without mpirun, MPI's singleton
// initialisation makes a one-rank world, so the single-node debug mode runs the same code path.
import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// MPI_COMM_WORLD with MPI_ERRORS_RETURN: every failing call throws a `CollectiveError` carrying MPI's message.
public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let hostName: String
    private let comm: MPI_Comm
    /// Outstanding non-blocking requests; a `CollectiveRequest.handle` indexes this table.
    private let requests: UnsafeMutablePointer<MPI_Request?>
    private var requestInUse: [Bool]
    private static let requestCapacity = 256

    nonisolated(unsafe) private static var shared: MPICommunicator?

    /// The world communicator, initialising MPI on first use (and registering MPI_Finalize at exit).
    public static func world() throws -> MPICommunicator {
        if let s = shared { return s }
        var initialised: Int32 = 0
        MPI_Initialized(&initialised)
        if initialised == 0 {
            // Without mpirun, Open MPI's singleton start forks a helper daemon; a fork while another thread holds a
            // library lock (OpenBLAS's pre-fork handler joins its thread pool) can deadlock. A one-rank world needs
            // no daemon: ask for the isolated singleton (a user's own setting wins).
            if getenv("OMPI_COMM_WORLD_SIZE") == nil && getenv("PMIX_RANK") == nil {
                setenv("OMPI_MCA_ess_singleton_isolated", "1", 0)
            }
            let rc = MPI_Init(nil, nil)
            guard rc == MPI_SUCCESS else {
                throw CollectiveError(call: "MPI_Init", code: Int(rc), message: "could not initialise MPI")
            }
            atexit {
                var finalised: Int32 = 0
                MPI_Finalized(&finalised)
                if finalised == 0 { MPI_Finalize() }
            }
        }
        let s = try MPICommunicator(comm: MPI_COMM_WORLD)
        shared = s
        return s
    }

    private init(comm: MPI_Comm) throws {
        self.comm = comm
        var r: Int32 = 0, n: Int32 = 0
        try MPICommunicator.check(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler")
        try MPICommunicator.check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank")
        try MPICommunicator.check(MPI_Comm_size(comm, &n), "MPI_Comm_size")
        rank = Int(r); size = Int(n)
        var name = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
        var len: Int32 = 0
        MPI_Get_processor_name(&name, &len)
        hostName = String(decoding: name.prefix(Int(len)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        requests = .allocate(capacity: MPICommunicator.requestCapacity)
        requests.initialize(repeating: MPI_REQUEST_NULL, count: MPICommunicator.requestCapacity)
        requestInUse = .init(repeating: false, count: MPICommunicator.requestCapacity)
    }

    /// Turns an MPI return code into a thrown error with MPI's own text.
    static func check(_ code: Int32, _ call: String) throws {
        if code == MPI_SUCCESS { return }
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var len: Int32 = 0
        MPI_Error_string(code, &text, &len)
        let message = String(decoding: text.prefix(Int(len)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw CollectiveError(call: call, code: Int(code), message: message)
    }

    @inline(__always)
    private func datatype<T: CollectiveScalar>(_: T.Type) -> MPI_Datatype {
        switch T.collectiveType {
        case .float: return MPI_FLOAT
        case .double: return MPI_DOUBLE
        case .int32: return MPI_INT
        case .byte: return MPI_BYTE
        }
    }

    public func allGather<T: CollectiveScalar>(send: UnsafeBufferPointer<T>, into recv: UnsafeMutableBufferPointer<T>,
                                               layout: ShardLayout) throws {
        layout.checkBuffers("allGather", rank: rank, ranks: size, shard: send.count, whole: recv.count)
        let type = datatype(T.self)
        let rc = layout.counts32.withUnsafeBufferPointer { counts in
            layout.offsets32.withUnsafeBufferPointer { displs in
                MPI_Allgatherv(send.baseAddress, Int32(send.count), type, recv.baseAddress, counts.baseAddress,
                               displs.baseAddress, type, comm)
            }
        }
        try MPICommunicator.check(rc, "MPI_Allgatherv")
    }

    public func allReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws {
        let rc = MPI_Allreduce(MPI_IN_PLACE, buffer.baseAddress, Int32(buffer.count), datatype(T.self), MPI_SUM, comm)
        try MPICommunicator.check(rc, "MPI_Allreduce")
    }

    public func reduceScatterSum<T: CollectiveScalar>(send: UnsafeBufferPointer<T>,
                                                      into recv: UnsafeMutableBufferPointer<T>,
                                                      layout: ShardLayout) throws {
        layout.checkBuffers("reduceScatter", rank: rank, ranks: size, shard: recv.count, whole: send.count)
        let type = datatype(T.self)
        let rc = layout.counts32.withUnsafeBufferPointer { counts in
            MPI_Reduce_scatter(send.baseAddress, recv.baseAddress, counts.baseAddress, type, MPI_SUM, comm)
        }
        try MPICommunicator.check(rc, "MPI_Reduce_scatter")
    }

    public func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        let rc = MPI_Bcast(buffer.baseAddress, Int32(buffer.count), datatype(T.self), Int32(root), comm)
        try MPICommunicator.check(rc, "MPI_Bcast")
    }

    public func startAllReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws
        -> CollectiveRequest {
        guard let slot = requestInUse.firstIndex(of: false) else {
            throw CollectiveError(call: "MPI_Iallreduce", code: -1,
                                  message: "more than \(MPICommunicator.requestCapacity) requests outstanding")
        }
        let rc = MPI_Iallreduce(MPI_IN_PLACE, buffer.baseAddress, Int32(buffer.count), datatype(T.self), MPI_SUM,
                                comm, requests + slot)
        try MPICommunicator.check(rc, "MPI_Iallreduce")
        requestInUse[slot] = true
        return CollectiveRequest(handle: slot)
    }

    public func wait(_ request: inout CollectiveRequest) throws {
        guard request.handle >= 0 else { return }
        let rc = MPI_Wait(requests + request.handle, MPI_STATUS_IGNORE)
        requestInUse[request.handle] = false
        request = .completed
        try MPICommunicator.check(rc, "MPI_Wait")
    }

    public func test(_ request: inout CollectiveRequest) throws -> Bool {
        guard request.handle >= 0 else { return true }
        var flag: Int32 = 0
        let rc = MPI_Test(requests + request.handle, &flag, MPI_STATUS_IGNORE)
        try MPICommunicator.check(rc, "MPI_Test")
        if flag != 0 {
            requestInUse[request.handle] = false
            request = .completed
            return true
        }
        return false
    }

    public func barrier() throws { try MPICommunicator.check(MPI_Barrier(comm), "MPI_Barrier") }

    public func abort(code: Int32) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }
}
