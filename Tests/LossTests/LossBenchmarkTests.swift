// Timing of the fused loss against its gemm floor; runs only with DTRAIN_BENCH=1 (use a release build:
// `DTRAIN_BENCH=1 swift test -c release --filter LossBenchmarkTests`). Optional DTRAIN_BENCH_N / DTRAIN_BENCH_KINDS.

import Foundation
import Testing
import Tensor
import Loss

@Suite(.serialized) struct LossBenchmarkTests {
    static var enabled: Bool { ProcessInfo.processInfo.environment["DTRAIN_BENCH"] == "1" }

    @Test(.enabled(if: LossBenchmarkTests.enabled))
    func benchmark() {
        let env = ProcessInfo.processInfo.environment
        BLASThreads.set(1)
        let rate = measureSgemmGFLOPs(size: 512, repeats: 5)
        print("sgemm 512³, 1 thread: \(String(format: "%.1f", rate)) GFLOP/s (\(BLASThreads.configuration))")
        let sizes = (env["DTRAIN_BENCH_N"] ?? "2048,8192").split(separator: ",").compactMap { Int($0) }
        let kinds = (env["DTRAIN_BENCH_KINDS"] ?? "clce").split(separator: ",")
            .compactMap { LossKind(rawValue: String($0)) }
        for n in sizes {
            for kind in kinds {
                let r = benchmarkLoss(rows: n, embedDim: 128, classes: 10, kind: kind, repeats: n > 4096 ? 3 : 7,
                                      sgemmGFLOPs: rate, maxAnchors: env["DTRAIN_BENCH_CHUNK"].flatMap { Int($0) })
                print("loss \(kind.rawValue) n=\(n) D=128 block=\(env["DTRAIN_BENCH_CHUNK"] ?? "all"): "
                      + String(format: "median %.4f s, gemm floor %.4f s (%.2f GFLOP), ratio %.2f; ",
                               r.medianSeconds, r.floorSeconds, r.gemmFlops / 1e9, r.ratioToFloor)
                      + String(format: "gemms alone %.4f s, ratio to them %.2f",
                               r.measuredGemmSeconds, r.medianSeconds / r.measuredGemmSeconds))
                #expect(r.medianSeconds.isFinite)
            }
        }
    }
}
