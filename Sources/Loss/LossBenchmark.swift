import Tensor

// Times one forward+backward of a loss on random data and compares it with the time the three gemms of the
// anchor-block form need at the measured sgemm rate (S = Z_a Zᵀ/τ, dSᵀ Z_a, dS Z: 2·a·n·D flops each for a anchors):
// the "three-gemm floor". The symmetric single-process form (SymmetricContrastive.swift) performs 4·n²·D flops
// instead of 6·n²·D, so it can finish below that floor (ratio < 1).

/// The matrix-product flops `contrastiveLoss` performs for `anchors` anchors (rows 0..<anchors, or any slice of that
/// length when anchors < rows) of `rows` gathered rows of width `embedDim`: 4·n²·D for the symmetric form (a pooled
/// loss with every row an anchor: S over the upper triangle twice, N²·D each, then (dS + dSᵀ)·Z, 2·N²·D), else
/// 6·a·n·D (S = Z_a Zᵀ, dSᵀ Z_a, dS Z); 0 without a contrastive term. Elementwise work is not counted.
public func contrastiveMatrixFlops(_ loss: ContrastiveLoss?, rows: Int, anchors: Int, embedDim: Int) -> Double {
    guard let loss, anchors > 0 else { return 0 }
    let n = Double(rows), d = Double(embedDim)
    if case .pooled = loss.form, anchors == rows { return 4 * n * n * d }
    return 6 * Double(anchors) * n * d
}

/// What `benchmarkLoss` measured.
public struct LossBenchmarkResult: Sendable {
    /// Rows n, embedding width D, classes K, and the loss.
    public let rows: Int, embedDim: Int, classes: Int, kind: LossKind
    /// Anchors a: rank 0's share n/ranks of a simulated `ranks`-process run (n for one process).
    public let anchors: Int
    /// Flops of the matrix products the loss performs: 4·n²·D for the symmetric form (one process, pooled
    /// loss: S twice over the upper triangle, then (dS + dSᵀ)·Z), else 6·a·n·D (the three gemms).
    public let performedFlops: Double
    /// Median wall-clock seconds of one forward+backward (CE and contrastive, as `LossComputer.compute`).
    public let medianSeconds: Double
    /// Flops of the three gemms of the anchor-block form: 3·2·a·n·D.
    public let gemmFlops: Double
    /// gemmFlops at the given sgemm rate: the time no implementation of these shapes can beat.
    public let floorSeconds: Double
    /// Median seconds of the same three gemms alone (same shapes, same blocks), timed in the same run: the floor
    /// under the machine's load at that moment.
    public let measuredGemmSeconds: Double
    /// medianSeconds / floorSeconds.
    public var ratioToFloor: Double { medianSeconds / floorSeconds }
}

/// Runs `kind` forward and backward `repeats` times in Float on random data of n = `rows` rows (`classes`
/// balanced-at-random labels; anchors = all rows, or rank 0's rows 0..<n/ranks of a simulated distributed run with
/// `ranks` processes) and reports the median time and the gemm floor at
/// `sgemmGFLOPs` (measure it with `measureSgemmGFLOPs`). Allocates its buffers once, before timing; one untimed
/// warm-up call. Also times the three gemms alone on the same shapes (`measuredGemmSeconds`, blocks of
/// min(maxAnchors ?? 1024, a) anchors, the anchor-block form's former default).
public func benchmarkLoss(rows: Int, embedDim: Int, classes: Int, kind: LossKind, tau: Float = 0.5,
                          lambda: Double = 0.9, beta: Float = 1, repeats: Int = 5, sgemmGFLOPs: Double,
                          maxAnchors: Int? = nil, ranks: Int = 1, seed: UInt64 = 0) -> LossBenchmarkResult {
    precondition(rows >= 2 && embedDim >= 1 && classes >= 1 && repeats >= 1,
                 "benchmarkLoss: rows \(rows), embedDim \(embedDim), classes \(classes), repeats \(repeats)")
    precondition(ranks >= 1 && ranks <= rows, "benchmarkLoss: ranks \(ranks) must be in 1...\(rows)")
    let anchors = rows / ranks
    let rng = CounterRNG(seed: seed)
    let x = Buffer<Float>(count: rows * embedDim), logits = Buffer<Float>(count: rows * classes)
    let labels = Buffer<Int32>(count: rows, repeating: 0)
    for i in 0..<(rows * embedDim) { x[i] = Float(rng.normal(stream: .synthetic, index: UInt64(i))) }
    for i in 0..<(rows * classes) { logits[i] = Float(rng.normal(stream: .synthetic, index: UInt64(i), substream: 1)) }
    for i in 0..<rows {
        labels[i] = Int32(rng.integer(below: classes, stream: .synthetic, index: UInt64(i), substream: 2))
    }
    let dx = Buffer<Float>(count: rows * embedDim), dLogits = Buffer<Float>(count: rows * classes)
    let computer = LossComputer<Float>(rows: rows, embedDim: embedDim, localRows: rows, classes: classes,
                                       maxAnchors: maxAnchors)
    var times = [Double](), gemmTimes = [Double]()
    times.reserveCapacity(repeats)
    gemmTimes.reserveCapacity(repeats)
    let workspace = computer.workspace
    let block = min(maxAnchors ?? 1024, anchors)
    let gemmBlock = Buffer<Float>(count: block * rows)
    let z = workspace.normalized.base, s = gemmBlock.base, dz = workspace.dNormalized.base
    for r in 0...repeats {
        // The three gemms of the loss alone, block by block as in `contrastiveLoss`.
        let g0 = monotonicSeconds()
        var first = 0
        while first < anchors {
            let count = min(block, anchors - first)
            gemm(.none, .transposed, m: count, n: rows, k: embedDim, alpha: 2, a: z + first * embedDim,
                 lda: embedDim, b: z, ldb: embedDim, beta: 0, c: s, ldc: rows)
            gemm(.transposed, .none, m: rows, n: embedDim, k: count, alpha: 2, a: s, lda: rows,
                 b: z + first * embedDim, ldb: embedDim, beta: 1, c: dz, ldc: embedDim)
            gemm(.none, .none, m: count, n: embedDim, k: rows, alpha: 2, a: s, lda: rows,
                 b: z, ldb: embedDim, beta: 1, c: dz + first * embedDim, ldc: embedDim)
            first += count
        }
        if r > 0 { gemmTimes.append(monotonicSeconds() - g0) }

        let t0 = monotonicSeconds()
        _ = computer.compute(kind: kind, gatheredEmbeddings: UnsafeBufferPointer(x.storage),
                             labels: UnsafeBufferPointer(labels.storage), anchorRows: 0..<anchors,
                             localLogits: UnsafeBufferPointer(rebasing: logits.storage[0..<(anchors * classes)]),
                             localLabels: UnsafeBufferPointer(rebasing: labels.storage[0..<anchors]), globalCount: rows,
                             tau: tau, lambda: lambda, beta: beta, dEmbeddings: dx.storage,
                             dLogits: UnsafeMutableBufferPointer(rebasing: dLogits.storage[0..<(anchors * classes)])
        )
        let dt = monotonicSeconds() - t0
        if r > 0 { times.append(dt) }
    }
    func median(_ v: [Double]) -> Double {
        let v = v.sorted()
        return v.count % 2 == 1 ? v[v.count / 2] : 0.5 * (v[v.count / 2 - 1] + v[v.count / 2])
    }
    let flops = 3 * 2 * Double(anchors) * Double(rows) * Double(embedDim)
    let performed = contrastiveMatrixFlops(kind.contrastiveLoss(), rows: rows, anchors: anchors, embedDim: embedDim)
    return LossBenchmarkResult(rows: rows, embedDim: embedDim, classes: classes, kind: kind, anchors: anchors,
                               performedFlops: performed,
                               medianSeconds: median(times),
                               gemmFlops: flops, floorSeconds: flops / (sgemmGFLOPs * 1e9),
                               measuredGemmSeconds: median(gemmTimes))
}
