#if canImport(Glibc)
import Glibc
#endif
import Testing
import Tensor
import Model

/// Forward+backward throughput at batch 512, one BLAS thread. Opt-in (slow in debug):
/// `DTRAIN_BENCH=1 swift test -c release --filter ThroughputBenchmark`.
@Suite(.enabled(if: getenv("DTRAIN_BENCH") != nil), .serialized)
struct ThroughputBenchmark {
    @Test(arguments: [EncoderKind.mlp, .cnn])
    func forwardBackward(kind: EncoderKind) {
        BLASThreads.set(1)
        let batch = 512
        let net = Network(config: NetworkConfig(kind: kind), maxBatch: batch, seed: 1)
        let x = Arena(count: batch * net.config.inputSize)
        let dE = Arena(count: batch * 128), dL = Arena(count: batch * 10)
        fillUniform(x.base, count: x.count, seed: 2)
        fillUniform(dE.base, count: dE.count, seed: 3, lo: -1e-3, hi: 1e-3)
        fillUniform(dL.base, count: dL.count, seed: 4, lo: -1e-3, hi: 1e-3)
        var forwardTimes: [Double] = [], stepTimes: [Double] = []
        for r in 0..<4 {
            let t0 = monotonicSeconds()
            try! net.forward(input: x.base, batch: batch)
            let t1 = monotonicSeconds()
            net.zeroGradients()
            try! net.backward(dEmbeddings: dE.base, dLogits: dL.base, batch: batch) { _ in }
            let t2 = monotonicSeconds()
            if r > 0 { forwardTimes.append(t1 - t0); stepTimes.append(t2 - t0) }
        }
        let forward = forwardTimes.sorted()[1], step = stepTimes.sorted()[1]
        let sgemm = measureSgemmGFLOPs()
        let flops = Double(net.flopsPerSample * batch), trainFlops = Double(net.trainingFlopsPerSample * batch)
        print("BENCH \(kind) batch \(batch): forward \(forward * 1e3) ms (\(flops / forward / 1e9) GFLOP/s), "
              + "forward+backward \(step * 1e3) ms = \(Double(batch) / step) samples/s "
              + "(\(trainFlops / step / 1e9) GFLOP/s as performed); sgemm 512³: \(sgemm) GFLOP/s")
    }
}
