import Foundation
import Testing
@testable import Evaluation

@Suite struct FewShotTests {
    /// 12 classes × 30 images, labels interleaved.
    let labels: [Int32] = (0..<360).map { Int32($0 % 12) }

    @Test func episodesHaveDistinctImagesRightCountsAndNovelClassesOnly() throws {
        let novel: [Int32] = [2, 3, 5, 7, 8, 11]
        let sampler = try EpisodeSampler(labels: labels, classes: novel, ways: 5, shots: 5, queries: 15, seed: 4)
        for e in 0..<50 {
            let ep = sampler.episode(e)
            #expect(ep.classes.count == 5 && Set(ep.classes).count == 5)
            #expect(Set(ep.classes).isSubset(of: novel))
            var seen = Set<Int>()
            for w in 0..<5 {
                #expect(ep.support[w].count == 5 && ep.query[w].count == 15)
                for i in ep.support[w] + ep.query[w] {
                    #expect(labels[i] == ep.classes[w])
                    #expect(seen.insert(i).inserted, "image \(i) drawn twice in episode \(e)")
                }
            }
        }
    }

    @Test func episodesAreReproducibleFromTheSeed() throws {
        let a = try EpisodeSampler(labels: labels, classes: Array(0..<12), ways: 5, shots: 1, queries: 15, seed: 9)
        let b = try EpisodeSampler(labels: labels, classes: Array(0..<12), ways: 5, shots: 1, queries: 15, seed: 9)
        let c = try EpisodeSampler(labels: labels, classes: Array(0..<12), ways: 5, shots: 1, queries: 15, seed: 10)
        #expect((0..<20).map(a.episode) == (0..<20).map(b.episode))
        // Episode e does not depend on the others (any order, any subset: ranks can split the work).
        #expect(a.episode(17) == b.episode(17))
        #expect((0..<20).map(a.episode) != (0..<20).map(c.episode))
        #expect(a.episode(0) != a.episode(1))
    }

    @Test func samplerRefusesTooFewImagesOrClasses() {
        #expect(throws: EvaluationError.self) {
            try EpisodeSampler(labels: labels, classes: [0, 1, 2], ways: 5, shots: 1, queries: 15, seed: 0)
        }
        #expect(throws: EvaluationError.self) {
            try EpisodeSampler(labels: labels, classes: Array(0..<12), ways: 5, shots: 20, queries: 15, seed: 0)
        }
    }

    @Test func confidenceIntervalFormula() {
        // Student t quantiles (scipy.stats.t.ppf(0.975, df)).
        for (df, t) in [(1.0, 12.706204736174694), (2, 4.302652729749462), (9, 2.2621571627982053),
                        (29, 2.045229642132703), (2999, 1.9607553192053149)] {
            #expect(abs(studentTQuantile(0.975, degreesOfFreedom: df) - t) < 1e-8, "df \(df)")
        }
        // Mean 3, sample std √2.5 (n − 1 denominator), n = 5: ci = t(0.975, 4)·√2.5/√5.
        let (mean, ci) = meanAndCI95([1, 2, 3, 4, 5])
        #expect(mean == 3)
        #expect(abs(ci - 2.7764451051977934 * (2.5 / 5).squareRoot()) < 1e-9, "\(ci)")
    }

    @Test func classifiersSolveSeparatedEpisodes() throws {
        let D = 16
        let (x, y) = clusteredEmbeddings(count: 360, classes: 12, embedDim: D, noise: 0.2, seed: 5)
        let sampler = try EpisodeSampler(labels: y, classes: Array(0..<12), ways: 5, shots: 1, queries: 15, seed: 1)
        let normalised = normalisedRows(x, embedDim: D)
        for classifier in FewShotClassifier.allCases {
            let accs = (0..<20).map { episodeAccuracy(sampler.episode($0), embeddings: normalised, embedDim: D,
                                                      classifier: classifier) }
            #expect(meanAndCI95(accs).mean > 0.97, "\(classifier): \(accs)")
        }
    }

    @Test func namedSplits() throws {
        let test = try #require(namedSplitClasses("cifar-fs:test"))
        let val = try #require(namedSplitClasses("cifar-fs:val"))
        let train = try #require(namedSplitClasses("cifar-fs:train"))
        #expect(test.count == 20 && val.count == 16 && train.count == 64)
        #expect(Set(test + val + train) == Set(cifar100FineNames))
        let fc = ["train", "val", "test"].map { namedSplitClasses("fc100:" + $0)! }
        #expect(fc.map(\.count) == [60, 20, 20])
        #expect(Set(fc.joined()) == Set(cifar100FineNames))
        #expect(cifar100Superclasses.flatMap(\.members).count == 100)
        let ids = try resolveClasses("fc100:test", names: cifar100FineNames, classes: 100)
        #expect(ids.count == 20 && ids.contains(Int32(cifar100FineNames.firstIndex(of: "whale")!)))
        #expect(try resolveClasses("3,1,2", names: [], classes: 10) == [1, 2, 3])
        #expect(throws: EvaluationError.self) { try resolveClasses("1,10", names: [], classes: 10) }
        #expect(throws: EvaluationError.self) { try resolveClasses("cifar-fs:test", names: [], classes: 10) }
    }
}
