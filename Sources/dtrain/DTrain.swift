import ArgumentParser
import Foundation

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
        subcommands: [TrainCommand.self, StudyCommand.self, EmbedCommand.self, ExportCommand.self, EvalCommand.self,
                      FewShotCommand.self, AnalyzeCommand.self, PlotCommand.self,
                      Doctor.self, Bench.self],
        defaultSubcommand: TrainCommand.self)

    /// Parses and runs the command. Under mpirun every rank parses the same arguments, so only the launcher's rank 0
    /// prints a parse or validation error; every rank exits with its status (64 for usage, see `ExitStatus`).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            var status = exitCode(for: error).rawValue
            if status == ExitCode.failure.rawValue && InputFileError.raised { status = ExitStatus.dataError }
            if launcherRank() != 0 {
                // Leave rank 0 time to print: mpirun ends the job as soon as any rank exits non-zero.
                if status != 0 { sleep(3) }
                Foundation.exit(status)
            }
            if status == ExitStatus.dataError {
                printError(fullMessage(for: error))
                Foundation.exit(status)
            }
            exit(withError: error)
        }
    }
}
