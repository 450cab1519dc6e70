import Testing
@testable import Collective

/// The value rank r holds at element i in these tests.
private func value(_ r: Int, _ i: Int) -> Double { Double(r * 1000 + i) + 0.25 }

@Suite struct LocalGroupTests {
    @Test(arguments: [1, 2, 3, 4])
    func allGatherUnevenInRankOrder(ranks: Int) throws {
        let layout = ShardLayout(counts: (0..<ranks).map { $0 == 1 ? 0 : 2 * $0 + 1 })
        let results = try LocalGroup.run(size: ranks) { comm -> [Double] in
            let send = layout.range(of: comm.rank).map { value(comm.rank, $0) }
            var recv = [Double](repeating: -1, count: layout.total)
            try send.withUnsafeBufferPointer { s in
                try recv.withUnsafeMutableBufferPointer { try comm.allGather(send: s, into: $0, layout: layout) }
            }
            return recv
        }
        let expected = (0..<ranks).flatMap { r in layout.range(of: r).map { value(r, $0) } }
        for r in results { #expect(r == expected) }
    }

    @Test(arguments: [1, 2, 3, 4])
    func reduceScatterSumsAndKeepsOwnShard(ranks: Int) throws {
        let layout = ShardLayout(counts: (0..<ranks).map { 3 + $0 })
        let results = try LocalGroup.run(size: ranks) { comm -> [Float] in
            let send = (0..<layout.total).map { Float(value(comm.rank, $0)) }
            var recv = [Float](repeating: .nan, count: layout.counts[comm.rank])
            try send.withUnsafeBufferPointer { s in
                try recv.withUnsafeMutableBufferPointer { try comm.reduceScatterSum(send: s, into: $0, layout: layout) }
            }
            return recv
        }
        for r in 0..<ranks {
            let want = layout.range(of: r).map { i in (0..<ranks).reduce(Float(0)) { $0 + Float(value($1, i)) } }
            #expect(results[r] == want)
        }
    }

    @Test(arguments: [1, 2, 3, 4])
    func allReduceAndBroadcast(ranks: Int) throws {
        let results = try LocalGroup.run(size: ranks) { comm -> ([Double], [Int32], [Double]) in
            var buf = (0..<17).map { value(comm.rank, $0) }
            try buf.withUnsafeMutableBufferPointer { try comm.allReduceSum($0) }
            var ints = [Int32(comm.rank), 7]
            try ints.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: ranks - 1) }
            var nb = (0..<5).map { value(comm.rank, $0) }
            try nb.withUnsafeMutableBufferPointer { b in
                var req = try comm.startAllReduceSum(b)
                try comm.wait(&req)
            }
            return (buf, ints, nb)
        }
        let sum = (0..<17).map { i in (0..<ranks).reduce(0.0) { $0 + value($1, i) } }
        for (buf, ints, nb) in results {
            #expect(buf == sum)
            #expect(ints == [Int32(ranks - 1), 7])
            #expect(nb == Array(sum.prefix(5)))
        }
    }

    struct Boom: Error {}

    @Test func aFailingRankReleasesPeersWaitingInACollective() throws {
        #expect(throws: Boom.self) {
            _ = try LocalGroup.run(size: 3) { comm -> Int in
                if comm.rank == 1 { throw Boom() }
                var buf: [Float] = [1]
                try buf.withUnsafeMutableBufferPointer { try comm.allReduceSum($0) }
                return 0
            }
        }
    }

    @Test func shardLayoutEvenSplitsRemainderToFirstRanks() {
        let l = ShardLayout.even(total: 10, parts: 4)
        #expect(l.counts == [3, 3, 2, 2])
        #expect(l.offsets == [0, 3, 6, 8])
        #expect(l.range(of: 2) == 6..<8)
        #expect(l.scaled(by: 5).counts == [15, 15, 10, 10])
    }
}
