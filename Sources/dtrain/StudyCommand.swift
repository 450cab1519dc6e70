import ArgumentParser
import Collective
import Foundation
import Train

/// `dtrain study`: every combination of a grid of training settings, one run after another in the same MPI job.
struct StudyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study",
        abstract: "Run every combination of a grid of training settings and summarise them (CSV, markdown, plots).",
        discussion: """
            Every train option can be a grid axis (config keys: loss, batch-size or batch, lambda, tau, model, seed, \
            lr, epochs, eval, …); the other flags apply to every run. All ranks cooperate on each run. Re-running \
            with the same --out skips finished runs. Writes DIR/results.csv, DIR/summary.md, DIR/runs/<run>/ and, \
            with matplotlib (make plot-deps), DIR/accuracy_vs_batch.png and DIR/accuracy_vs_lambda.png.
            A union of grids is written with | between them: "loss=supcon batch=512,1024 | loss=clce batch=32,64" \
            (the parts name the same axes in the same order).
            Presets: batch-scaling, lambda-sweep, ablation, large-batch, large-batch-steps (see docs/STUDIES.md); a \
            --grid axis overrides the preset's axis of the same name.
            Examples:
              mpirun -n 4 dtrain study --grid "loss=ce,clce batch=64,256 seed=0,1,2" --epochs 5 --out runs/s1
              mpirun -n 2 dtrain study --preset ablation --train-limit 5000 --epochs 2 --out runs/ablation
            """)

    @Option(help: ArgumentHelp("Grid axes \"name=v1,v2 name2=v3,…\" (repeatable; axes separated by spaces).",
                               valueName: "axes"))
    var grid: [String] = []
    @Option(help: "A predefined grid: batch-scaling, lambda-sweep, ablation, large-batch or large-batch-steps.")
    var preset: String?
    @Option(help: ArgumentHelp("Run only the grid points with these axis values, \"name=v1,v2 …\" (e.g. \"seed=0\" "
                               + "to finish one seed first); the rest is left for a later call with the same --out.",
                               valueName: "axes"))
    var only: String?
    @Flag(help: "Run again the runs recorded as failed (finished runs are skipped otherwise).")
    var retryFailed = false
    @Flag(help: "Do not call scripts/plot_study.py at the end.")
    var noPlots = false
    @Option(help: "Path of the plotting script. (default: scripts/plot_study.py here or in the repository)")
    var plotScript: String?
    @Option(help: "Python interpreter for the plots.")
    var python = "python3"

    @OptionGroup(title: "Data") var data: DataOptions
    @OptionGroup(title: "Model and loss") var model: ModelOptions
    @OptionGroup(title: "Optimisation") var optim: OptimOptions
    @OptionGroup(title: "Run (--out is the study folder)") var runOptions: RunOptions
    @OptionGroup(title: "Evaluation") var evalOptions: EvalOptions

    func makeGrid() throws -> StudyGrid {
        do {
            return try StudyGrid.make(preset: preset, grid: grid.isEmpty ? nil : grid.joined(separator: " "))
        } catch let e as ConfigError {
            throw ValidationError(e.message)
        }
    }

    /// The `--only` selection, checked against the grid's axes.
    func makeSelection(grid: StudyGrid) throws -> [StudyAxis] {
        guard let only else { return [] }
        let axes: [StudyAxis]
        do { axes = try StudyGrid.parsePart(only) } catch let e as ConfigError { throw ValidationError("--only: \(e.message)") }
        for axis in axes {
            guard let gridAxis = grid.axes.first(where: { $0.name == axis.name }) else {
                throw ValidationError("--only: \(axis.name) is not an axis of the grid ("
                                      + grid.axes.map(\.name).joined(separator: ", ") + ")")
            }
            for v in axis.values where !gridAxis.values.contains(v) {
                throw ValidationError("--only: the grid has no \(axis.name)=\(v) (values: "
                                      + gridAxis.values.joined(separator: ",") + ")")
            }
        }
        return axes
    }

    func validate() throws {
        guard runOptions.out != nil else { throw ValidationError("dtrain study needs --out DIR (the study folder)") }
        let grid = try makeGrid()
        _ = try makeSelection(grid: grid)
        let base = try makeConfig(data: data, model: model, optim: optim, run: runOptions, eval: evalOptions)
        // Every grid value is checked now, before MPI starts and hours before its run would be reached.
        var problems = [String]()
        for i in 0..<grid.count {
            let label = grid.point(i).map { "\($0.name)=\($0.value)" }.joined(separator: " ")
            do {
                var c = try grid.config(i, base: base)
                c.out = "runs"
                let found = c.problems() + c.evaluationProblems()
                if !found.isEmpty { problems.append("\(label): " + found.joined(separator: "; ")) }
            } catch {
                problems.append("\(label): \(error)")
            }
        }
        if !problems.isEmpty {
            throw ValidationError("the grid has invalid settings; nothing was run:\n  "
                                  + problems.joined(separator: "\n  "))
        }
    }

    func run() throws {
        var base = try makeConfig(data: data, model: model, optim: optim, run: runOptions, eval: evalOptions)
        let grid = try makeGrid()
        var options = StudyOptions(directory: base.out!)
        options.retryFailed = retryFailed
        options.only = try makeSelection(grid: grid)
        options.plots = !noPlots
        options.plotScript = plotScript
        options.python = python
        base.out = nil
        try runOnWorld(blasThreads: base.blasThreads) { comm in
            let observer = PrintingObserver(rank: comm.rank, perRank: false)
            if comm.rank == 0 {
                let defaults = TrainConfig().parameterColumns, given = base.parameterColumns
                for axis in grid.axes {
                    let i = defaults.firstIndex { $0.name == axis.name }
                    if let i, defaults[i].value != given[i].value {
                        printError("study: note: grid axis \(axis.name) overrides the value \(given[i].value) "
                                   + "set by flag")
                    }
                }
            }
            let outcome = try runStudy(grid: grid, base: base, options: options, comm: comm, observer: observer)
            if comm.rank == 0, let md = FileManager.default.contents(atPath: options.directory + "/summary.md") {
                print(String(decoding: md, as: UTF8.self))
            }
            // Every rank holds the same records: all exit non-zero alike when a run failed (now or before).
            let failed = outcome.records.filter { !$0.ok }.map { (run: $0.run, reason: $0.failure ?? "failed") }
            if !failed.isEmpty { throw StudyRunsFailed(failures: failed) }
        }
    }
}
