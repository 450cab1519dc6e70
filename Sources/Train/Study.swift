// A study: every run of a grid, one after another in the same job (all ranks cooperate on each run), with a
// progress line over the whole grid. Layout of DIR (rank 0 writes everything):
//   DIR/runs/<run>_<hash>/config.json, …       what `runTraining` writes for the run
//   DIR/runs/<run>/result.json                  the run's record; its presence marks the run finished
//   DIR/results.csv                             one row per run of the grid (rewritten after every run)
//   DIR/summary.md                              mean ± std over seeds, pivot tables (rewritten after every run)
//   DIR/*.png                                   plots by scripts/plot_study.py (after the last run)
// A run's folder is its grid point's readable name plus a short hash of every setting that decides its result
// (`studyRunFolder`), so grids sharing a study folder never share a run folder; results.csv lists every finished
// run in the folder, of this grid or another. Every grid point is checked before the first run; a signal stops the
// study like a training run (the cut run resumes on the next invocation).
// Resuming: a run whose result.json holds the same settings is skipped. Rank 0 decides and broadcasts the list,
// so every rank skips the same runs. A run without result.json that was cut short (killed, session over) continues
// from its last checkpoint when that holds the same settings (`RunControl.resumeIfInterrupted`; use
// --checkpoint-every-epochs for long runs); its record's seconds then count only the continued part.
//
// Lockstep: a run may fail only for reasons every rank sees alike: bad settings (checked before training), a
// `TrainingError` (non-finite loss is a global value) or a `DataError` of the sampler (batch vs ranks or dataset
// size). These are recorded and the study goes on. After every run the ranks compare their outcome (one
// all-gather); a mismatch, or any other error (I/O, MPI), ends the study with an error, which the command line
// turns into MPI_Abort.
import Collective
import Data
import FileIO
import Foundation
import Tensor

/// What a study needs beyond the grid and the base config.
public struct StudyOptions: Sendable {
    /// The study folder.
    public var directory: String
    /// Re-run runs recorded as failed instead of skipping them.
    public var retryFailed = false
    /// Call the plotting script after the last run.
    public var plots = true
    /// Path of scripts/plot_study.py (nil: look next to the working directory and the executable).
    public var plotScript: String? = nil
    /// The Python interpreter for the plots.
    public var python = "python3"
    /// Run only the grid points whose value of each named axis is one of those listed (`--only "seed=0"`); the
    /// others are left for a later call. Folder names stay those of the whole grid. Empty: every point.
    public var only: [StudyAxis] = []

    public init(directory: String) { self.directory = directory }

    /// Whether `point` is one `only` selects.
    public func selects(_ point: [(name: String, value: String)]) -> Bool {
        only.allSatisfy { axis in point.contains { $0.name == axis.name && axis.values.contains($0.value) } }
    }
}

/// One run of a study: its settings and outcome, as written to DIR/runs/<run>/result.json.
public struct StudyRecord: Codable, Sendable, Equatable {
    /// The run's folder name (`StudyGrid.runName`).
    public var run: String
    /// The grid axes' values for this run, as written.
    public var parameters: [String: String]
    /// The full settings (with `out` cleared).
    public var config: TrainConfig
    /// "ok" or "failed".
    public var status: String
    /// Why the run failed (nil when ok).
    public var failure: String?
    /// The run's summary (nil when it failed).
    public var summary: RunSummary?
    /// Wall time of the run, failed or not.
    public var seconds: Double

    public var ok: Bool { status == "ok" }
}

/// What a finished study returns (identical on every rank): the record of every grid run, in grid order, and how
/// many were run now, skipped as finished, and failed.
public struct StudyOutcome: Sendable {
    public var records: [StudyRecord]
    public var ran: Int
    public var skipped: Int
    public var failed: Int
    /// Whether the plots were written (false when skipped, matplotlib missing, or on ranks other than 0).
    public var plotted: Bool
}

/// The settings that decide a run's result: everything but where and how verbosely it logs, and how often it
/// checkpoints and evaluates along the way.
func resultSettings(_ c: TrainConfig) -> TrainConfig {
    var c = c
    let d = TrainConfig()
    c.out = nil; c.quiet = false; c.logEvery = d.logEvery; c.blasThreads = d.blasThreads; c.debug = d.debug
    c.epochEval = d.epochEval; c.checkpointEvery = d.checkpointEvery; c.checkpointEveryEpochs = d.checkpointEveryEpochs
    c.checkpoint = d.checkpoint; c.checkpointMinutes = d.checkpointMinutes; c.stepTimeout = d.stepTimeout
    return c
}

/// The folder name of a run with settings `config` under `runs/`: `readable` (the grid's `runName`) and a short hash
/// of every setting that decides the result (`resultSettings`), so runs of different studies sharing a folder never
/// share a run folder unless they are the same run.
public func studyRunFolder(readable: String, config: TrainConfig) -> String {
    let json = (try? resultSettings(config).json()) ?? "\(resultSettings(config))"
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325   // FNV-1a, 64 bits
    for byte in json.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x100_0000_01b3
    }
    return readable + "_" + String(String(hash, radix: 16).suffix(8))
}

extension StudyGrid {
    /// The run folder of run `index` on top of `base` (see `studyRunFolder`).
    public func runFolder(_ index: Int, base: TrainConfig) throws -> String {
        studyRunFolder(readable: runName(index), config: try config(index, base: base))
    }
}

/// A study whose runs did not all succeed: every failed run (folder and reason) in grid order. Every rank throws
/// it alike after the study files are written.
public struct StudyRunsFailed: Error, CustomStringConvertible, Sendable {
    public let failures: [(run: String, reason: String)]
    public init(failures: [(run: String, reason: String)]) { self.failures = failures }
    public var description: String {
        "study: \(failures.count) run(s) failed:\n" + failures.map { "  runs/\($0.run): \($0.reason)" }
            .joined(separator: "\n")
    }
}

/// Runs every run of `grid` on top of `base` and writes the study files under `options.directory` (rank 0).
public func runStudy<C: Communicator>(grid: StudyGrid, base: TrainConfig, options: StudyOptions, comm: C,
                                      observer: RunObserver = SilentObserver()) throws -> StudyOutcome {
    let lead = comm.rank == 0
    let dir = options.directory
    let total = grid.count
    // Every run's config, all checked before the first run (identical on every rank: a pure function of the flags).
    var configs = [TrainConfig?](repeating: nil, count: total)
    var names = [String]()
    var problems = [String]()
    for i in 0..<total {
        let label = grid.point(i).map { "\($0.name)=\($0.value)" }.joined(separator: " ")
        do {
            var c = try grid.config(i, base: base)
            names.append(studyRunFolder(readable: grid.runName(i), config: c))
            c.out = dir + "/runs/" + names[i]
            let found = c.problems() + c.evaluationProblems()
            if found.isEmpty { configs[i] = c } else { problems.append("\(label): " + found.joined(separator: "; ")) }
        } catch {
            names.append(grid.runName(i))
            problems.append("\(label): \(error)")
        }
    }
    guard problems.isEmpty else {
        throw ConfigError("the grid has invalid settings; nothing was run:\n  " + problems.joined(separator: "\n  "))
    }
    precondition(Set(names).count == total, "grid run names are not unique: \(names)")
    StopSignal.install()
    let lock = try takeOutputFolder(dir, comm: comm, observer: observer, allowRun: true, overwrite: false)
    defer { lock?.release() }

    // Rank 0 finds the finished runs and tells the others.
    var records = [StudyRecord?](repeating: nil, count: total)
    var done = [UInt8](repeating: 0, count: total)
    if lead {
        try createDirectories(dir + "/runs")
        for i in 0..<total {
            let recordPath = dir + "/runs/" + names[i] + "/result.json"
            if !fileExists(recordPath) { done[i] = 2 }  // never finished: continue it if it was cut short
            guard let record = loadRecord(path: recordPath) else { continue }
            let expected = resultSettings(configs[i] ?? (try? grid.config(i, base: base)) ?? base)
            if resultSettings(record.config) == expected && (record.ok || !options.retryFailed) {
                records[i] = record
                done[i] = 1
            }
        }
    }
    try comm.broadcast(bytes: &done, root: 0)
    let skipped = done.filter { $0 == 1 }.count
    let selected = (0..<total).filter { done[$0] != 1 && options.selects(grid.point($0)) }
    if lead {
        let axes = grid.axes.map { "\($0.name) (\($0.values.count))" }.joined(separator: " × ")
        observer.progress("study: \(total) run(s) over \(axes), "
                          + "\(skipped) already finished, \(comm.size) rank(s), writing \(dir)")
    }

    var datasets = [String: (train: Dataset, test: Dataset)]()
    // ETA: the seconds spent per full run's worth of steps (a resumed run counts for the part it trained now).
    var ran = 0, failed = 0, spent = 0.0, runsWorth = 0.0
    let toRun = selected.count
    if lead && toRun < total - skipped {
        observer.progress("study: --only selects \(toRun) of the \(total - skipped) unfinished run(s)")
    }
    for i in selected {
        let label = grid.point(i).map { "\($0.name)=\($0.value)" }.joined(separator: " ")
        if lead {
            let eta = runsWorth <= 0 ? "?" : formatDuration(spent / runsWorth * Double(toRun - ran))
            observer.progress("[study \(i + 1)/\(total) | \(ran)/\(toRun) run now, \(failed) failed | ETA \(eta)] "
                              + label)
        }
        let start = monotonicSeconds()
        var summary: RunSummary?
        var failure: String?
        if let config = configs[i] {
            // Loading may fail on one rank only (a file missing on one host): agree before any training collective.
            let key = "\(config.dataset)|\(config.dataDir)|\(config.trainLimit ?? -1)|\(config.testLimit ?? -1)"
            do {
                if datasets[key] == nil { datasets[key] = try loadDatasets(config) }
            } catch let e as DataError {
                failure = e.description
            }
            let loaded = try comm.allGather(value: Int32(failure == nil ? 0 : 1))
            if failure == nil, loaded.contains(1) {
                failure = "the dataset could not be loaded on rank(s) \(loaded.indices.filter { loaded[$0] == 1 })"
            }
            if failure == nil, let (train, test) = datasets[key] {
                do {
                    if lead { try? FileManager.default.removeItem(atPath: config.out! + "/result.json") }
                    let interrupted = done[i] == 2
                    let control = RunControl(resume: interrupted ? config.out : nil, resumeIfInterrupted: interrupted,
                                             overwrite: true)
                    summary = try runTraining(config: config, comm: comm, train: train, test: test,
                                              observer: PrefixedObserver(observer, prefix: "[\(i + 1)/\(total)] "),
                                              control: control)
                } catch let e as TrainingError {
                    failure = e.message
                } catch let e as DataError {
                    failure = e.description
                } catch let e as RunInterrupted {
                    throw RunInterrupted(signal: e.signal, step: e.step, message: studyStopMessage(
                        e, during: "during run runs/\(names[i]) (its checkpoint is kept and it continues from there)"))
                }
            }
        }
        // Every rank must agree on the outcome before the next run issues its collectives.
        let outcomes = try comm.allGather(value: Int32(failure == nil ? 0 : 1))
        if Set(outcomes).count != 1 {
            throw TrainingError("ranks disagree on the outcome of run \(names[i]) (failed per rank: \(outcomes)); "
                                + "this rank: \(failure ?? "ok")")
        }
        let seconds = monotonicSeconds() - start
        spent += seconds
        runsWorth += summary?.shareRunNow ?? 1
        ran += 1
        if failure != nil { failed += 1 }
        let parameters = Dictionary(uniqueKeysWithValues: grid.point(i).map { ($0.name, $0.value) })
        let settings = resultSettings(configs[i] ?? (try? grid.config(i, base: base)) ?? base)
        let record = StudyRecord(run: names[i], parameters: parameters, config: settings,
                                 status: failure == nil ? "ok" : "failed", failure: failure, summary: summary,
                                 seconds: seconds)
        records[i] = record
        if lead {
            let runDir = dir + "/runs/" + names[i]
            try createDirectories(runDir)
            try writeFileAtomically(Array(jsonLine(record).utf8 + [0x0A]), to: runDir + "/result.json")
            try writeStudyFiles(records: records, grid: grid, directory: dir)
            if let summary {
                observer.progress(String(format: "[study %d/%d] %@: test accuracy %.4f (%@), final loss %.4f, %.1fs",
                                         i + 1, total, label, summary.testAccuracy, summary.eval, summary.finalLoss,
                                         seconds))
            } else {
                observer.progress("[study \(i + 1)/\(total)] \(label): FAILED: \(failure ?? "?")")
            }
        }
        // A signal that arrived after the run's last step: stop before the next run, on every rank alike.
        let signals = try comm.allGather(value: StopSignal.received)
        if let signal = signals.first(where: { $0 != 0 }) {
            let stop = RunInterrupted(signal: signals.contains(SIGINT) ? SIGINT : signal, step: 0, message: "")
            throw RunInterrupted(signal: stop.signal, step: 0, message: studyStopMessage(
                stop, during: "after run runs/\(names[i]) finished"))
        }
    }

    var plotted = false
    if lead {
        try writeStudyFiles(records: records, grid: grid, directory: dir)
        if options.plots { plotted = plotStudy(directory: dir, options: options, observer: observer) }
        observer.progress("study: \(ran) run(s) now (\(failed) failed), \(skipped) skipped as finished; "
                          + "results in \(dir)/results.csv and \(dir)/summary.md")
    }
    // Every rank returns the same records: the skipped ones were only loaded on rank 0, so ranks other than 0
    // fill them from rank 0's JSON. Runs that `--only` left out have none.
    var bytes = lead ? Array(jsonLine(records.compactMap { $0 }).utf8) : []
    try comm.broadcast(bytes: &bytes, root: 0)
    let all = try studyDecoder().decode([StudyRecord].self, from: Foundation.Data(bytes))
    return StudyOutcome(records: all, ran: ran, skipped: skipped, failed: failed, plotted: plotted)
}

/// What rank 0 prints when a signal stops a study.
func studyStopMessage(_ stop: RunInterrupted, during what: String) -> String {
    let name = stop.signal == SIGINT ? "SIGINT" : stop.signal == SIGTERM ? "SIGTERM" : "signal \(stop.signal)"
    return "study: stopped by \(name) \(what). Continue with the same dtrain study command: finished runs are "
        + "skipped and a cut run resumes from its checkpoint"
}

/// The record at `path`, or nil when missing or unreadable (the run is then run again).
func loadRecord(path: String) -> StudyRecord? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return try? studyDecoder().decode(StudyRecord.self, from: data)
}

/// A decoder reading the "nan"/"inf" strings `jsonLine` writes for non-finite numbers.
func studyDecoder() -> JSONDecoder {
    let d = JSONDecoder()
    d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                              nan: "nan")
    return d
}

/// Writes DIR/results.csv and DIR/summary.md from the records known so far (nil: not run yet).
func writeStudyFiles(records: [StudyRecord?], grid: StudyGrid, directory: String) throws {
    let known = records.compactMap { $0 }
    // results.csv also keeps the finished runs of other grids run in the same folder.
    let mine = Set(known.map(\.run))
    let others = ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/runs")) ?? []).sorted()
        .filter { !mine.contains($0) }.compactMap { loadRecord(path: directory + "/runs/" + $0 + "/result.json") }
    try writeFileAtomically(Array(resultsCSV(known + others).utf8), to: directory + "/results.csv")
    try writeFileAtomically(Array(studySummaryMarkdown(known, grid: grid, otherRuns: others.count).utf8),
                            to: directory + "/summary.md")
}

// MARK: - results.csv

/// Columns of results.csv after the run name, status and the config keys (see `TrainConfig.parameterColumns`).
public let resultColumns = ["test_accuracy", "test_eval", "acc_head", "acc_linear_probe", "acc_knn", "final_loss",
                            "steps", "ranks", "seconds", "images_per_s", "resumed_at_step", "failure"]

/// results.csv: a header and one row per record: `run`, `status`, every setting, then `resultColumns`.
public func resultsCSV(_ records: [StudyRecord]) -> String {
    let header = ["run", "status"] + TrainConfig().parameterColumns.map(\.name) + resultColumns
    var lines = [header.map(csvField).joined(separator: ",")]
    func number(_ v: Double?) -> String { v.map { String(format: "%.6g", $0) } ?? "" }
    for r in records {
        let s = r.summary
        var row = [r.run, r.status] + r.config.parameterColumns.map(\.value)
        row += [number(s?.testAccuracy), s?.eval ?? "", number(s?.accuracies["head"]),
                number(s?.accuracies["linear-probe"]), number(s?.accuracies["knn"]), number(s?.finalLoss),
                s.map { "\($0.steps)" } ?? "", s.map { "\($0.ranks)" } ?? "", String(format: "%.2f", r.seconds),
                number(s?.imagesPerS), s?.resumedAtStep.map { "\($0)" } ?? "", r.failure ?? ""]
        lines.append(row.map(csvField).joined(separator: ","))
    }
    return lines.joined(separator: "\n") + "\n"
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break; quotes doubled.
func csvField(_ s: String) -> String {
    guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
    return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

// MARK: - Plots

/// Runs `python3 scripts/plot_study.py DIR`; prints how to install matplotlib when it is missing. Returns whether
/// the plots were written.
func plotStudy(directory: String, options: StudyOptions, observer: RunObserver) -> Bool {
    guard let script = options.plotScript ?? findPlotScript() else {
        observer.progress("study: scripts/plot_study.py not found (run from the repository or pass --plot-script); "
                          + "no plots")
        return false
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [options.python, script, directory]
    do {
        try process.run()
        process.waitUntilExit()
    } catch {
        observer.progress("study: cannot run \(options.python) \(script): \(error); no plots")
        return false
    }
    switch process.terminationStatus {
    case 0: return true
    case plotScriptMissingMatplotlib:
        observer.progress("study: matplotlib is missing, so no plots (results.csv and summary.md are written). "
                          + "Install it with `make plot-deps` or `\(options.python) -m pip install matplotlib`, then "
                          + "run `\(options.python) \(script) \(directory)`")
    default:
        observer.progress("study: \(script) exited with status \(process.terminationStatus); no plots")
    }
    return false
}

/// The exit status of scripts/plot_study.py when matplotlib cannot be imported.
public let plotScriptMissingMatplotlib: Int32 = 3

/// scripts/plot_study.py where `findScript` finds it, or nil.
func findPlotScript() -> String? { findScript("plot_study.py") }

/// The path of one of dtrain's scripts (`plot_study.py`, `plot_run.py`): in ./scripts, beside the executable
/// (a copied binary with its scripts), in PREFIX/share/dtrain/scripts for an executable in PREFIX/bin
/// (`make install`), or in the repository holding the executable (.build/<configuration>/dtrain); nil if nowhere.
public func findScript(_ name: String) -> String? {
    var candidates = [FileManager.default.currentDirectoryPath + "/scripts/" + name]
    let executable = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
    var folder = executable.deletingLastPathComponent()
    candidates.append(folder.appendingPathComponent(name).path)
    candidates.append(folder.deletingLastPathComponent().appendingPathComponent("share/dtrain/scripts/" + name).path)
    for _ in 0..<4 {
        candidates.append(folder.appendingPathComponent("scripts/" + name).path)
        folder = folder.deletingLastPathComponent()
    }
    return candidates.first { FileManager.default.fileExists(atPath: $0) }
}

// MARK: - Observer

/// Forwards every line to `inner` with `prefix` in front.
final class PrefixedObserver: RunObserver {
    let inner: RunObserver
    let prefix: String
    init(_ inner: RunObserver, prefix: String) { self.inner = inner; self.prefix = prefix }
    func progress(_ line: String) { inner.progress(prefix + line) }
    func logged(_ metrics: StepMetrics) { inner.logged(metrics) }
    func evaluated(_ metrics: EpochMetrics) { inner.evaluated(metrics) }
}
