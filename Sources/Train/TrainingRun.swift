// A whole training run: epochs of steps, logging (metrics.jsonl, progress line), evaluation after each epoch and
// the summary. Rank 0 writes every file and line; every rank computes the same global values.
import Checkpoint
import Collective
import Data
import Evaluation
import FileIO
import Foundation
import Tensor

/// Where a run's lines go. The command line prints them; tests collect them.
public protocol RunObserver: AnyObject {
    /// A human-readable progress line (rank 0 only).
    func progress(_ line: String)
    /// A logged step (rank 0 only).
    func logged(_ metrics: StepMetrics)
    /// An evaluated epoch (rank 0 only).
    func evaluated(_ metrics: EpochMetrics)
}

/// Observer that ignores everything.
public final class SilentObserver: RunObserver {
    public init() {}
    public func progress(_ line: String) {}
    public func logged(_ metrics: StepMetrics) {}
    public func evaluated(_ metrics: EpochMetrics) {}
}

/// Loads the datasets a config names (every rank reads the files itself), cut to `config.classes` when set. Folder
/// and npy data without `--mean/--std` are normalised with the training split's statistics on both splits
/// (`recordingNormalisation` keeps them).
public func loadDatasets(_ config: TrainConfig, progress: (@Sendable (String) -> Void)? = nil)
    throws -> (train: Dataset, test: Dataset) {
    let train = try loadEvaluationSplit(config, split: .train, progress: progress)
    var test = try loadEvaluationSplit(config, split: .test, progress: progress)
    if (config.mean == nil || config.std == nil) && measuresNormalisation(config) {
        test = test.normalised(mean: train.mean, std: train.std)   // train's: the measured and the given values
    }
    return (train, test)
}

/// Whether the dataset's normalisation is measured on its files (folder, npy) rather than a published constant.
func measuresNormalisation(_ config: TrainConfig) -> Bool {
    config.datasetName == .folder || config.datasetName == .npy
}

extension TrainConfig {
    /// This config with `mean`/`std` set to `train`'s measured statistics when they were not given and the data
    /// is a folder or npy dataset, so DIR/config.json records them and `embed`/`--resume` normalise the same way.
    public func recordingNormalisation(of train: Dataset) -> TrainConfig {
        guard mean == nil || std == nil, measuresNormalisation(self) else { return self }
        var c = self
        c.mean = c.mean ?? train.mean.map(Double.init)
        c.std = c.std ?? train.std.map(Double.init)
        return c
    }
}

/// How a run starts and (for tests) fails: not training settings, so not part of `TrainConfig`.
public struct RunControl: Sendable, Equatable {
    /// Continue the run saved in this folder's checkpoint.safetensors (nil: start from the initialisation).
    public var resume: String? = nil
    /// Fault injection: throw on rank `failRank` right after completing this step, before its log line and
    /// checkpoint (nil: never).
    public var failAtStep: Int? = nil
    /// The rank that throws at `failAtStep`.
    public var failRank = 0
    /// With `resume`: continue only an interrupted run of exactly these settings (`resultSettings`), and otherwise
    /// (no checkpoint, a checkpoint unreadable or different on some rank, other settings, or one `restore`
    /// refuses) start afresh with a note instead of throwing. `dtrain study` uses this for a run cut short.
    public var resumeIfInterrupted = false
    /// Train into `config.out` even when it holds a run (its checkpoint is removed first); otherwise such a folder is
    /// refused unless it is the one resumed.
    public var overwrite = false
    /// Fault injection: rank `signalRank` behaves as if it received `signal` (SIGINT or SIGTERM) during step
    /// `signalAtStep` (nil: never).
    public var signalAtStep: Int? = nil
    public var signal: Int32 = SIGINT
    public var signalRank = 0
    /// Fault injection: this rank stops itself (SIGSTOP) as the final evaluation starts, so that the others block
    /// in its first collective (nil: never).
    public var stallInEvaluationRank: Int? = nil
    /// How the job was launched, for the `--resume` command printed when a signal stops the run ("dtrain train",
    /// with "mpirun -n N" in front on several ranks); nil: "dtrain train".
    public var command: String? = nil

    public init(resume: String? = nil, failAtStep: Int? = nil, failRank: Int = 0,
                resumeIfInterrupted: Bool = false, overwrite: Bool = false, command: String? = nil) {
        self.resume = resume
        self.failAtStep = failAtStep
        self.failRank = failRank
        self.resumeIfInterrupted = resumeIfInterrupted
        self.overwrite = overwrite
        self.command = command
    }
}

/// Trains to the end of `config` and returns the summary. Writes DIR/config.json and DIR/metrics.jsonl on rank 0
/// when `config.out` is set, and DIR/checkpoint.safetensors (atomically) every `checkpointEvery` steps, after every
/// `checkpointEveryEpochs`-th epoch and at the end of the run.
///
/// After each epoch but the last, the cheap evaluations (`config.epochEvaluations`: head, or k-NN for a loss
/// without CE) are logged, unless `config.epochEval` is false; after the last, every requested evaluation
/// (`config.evaluations`), the first giving `test_accuracy`. Throws `TrainingError` for problems every rank sees
/// alike (bad settings, non-finite loss).
///
/// With `control.resume` = R, every rank restores R/checkpoint.safetensors (see `Trainer.restore`) and training
/// continues at the saved step: same per-step values, bit for bit, as the uninterrupted run with the same rank
/// count. DIR/metrics.jsonl becomes the first `metrics_bytes` bytes of R/metrics.jsonl (everything logged up to
/// the checkpoint, nothing after it) followed by the new lines; with DIR = R this truncates the file in place.
public func runTraining<C: Communicator>(config: TrainConfig, comm: C, train: Dataset, test: Dataset,
                                         observer: RunObserver = SilentObserver(),
                                         control: RunControl = RunControl()) throws -> RunSummary {
    let evalProblems = config.evaluationProblems()
    guard evalProblems.isEmpty else { throw TrainingError(evalProblems.joined(separator: "; ")) }
    StopSignal.install()
    // Rank 0 takes the output folder (lock, no other run in it) before anything is written; every rank learns the
    // outcome, so a refused folder ends the job on every rank alike.
    let folder = try takeOutputFolder(config.out, comm: comm, observer: observer, allowRun: control.resume.map {
        resumeDirectory($0) == config.out.map(resumeDirectory) } ?? false, overwrite: control.overwrite)
    defer { folder?.release() }
    let finalModes = config.evaluations, epochModes = config.epochEvaluations
    var trainer = try Trainer(config: config, comm: comm, train: train, test: test)
    let lead = comm.rank == 0
    var history: [UInt8] = []
    var resumed = false
    if let resume = control.resume {
        var checkpoint: SafeTensors?
        if control.resumeIfInterrupted {
            switch try interruptedCheckpoint(directory: resume, config: config, comm: comm) {
            case .success(let found): checkpoint = found
            case .failure(let reason):
                if lead, let note = reason.note { observer.progress("dtrain: not resuming, starting afresh: \(note)") }
            }
        } else {
            checkpoint = try SafeTensors.read(path: checkpointPath(directory: resume))
        }
        if let checkpoint {
            do {
                try trainer.restore(from: checkpoint)
                resumed = true
            } catch where control.resumeIfInterrupted {
                // Every rank read the same file (same CRC), so every rank refuses alike.
                if lead { observer.progress("dtrain: not resuming, starting afresh: \(error)") }
                trainer = try Trainer(config: config, comm: comm, train: train, test: test)
            }
            if resumed, lead { history = metricsHistory(directory: resume, checkpoint: checkpoint, observer: observer) }
        }
    }
    let firstStep = trainer.step
    var metricsFile: JSONLinesWriter?
    if lead, let out = config.out {
        try createDirectories(out)
        removeStaleTemporaries(directory: out)
        try writeFileAtomically(Array(try config.json().utf8), to: out + "/config.json")
        try writeFileAtomically(Array(history), to: out + "/metrics.jsonl")
        metricsFile = try JSONLinesWriter(path: out + "/metrics.jsonl", append: true)
    }
    if lead {
        observer.progress("dtrain: \(config.loss) on \(config.dataset) (\(train.count) train / \(test.count) test), "
            + "model \(config.model) (\(trainer.network.parameterCount) parameters), \(comm.size) rank(s), "
            + "global batch \(config.batchSize) images = \(2 * config.batchSize) views, "
            + "\(trainer.totalSteps) steps (\(trainer.stepsPerEpoch)/epoch), lr \(config.baseLearningRate)")
        if let report = trainer.initReport, let path = config.initWeights {
            observer.progress("dtrain: --init \(path): \(report.loaded) tensors (\(report.naming.rawValue) names)"
                              + report.notes.map { "; " + $0 }.joined())
        }
        if resumed, let resume = control.resume {
            observer.progress("dtrain: resumed from \(checkpointPath(directory: resume)) at step \(firstStep) "
                              + "(epoch \(firstStep / trainer.stepsPerEpoch + 1))")
        }
        if let maxSteps = config.maxSteps, maxSteps > trainer.totalSteps {
            observer.progress("dtrain: note: --max-steps \(maxSteps) is beyond --epochs \(config.epochs) "
                              + "(\(trainer.totalSteps) steps); the run ends at step \(trainer.totalSteps) (raise --epochs to "
                              + "train longer)")
        }
    }

    let start = monotonicSeconds()
    var trainSeconds = 0.0
    var windowStart = start, windowSteps = 0
    var last = StepResult(loss: .nan, ce: .nan, contrastive: .nan, gradNorm: .nan, lr: 0)
    var finalEval = EpochMetrics(epoch: 0, testAccuracy: .nan, eval: finalModes[0].rawValue, accuracies: [:],
                                 seconds: 0)
    let epochs = (trainer.totalSteps + trainer.stepsPerEpoch - 1) / trainer.stepsPerEpoch
    // The stalled-rank watchdog (off with --step-timeout 0).
    var watchdog: StepWatchdog?
    if config.stepTimeout != 0 {
        let group = comm
        watchdog = StepWatchdog(fixedTimeout: config.stepTimeout, rank: comm.rank) { message in
            FileHandle.standardError.write(Foundation.Data((message + "\n").utf8))
            group.abort(code: 1)
        }
        watchdog?.start()
        trainer.evaluationProgress = { [watchdog] in watchdog?.progress() }
    }
    defer {
        watchdog?.stop()
        trainer.evaluationProgress = nil
    }
    // Divergence: an exponential moving average of the loss against its running minimum, checked after warm-up.
    let warmupSteps = trainer.schedule.warmupSteps
    var smoothedLoss = Double.nan, lowestSmoothed = Double.infinity
    var lastCheckpoint = monotonicSeconds()
    while trainer.step < trainer.totalSteps {
        if trainer.step + 1 == control.signalAtStep && comm.rank == control.signalRank {
            trainer.injectedSignal = control.signal
        }
        let t0 = monotonicSeconds()
        last = try trainer.runStep()
        let stepSeconds = monotonicSeconds() - t0
        trainSeconds += stepSeconds
        watchdog?.beat(step: trainer.step, stepSeconds: stepSeconds)
        windowSteps += 1
        let step = trainer.step, epoch = (step - 1) / trainer.stepsPerEpoch
        if step == control.failAtStep && comm.rank == control.failRank {
            throw TrainingError("injected failure after step \(step) (--fail-at-step)")
        }
        let endOfEpoch = step % trainer.stepsPerEpoch == 0 || step == trainer.totalSteps
        if step % config.logEvery == 0 || step == trainer.totalSteps || step == 1 {
            let now = monotonicSeconds()
            let rate = Double(windowSteps * config.batchSize) / max(now - windowStart, 1e-9)
            windowStart = now; windowSteps = 0
            if lead {
                let m = StepMetrics(step: step, epoch: epoch + 1, loss: last.loss, ce: last.ce,
                                    contrastive: last.contrastive, lr: last.lr, gradNorm: last.gradNorm,
                                    imagesPerS: rate)
                try metricsFile?.write(m)
                observer.logged(m)
                if !config.quiet {
                    let eta = Double(trainer.totalSteps - step) * trainSeconds / Double(step - firstStep)
                    observer.progress(String(format: "epoch %d/%d step %d/%d (%.1f%%) loss %.4f ce %.4f con %.4f "
                        + "lr %.4g gnorm %.3g | %.0f img/s | ETA %@", epoch + 1, epochs, step, trainer.totalSteps,
                        100 * Double(step) / Double(trainer.totalSteps), last.loss, last.ce, last.contrastive,
                        last.lr, last.gradNorm, rate, formatDuration(eta)))
                }
            }
        }
        smoothedLoss = smoothedLoss.isNaN ? last.loss : 0.9 * smoothedLoss + 0.1 * last.loss
        lowestSmoothed = min(lowestSmoothed, smoothedLoss)
        if config.divergenceFactor > 0 && step > warmupSteps && lowestSmoothed > 0
            && smoothedLoss > config.divergenceFactor * lowestSmoothed {
            throw TrainingError(String(format: "diverged at step %d: the loss (%.6g, smoothed %.6g) is more than %g "
                + "times its lowest smoothed value %.6g; try a smaller --lr (or --divergence-factor 0 to turn this "
                + "check off)", step, last.loss, smoothedLoss, config.divergenceFactor, lowestSmoothed))
        }
        if endOfEpoch && (config.epochEval || step == trainer.totalSteps) {
            watchdog?.evaluating()
            defer { watchdog?.training() }
            if step == trainer.totalSteps && comm.rank == control.stallInEvaluationRank { raise(SIGSTOP) }
            let e0 = monotonicSeconds()
            let modes = step == trainer.totalSteps ? finalModes : epochModes
            let accuracies = try trainer.evaluate(modes)
            let first = modes[0].rawValue
            finalEval = EpochMetrics(epoch: epoch + 1, testAccuracy: accuracies[first]!, eval: first,
                                     accuracies: accuracies, seconds: monotonicSeconds() - start,
                                     probeSolver: accuracies[EvalMode.linearProbe.rawValue]
                                        .map { _ in LinearProbe.solver })
            if lead {
                try metricsFile?.write(finalEval)
                observer.evaluated(finalEval)
                if !config.quiet {
                    let scores = modes.map { String(format: "%.4f (%@)", accuracies[$0.rawValue]!, $0.rawValue) }
                    observer.progress(String(format: "epoch %d/%d: test accuracy %@ [%.1fs]", epoch + 1, epochs,
                                             scores.joined(separator: ", "), monotonicSeconds() - e0))
                }
            }
            windowStart = monotonicSeconds()
        }
        let epochsDone = step / trainer.stepsPerEpoch
        // Agreed by every rank through the step's all-reduce: stop after this step (its log line and evaluation
        // are done as usual, so a resumed run's metrics.jsonl is the uninterrupted run's).
        let stop = trainer.stopRequest
        // Only rank 0 writes, so only rank 0 needs the clock-based decision.
        let due = config.checkpoint && ((config.checkpointEvery > 0 && step % config.checkpointEvery == 0)
            || (config.checkpointEveryEpochs > 0 && step % trainer.stepsPerEpoch == 0
                && epochsDone % config.checkpointEveryEpochs == 0)
            || endOfEpoch || stop != 0
            || (lead && config.checkpointMinutes > 0
                && monotonicSeconds() - lastCheckpoint >= 60 * config.checkpointMinutes))
        if lead, due, let out = config.out, let metricsFile {
            // After the step's log line and evaluation, so the recorded metrics length includes them. The write's
            // time is left out of the images/s window.
            let c0 = monotonicSeconds()
            try trainer.checkpoint(metricsBytes: metricsFile.offset).write(to: checkpointPath(directory: out))
            lastCheckpoint = monotonicSeconds()
            windowStart += lastCheckpoint - c0
        }
        watchdog?.beat(step: step)
        if stop != 0 {
            // No rank leaves before rank 0's checkpoint is on disk: a launcher aborts the others when one exits.
            try comm.barrier()
            throw RunInterrupted(signal: stop, step: step, message: stopMessage(
                signal: stop, step: step, total: trainer.totalSteps, config: config, ranks: comm.size,
                command: control.command))
        }
    }
    let seconds = monotonicSeconds() - start
    return RunSummary(testAccuracy: finalEval.testAccuracy, eval: finalEval.eval, accuracies: finalEval.accuracies,
                      finalLoss: last.loss, epochs: epochs, steps: trainer.step, ranks: comm.size,
                      globalBatch: config.batchSize,
                      imagesPerS: Double((trainer.step - firstStep) * config.batchSize) / max(trainSeconds, 1e-9),
                      seconds: seconds, resumedAtStep: resumed ? firstStep : nil, probeSolver: finalEval.probeSolver)
}

/// Rank 0 locks `out` and checks it holds no other run (unless `allowRun`: it is the folder being resumed; or
/// `overwrite`: its checkpoint is removed); every rank then learns the outcome (one all-gather) and throws alike.
/// Returns rank 0's lock (nil elsewhere or without `out`).
func takeOutputFolder<C: Communicator>(_ out: String?, comm: C, observer: RunObserver, allowRun: Bool,
                                       overwrite: Bool) throws -> RunFolderLock? {
    guard let out else { return nil }
    var lock: RunFolderLock?
    var failure: OutputFolderError?
    if comm.rank == 0 {
        do {
            lock = try RunFolderLock.acquire(directory: out, command: commandLineText())
            if let note = lock?.note { observer.progress("dtrain: note: \(out): \(note)") }
            if overwrite && !allowRun {
                unlink(checkpointPath(directory: out))
            } else if !allowRun, let run = existingRun(in: out) {
                throw OutputFolderError(.occupied, "output folder \(out) holds \(run); continue it with --resume "
                                        + "\(out), or start over with --overwrite (or choose another --out)")
            }
        } catch let e as OutputFolderError {
            lock?.release()
            lock = nil
            failure = e
        }
    }
    let kinds: [OutputFolderError.Kind] = [.locked, .occupied, .unwritable]
    let code = Int32(failure.map { kinds.firstIndex(of: $0.kind)! + 1 } ?? 0)
    let codes = try comm.size > 1 ? comm.allGather(value: code) : [code]
    if let failure { throw failure }
    if codes[0] != 0 {
        throw OutputFolderError(kinds[Int(codes[0]) - 1], "rank 0 could not use the output folder \(out)")
    }
    return lock
}

/// The command line of this process, shell-quoted where needed.
public func commandLineText(_ arguments: [String] = CommandLine.arguments) -> String {
    arguments.map { a in
        a.isEmpty || a.contains(where: { " \"'$\\*?;&|<>()".contains($0) }) ? "'" + a.replacingOccurrences(
            of: "'", with: "'\\''") + "'" : a
    }.joined(separator: " ")
}

/// What rank 0 prints when a signal stops the run: the step, the checkpoint and the exact command to continue.
func stopMessage(signal: Int32, step: Int, total: Int, config: TrainConfig, ranks: Int, command: String?) -> String {
    let name = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
    let head = "dtrain: stopped by \(name) after step \(step) of \(total)"
    guard let out = config.out, config.checkpoint else {
        return head + "; no checkpoint was written (" + (config.out == nil ? "no --out" : "--no-checkpoint")
            + "), so the run cannot be continued"
    }
    let launcher = command ?? ((ranks > 1 ? "mpirun -n \(ranks) " : "") + "dtrain train")
    return head + "; checkpoint written to \(checkpointPath(directory: out)). Continue with:\n  "
        + launcher + " --resume " + commandLineText([out])
}

/// Why `interruptedCheckpoint` found nothing to continue; `note` is nil when there simply was no checkpoint.
struct NoInterruptedRun: Error {
    var note: String?
}

/// The checkpoint of an interrupted run of exactly `config`'s settings in `directory`, read by every rank, or why
/// there is none. Collective: the ranks agree (one all-gather of success, one of the CRC) so that either every
/// rank gets the same file or none resumes.
func interruptedCheckpoint<C: Communicator>(directory: String, config: TrainConfig, comm: C) throws
    -> Result<SafeTensors, NoInterruptedRun> {
    let path = checkpointPath(directory: directory)
    var checkpoint: SafeTensors?
    var problem: String?
    if fileExists(path) {
        do {
            let file = try SafeTensors.read(path: path)
            let saved = try savedConfig(of: file)
            if resultSettings(saved) == resultSettings(config) {
                checkpoint = file
            } else {
                problem = "\(path) was written with other settings"
            }
        } catch {
            problem = "\(error)"
        }
    }
    let crc = checkpoint?.recordedChecksum ?? 0
    let found = try comm.allGather(value: Int32(checkpoint == nil ? 0 : 1))
    let crcs = try comm.allGather(value: Int32(bitPattern: crc))
    if let checkpoint, !found.contains(0), Set(crcs).count == 1 { return .success(checkpoint) }
    if let problem { return .failure(NoInterruptedRun(note: problem)) }
    if found.contains(1) {
        return .failure(NoInterruptedRun(note: "the ranks do not all see the same checkpoint in \(directory)"))
    }
    return .failure(NoInterruptedRun(note: nil))
}

/// The first `metrics_bytes` bytes of `directory`/metrics.jsonl: what the run that wrote `checkpoint` had logged
/// when it wrote it. Empty (with a note) when the file is missing or shorter.
func metricsHistory(directory: String, checkpoint: SafeTensors, observer: RunObserver) -> [UInt8] {
    let path = directory + "/metrics.jsonl"
    let wanted = Int(checkpoint.metadata[TrainCheckpointKey.metricsBytes] ?? "") ?? 0
    guard let data = FileManager.default.contents(atPath: path), data.count >= wanted else {
        if wanted > 0 {
            observer.progress("dtrain: note: \(path) is missing or shorter than the \(wanted) bytes logged before "
                              + "the checkpoint; the new metrics.jsonl starts at the resumed step")
        }
        return []
    }
    return Array(data.prefix(wanted))
}

/// Removes `checkpoint.safetensors.tmp.*` left in `directory` by a writer that was killed mid-write.
func removeStaleTemporaries(directory: String) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
    for name in names where name.hasPrefix(checkpointFileName + ".tmp.") {
        try? FileManager.default.removeItem(atPath: directory + "/" + name)
    }
}
