// The symmetric single-process form (SymmetricContrastive.swift) against the anchor-block form: the loss and
// gradient of one process (anchors = every row, symmetric tiles) must equal the sum over a split of the anchors
// into slices (each slice takes the anchor-block form, as a rank of a distributed run does).
// Tolerances: Double, loss relative 1e-10, gradients and per-anchor 1e-9 × max; Float 1e-5 and 1e-5 × max
// (the one-shift Float form at τ ≥ 0.1 and the online form below it).

import Testing
import Tensor
@testable import Loss

@Suite struct SymmetricFormTests {
    static let pooledCases = contrastiveCases.filter { if case .pooled = $0.loss.form { true } else { false } }
        + detachedCases.filter { if case .pooled = $0.loss.form { true } else { false } }

    /// Σ over anchor slices 0..<cut, cut..<N of the anchor-block form.
    func split<T: BLASScalar>(_ loss: ContrastiveLoss, _ p: Problem, tau: Double, cut: Int, maxAnchors: Int?,
                              as type: T.Type) -> ContrastiveResult {
        let a = runContrastive(loss, x: p.x, labels: p.labels, dim: p.dim, tau: tau, anchors: 0..<cut,
                               globalCount: p.rows, maxAnchors: maxAnchors, as: type)
        let b = runContrastive(loss, x: p.x, labels: p.labels, dim: p.dim, tau: tau, anchors: cut..<p.rows,
                               globalCount: p.rows, maxAnchors: maxAnchors, as: type)
        return ContrastiveResult(loss: a.loss + b.loss, perAnchor: a.perAnchor + b.perAnchor,
                                 dEmbeddings: zip(a.dEmbeddings, b.dEmbeddings).map { $0 + $1 })
    }

    func check<T: BLASScalar>(_ c: LossCase, as type: T.Type, rtol: Double, gradientTolerance: Double) {
        // 45 rows: tiles of 4, 8, 16 and one whole tile, with ragged edges; the last row has no positive.
        let p = randomProblem(rows: 45, dim: 6, classes: 4, seed: 17)
        for tau in [0.5, 0.07] {
            for maxAnchors in [4, 8, 16, nil] as [Int?] {
                let what = "\(c.name) \(T.self) τ=\(tau) tile=\(maxAnchors.map(String.init) ?? "all")"
                let symmetric = runContrastive(c.loss, x: p.x, labels: p.labels, dim: p.dim, tau: tau,
                                               maxAnchors: maxAnchors, as: type)
                let blocks = split(c.loss, p, tau: tau, cut: 19, maxAnchors: maxAnchors, as: type)
                assertClose(symmetric.loss, blocks.loss, rtol: rtol, "\(what) loss")
                assertClose(symmetric.perAnchor, blocks.perAnchor, atol: gradientTolerance * maxAbs(blocks.perAnchor),
                            "\(what) per-anchor")
                assertClose(symmetric.dEmbeddings, blocks.dEmbeddings,
                            atol: gradientTolerance * maxAbs(blocks.dEmbeddings), "\(what) gradient")
            }
        }
    }

    @Test(arguments: pooledCases)
    func double(_ c: LossCase) { check(c, as: Double.self, rtol: 1e-10, gradientTolerance: 1e-9) }

    @Test(arguments: pooledCases)
    func float(_ c: LossCase) { check(c, as: Float.self, rtol: 1e-5, gradientTolerance: 1e-5) }

    /// The blended step through LossComputer at a size with several 256-row tiles (Float, clce and supcon, the
    /// one-shift form) against the same call with the anchors split in two.
    @Test(arguments: [LossKind.clce, .supcon, .clceNoHNM])
    func computerAtTileScale(_ kind: LossKind) {
        let p = randomProblem(rows: 600, dim: 16, classes: 10, seed: 23)
        let loss = kind.contrastiveLoss()!
        let symmetric = runContrastive(loss, x: p.x, labels: p.labels, dim: p.dim, tau: 0.5, as: Float.self)
        let blocks = split(loss, p, tau: 0.5, cut: 300, maxAnchors: nil, as: Float.self)
        assertClose(symmetric.loss, blocks.loss, rtol: 1e-5, "\(kind) loss")
        assertClose(symmetric.dEmbeddings, blocks.dEmbeddings, atol: 1e-5 * maxAbs(blocks.dEmbeddings),
                    "\(kind) gradient")
    }
}
