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
