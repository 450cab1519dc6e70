import ArgumentParser
import Foundation
import Train

/// `dtrain plot RUN_DIR…`: training curves of one or several runs, drawn by plot_run.py with matplotlib.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw loss, learning rate and test accuracy against step for one or several runs.",
        discussion: """
            Reads RUN_DIR/metrics.jsonl (and config.json) of each run folder written by `dtrain train --out`; \
            several runs are overlaid, the legend naming each by its folder. Needs python3 with matplotlib \
            (`make plot-deps`). Example: dtrain plot runs/ce runs/clce --out ce-vs-clce.png
            """)

    @Argument(help: "Run folders written by `dtrain train --out`.")
    var runs: [String] = []

    @Option(help: "PNG to write. (default: RUN_DIR/curves.png for one run, curves.png for several)")
    var out: String?

    @Option(help: "Path of plot_run.py. (default: beside dtrain, in ./scripts or PREFIX/share/dtrain/scripts)")
    var script: String?

    @Option(help: "Python interpreter.")
    var python = "python3"

    func validate() throws {
        guard !runs.isEmpty else { throw ValidationError("give at least one run folder") }
        for run in runs where !FileManager.default.fileExists(atPath: run + "/metrics.jsonl") {
            throw ValidationError("\(run)/metrics.jsonl: no such file (a folder written by `dtrain train --out`?)")
        }
    }

    func run() throws {
        guard let path = script ?? findScript("plot_run.py") else {
            printError("dtrain plot: plot_run.py not found beside the executable, in ./scripts or in "
                       + "PREFIX/share/dtrain/scripts; pass --script PATH")
            throw ExitCode(2)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, path] + (out.map { ["--out", $0] } ?? []) + runs
        do { try process.run() } catch {
            printError("dtrain plot: cannot run \(python) \(path): \(error)")
            throw ExitCode(2)
        }
        process.waitUntilExit()
        if process.terminationStatus == plotScriptMissingMatplotlib {
            printError("dtrain plot: matplotlib is missing; install it with `make plot-deps` or "
                       + "`\(python) -m pip install matplotlib`")
        }
        if process.terminationStatus != 0 { throw ExitCode(process.terminationStatus) }
    }
}
