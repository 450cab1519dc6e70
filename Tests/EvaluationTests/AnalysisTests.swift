import Foundation
import Tensor
import Testing
@testable import Evaluation

@Suite struct AnalysisTests {
    @Test func eigensolverDiagonalisesSymmetricMatrices() throws {
        let a: [Double] = [4, 1, 0.5, 1, 3, -0.2, 0.5, -0.2, 1]
        let (values, q) = try symmetricEigen(a, n: 3)
        #expect(values == values.sorted())
        for i in 0..<3 {
            for r in 0..<3 {
                let av = (0..<3).reduce(0.0) { $0 + a[r * 3 + $1] * q[i * 3 + $1] }
                #expect(abs(av - values[i] * q[i * 3 + r]) < 1e-12)
            }
            for j in 0..<3 {
                let dot = (0..<3).reduce(0.0) { $0 + q[i * 3 + $1] * q[j * 3 + $1] }
                #expect(abs(dot - (i == j ? 1 : 0)) < 1e-12)
            }
        }
    }

    @Test func perfectlyIsotropicSetScoresOne() throws {
        // ±e_i: VᵀV = 2I and Z(±e_j) = e + 1/e + 2(D − 1) for every j.
        let D = 6
        var v = [Float](repeating: 0, count: 2 * D * D)
        for i in 0..<D { v[(2 * i) * D + i] = 1; v[(2 * i + 1) * D + i] = -1 }
        let r = try isotropy(v, embedDim: D)
        #expect(abs(r.score - 1) < 1e-12, "\(r.score)")
        #expect(abs(r.logZPlus[0] - log(exp(1) + exp(-1) + 2 * Double(D - 1))) < 1e-12)
    }

    @Test func isotropyMatchesDirectComputation() throws {
        // A 2-D set: eigenvectors of the 2×2 Gram matrix in closed form, Z summed without logs.
        let v: [Float] = [1, 0.2, 0.8, -0.1, 0.9, 0.5, 0.3, 1.0, -0.2, 0.7]
        let n = 5
        for normalise in [false, true] {
            let x = normalise ? normalisedRows(v, embedDim: 2) : v.map(Double.init)
            var a = 0.0, b = 0.0, c = 0.0
            for r in 0..<n { a += x[2 * r] * x[2 * r]; b += x[2 * r] * x[2 * r + 1]; c += x[2 * r + 1] * x[2 * r + 1] }
            let theta = 0.5 * atan2(2 * b, a - c)
            var zs: [Double] = []
            for (u0, u1) in [(cos(theta), sin(theta)), (-sin(theta), cos(theta))] {
                for sign in [1.0, -1.0] {
                    zs.append((0..<n).reduce(0.0) { $0 + exp(sign * (u0 * x[2 * $1] + u1 * x[2 * $1 + 1])) })
                }
            }
            let r = try isotropy(v, embedDim: 2, normalise: normalise)
            #expect(abs(r.score - zs.min()! / zs.max()!) < 1e-12, "\(r.score) vs \(zs.min()! / zs.max()!)")
            #expect(r.normalised == normalise)
        }
        // A set along one direction is far from isotropic.
        let line: [Float] = [1, 0, 2, 0, 3, 0]
        #expect(try isotropy(line, embedDim: 2, normalise: false).score < 0.5)
    }

    @Test func similarityStatisticsCountPairs() {
        // Two classes on two orthogonal axes: positives have cosine 1, negatives 0.
        let x: [Float] = [1, 0, 2, 0, 3, 0, 0, 1, 0, 2]
        let y: [Int32] = [0, 0, 0, 1, 1]
        let s = SimilarityStatistics(embeddings: x, labels: y, embedDim: 2, classes: [1])
        #expect(s.positive.pairs == 4 && s.negative.pairs == 6)
        #expect(abs(s.positive.mean - 1) < 1e-12 && abs(s.negative.mean) < 1e-12)
        #expect(histogramOverlap(s.positive, s.negative) == 0)
        #expect(abs(s.positive.quantile(0.5) - 1) < 1e-3 && abs(s.negative.quantile(0.5)) < 1e-3)
        #expect(s.perClass[1]!.positive.pairs == 1 && s.perClass[1]!.negative.pairs == 6)
        #expect(histogramOverlap(s.positive, s.positive) == 1)
    }

    @Test func confusionMatrix() {
        let m = ConfusionMatrix(labels: [0, 0, 1, 1, 2], predictions: [0, 1, 1, 1, 0], classes: 3)
        #expect(m.counts == [1, 1, 0, 0, 2, 0, 1, 0, 0])
        #expect(m.accuracy == 0.6 && m.perClassAccuracy == [0.5, 1, 0])
        #expect(m.csv(names: ["a", "b", "c"]).hasPrefix("true\\predicted,a,b,c\na,1,1,0\n"))
    }
}
