// Graceful stop on SIGINT and SIGTERM (Ctrl-C, `kill`, a scheduler's time limit: Slurm sends SIGTERM, or the signal
// of `--signal`, before its kill). The handler only records the signal; the training loop reads the record each step
// and shares it through the step's existing loss all-reduce (no extra collective), so every rank stops after the
// same step, the checkpoint is written, and the job ends with 128 + the signal (130 for SIGINT, 143 for SIGTERM).
// A second signal ends the process at once (`_exit`); under mpirun the launcher then takes the job down. mpirun
// cannot forward SIGINT or SIGTERM (it aborts the job on them), but forwards SIGUSR1 and SIGUSR2: these stand for
// SIGINT and SIGTERM, which scripts/mpirun.sh relays that way.
#if canImport(Glibc)
import Glibc
#endif

/// The signal recorded by the handler (0: none). A raw pointer allocated once, so the handler touches no Swift
/// runtime state (no lazy initialisation, no allocation): it only stores an `Int32`.
nonisolated(unsafe) private let recordedSignal: UnsafeMutablePointer<Int32> = {
    let p = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()

/// Set once the stop is handled and the process is ending: a further signal (mpirun's abort of the remaining ranks)
/// then ends it quietly.
nonisolated(unsafe) private let endingFlag: UnsafeMutablePointer<Int32> = {
    let p = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    p.initialize(to: 0)
    return p
}()

/// The message a second signal prints before ending the process (static bytes: async-signal-safe).
private let secondSignalMessage: StaticString = "dtrain: second signal: stopping at once, without a checkpoint\n"

private func stopSignalHandler(_ received: Int32) {
    // SIGUSR1 and SIGUSR2 are SIGINT and SIGTERM relayed by a launcher (mpirun forwards only those).
    let signal = received == SIGUSR1 ? SIGINT : received == SIGUSR2 ? SIGTERM : received
    if endingFlag.pointee != 0 { _exit(128 + signal) }
    if recordedSignal.pointee != 0 {
        _ = write(2, secondSignalMessage.utf8Start, secondSignalMessage.utf8CodeUnitCount)
        _exit(128 + signal)
    }
    recordedSignal.pointee = signal
}

/// SIGINT and SIGTERM as a graceful stop request.
public enum StopSignal {
    /// Installs the handler for SIGINT and SIGTERM, and for SIGUSR1 and SIGUSR2 read as SIGINT and SIGTERM relayed
    /// through mpirun (see scripts/mpirun.sh); idempotent. Until then the signals have their default action.
    public static func install() {
        _ = recordedSignal.pointee   // initialise the globals before any handler can run
        _ = endingFlag.pointee
        var action = sigaction()
        action.__sigaction_handler.sa_handler = stopSignalHandler
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        for signal in [SIGINT, SIGTERM, SIGUSR1, SIGUSR2] { sigaction(signal, &action, nil) }
    }

    /// The signal received so far on this rank (0: none). Reads one `Int32`: cheap enough for every step.
    @inline(__always)
    public static var received: Int32 { recordedSignal.pointee }

    /// Marks the process as ending after a handled stop: a further signal ends it at once, without a message.
    public static func ending() { _ = endingFlag.pointee; endingFlag.pointee = 1 }

    /// Clears the record (tests, and a study that goes on after an agreed stop is handled).
    public static func reset() { recordedSignal.pointee = 0 }

    /// Records `signal` as if the handler had run (tests).
    public static func simulate(_ signal: Int32) { recordedSignal.pointee = signal }
}

/// Training stopped by a signal after `step`, with the checkpoint written (when there is an output folder). Thrown
/// on every rank alike; the exit status is 128 + `signal`.
public struct RunInterrupted: Error, CustomStringConvertible, Sendable {
    /// SIGINT or SIGTERM: the signal any rank received (SIGINT when both were seen).
    public let signal: Int32
    /// Steps completed.
    public let step: Int
    /// The message rank 0 prints: the step reached and how to continue.
    public let message: String
    public init(signal: Int32, step: Int, message: String) {
        self.signal = signal; self.step = step; self.message = message
    }
    public var description: String { message }
    /// 130 for SIGINT, 143 for SIGTERM.
    public var exitStatus: Int32 { 128 + signal }
}
