/// Measures this process's sgemm rate on square matrices of `size`, the ceiling every throughput figure is
/// compared with. Returns GFLOP/s (2·size³ flops per call), best of `repeats` timed calls after one warm-up.
public func measureSgemmGFLOPs(size: Int = 512, repeats: Int = 5, seed: UInt64 = 0) -> Double {
    let a = Arena(count: size * size), b = Arena(count: size * size), c = Arena(count: size * size)
    let rng = CounterRNG(seed: seed)
    for i in 0..<(size * size) {
        a[i] = rng.uniform(stream: .probe, index: UInt64(i)) - 0.5
        b[i] = rng.uniform(stream: .probe, index: UInt64(i), substream: 1) - 0.5
    }
    var best = Double.infinity
    for r in 0...repeats {
        let t0 = monotonicSeconds()
        gemm(m: size, n: size, k: size, a: a.base, lda: size, b: b.base, ldb: size, c: c.base, ldc: size)
        let dt = monotonicSeconds() - t0
        if r > 0 { best = min(best, dt) }
    }
    return 2 * Double(size * size * size) / best / 1e9
}
