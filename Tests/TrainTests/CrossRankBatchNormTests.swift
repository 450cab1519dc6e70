import Collective
import Foundation
import Model
import Tensor
import Testing

// BatchNorm2d across ranks through the reducer `Train` injects (here an in-process LocalGroup): a batch split
// unevenly over 2 and 3 ranks gives, on each rank's rows, the output and input gradient of the whole batch on one
// rank, and the sums of the per-rank dγ, dβ are the whole batch's.

@Suite struct CrossRankBatchNormTests {
    @Test(arguments: [[5], [3, 2], [1, 3, 1]])
    func unevenShardsMatchOneRank(shards: [Int]) throws {
        let C = 3, h = 2, w = 3, P = h * w, total = shards.reduce(0, +)
        var registry = ParameterRegistry()
        let bn = BatchNorm2d(channels: C, height: h, width: w, name: "bn", registry: &registry)
        // The whole batch's input, upstream gradient and parameters (the same on every rank).
        let x: [Float] = (0..<(total * C * P)).map { i in Float(sin(Double(i) * 0.37) * 2 + 0.3) }
        let dy: [Float] = (0..<(total * C * P)).map { i in Float(cos(Double(i) * 0.91)) }
        let gamma: [Float] = [0.7, 1.3, -0.4], beta: [Float] = [0.1, -0.2, 0.05]

        let results = try LocalGroup.run(size: shards.count) { comm -> ([Float], [Float], [Float], [Float]) in
            let first = shards[..<comm.rank].reduce(0, +), n = shards[comm.rank]
            let params = Arena(count: registry.layout.total), grads = Arena(count: registry.layout.total)
            let buffers = Arena(count: registry.bufferLayout.total), counters = Buffer<Int64>(count: 1, repeating: 0)
            registry.initialise(params: params, buffers: buffers, counters: counters, seed: 0)
            params.view(bn.weight).update(fromContentsOf: gamma)
            params.view(bn.bias).update(fromContentsOf: beta)
            let size = n * C * P, start = first * C * P
            let input = Arena(count: size), output = Arena(count: size), dOut = Arena(count: size)
            let dIn = Arena(count: size), cache = Buffer<Double>(count: bn.cacheCount, repeating: 0)
            input.storage.update(fromContentsOf: x[start..<(start + size)])
            dOut.storage.update(fromContentsOf: dy[start..<(start + size)])
            let reducer = StatisticsReducer { try comm.allReduceSum($0) }
            try bn.forward(input: input.base, output: output.base, batch: n, mode: .train, relu: false,
                           params: params, buffers: buffers, counters: counters, cache: cache.base, reducer: reducer)
            try bn.backward(dOutput: dOut.base, input: input.base, output: output.base, relu: false,
                            dInput: dIn.base, accumulateInput: false, batch: n, params: params, grads: grads,
                            cache: cache.base, reducer: reducer)
            try comm.allReduceSum(grads.storage)
            return (output.toArray(), dIn.toArray(), grads.toArray(), Array(buffers.view(bn.runningVar)))
        }
        let y = results.flatMap(\.0), dx = results.flatMap(\.1)
        // One rank, whole batch, for reference.
        let one = try LocalGroup.run(size: 1) { comm -> ([Float], [Float], [Float], [Float]) in
            let params = Arena(count: registry.layout.total), grads = Arena(count: registry.layout.total)
            let buffers = Arena(count: registry.bufferLayout.total), counters = Buffer<Int64>(count: 1, repeating: 0)
            registry.initialise(params: params, buffers: buffers, counters: counters, seed: 0)
            params.view(bn.weight).update(fromContentsOf: gamma)
            params.view(bn.bias).update(fromContentsOf: beta)
            let input = Arena(x), output = Arena(count: x.count), dOut = Arena(dy), dIn = Arena(count: x.count)
            let cache = Buffer<Double>(count: bn.cacheCount, repeating: 0)
            try bn.forward(input: input.base, output: output.base, batch: total, mode: .train, relu: false,
                           params: params, buffers: buffers, counters: counters, cache: cache.base, reducer: .identity)
            try bn.backward(dOutput: dOut.base, input: input.base, output: output.base, relu: false,
                            dInput: dIn.base, accumulateInput: false, batch: total, params: params, grads: grads,
                            cache: cache.base, reducer: .identity)
            return (output.toArray(), dIn.toArray(), grads.toArray(), Array(buffers.view(bn.runningVar)))
        }[0]
        func worst(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
        #expect(y.count == one.0.count && worst(y, one.0) <= 1e-6, "output differs by \(worst(y, one.0))")
        #expect(worst(dx, one.1) <= 1e-6, "dX differs by \(worst(dx, one.1))")
        #expect(worst(results[0].2, one.2) <= 1e-5, "dγ, dβ differ by \(worst(results[0].2, one.2))")
        for r in results { #expect(worst(r.3, one.3) <= 1e-7, "running variance differs") }
    }
}
