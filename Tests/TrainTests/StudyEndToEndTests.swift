import Collective
import FileIO
import Foundation
import Testing
@testable import Train

/// Collects rank 0's progress lines.
final class CollectingObserver: RunObserver, @unchecked Sendable {
    var lines: [String] = []
    func progress(_ line: String) { lines.append(line) }
    func logged(_ metrics: StepMetrics) {}
    func evaluated(_ metrics: EpochMetrics) {}
}

/// Whether `python3` can import matplotlib (the PNG checks are skipped otherwise).
func matplotlibAvailable() -> Bool {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import matplotlib"]
    p.standardError = FileHandle.nullDevice
    do { try p.run(); p.waitUntilExit() } catch { return false }
    return p.terminationStatus == 0
}

/// The rows of a CSV file without quoted commas (the tests' files have none in the fields they read).
func csvRows(_ path: String) throws -> [[String: String]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    let lines = text.split(separator: "\n").map(String.init)
    let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    return lines.dropFirst().map { line in
        let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return Dictionary(uniqueKeysWithValues: zip(header, fields))
    }
}

/// Two in-process ranks on a tiny synthetic problem: every preset runs end to end, results.csv and summary.md are
/// complete, a second run skips everything, failures are recorded, and with matplotlib the PNGs are written.
@Suite(.serialized) struct StudyEndToEndTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/plot_study.py").path

    func tinyBase() -> TrainConfig {
        var c = TrainConfig.synthetic(batchSize: 16, trainLimit: 64, testLimit: 40)
        c.epochs = 1; c.probeEpochs = 2; c.knnK = 5
        return c
    }

    func study(_ grid: StudyGrid, _ dir: String, base: TrainConfig? = nil, plots: Bool = false) throws
        -> (StudyOutcome, CollectingObserver) {
        var options = StudyOptions(directory: dir)
        options.plots = plots
        options.plotScript = Self.script
        let observer = CollectingObserver()
        let b = base ?? tinyBase()
        let outcomes = try LocalGroup.run(size: 2) { comm in
            try runStudy(grid: grid, base: b, options: options, comm: comm,
                         observer: comm.rank == 0 ? observer : SilentObserver())
        }
        // Every rank returns the same records.
        #expect(outcomes[0].records == outcomes[1].records)
        return (outcomes[0], observer)
    }

    func freshDirectory(_ name: String) -> String {
        let dir = NSTemporaryDirectory() + "dtrain-study-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        return dir
    }

    @Test func presetsRunEndToEnd() throws {
        let plots = matplotlibAvailable()
        if !plots { print("StudyEndToEndTests: python3 with matplotlib not found; skipping the PNG checks") }

        // batch-scaling (seed and batch axes overridden to keep the test fast): loss × batch pivot, batch plot.
        let scalingDir = freshDirectory("scaling")
        let scaling = try StudyGrid.make(preset: "batch-scaling", grid: "batch=16,8 seed=0")
        let (outcome, observer) = try study(scaling, scalingDir, plots: plots)
        #expect(outcome.ran == 10 && outcome.skipped == 0 && outcome.failed == 0)
        let rows = try csvRows(scalingDir + "/results.csv")
        #expect(rows.count == 10)
        let header = try String(contentsOfFile: scalingDir + "/results.csv", encoding: .utf8).prefix { $0 != "\n" }
        for column in ["run", "status", "loss", "batch-size", "seed", "lambda", "lr", "eval", "test_accuracy",
                       "test_eval", "final_loss", "seconds", "images_per_s", "resumed_at_step", "failure"] {
            #expect(header.split(separator: ",").contains(Substring(column)), "column \(column)")
        }
        for row in rows {
            #expect(row["status"] == "ok")
            #expect(Double(row["test_accuracy"]!)! >= 0 && Double(row["final_loss"]!)!.isFinite)
            #expect(row["test_eval"] == (row["loss"] == "supcon" ? "linear-probe" : "head"))
        }
        let md = try String(contentsOfFile: scalingDir + "/summary.md", encoding: .utf8)
        #expect(md.contains("## loss × batch-size"))
        #expect(md.contains("| loss \\ batch-size | 8 | 16 |"), "pivot columns in numeric order")
        #expect(md.contains("| supcon | ") && md.contains("(linear-probe)") && md.contains("(head)"))
        // One seed per cell here: a value with no spread, never a "± 0.00" that was not measured.
        #expect(!md.contains("±  ") && !md.contains("± 0.00 ("), "single-run cells must not claim a spread")
        #expect(observer.lines.contains { $0.hasPrefix("[study 10/10") })
        if plots { #expect(FileManager.default.fileExists(atPath: scalingDir + "/accuracy_vs_batch.png")) }
        #expect(outcome.plotted == plots)
        // scripts/compare_losses.py: CLCE minus each baseline per batch size, paired by seed.
        let compare = Process()
        compare.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        compare.arguments = ["python3", Self.script.replacingOccurrences(of: "plot_study.py", with: "compare_losses.py"),
                             scalingDir]
        let pipe = Pipe()
        compare.standardOutput = pipe
        try compare.run()
        let table = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        compare.waitUntilExit()
        #expect(compare.terminationStatus == 0)
        #expect(table.contains("| clce − baseline (points) | batch-size 8 | batch-size 16 |"), "\(table)")
        for baseline in ["ce (head)", "supcon (linear-probe)", "ce+supcon (head)", "clce-no-hnm (head)"] {
            #expect(table.contains("| \(baseline) | "), "row \(baseline)")
        }

        // lambda-sweep: λ = 1 trains no head and is scored by the linear probe; λ plot.
        let sweepDir = freshDirectory("sweep")
        let sweep = try StudyGrid.make(preset: "lambda-sweep", grid: "seed=0 batch=16")
        let (sweepOutcome, _) = try study(sweep, sweepDir, plots: plots)
        #expect(sweepOutcome.records.count == 7 && sweepOutcome.failed == 0)
        let sweepRows = try csvRows(sweepDir + "/results.csv")
        #expect(sweepRows.first { $0["lambda"] == "1.0" }?["test_eval"] == "linear-probe")
        #expect(sweepRows.first { $0["lambda"] == "0.0" }?["test_eval"] == "head")
        let sweepMd = try String(contentsOfFile: sweepDir + "/summary.md", encoding: .utf8)
        #expect(sweepMd.contains("## By lambda"))
        if plots { #expect(FileManager.default.fileExists(atPath: sweepDir + "/accuracy_vs_lambda.png")) }

        // ablation, all three seeds; then resumed: nothing runs again.
        let ablationDir = freshDirectory("ablation")
        let ablation = try StudyGrid.make(preset: "ablation", grid: nil)
        let (first, _) = try study(ablation, ablationDir, plots: plots)
        #expect(first.ran == 9 && first.skipped == 0)
        // Only loss and seed vary: a bar chart per loss with error bars.
        if plots { #expect(FileManager.default.fileExists(atPath: ablationDir + "/accuracy_by_loss.png")) }
        let csv = try String(contentsOfFile: ablationDir + "/results.csv", encoding: .utf8)
        let ablationMd = try String(contentsOfFile: ablationDir + "/summary.md", encoding: .utf8)
        #expect(ablationMd.contains("mean ± sample std over 3 seed(s)"))
        #expect(ablationMd.contains("| clce-no-hnm | 3/3 |"))
        // While a study is still running (seed 2 not yet done), cells say how many seeds they hold.
        let partial = studySummaryMarkdown(first.records.filter { $0.config.seed < 2 }, grid: ablation)
        #expect(partial.contains("| clce | 2/2 | ") && partial.contains("(head, 2 of 3 seeds run)"), "\(partial)")
        #expect(!ablationMd.contains("seeds run"))
        let (second, secondObserver) = try study(ablation, ablationDir)
        #expect(second.ran == 0 && second.skipped == 9)
        #expect(second.records == first.records)
        #expect(try String(contentsOfFile: ablationDir + "/results.csv", encoding: .utf8) == csv)
        #expect(secondObserver.lines.contains { $0.contains("9 already finished") })
        // Changing a setting that is not an axis (epochs) makes every run stale.
        var longer = tinyBase()
        longer.epochs = 2
        let (third, _) = try study(StudyGrid.make(preset: "ablation", grid: "seed=0"), ablationDir, base: longer)
        #expect(third.ran == 3 && third.skipped == 0)
        for dir in [scalingDir, sweepDir, ablationDir] { try? FileManager.default.removeItem(atPath: dir) }
    }

    @Test func failedRunsAreRecordedAndTheStudyGoesOn() throws {
        let dir = freshDirectory("failures")
        // A value out of range anywhere in the grid stops the study before its first run.
        let bad = try StudyGrid.parse("loss=ce lr=0.05,1e30 lambda=0.5,2")
        do {
            _ = try study(bad, dir)
            Issue.record("lambda=2 accepted")
        } catch {
            #expect("\(error)".contains("lambda=2: --lambda must be in [0, 1]"), "\(error)")
            #expect("\(error)".contains("nothing was run"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/runs"))
        // lr 1e30 makes the loss non-finite after the first step; batch 1 < 2 ranks.
        let grid = try StudyGrid.parse("loss=ce lr=0.05,1e30 batch=1,16")
        let (outcome, observer) = try study(grid, dir)
        #expect(outcome.records.count == 4)
        func record(_ name: String) -> StudyRecord? { outcome.records.first { $0.run.hasPrefix(name + "_") } }
        #expect(record("lr=0.05_batch-size=16")?.ok == true)
        let nonFinite = try #require(record("lr=1e30_batch-size=16"))
        #expect(!nonFinite.ok && nonFinite.failure!.contains("non-finite loss"))
        #expect(record("lr=0.05_batch-size=1")?.failure?.contains("smaller than the 2 ranks") == true)
        #expect(outcome.failed == 3)
        let rows = try csvRows(dir + "/results.csv")
        #expect(rows.count == 4 && rows.filter { $0["status"] == "failed" }.count == 3)
        let failedRow = rows.first { $0["run"]?.hasPrefix("lr=1e30_batch-size=16_") == true }
        #expect(failedRow?["failure"]?.contains("non-finite") == true)
        let md = try String(contentsOfFile: dir + "/summary.md", encoding: .utf8)
        #expect(md.contains("## Failed runs") && md.contains("failed"))
        #expect(observer.lines.contains { $0.contains("FAILED: non-finite loss") })
        // Failed runs count as finished unless asked to retry.
        let (again, _) = try study(grid, dir)
        #expect(again.ran == 0 && again.skipped == 4)
        var options = StudyOptions(directory: dir)
        options.retryFailed = true
        options.plots = false
        let base = tinyBase()
        let retried = try LocalGroup.run(size: 2) { comm in
            try runStudy(grid: grid, base: base, options: options, comm: comm)
        }[0]
        #expect(retried.ran == 3 && retried.skipped == 1 && retried.failed == 3)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Two grids in one study folder whose axes give the same readable names (`seed=0`) keep apart: each run's
    /// folder carries a hash of its full settings, and results.csv lists the finished runs of both.
    @Test func gridsSharingAFolderDoNotCollide() throws {
        let dir = freshDirectory("shared")
        let ce = try StudyGrid.parse("loss=ce seed=0,1"), clce = try StudyGrid.parse("loss=clce seed=0,1")
        let (first, _) = try study(ce, dir)
        let (second, _) = try study(clce, dir)
        #expect(first.ran == 2 && second.ran == 2 && second.skipped == 0)
        let names = Set(first.records.map(\.run) + second.records.map(\.run))
        #expect(names.count == 4 && names.allSatisfy { $0.hasPrefix("seed=") }, "\(names)")
        #expect(try ce.runFolder(0, base: tinyBase()) != clce.runFolder(0, base: tinyBase()))
        let rows = try csvRows(dir + "/results.csv")
        #expect(Set(rows.compactMap { $0["run"] }) == names)
        #expect(Set(rows.compactMap { $0["loss"] }) == ["ce", "clce"])
        // Running the first grid again skips its finished runs.
        let (again, _) = try study(ce, dir)
        #expect(again.ran == 0 && again.skipped == 2)
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A run cut short (here: a rank throws in epoch 2 of 3, after the epoch-1 checkpoint) continues from its
    /// checkpoint when the study is run again, and ends exactly where the uninterrupted study does. A checkpoint that
    /// cannot be used (corrupt) is noted and the run starts afresh, with the same result.
    @Test func anInterruptedRunContinuesFromItsCheckpoint() throws {
        var base = tinyBase()
        base.epochs = 3
        base.checkpointEveryEpochs = 1
        let grid = try StudyGrid.parse("loss=clce,ce")
        let referenceDir = freshDirectory("uninterrupted")
        let (reference, _) = try study(grid, referenceDir, base: base)
        #expect(reference.ran == 2 && reference.failed == 0)

        let dir = freshDirectory("interrupted")
        var first = try grid.config(0, base: base)
        first.out = dir + "/runs/" + (try grid.runFolder(0, base: base))
        let data = try loadDatasets(first)
        #expect(throws: TrainingError.self) {
            try LocalGroup.run(size: 2) { comm in
                try runTraining(config: first, comm: comm, train: data.train, test: data.test,
                                control: RunControl(failAtStep: 6, failRank: 1))  // 4 steps per epoch
            }
        }
        #expect(fileExists(first.out! + "/checkpoint.safetensors"))
        #expect(!fileExists(first.out! + "/result.json"))
        let (resumed, observer) = try study(grid, dir, base: base)
        #expect(resumed.ran == 2 && resumed.skipped == 0 && resumed.failed == 0)
        #expect(observer.lines.contains { $0.contains("resumed from") && $0.contains("at step 4") })
        #expect(resumed.records.map(\.summary?.finalLoss) == reference.records.map(\.summary?.finalLoss))
        #expect(resumed.records.map(\.summary?.testAccuracy) == reference.records.map(\.summary?.testAccuracy))
        #expect(resumed.records.map(\.summary?.steps) == [12, 12])
        #expect(resumed.records.map(\.summary?.resumedAtStep) == [4, nil])
        #expect(reference.records.map(\.summary?.resumedAtStep) == [nil, nil])
        #expect(try csvRows(dir + "/results.csv").map { $0["resumed_at_step"] } == ["4", ""])

        // A corrupt checkpoint: not resumed, started afresh, same result.
        let corruptDir = freshDirectory("corrupt")
        let runDir = corruptDir + "/runs/" + (try grid.runFolder(0, base: base))
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        try writeFileAtomically(Array("not a checkpoint".utf8), to: runDir + "/checkpoint.safetensors")
        let (fresh, freshObserver) = try study(grid, corruptDir, base: base)
        #expect(freshObserver.lines.contains { $0.contains("not resuming, starting afresh") })
        #expect(!freshObserver.lines.contains { $0.contains("resumed from") })
        #expect(fresh.records.map(\.summary?.finalLoss) == reference.records.map(\.summary?.finalLoss))
        for d in [referenceDir, dir, corruptDir] { try? FileManager.default.removeItem(atPath: d) }
    }

    /// `epoch-eval` false skips the per-epoch evaluations only: same final result, one evaluation line instead of
    /// one per epoch, and a finished study counts as finished with either setting.
    @Test func skippingPerEpochEvaluationKeepsTheResult() throws {
        var base = tinyBase()
        base.epochs = 3
        var once = base
        once.epochEval = false
        let grid = try StudyGrid.parse("loss=supcon,clce")
        let everyDir = freshDirectory("every-epoch"), onceDir = freshDirectory("last-epoch")
        let (every, _) = try study(grid, everyDir, base: base)
        let (last, _) = try study(grid, onceDir, base: once)
        #expect(last.records.map(\.summary?.finalLoss) == every.records.map(\.summary?.finalLoss))
        #expect(last.records.map(\.summary?.testAccuracy) == every.records.map(\.summary?.testAccuracy))
        func evaluations(_ dir: String) throws -> Int {
            try String(contentsOfFile: dir + "/runs/" + grid.runFolder(0, base: base) + "/metrics.jsonl", encoding: .utf8)
                .split(separator: "\n").filter { $0.contains("\"test_accuracy\"") }.count
        }
        #expect(try evaluations(everyDir) == 3)
        #expect(try evaluations(onceDir) == 1)
        let (again, _) = try study(grid, everyDir, base: once)
        #expect(again.ran == 0 && again.skipped == 2)
        for d in [everyDir, onceDir] { try? FileManager.default.removeItem(atPath: d) }
    }
}
