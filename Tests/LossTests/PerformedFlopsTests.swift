import Loss
import Testing

@Suite struct PerformedFlopsTests {
    @Test func symmetricFormOnOneProcessThreeGemmsOtherwise() {
        // One process, a pooled loss (every row an anchor): S over the upper triangle twice (N²·D multiply-adds
        // each time) and (dS + dSᵀ)·Z (N²·D), 2 FLOPs per multiply-add: 4·N²·D.
        let one = LossComputer<Float>.performedFlops(anchors: 512, rows: 512, embedDim: 128, kind: .clce, lambda: 0.9)
        #expect(one == 4 * 512 * 512 * 128)
        #expect(LossComputer<Float>.performedFlops(anchors: 512, rows: 512, embedDim: 128, kind: .supcon,
                                                   lambda: 0.9) == one)
        // A rank's anchors against every row: S = Z_a Zᵀ, dSᵀ Z_a and dS Z, a·N·D multiply-adds each.
        let half = LossComputer<Float>.performedFlops(anchors: 256, rows: 512, embedDim: 128, kind: .clce,
                                                      lambda: 0.9)
        #expect(half == 3 * 2 * 256 * 512 * 128)
        // H-SCL keeps the anchor-block form on one process too.
        #expect(LossComputer<Float>.performedFlops(anchors: 512, rows: 512, embedDim: 128, kind: .ceHscl,
                                                   lambda: 0.9) == 3 * 2 * 512 * 512 * 128)
        // No contrastive term, no gemms: `ce`, or a blend whose contrastive weight λ is 0.
        #expect(LossComputer<Float>.performedFlops(anchors: 512, rows: 512, embedDim: 128, kind: .ce,
                                                   lambda: 0.9) == 0)
        #expect(LossComputer<Float>.performedFlops(anchors: 512, rows: 512, embedDim: 128, kind: .clce,
                                                   lambda: 0) == 0)
    }

    @Test func arenaBytesOfTheWorkspace() {
        let c = LossComputer<Float>(rows: 512, embedDim: 128, localRows: 256, classes: 10, maxAnchors: 256)
        let bytes = Dictionary(uniqueKeysWithValues: c.arenaBytes.map { ($0.name, $0.bytes) })
        #expect(bytes["loss similarity block"] == 4 * 256 * 512)
        #expect(bytes["loss z and dZ"] == 4 * 2 * 512 * 128)
        #expect(bytes["loss softmax cache"] == 4 * 256 * 10)
    }
}
