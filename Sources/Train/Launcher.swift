// How this process was started: under mpirun (ORTE), under Slurm's srun (PMIx), under another PMIx launcher, or
// as a singleton. Read from the environment the launcher leaves, which the command line passes in (library code
// never reads the environment itself). A PMIx mix-up under Slurm shows here: N singletons instead of one N-rank job.
import Foundation

/// The launcher of this process and the world size it announced.
public struct Launcher: Codable, Sendable, Equatable {
    /// `mpirun`, `srun/pmix`, `pmix` (another PMIx server) or `singleton`.
    public var kind: String
    /// The rank count the launcher announced (OMPI_COMM_WORLD_SIZE, PMIX/SLURM sizes), nil for a singleton.
    public var announcedSize: Int?
    /// The Slurm job id, when inside a Slurm allocation.
    public var slurmJobID: String?

    public init(kind: String, announcedSize: Int?, slurmJobID: String?) {
        self.kind = kind
        self.announcedSize = announcedSize
        self.slurmJobID = slurmJobID
    }

    /// Classifies a process environment. Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE (and PMIX_RANK, as it runs a
    /// PMIx server too), so it is tested first; srun --mpi=pmix sets PMIX_RANK and SLURM_STEP_ID but no OMPI_* size.
    public static func detect(environment env: [String: String]) -> Launcher {
        let job = env["SLURM_JOB_ID"]
        if let size = env["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init), env["OMPI_COMM_WORLD_RANK"] != nil {
            return Launcher(kind: "mpirun", announcedSize: size, slurmJobID: job)
        }
        if env["PMIX_RANK"] != nil {
            let size = (env["SLURM_STEP_NUM_TASKS"] ?? env["SLURM_NTASKS"] ?? env["PMIX_SIZE"]).flatMap(Int.init)
            let underSrun = env["SLURM_STEP_ID"] != nil || env["SLURM_STEPID"] != nil
            return Launcher(kind: underSrun ? "srun/pmix" : "pmix", announcedSize: size, slurmJobID: job)
        }
        return Launcher(kind: "singleton", announcedSize: nil, slurmJobID: job)
    }

    /// "srun/pmix (4 tasks announced, Slurm job 12)", for the doctor's table.
    public var summary: String {
        var parts = [String]()
        if let n = announcedSize { parts.append("\(n) rank(s) announced") }
        if let j = slurmJobID { parts.append("Slurm job \(j)") }
        return parts.isEmpty ? kind : kind + " (" + parts.joined(separator: ", ") + ")"
    }
}
