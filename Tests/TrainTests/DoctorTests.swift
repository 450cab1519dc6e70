import Collective
import Foundation
import Testing
@testable import Train

@Suite struct DoctorTests {
    @Test(arguments: [1, 2, 3, 4])
    func doctorPassesOnTheThreadGroup(ranks: Int) throws {
        var options = DoctorOptions()
        options.sgemmSize = 64
        options.bandwidthBytes = [4096]
        options.bandwidthIterations = 1
        let reports = try LocalGroup.run(size: ranks) { try runDoctor($0, options: options) }
        for report in reports {
            #expect(report.ok)
            #expect(report.perRank.count == ranks)
            #expect(report.perRank.map(\.rank) == Array(0..<ranks))
            #expect(report.checks.count >= 13)
        }
        let json = try reports[0].json()
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [String: Any]
        #expect(object["ok"] as? Bool == true)
    }

    @Test func launcherIsReadFromTheEnvironment() {
        let mpirun = Launcher.detect(environment: ["OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "1",
                                                   "PMIX_RANK": "1"])
        #expect(mpirun == Launcher(kind: "mpirun", announcedSize: 4, slurmJobID: nil))
        let srun = Launcher.detect(environment: ["PMIX_RANK": "0", "SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0",
                                                 "SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "8"])
        #expect(srun == Launcher(kind: "srun/pmix", announcedSize: 4, slurmJobID: "7"))
        #expect(srun.summary == "srun/pmix (4 rank(s) announced, Slurm job 7)")
        #expect(Launcher.detect(environment: ["PATH": "/bin"]).kind == "singleton")
        // srun without --mpi=pmix inside an allocation: no PMIx, so every task is a singleton.
        #expect(Launcher.detect(environment: ["SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0"]).kind == "singleton")
    }

    @Test func announcedWorldSizeMismatchFailsTheDoctor() throws {
        var options = DoctorOptions()
        options.sgemmSize = 32
        options.bandwidthBytes = [4096]
        options.bandwidthIterations = 1
        options.launcher = Launcher(kind: "srun/pmix", announcedSize: 4, slurmJobID: "1")
        let reports = try LocalGroup.run(size: 2) { try runDoctor($0, options: options) }
        #expect(!reports[0].ok)
        #expect(reports[0].table().contains("launched by: srun/pmix"))
        options.launcher = Launcher(kind: "mpirun", announcedSize: 2, slurmJobID: nil)
        #expect(try LocalGroup.run(size: 2) { try runDoctor($0, options: options) }[0].ok)
    }

    @Test func injectedFailureSurfacesAsError() {
        var options = DoctorOptions()
        options.sgemmSize = 32
        options.failOnRank = 1
        #expect(throws: InjectedFailure.self) { _ = try LocalGroup.run(size: 2) { try runDoctor($0, options: options) } }
    }
}

/// The MPI communicator launched without mpirun: a one-rank world through the same code path.
@Suite(.serialized) struct OneRankMPITests {
    @Test func singletonWorldPassesTheDoctor() throws {
        let comm = try MPICommunicator.world()
        #expect(comm.size == 1 && comm.rank == 0)
        var options = DoctorOptions()
        options.sgemmSize = 64
        options.bandwidthBytes = [4096]
        options.bandwidthIterations = 1
        let report = try runDoctor(comm, options: options)
        #expect(report.ok)
    }
}
