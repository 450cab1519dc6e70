import ArgumentParser
import Checkpoint
import Collective
import Data
import FileIO
import Foundation
import Tensor
import Train

/// Writes a line to standard error.
func printError(_ line: String) {
    FileHandle.standardError.write(Foundation.Data((line + "\n").utf8))
}

/// Exit statuses, one per kind of failure (README "Exit status").
enum ExitStatus {
    /// A bad flag, setting or combination; a folder that needs --resume or --overwrite (EX_USAGE).
    static let usage: Int32 = 64
    /// A bad input file: dataset, checkpoint, weights, config file (EX_DATAERR).
    static let dataError: Int32 = 65
    /// An output file or folder that cannot be written, or is held by another job (EX_IOERR).
    static let ioError: Int32 = 74
    /// A failure while running: divergence, non-finite values, MPI, a stalled rank.
    static let runtime: Int32 = 1

    /// The status for `error`.
    static func of(_ error: Error) -> Int32 {
        switch error {
        case let e as RunInterrupted: return e.exitStatus
        case is ValidationError: return usage
        case let e as OutputFolderError: return e.kind == .occupied ? usage : ioError
        case let e as DataError: return e.kind == .badSampling || e.kind == .unknownDataset ? usage : dataError
        case let e as CheckpointError: return e.kind == .unwritable ? ioError : dataError
        case is ConfigError: return usage
        case is FileIOError: return ioError
        case let e as TrainingError: return e.isUsage ? usage : runtime
        default: return runtime
        }
    }
}

/// A bad input file found while the command line is checked (a corrupt or missing `--resume` checkpoint): printed
/// like an argument error, with the data-error status 65. ArgumentParser reports errors thrown by `validate()` with
/// status 1, so the status is recorded here for `DTrain.main`.
struct InputFileError: Error, CustomStringConvertible {
    let message: String
    nonisolated(unsafe) static var raised = false
    init(_ message: String) {
        self.message = message
        InputFileError.raised = true
    }
    var description: String { message }
}

/// The rank the launcher gave this process (Open MPI, PMIx or Slurm), before MPI starts; 0 when launched alone.
func launcherRank() -> Int {
    for name in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"] {
        if let text = getenv(name), let rank = Int(String(cString: text)) { return rank }
    }
    return 0
}

/// Starts MPI, sets the BLAS thread count, and runs `body` on this rank. Errors every rank throws alike at the same
/// point (a signal's stop, a refused output folder, failed study runs) are printed once, by rank 0, and every rank
/// exits with the error's status. Any other error is printed as `rank r: <error>` and takes the whole job down
/// (MPI_Abort with that status), so no rank is left waiting in a collective.
func runOnWorld(blasThreads: Int, _ body: (MPICommunicator) throws -> Void) throws {
    BLASThreads.set(blasThreads)
    let comm: MPICommunicator
    do { comm = try MPICommunicator.world() } catch {
        printError("dtrain: \(error)")
        throw ExitCode(ExitStatus.runtime)
    }
    do {
        try body(comm)
    } catch let e as ExitCode {
        // Thrown by every rank alike after its message was printed (doctor's verdict, a usage check after MPI).
        throw e
    } catch let e where e is RunInterrupted || e is StudyRunsFailed || e is OutputFolderError {
        if e is RunInterrupted { StopSignal.ending() }
        if comm.rank == 0 { printError("\(e)") }
        throw ExitCode(ExitStatus.of(e))
    } catch {
        printError("rank \(comm.rank): \(error)")
        let status = ExitStatus.of(error)
        if comm.size > 1 { comm.abort(code: status) }
        throw ExitCode(status)
    }
}
