import ArgumentParser
import Collective
import Foundation
import Train

/// `dtrain doctor`: checks every collective and measures sgemm and network bandwidth on every rank.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check this machine or cluster: per-rank sgemm rate, every collective, bandwidth.",
        discussion: """
            Every rank reports its host, BLAS threads and measured sgemm GFLOP/s; every collective (all-gather, \
            all-reduce, reduce-scatter with even and uneven counts, broadcast, non-blocking all-reduce, barrier) is \
            checked on random data against its closed form; all-reduce and all-gather bandwidth are measured. \
            Exit code 0 only if every check passed. Example: mpirun -n 4 dtrain doctor --json
            """)

    @Flag(help: "Print one JSON object on stdout (the table goes to stderr); its \"ok\" is true only if all checks pass.")
    var json = false

    @Option(help: "OpenBLAS threads per rank.")
    var blasThreads = 1

    @Option(help: "Seed of the random test data.")
    var seed: UInt64 = 0

    @Option(help: "Matrix size of the sgemm probe.")
    var sgemmSize = 512

    @Option(help: "Timed iterations per bandwidth size.")
    var iterations = 10

    @Option(help: "Make this rank throw mid-run (tests that a failing rank takes the job down).")
    var failOnRank: Int?

    func validate() throws {
        guard blasThreads >= 1 else { throw ValidationError("--blas-threads must be >= 1, got \(blasThreads)") }
        guard sgemmSize >= 16 else { throw ValidationError("--sgemm-size must be >= 16, got \(sgemmSize)") }
        guard iterations >= 1 else { throw ValidationError("--iterations must be >= 1, got \(iterations)") }
        if let r = failOnRank, r < 0 { throw ValidationError("--fail-on-rank must be >= 0, got \(r)") }
    }

    func run() throws {
        try runOnWorld(blasThreads: blasThreads) { comm in
            var options = DoctorOptions()
            options.seed = seed
            options.sgemmSize = sgemmSize
            options.bandwidthIterations = iterations
            options.failOnRank = failOnRank
            if let r = failOnRank, r >= comm.size {
                // Every rank sees the same size: rank 0 says it once and every rank exits with the usage status.
                if comm.rank == 0 {
                    printError("Error: --fail-on-rank \(r) is not a rank of this job (ranks 0...\(comm.size - 1))")
                }
                throw ExitCode(ExitStatus.usage)
            }
            options.launcher = Launcher.detect(environment: ProcessInfo.processInfo.environment)
            let report = try runDoctor(comm, options: options)
            if comm.rank == 0 {
                if json {
                    printError(report.table())
                    print(try report.json())
                } else {
                    print(report.table(), terminator: "")
                }
            }
            if !report.ok { throw ExitCode(3) }
        }
    }
}
