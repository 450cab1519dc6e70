// Properties every implementation of the conventions must have (README of the reference vectors), checked in Double
// to 1e-12 unless stated, and the Float path at extreme temperature and norms against Double.

import Foundation
import Testing
import Tensor
import Loss

@Suite struct PropertyTests {
    /// β → 0 through the general-β code path reaches the no-HNM losses (β = 0 is their definition).
    @Test func betaZeroIsNoHardNegativeMining() {
        let p = randomProblem(rows: 12, dim: 5, classes: 3, seed: 11)
        func run(_ loss: ContrastiveLoss) -> ContrastiveResult {
            runContrastive(loss, x: p.x, labels: p.labels, dim: p.dim, tau: 0.3, as: Double.self)
        }
        let pairs: [(ContrastiveLoss, ContrastiveLoss, String)] = [
            (.lacln(beta: 1e-12), .laclNoHNM, "lacln β→0 vs laclNoHNM"),
            (.lacln(beta: 1e-12, placement: .outside), .supconOut, "lacln_out β→0 vs supconOut"),
            (.lacln(beta: 0), .laclNoHNM, "lacln β=0 vs laclNoHNM"),
        ]
        for (a, b, what) in pairs {
            let ra = run(a), rb = run(b)
            assertClose(ra.perAnchor, rb.perAnchor, rtol: 1e-9, atol: 1e-12, "\(what) per-anchor")
            assertClose(ra.dEmbeddings, rb.dEmbeddings, atol: 1e-9 * maxAbs(rb.dEmbeddings), "\(what) gradient")
        }
        // laclNoHNM is Khosla's L_in: −log( (1/|P|)·S_i / Σ_{a≠i} e^{s_ia} ).
        let noHNM = run(.laclNoHNM)
        let z = (0..<p.rows).map { i -> [Double] in
            let row = Array(p.x[(i * p.dim)..<((i + 1) * p.dim)])
            let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return row.map { $0 / norm }
        }
        for i in 0..<p.rows {
            let s = (0..<p.rows).map { j in zip(z[i], z[j]).reduce(0) { $0 + $1.0 * $1.1 } / 0.3 }
            let pos = (0..<p.rows).filter { $0 != i && p.labels[$0] == p.labels[i] }
            let all = (0..<p.rows).filter { $0 != i }
            let expected = pos.isEmpty ? 0
                : -log(pos.reduce(0) { $0 + exp(s[$1]) } / Double(pos.count) / all.reduce(0) { $0 + exp(s[$1]) })
            assertClose(noHNM.perAnchor[i], expected, rtol: 1e-12, atol: 1e-15, "L_in anchor \(i)")
        }
    }

    @Test(arguments: contrastiveCases)
    func jointPermutationInvariance(_ c: LossCase) {
        let p = randomProblem(rows: 13, dim: 4, classes: 3, seed: 12)
        let perm = CounterRNG(seed: 12).permutation(count: p.rows, stream: .test, key: 1)
        var x = [Double](repeating: 0, count: p.x.count), labels = p.labels
        for (new, old) in perm.enumerated() {
            labels[new] = p.labels[old]
            for d in 0..<p.dim { x[new * p.dim + d] = p.x[old * p.dim + d] }
        }
        let a = runContrastive(c.loss, x: p.x, labels: p.labels, dim: p.dim, tau: 0.25, as: Double.self)
        let b = runContrastive(c.loss, x: x, labels: labels, dim: p.dim, tau: 0.25, as: Double.self)
        assertClose(b.loss, a.loss, rtol: 1e-12, "\(c.name) loss under permutation")
        assertClose(b.perAnchor, perm.map { a.perAnchor[$0] }, rtol: 1e-12, atol: 1e-14, "\(c.name) per-anchor")
        let permutedGradient = perm.flatMap { old in a.dEmbeddings[(old * p.dim)..<((old + 1) * p.dim)] }
        assertClose(b.dEmbeddings, permutedGradient, atol: 1e-12 * maxAbs(a.dEmbeddings), "\(c.name) gradient")
    }

    @Test(arguments: contrastiveCases)
    func positiveRowScaling(_ c: LossCase) {
        let p = randomProblem(rows: 10, dim: 4, classes: 3, seed: 13)
        let a = runContrastive(c.loss, x: p.x, labels: p.labels, dim: p.dim, tau: 0.5, as: Double.self)
        for (row, factor) in [(2, 3.7), (5, 0.01), (9, 1e4)] {
            var x = p.x
            for d in 0..<p.dim { x[row * p.dim + d] *= factor }
            let b = runContrastive(c.loss, x: x, labels: p.labels, dim: p.dim, tau: 0.5, as: Double.self)
            assertClose(b.loss, a.loss, rtol: 1e-12, "\(c.name) loss, row \(row) × \(factor)")
            var expected = a.dEmbeddings
            for d in 0..<p.dim { expected[row * p.dim + d] /= factor }
            assertClose(b.dEmbeddings, expected, rtol: 1e-10, atol: 1e-12 * maxAbs(a.dEmbeddings),
                        "\(c.name) gradient, row \(row) × \(factor)")
        }
    }

    /// G_i ≥ Σ_Neg e^{s_ik} (the weights put more mass on the larger terms), so LACLN ≥ LACL-no-HNM per anchor.
    @Test func hardNegativesNeverLowerTheLoss() {
        for seed in UInt64(20)..<UInt64(24) {
            let p = randomProblem(rows: 16, dim: 6, classes: 4, seed: seed)
            let plain = runContrastive(.laclNoHNM, x: p.x, labels: p.labels, dim: p.dim, tau: 0.2, as: Double.self)
            for beta in [0.5, 1, 2] {
                let hard = runContrastive(.lacln(beta: beta), x: p.x, labels: p.labels, dim: p.dim, tau: 0.2,
                                          as: Double.self)
                for i in 0..<p.rows {
                    #expect(hard.perAnchor[i] >= plain.perAnchor[i] - 1e-13,
                            "seed \(seed) β=\(beta) anchor \(i): \(hard.perAnchor[i]) < \(plain.perAnchor[i])")
                }
            }
        }
    }

    /// No negatives: G = 0, the inside losses give log|P| with zero gradient, the others stay finite.
    @Test func singleClassBatch() {
        let p = randomProblem(rows: 6, dim: 3, classes: 1, seed: 14, loneRow: false)
        for loss in [ContrastiveLoss.lacln(), .laclNoHNM] {
            let r = runContrastive(loss, x: p.x, labels: p.labels, dim: p.dim, tau: 0.1, as: Float.self)
            assertClose(r.loss, log(5), rtol: 1e-6, "log|P|")
            #expect(r.dEmbeddings.allSatisfy { $0 == 0 })
        }
        for loss in [ContrastiveLoss.supconOut, .lacln(placement: .outside), .hscl()] {
            let r = runContrastive(loss, x: p.x, labels: p.labels, dim: p.dim, tau: 0.1, as: Float.self)
            #expect(r.loss.isFinite && r.dEmbeddings.allSatisfy { $0.isFinite })
        }
    }

    /// τ = 0.05 and row norms from 1e-3 to 1e4 in Float: finite, and close to Double
    /// (loss relative 2e-5, per-anchor 2e-5 × max, gradient 2e-4 × max|g|).
    @Test(arguments: contrastiveCases + detachedCases)
    func floatAtExtremes(_ c: LossCase) {
        let p = randomProblem(rows: 96, dim: 16, classes: 5, seed: 15)
        let rng = CounterRNG(seed: 15)
        var x = p.x
        for i in 0..<p.rows {
            let scale = pow(10, -3 + 7 * Double(rng.uniform(stream: .test, index: UInt64(i), substream: 9)))
            for d in 0..<p.dim { x[i * p.dim + d] *= scale }
        }
        for tau in [0.05, 0.07] {
            let single = runContrastive(c.loss, x: x, labels: p.labels, dim: p.dim, tau: tau, maxAnchors: 40,
                                        as: Float.self)
            let double = runContrastive(c.loss, x: x, labels: p.labels, dim: p.dim, tau: tau, as: Double.self)
            #expect(single.loss.isFinite && single.dEmbeddings.allSatisfy { $0.isFinite }, "\(c.name) not finite")
            assertClose(single.loss, double.loss, rtol: 2e-5, "\(c.name) τ=\(tau) Float loss")
            assertClose(single.perAnchor, double.perAnchor, atol: 2e-5 * maxAbs(double.perAnchor),
                        "\(c.name) τ=\(tau) Float per-anchor")
            assertClose(single.dEmbeddings, double.dEmbeddings, atol: 2e-4 * maxAbs(double.dEmbeddings),
                        "\(c.name) τ=\(tau) Float gradient")
        }
        // Far below any useful temperature the Float path must still not produce NaN or infinities in the loss.
        let cold = runContrastive(c.loss, x: x, labels: p.labels, dim: p.dim, tau: 0.005, as: Float.self)
        #expect(cold.loss.isFinite && cold.dEmbeddings.allSatisfy { !$0.isNaN }, "\(c.name) τ=0.005")
    }

    @Test func lossKindNamesAndWeights() {
        #expect(LossKind.allCases.map(\.rawValue) == ["ce", "supcon", "ce+supcon", "hscl", "ce+hscl", "clce",
                                                      "clce-no-hnm"])
        #expect(LossKind(rawValue: "clce-no-hnm") == .clceNoHNM)
        #expect(LossKind.ce.contrastiveWeight(lambda: 0.9) == 0 && LossKind.ce.crossEntropyWeight(lambda: 0.9) == 1)
        for kind in [LossKind.supcon, .hscl] {
            #expect(kind.contrastiveWeight(lambda: 0.9) == 1 && kind.crossEntropyWeight(lambda: 0.9) == 0)
            #expect(!kind.usesCrossEntropy && kind.usesContrastive)
        }
        for kind in [LossKind.ceSupcon, .ceHscl, .clce, .clceNoHNM] {
            #expect(kind.contrastiveWeight(lambda: 0.9) == 0.9)
            #expect(abs(kind.crossEntropyWeight(lambda: 0.9) - 0.1) < 1e-15)
            #expect(kind.usesCrossEntropy && kind.usesContrastive)
        }
        #expect(LossKind.clce.contrastiveLoss() == .lacln())
        #expect(LossKind.clceNoHNM.contrastiveLoss() == .laclNoHNM)
        #expect(LossKind.supcon.contrastiveLoss() == .supconOut)
        #expect(LossKind.ceHscl.contrastiveLoss(beta: 2) == .hscl(beta: 2))
        #expect(LossKind.ce.contrastiveLoss() == nil)
    }
}
