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
            """)

    @OptionGroup(title: "Data") var data: DataOptions
    @OptionGroup(title: "Model and loss") var model: ModelOptions
    @OptionGroup(title: "Optimisation") var optim: OptimOptions
    @OptionGroup(title: "Run") var runOptions: RunOptions
    @OptionGroup(title: "Evaluation") var evalOptions: EvalOptions

    @Flag(help: "Single-node debug mode: a small subset, a finite-difference check of the whole gradient before training, finiteness checks every step, per-rank log lines.")
    var debug = false

    func validate() throws {
        let c = try makeConfig(data: data, model: model, optim: optim, run: runOptions, eval: evalOptions)
        let problems = c.problems() + c.evaluationProblems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
        if LossKind(rawValue: c.loss) == nil {
            throw ValidationError("--loss must be one of \(LossKind.allCases.map(\.rawValue).joined(separator: ", ")), got \(c.loss)")
        }
    }

    func run() throws {
        var config = try makeConfig(data: data, model: model, optim: optim, run: runOptions, eval: evalOptions)
        if debug {
            config.debug = true
            if config.trainLimit == nil { config.trainLimit = 2000 }
            if config.testLimit == nil { config.testLimit = 1000 }
        }
        try runOnWorld(blasThreads: config.blasThreads) { comm in
            let observer = PrintingObserver(rank: comm.rank, perRank: config.debug)
            let (train, test) = try loadDatasets(config)
            if config.debug { try runDebugChecks(config: config, comm: comm, train: train, test: test, observer: observer) }
            let summary = try runTraining(config: config, comm: comm, train: train, test: test, observer: observer)
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
