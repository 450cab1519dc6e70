// The distributed form against dist_4ranks.json: each rank all-gathers the embeddings and labels, computes its
// anchors' loss and the gradient of the whole gathered matrix, then reduce-scatters that gradient with sum.
// Run on the in-process rank group of Collective (LocalGroup, one thread per rank) for 1–4 ranks with uneven
// shards, and on a plain sequential simulation of the same collectives.
//
// Tolerances: Double, loss relative 1e-10, gradients 1e-9 × max|g|; Float (clce only), 1e-5 and 1e-4 × max|g|.

import Foundation
import Testing
import Tensor
import Collective
import Loss

/// Row counts per rank: uneven shards for 1 to 4 ranks (one with an empty rank) and the file's even split.
let shardCounts: [[Int]] = [[32], [5, 27], [5, 11, 16], [8, 8, 8, 8], [1, 7, 13, 11], [3, 0, 20, 9]]

/// What one rank computes: its local losses (÷ N_global) and, after the reduce-scatter, the gradient of the summed
/// losses with respect to its own rows; `ownOnly` is its own loss's gradient on its rows without the sum.
struct RankResult {
    var rows: Range<Int>
    var loss: [String: Double] = [:]
    var dEmbeddings: [String: [Double]] = [:]
    var ownOnly: [String: [Double]] = [:]
    var dLogits: [String: [Double]] = [:]
    var summedLoss: [String: Double] = [:]
}

/// The collectives a rank needs, so the same rank code runs on LocalGroup and on the sequential simulation.
protocol RankCollectives {
    var rank: Int { get }
    func allGather<T: CollectiveScalar>(_ send: [T], layout: ShardLayout) throws -> [T]
    func reduceScatterSum<T: CollectiveScalar>(_ send: [T], layout: ShardLayout) throws -> [T]
    func sum(_ value: Double) throws -> Double
}

/// LocalGroup's communicator behind `RankCollectives`.
struct GroupCollectives: RankCollectives {
    let comm: LocalCommunicator
    var rank: Int { comm.rank }

    func allGather<T: CollectiveScalar>(_ send: [T], layout: ShardLayout) throws -> [T] {
        var out = [T](unsafeUninitializedCapacity: layout.total) { _, n in n = layout.total }
        try send.withUnsafeBufferPointer { s in
            try out.withUnsafeMutableBufferPointer { try comm.allGather(send: s, into: $0, layout: layout) }
        }
        return out
    }

    func reduceScatterSum<T: CollectiveScalar>(_ send: [T], layout: ShardLayout) throws -> [T] {
        let count = layout.counts[comm.rank]
        var out = [T](unsafeUninitializedCapacity: count) { _, n in n = count }
        try send.withUnsafeBufferPointer { s in
            try out.withUnsafeMutableBufferPointer { try comm.reduceScatterSum(send: s, into: $0, layout: layout) }
        }
        return out
    }

    func sum(_ value: Double) throws -> Double {
        var v = [value]
        try v.withUnsafeMutableBufferPointer { try comm.allReduceSum($0) }
        return v[0]
    }
}

/// One rank's work: gather, compute each loss on its anchors, reduce-scatter the gradient.
func rankStep<T: BLASScalar & CollectiveScalar>(_ c: some RankCollectives, layout: ShardLayout,
                                                 inputs: ReferenceInputs, as _: T.Type) throws -> RankResult {
    let dim = inputs.D, classes = inputs.C, n = inputs.N
    let rows = layout.range(of: c.rank)
    // The rank's own data, as its model would have produced it.
    let x = inputs.flatEmbeddings, logits = inputs.flatLogits
    let localX = x[(rows.lowerBound * dim)..<(rows.upperBound * dim)].map { T($0) }
    let localLabels = Array(inputs.labels[rows])
    let localLogits = logits[(rows.lowerBound * classes)..<(rows.upperBound * classes)].map { T($0) }

    let gatheredX: [T] = try c.allGather(localX, layout: layout.scaled(by: dim))
    let gatheredLabels: [Int32] = try c.allGather(localLabels, layout: layout)

    var result = RankResult(rows: rows)
    let workspace = ContrastiveWorkspace<T>(rows: n, embedDim: dim, maxAnchors: 4)
    let computer = LossComputer<T>(rows: n, embedDim: dim, localRows: max(1, rows.count), classes: classes,
                                   maxAnchors: 3)
    var dE = [T](repeating: 0, count: n * dim), dZ = [T](repeating: 0, count: rows.count * classes)

    func finish(_ key: String, _ loss: Double) throws {
        result.loss[key] = loss
        result.ownOnly[key] = dE[(rows.lowerBound * dim)..<(rows.upperBound * dim)].map { Double($0) }
        result.dEmbeddings[key] = try c.reduceScatterSum(dE, layout: layout.scaled(by: dim)).map { Double($0) }
        result.summedLoss[key] = try c.sum(loss)
    }

    for (key, loss) in [("lacln", ContrastiveLoss.lacln(beta: inputs.beta)), ("supcon_out", .supconOut)] {
        let value = gatheredX.withUnsafeBufferPointer { xb in
            gatheredLabels.withUnsafeBufferPointer { lb in
                dE.withUnsafeMutableBufferPointer { db in
                    contrastiveLoss(loss, embeddings: xb, labels: lb, anchorRows: rows, globalCount: n,
                                    tau: T(inputs.tau), scale: 1, workspace: workspace, dEmbeddings: db)
                }
            }
        }
        try finish(key, value)
    }
    for (key, kind) in [("ce", LossKind.ce), ("clce", .clce)] {
        let value = gatheredX.withUnsafeBufferPointer { xb in
            gatheredLabels.withUnsafeBufferPointer { lb in
                localLogits.withUnsafeBufferPointer { zb in
                    localLabels.withUnsafeBufferPointer { llb in
                        dE.withUnsafeMutableBufferPointer { db in
                            dZ.withUnsafeMutableBufferPointer { dzb in
                                computer.compute(kind: kind, gatheredEmbeddings: xb, labels: lb, anchorRows: rows,
                                                 localLogits: zb, localLabels: llb, globalCount: n,
                                                 tau: T(inputs.tau), lambda: inputs.lambda, beta: T(inputs.beta),
                                                 dEmbeddings: db, dLogits: dzb)
                            }
                        }
                    }
                }
            }
        }
        result.dLogits[key] = dZ.map { Double($0) }
        try finish(key, value.total)
    }
    return result
}

/// Loads the distributed reference file (bundled fixture).
func loadDistributedReference() throws -> DistributedReference {
    let url = try #require(ReferenceFolders.fixtures?.appendingPathComponent("dist_4ranks.json"))
    guard case .distributed(let file) = try ReferenceFile.load(url) else {
        throw ReferenceFileError(description: "dist_4ranks.json is not in the distributed layout")
    }
    return file
}

/// Checks the concatenated per-rank results against the single-process reference.
func checkAgainstSingleProcess(_ results: [RankResult], _ file: DistributedReference, counts: [Int],
                               lossTolerance: Double, gradientTolerance: Double, keys: [String],
                               sourceLocation: SourceLocation = #_sourceLocation) {
    let single = file.singleProcess
    let expected: [String: ReferenceLoss?] = ["lacln": single.lacln, "supcon_out": single.supconOut,
                                              "ce": single.ce, "clce": single.clce]
    for key in keys {
        guard let reference = expected[key] ?? nil else {
            Issue.record("dist_4ranks.json lacks single_process.\(key)", sourceLocation: sourceLocation)
            continue
        }
        let what = "\(counts) \(key)"
        let sum = results.reduce(0) { $0 + $1.loss[key]! }
        assertClose(sum, reference.loss, rtol: lossTolerance, "\(what) Σ local losses", sourceLocation: sourceLocation)
        for r in results {
            if let s = r.summedLoss[key] {
                assertClose(s, reference.loss, rtol: lossTolerance, "\(what) all-reduced loss",
                            sourceLocation: sourceLocation)
            }
        }
        if let g = reference.gradEmbeddings {
            let flat = g.flatMap { $0 }
            assertClose(results.flatMap { $0.dEmbeddings[key]! }, flat, atol: gradientTolerance * maxAbs(flat),
                        "\(what) reduce-scattered gradient", sourceLocation: sourceLocation)
        }
        if let g = reference.gradLogits {
            let flat = g.flatMap { $0 }
            assertClose(results.flatMap { $0.dLogits[key]! }, flat, atol: gradientTolerance * maxAbs(flat),
                        "\(what) dLogits", sourceLocation: sourceLocation)
        }
    }
}

@Suite(.serialized) struct DistributedTests {
    @Test("LocalGroup ranks match single process (Double)", arguments: shardCounts)
    func localGroupDouble(_ counts: [Int]) throws {
        let file = try loadDistributedReference()
        let layout = ShardLayout(counts: counts)
        #expect(layout.total == file.inputs.N)
        let results = try LocalGroup.run(size: counts.count) { comm in
            try rankStep(GroupCollectives(comm: comm), layout: layout, inputs: file.inputs, as: Double.self)
        }
        checkAgainstSingleProcess(results, file, counts: counts, lossTolerance: 1e-10, gradientTolerance: 1e-9,
                                  keys: ["lacln", "supcon_out", "ce", "clce"])
    }

    @Test("LocalGroup ranks match single process (Float, clce)", arguments: shardCounts)
    func localGroupFloat(_ counts: [Int]) throws {
        let file = try loadDistributedReference()
        let layout = ShardLayout(counts: counts)
        let results = try LocalGroup.run(size: counts.count) { comm in
            try rankStep(GroupCollectives(comm: comm), layout: layout, inputs: file.inputs, as: Float.self)
        }
        checkAgainstSingleProcess(results, file, counts: counts, lossTolerance: 1e-5, gradientTolerance: 1e-4,
                                  keys: ["lacln", "supcon_out", "ce", "clce"])
    }

    /// The file's own split: per-rank local losses and gradients, and the diagnostic "own loss only" gradient,
    /// which the reduce-scattered gradient must NOT match (and which the unreduced local slice does match).
    @Test func perRankValuesOfTheFile() throws {
        let file = try loadDistributedReference()
        let counts = file.ranks.map { $0.rows[1] - $0.rows[0] }
        let layout = ShardLayout(counts: counts)
        let results = try LocalGroup.run(size: counts.count) { comm in
            try rankStep(GroupCollectives(comm: comm), layout: layout, inputs: file.inputs, as: Double.self)
        }
        for (r, reference) in file.ranks.enumerated() {
            let result = results[r]
            #expect(result.rows == reference.rows[0]..<reference.rows[1], "rank \(r) rows")
            let contrastive: [(String, RankContrastive)] = [("lacln", reference.lacln),
                                                            ("supcon_out", reference.supconOut),
                                                            ("clce", reference.clce)]
            for (key, expected) in contrastive {
                let what = "rank \(r) \(key)"
                assertClose(result.loss[key]!, expected.localLoss, rtol: 1e-10, "\(what) local_loss")
                let grad = expected.gradLocalEmbeddings.flatMap { $0 }
                assertClose(result.dEmbeddings[key]!, grad, atol: 1e-9 * maxAbs(grad), "\(what) grad_local_embeddings")
                if let own = expected.gradLocalEmbeddingsOwnLossOnly?.flatMap({ $0 }) {
                    let diff = maxAbs(zip(result.dEmbeddings[key]!, own).map { $0 - $1 })
                    #expect(diff > 1e-3 * maxAbs(grad),
                            "\(what): the reduce-scattered gradient matches the own-loss-only one (diff \(diff))")
                    assertClose(result.ownOnly[key]!, own, atol: 1e-9 * maxAbs(own), "\(what) own-loss-only slice")
                }
                if let logits = expected.gradLocalLogits?.flatMap({ $0 }) {
                    assertClose(result.dLogits[key]!, logits, atol: 1e-9 * maxAbs(logits), "\(what) grad_local_logits")
                }
            }
            assertClose(result.loss["ce"]!, reference.ce.localLoss, rtol: 1e-10, "rank \(r) ce local_loss")
            let ceGrad = reference.ce.gradLocalLogits.flatMap { $0 }
            assertClose(result.dLogits["ce"]!, ceGrad, atol: 1e-9 * maxAbs(ceGrad), "rank \(r) ce grad_local_logits")
        }
    }

    /// The same algebra without Collective: ranks computed one after another, the all-gather being the global
    /// batch and the reduce-scatter an explicit sum over ranks followed by taking each rank's rows.
    @Test("sequential simulation matches single process", arguments: shardCounts)
    func sequentialSimulation(_ counts: [Int]) throws {
        let file = try loadDistributedReference()
        let inputs = file.inputs, dim = inputs.D, n = inputs.N
        let layout = ShardLayout(counts: counts)
        var total = 0.0
        var summed = [Double](repeating: 0, count: n * dim)
        for rank in 0..<counts.count {
            let rows = layout.range(of: rank)
            let logitRange = (rows.lowerBound * inputs.C)..<(rows.upperBound * inputs.C)
            let r = runBlend(.clce, x: inputs.flatEmbeddings, labels: inputs.labels, dim: dim,
                             logits: Array(inputs.flatLogits[logitRange]),
                             classes: inputs.C, tau: inputs.tau, lambda: inputs.lambda, beta: inputs.beta,
                             anchors: rows, globalCount: n, as: Double.self)
            total += r.value.total
            for k in summed.indices { summed[k] += r.dEmbeddings[k] }   // the sum of the reduce-scatter
        }
        let reference = try #require(file.singleProcess.clce)
        assertClose(total, reference.loss, rtol: 1e-10, "\(counts) Σ clce")
        let grad = try #require(reference.gradEmbeddings).flatMap { $0 }
        assertClose(summed, grad, atol: 1e-9 * maxAbs(grad), "\(counts) summed clce gradient")
    }
}
