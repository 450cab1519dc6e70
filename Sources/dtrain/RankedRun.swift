import Collective
import Foundation
import Tensor

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// Starts MPI, sets the BLAS thread count, and runs `body` on this rank. An error on any rank is printed as
/// `rank r: <error>` and takes the whole job down (MPI_Abort), so no rank is left waiting in a collective.
func runOnWorld(blasThreads: Int, _ body: (MPICommunicator) throws -> Void) throws {
    BLASThreads.set(blasThreads)
    let comm: MPICommunicator
    do { comm = try MPICommunicator.world() } catch {
        printError("dtrain: \(error)")
        throw ExitCodeError(code: 2)
    }
    do {
        try body(comm)
    } catch let e as ExitCodeError {
        if comm.size > 1 { comm.abort(code: e.code) }
        throw e
    } catch {
        printError("rank \(comm.rank): \(error)")
        if comm.size > 1 { comm.abort(code: 1) }
        throw ExitCodeError(code: 1)
    }
}

/// Ends the process with `code` after a message has already been printed.
struct ExitCodeError: Error {
    let code: Int32
}
