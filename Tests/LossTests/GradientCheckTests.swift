// Central finite differences in Double for every loss: h = 1e-5 on the embeddings / logits, tolerance
// |fd − analytic| ≤ 1e-6·max|analytic| + 1e-9 per entry. The values are also compared with the loop-based
// reference (TestSupport.swift) to 1e-12 relative. Fixed seeds (CounterRNG).

import Foundation
import Testing
import Tensor
import Loss

/// A named contrastive loss configuration.
struct LossCase: Sendable, CustomTestStringConvertible {
    var name: String
    var loss: ContrastiveLoss
    var testDescription: String { name }
}

let contrastiveCases: [LossCase] = [
    LossCase(name: "supconOut", loss: .supconOut),
    LossCase(name: "laclNoHNM", loss: .laclNoHNM),
    LossCase(name: "lacln β=1", loss: .lacln()),
    LossCase(name: "lacln β=0.5", loss: .lacln(beta: 0.5)),
    LossCase(name: "lacln β=2", loss: .lacln(beta: 2)),
    LossCase(name: "lacln outside β=1", loss: .lacln(placement: .outside)),
    LossCase(name: "lacln outside β=0.7", loss: .lacln(beta: 0.7, placement: .outside)),
    LossCase(name: "hscl β=1", loss: .hscl()),
    LossCase(name: "hscl β=0.5", loss: .hscl(beta: 0.5)),
    LossCase(name: "hscl β=0", loss: .hscl(beta: 0)),
]

let detachedCases: [LossCase] = [
    LossCase(name: "lacln detached β=1", loss: .lacln(detachedWeights: true)),
    LossCase(name: "lacln detached β=0.5", loss: .lacln(beta: 0.5, detachedWeights: true)),
    LossCase(name: "lacln outside detached β=1", loss: .lacln(placement: .outside, detachedWeights: true)),
    LossCase(name: "hscl detached β=1", loss: .hscl(detachedWeights: true)),
    LossCase(name: "hscl detached β=2", loss: .hscl(beta: 2, detachedWeights: true)),
]

/// The finite-difference tolerance of this file.
func assertGradient(_ analytic: [Double], _ numeric: [Double], _ what: String,
                    sourceLocation: SourceLocation = #_sourceLocation) {
    assertClose(analytic, numeric, atol: 1e-6 * maxAbs(analytic) + 1e-9, what, sourceLocation: sourceLocation)
}

@Suite struct GradientCheckTests {
    static let h = 1e-5

    @Test(arguments: contrastiveCases)
    func contrastiveGradient(_ c: LossCase) {
        for (seed, tau) in [(UInt64(1), 0.5), (2, 0.2)] {
            let p = randomProblem(rows: 10, dim: 4, classes: 3, seed: seed)
            let r = runContrastive(c.loss, x: p.x, labels: p.labels, dim: p.dim, tau: tau, scale: 0.7, as: Double.self)
            let reference = referenceContrastive(c.loss, x: p.x, labels: p.labels, dim: p.dim, tau: tau)
            assertClose(r.loss, reference.loss, rtol: 1e-12, "\(c.name) τ=\(tau) value vs loop reference")
            assertClose(r.perAnchor, reference.perAnchor, rtol: 1e-12, atol: 1e-14, "\(c.name) τ=\(tau) per-anchor")
            #expect(r.perAnchor[p.rows - 1] == 0, "the lone row has no positive: l = 0 exactly")
            let fd = centralDifferences(p.x, h: Self.h) { x in
                0.7 * runContrastive(c.loss, x: x, labels: p.labels, dim: p.dim, tau: tau, as: Double.self).loss
            }
            assertGradient(r.dEmbeddings, fd, "\(c.name) τ=\(tau) dEmbeddings")
        }
    }

    /// The distributed form: anchors are a sub-range, the gradient covers every row; blocks of 3 anchors.
    @Test(arguments: contrastiveCases)
    func anchorRangeGradient(_ c: LossCase) {
        let p = randomProblem(rows: 11, dim: 3, classes: 2, seed: 3)
        let anchors = 3..<9
        let r = runContrastive(c.loss, x: p.x, labels: p.labels, dim: p.dim, tau: 0.4, anchors: anchors,
                               globalCount: 23, maxAnchors: 4, as: Double.self)
        let reference = referenceContrastive(c.loss, x: p.x, labels: p.labels, dim: p.dim, tau: 0.4,
                                             anchors: anchors, globalCount: 23)
        assertClose(r.loss, reference.loss, rtol: 1e-12, "\(c.name) local value vs loop reference")
        let fd = centralDifferences(p.x, h: Self.h) { x in
            runContrastive(c.loss, x: x, labels: p.labels, dim: p.dim, tau: 0.4, anchors: anchors, globalCount: 23,
                           as: Double.self).loss
        }
        assertGradient(r.dEmbeddings, fd, "\(c.name) local dEmbeddings")
    }

    /// Detached weights: the gradient of the loss with w_ik frozen at their current values (loop reference).
    @Test(arguments: detachedCases)
    func detachedGradient(_ c: LossCase) {
        let p = randomProblem(rows: 10, dim: 4, classes: 3, seed: 4)
        let tau = 0.3
        let r = runContrastive(c.loss, x: p.x, labels: p.labels, dim: p.dim, tau: tau, as: Double.self)
        let frozen = referenceContrastive(c.loss, x: p.x, labels: p.labels, dim: p.dim, tau: tau).weights
        let fd = centralDifferences(p.x, h: Self.h) { x in
            referenceContrastive(c.loss, x: x, labels: p.labels, dim: p.dim, tau: tau, frozenWeights: frozen).loss
        }
        assertGradient(r.dEmbeddings, fd, "\(c.name) dEmbeddings")
        let full = ContrastiveLoss(form: c.loss.form, beta: c.loss.beta, detachedWeights: false)
        let attached = runContrastive(full, x: p.x, labels: p.labels, dim: p.dim, tau: tau, as: Double.self)
        #expect(r.loss == attached.loss, "detaching changes the gradient only")
        #expect(maxAbs(zip(r.dEmbeddings, attached.dEmbeddings).map { $0 - $1 }) > 1e-4 * maxAbs(attached.dEmbeddings),
                "the detached gradient should differ from the full one")
    }

    @Test func crossEntropyGradient() {
        let p = randomProblem(rows: 7, dim: 1, classes: 4, seed: 5)
        let r = runCrossEntropy(logits: p.logits, labels: p.labels, classes: p.classes, globalCount: 17, scale: 0.3,
                                as: Double.self)
        let fd = centralDifferences(p.logits, h: Self.h) { z in
            0.3 * runCrossEntropy(logits: z, labels: p.labels, classes: p.classes, globalCount: 17,
                                  as: Double.self).loss
        }
        assertGradient(r.dLogits, fd, "CE dLogits")
        // Per-row definition: logsumexp − logit of the label, and the mean over the divisor.
        for i in 0..<p.rows {
            let row = p.logits[(i * p.classes)..<((i + 1) * p.classes)]
            let lse = log(row.reduce(0) { $0 + exp($1) })
            assertClose(r.perAnchor[i], lse - row[row.startIndex + Int(p.labels[i])], rtol: 1e-13, "CE l_\(i)")
        }
        assertClose(r.loss, r.perAnchor.reduce(0, +) / 17, rtol: 1e-13, "CE divisor")
    }

    @Test(arguments: LossKind.allCases)
    func blendGradient(_ kind: LossKind) {
        let p = randomProblem(rows: 9, dim: 3, classes: 2, seed: 6)
        let (tau, lambda, beta) = (0.5, 0.8, 1.5)
        let r = runBlend(kind, x: p.x, labels: p.labels, dim: p.dim, logits: p.logits, classes: p.classes, tau: tau,
                         lambda: lambda, beta: beta, as: Double.self)
        func total(_ x: [Double], _ z: [Double]) -> Double {
            runBlend(kind, x: x, labels: p.labels, dim: p.dim, logits: z, classes: p.classes, tau: tau,
                     lambda: lambda, beta: beta, as: Double.self).value.total
        }
        assertGradient(r.dEmbeddings, centralDifferences(p.x, h: Self.h) { total($0, p.logits) }, "\(kind) dEmbeddings")
        assertGradient(r.dLogits, centralDifferences(p.logits, h: Self.h) { total(p.x, $0) }, "\(kind) dLogits")
        let expected = kind.crossEntropyWeight(lambda: lambda) * r.value.crossEntropy
            + kind.contrastiveWeight(lambda: lambda) * r.value.contrastive
        assertClose(r.value.total, expected, rtol: 1e-15, "\(kind) total = weighted terms")
        if !kind.usesContrastive { #expect(r.dEmbeddings.allSatisfy { $0 == 0 }) }
        if !kind.usesCrossEntropy { #expect(r.dLogits.allSatisfy { $0 == 0 }) }
    }
}
