import ArgumentParser
import Collective
import Foundation
import Loss
import Train

/// `dtrain train`: trains an encoder with CLCE (or a baseline) on every rank of the MPI job.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train an encoder and head with CLCE or a baseline loss (the default command).",
        discussion: """
            Each rank embeds its share of the global batch (two augmented views per image); embeddings are \
            all-gathered so positives and hard negatives span all ranks; gradients are reduce-scattered and \
            all-reduced. The same global batch gives the same training whatever the number of ranks.
            Examples:
              mpirun -n 4 dtrain train --model mlp --loss clce --epochs 1
              dtrain train --debug --train-limit 2000 --epochs 1     (one rank, extra checks)
              mpirun -n 4 dtrain train --out runs/a --checkpoint-every 100 ...
              mpirun -n 2 dtrain train --resume runs/a          (continue it, here on 2 ranks)
            With --out DIR, rank 0 writes DIR/checkpoint.safetensors atomically every epoch, every \
            --checkpoint-minutes, at the end, and when SIGINT or SIGTERM stops the run (every rank finishes the \
            step, exit 130 or 143; a second signal ends it at once); --no-checkpoint turns them off. A run holds \
            DIR/.dtrain.lock: a second job on DIR is refused, and a folder holding a run needs --resume or \
            --overwrite. --resume DIR continues from it with any rank count: its settings are the \
            defaults, --out defaults to DIR, DIR/metrics.jsonl is cut back to the checkpoint and appended to, and \
            --epochs/--max-steps may extend the run.
            """)

    @OptionGroup(title: "Data") var data: DataOptions
    @OptionGroup(title: "Model and loss") var model: ModelOptions
    @OptionGroup(title: "Optimisation") var optim: OptimOptions
    @OptionGroup(title: "Run") var runOptions: RunOptions
    @OptionGroup(title: "Evaluation") var evalOptions: EvalOptions

    @Flag(help: .key("debug")) var debug = false

    @Flag(help: "Print the effective config (defaults, config file, flags) as YAML and exit; --config reads it back.")
    var printConfig = false

    @Option(help: ArgumentHelp("Continue the run saved in DIR/checkpoint.safetensors (its settings are the defaults; "
                               + "--out defaults to DIR); DIR or the checkpoint file itself.", valueName: "DIR"))
    var resume: String?

    @Flag(help: "Train into --out even if it holds a finished or interrupted run (its checkpoint is replaced).")
    var overwrite = false

    @Option(help: ArgumentHelp("Fault injection: the --fail-rank rank throws right after this step.",
                               visibility: .hidden))
    var failAtStep: Int?

    @Option(help: ArgumentHelp("The rank that throws at --fail-at-step.", visibility: .hidden))
    var failRank = 0

    @Option(help: ArgumentHelp("Fault injection: this rank stops itself (SIGSTOP) as the final evaluation starts.",
                               visibility: .hidden))
    var stallInEvaluationRank: Int?

    /// The config of this run: defaults (or the resumed checkpoint's settings), config file, flags.
    func trainConfig() throws -> TrainConfig {
        guard let resume = resume.map(resumeDirectory) else {
            return try makeConfig(data: data, model: model, optim: optim, run: runOptions, eval: evalOptions)
        }
        let saved: TrainConfig
        do { saved = try checkpointConfig(directory: resume) } catch {
            throw InputFileError("--resume: \(error)")
        }
        var c = try makeConfig(data: data, model: model, optim: optim, run: runOptions, eval: evalOptions,
                               base: saved)
        if runOptions.out == nil { c.out = resume }
        return c
    }

    func validate() throws {
        let c = try trainConfig()
        if let out = c.out, !overwrite, resume.map(resumeDirectory) != resumeDirectory(out), let run = existingRun(in: out) {
            throw ValidationError("--out \(out) holds \(run); continue it with --resume \(out), or start over with "
                                  + "--overwrite (or choose another --out)")
        }
        if overwrite && resume != nil && c.out.map(resumeDirectory) == resume.map(resumeDirectory) {
            throw ValidationError("--overwrite with --resume would replace the run being resumed; give another --out")
        }
        if let s = failAtStep, s < 1 { throw ValidationError("--fail-at-step must be >= 1, got \(s)") }
        if failRank < 0 { throw ValidationError("--fail-rank must be >= 0, got \(failRank)") }
        let problems = c.problems() + c.evaluationProblems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
    }

    func run() throws {
        var config = try trainConfig()
        if printConfig {
            print(try config.yaml(), terminator: "")
            return
        }
        var control = RunControl(resume: resume.map(resumeDirectory), failAtStep: failAtStep, failRank: failRank,
                                 overwrite: overwrite)
        control.stallInEvaluationRank = stallInEvaluationRank
        if debug {
            config.debug = true
            if config.trainLimit == nil { config.trainLimit = 2000 }
            if config.testLimit == nil { config.testLimit = 1000 }
        }
        try runOnWorld(blasThreads: config.blasThreads) { comm in
            control.command = (comm.size > 1 ? "mpirun -n \(comm.size) " : "")
                + commandLineText([CommandLine.arguments.first ?? "dtrain"]) + " train"
            let observer = PrintingObserver(rank: comm.rank, perRank: config.debug)
            let (train, test) = try loadDatasets(config, progress: comm.rank == 0 && !config.quiet ? printError : nil)
            config = config.recordingNormalisation(of: train)
            if config.debug { try runDebugChecks(config: config, comm: comm, train: train, test: test, observer: observer) }
            let summary = try runTraining(config: config, comm: comm, train: train, test: test, observer: observer,
                                          control: control)
            if comm.rank == 0 { print(jsonLine(summary)) }
        }
    }
}

/// Prints progress lines on stderr (rank 0, or every rank in debug mode).
final class PrintingObserver: RunObserver {
    let rank: Int
    let perRank: Bool
    init(rank: Int, perRank: Bool) { self.rank = rank; self.perRank = perRank }
    func progress(_ line: String) { printError(perRank ? "[rank \(rank)] \(line)" : line) }
    func logged(_ metrics: StepMetrics) {}
    func evaluated(_ metrics: EpochMetrics) {}
}
