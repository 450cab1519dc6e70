// The stalled-rank watchdog. A rank that stops (SIGSTOP, a hung file system, a swapped-out node) leaves the others
// blocked in the next collective forever, spinning. A background thread on every rank watches the time since the
// training loop last made progress; past the timeout it prints the step and the wait and ends the job (MPI_Abort
// through `Communicator.abort`), so the scheduler gets its nodes back and the last checkpoint stands.
//
// The loop calls `beat(step:)` after every step and around checkpoints (no allocation: it stores two numbers).
// Evaluations are watched too, by their own progress rather than by steps: between `evaluating()` and `training()`
// every embedding chunk, k-NN block and probe objective evaluation calls `progress()`, and the same timeout applies
// to the time between two of those (usually shorter than a training step: a chunk is one forward pass of 500
// images, a step a forward and backward pass of two views of the batch). Every rank does the same evaluation work,
// so a rank blocked in one of its collectives by a stalled peer stops making progress. Timeout: `--step-timeout`
// seconds, or by default max(300 s, 10 × the slowest step or evaluation progress interval seen).
import Collective
import Foundation
import Tensor

/// Watches the training loop's progress and ends the job when it stalls.
final class StepWatchdog: @unchecked Sendable {
    /// [last beat (monotonic s), slowest step (s), evaluating (0/1), stop (0/1), step, slowest wait between two
    /// evaluation progress calls (s)] as Doubles: one allocation, plain loads and stores (a torn read of a Double is
    /// impossible on the 64-bit targets dtrain runs on).
    private let state: UnsafeMutablePointer<Double>
    /// The fixed timeout, or nil for max(minimum, factor × the slowest step or evaluation progress interval).
    let fixedTimeout: Double?
    let minimumTimeout: Double
    let factor: Double
    let rank: Int
    private let onStall: (String) -> Void

    /// A watchdog (not yet running). `onStall` receives the message and must not return (it aborts the job).
    init(fixedTimeout: Double?, minimumTimeout: Double = 300, factor: Double = 10, rank: Int,
         onStall: @escaping (String) -> Void) {
        state = .allocate(capacity: 6)
        state.initialize(repeating: 0, count: 6)
        state[0] = monotonicSeconds()
        self.fixedTimeout = fixedTimeout
        self.minimumTimeout = minimumTimeout
        self.factor = factor
        self.rank = rank
        self.onStall = onStall
    }

    deinit { state.deallocate() }

    /// The timeout now: the fixed one, or max(minimum, factor × the slowest step or evaluation progress interval
    /// seen; a small batch with a large model can make an evaluation chunk slower than a step).
    var timeout: Double { fixedTimeout ?? max(minimumTimeout, factor * max(state[1], state[5])) }

    /// Starts the watching thread (checks a few times per timeout, at least once a second).
    func start() {
        let poll = min(1.0, max(0.05, (fixedTimeout ?? minimumTimeout) / 10))
        Thread.detachNewThread { [self] in
            while state[3] == 0 {
                Thread.sleep(forTimeInterval: poll)
                if state[3] != 0 { break }
                let waited = monotonicSeconds() - state[0]
                if waited > timeout {
                    let step = Int(state[4])
                    let what = state[2] == 0
                        ? String(format: "no training step finished for %.1f s (the last was step %d; waiting for step "
                                 + "%d in a collective)", waited, step, step + 1)
                        : (step > 0 ? String(format: "the evaluation after step %d", step) : "the evaluation")
                            + String(format: " made no progress for %.1f s (waiting in a collective)", waited)
                    onStall(String(format: "rank %d: %@; another rank is stalled or gone, so the job is ended "
                                   + "(--step-timeout %.0f s; 0 turns this off)", rank, what, timeout))
                }
            }
        }
    }

    /// Records progress after `step` steps; `stepSeconds` (the step's duration) updates the slowest step.
    @inline(__always)
    func beat(step: Int, stepSeconds: Double = 0) {
        state[0] = monotonicSeconds()
        state[4] = Double(step)
        if stepSeconds > state[1] { state[1] = stepSeconds }
    }

    /// An evaluation starts: from now the timeout runs from its last `progress()`.
    func evaluating() {
        state[0] = monotonicSeconds()
        state[2] = 1
    }

    /// The evaluation made progress (no allocation).
    @inline(__always)
    func progress() {
        let now = monotonicSeconds()
        if now - state[0] > state[5] { state[5] = now - state[0] }
        state[0] = now
    }

    /// The evaluation is over: training steps are watched again, from now.
    func training() {
        state[0] = monotonicSeconds()
        state[2] = 0
    }

    /// Ends the watching thread.
    func stop() { state[3] = 1 }
}

/// The stalled-rank watchdog of the evaluation commands (`dtrain eval`, `fewshot`, `analyze` on several ranks): ends
/// the job (MPI_Abort) when the evaluation makes no progress for `timeout` seconds (nil: max(300 s, 10 × the slowest
/// interval between two progress calls)). Give `progress` to the work (`Embedder`, `evaluateSource`, `fewShot`) and
/// call `stop()` after the last collective, before work that one rank does alone.
public final class EvaluationWatchdog: @unchecked Sendable {
    private let dog: StepWatchdog

    public init<C: Communicator>(comm: C, timeout: Double?) {
        dog = StepWatchdog(fixedTimeout: timeout, rank: comm.rank) { message in
            FileHandle.standardError.write(Foundation.Data((message + "\n").utf8))
            comm.abort(code: 1)
        }
        dog.evaluating()
        dog.start()
    }

    /// The sign of life to pass to the evaluation (no allocation per call).
    public var progress: () -> Void { { [dog] in dog.progress() } }

    /// Stops watching.
    public func stop() { dog.stop() }
}
