import ArgumentParser

/// The `dtrain` command: training is the default subcommand, so `mpirun -n 4 dtrain` trains CLCE on Fashion-MNIST.
@main
struct DTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dtrain",
        abstract: "Distributed CPU trainer for image classifiers with the CLCE loss (OpenMPI + OpenBLAS).",
        discussion: """
            Run under mpirun for several ranks (mpirun -n 4 dtrain ...), or plainly for a one-rank debug run.
            Start on a new machine or cluster with `dtrain doctor`.
            """,
        subcommands: [TrainCommand.self, StudyCommand.self, EmbedCommand.self, ExportCommand.self, Doctor.self,
                      Bench.self, PlotCommand.self],
        defaultSubcommand: TrainCommand.self)
}
