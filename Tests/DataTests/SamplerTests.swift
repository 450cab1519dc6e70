import Testing
import Data
import Tensor

@Suite("EpochSampler")
struct SamplerTests {
    @Test func permutationDependsOnlyOnSeedAndEpoch() throws {
        let a = try EpochSampler(count: 1000, globalBatch: 64, ranks: 1, seed: 42)
        let b = try EpochSampler(count: 1000, globalBatch: 100, ranks: 4, seed: 42)
        for epoch in 0..<3 {
            let p = a.permutation(epoch: epoch)
            #expect(p == b.permutation(epoch: epoch))
            #expect(p.sorted() == Array(0..<1000))
            #expect(p == CounterRNG(seed: 42).permutation(count: 1000, stream: .permutation, key: UInt32(epoch)))
        }
        #expect(a.permutation(epoch: 0) != a.permutation(epoch: 1))
        let other = try EpochSampler(count: 1000, globalBatch: 64, ranks: 1, seed: 43)
        #expect(a.permutation(epoch: 0) != other.permutation(epoch: 0))
    }

    @Test func stepsDropTheLastPartialBatch() throws {
        #expect(try EpochSampler(count: 1000, globalBatch: 64, ranks: 1, seed: 0).stepsPerEpoch == 15)
        #expect(try EpochSampler(count: 60000, globalBatch: 256, ranks: 3, seed: 0).stepsPerEpoch == 234)
        #expect(try EpochSampler(count: 10, globalBatch: 10, ranks: 2, seed: 0).stepsPerEpoch == 1)
        let s = try EpochSampler(count: 1000, globalBatch: 64, ranks: 1, seed: 0)
        #expect(s.globalPositions(step: 14) == 896..<960)
    }

    @Test(arguments: [1, 2, 3, 4])
    func rankSharesTileTheGlobalBatch(ranks: Int) throws {
        for batch in [ranks, 7, 10, 64, 65, 257] where batch >= ranks {
            let sampler = try EpochSampler(count: 1000, globalBatch: batch, ranks: ranks, seed: 9)
            let permutation = sampler.permutation(epoch: 2)
            for step in [0, 1, sampler.stepsPerEpoch - 1] {
                var union: [Int] = []
                var sizes: [Int] = []
                for rank in 0..<ranks {
                    let local = sampler.localPositions(step: step, rank: rank)
                    #expect(local.lowerBound == sampler.globalPositions(step: step).lowerBound + union.count)
                    union += local.map { permutation[$0] }
                    sizes.append(local.count)
                }
                #expect(union == sampler.globalPositions(step: step).map { permutation[$0] })
                // Uneven splits: the first batch % ranks ranks take one more.
                let expected = (0..<ranks).map { batch / ranks + ($0 < batch % ranks ? 1 : 0) }
                #expect(sizes == expected)
            }
        }
        #expect(EpochSampler.share(batch: 10, ranks: 4, rank: 0) == 0..<3)
        #expect(EpochSampler.share(batch: 10, ranks: 4, rank: 1) == 3..<6)
        #expect(EpochSampler.share(batch: 10, ranks: 4, rank: 2) == 6..<8)
        #expect(EpochSampler.share(batch: 10, ranks: 4, rank: 3) == 8..<10)
    }

    @Test func rejectsImpossibleBatches() {
        let error = expectDataError(.badSampling) {
            _ = try EpochSampler(count: 100, globalBatch: 3, ranks: 4, seed: 0)
        }
        #expect(error?.description.contains("global batch 3 is smaller than the 4 ranks") == true)
        expectDataError(.badSampling) { _ = try EpochSampler(count: 100, globalBatch: 101, ranks: 1, seed: 0) }
        expectDataError(.badSampling) { _ = try EpochSampler(count: 100, globalBatch: 10, ranks: 0, seed: 0) }
        expectDataError(.badSampling) { _ = try EpochSampler(count: 100, globalBatch: 0, ranks: 1, seed: 0) }
    }
}
