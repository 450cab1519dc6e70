import Testing
@testable import Tensor

@Suite struct TensorTests {
    @Test func gemmMatchesNaiveProductInAllTransposes() {
        let m = 5, n = 7, k = 3
        let rng = CounterRNG(seed: 3)
        let a = (0..<(m * k)).map { Double(rng.uniform(stream: .test, index: UInt64($0))) - 0.5 }
        let b = (0..<(k * n)).map { Double(rng.uniform(stream: .test, index: UInt64($0), substream: 1)) - 0.5 }
        var want = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { want[i * n + j] += a[i * k + p] * b[p * n + j] } } }
        // Aᵀ stored (k, m) and Bᵀ stored (n, k).
        var at = [Double](repeating: 0, count: m * k), bt = [Double](repeating: 0, count: k * n)
        for i in 0..<m { for p in 0..<k { at[p * m + i] = a[i * k + p] } }
        for p in 0..<k { for j in 0..<n { bt[j * k + p] = b[p * n + j] } }
        for (ta, tb) in [(Transpose.none, Transpose.none), (.transposed, .none), (.none, .transposed), (.transposed, .transposed)] {
            var c = [Double](repeating: 0, count: m * n)
            let aa = ta == .none ? a : at, bb = tb == .none ? b : bt
            gemm(ta, tb, m: m, n: n, k: k, a: aa, lda: ta == .none ? k : m, b: bb, ldb: tb == .none ? n : k,
                 c: &c, ldc: n)
            for i in 0..<(m * n) { #expect(abs(c[i] - want[i]) < 1e-12, "entry \(i): \(c[i]) vs \(want[i])") }
        }
    }

    @Test func syrkUpperMatchesTheProductOnTheUpperTriangle() {
        let n = 6, k = 4, lda = 5, ldc = 7
        let rng = CounterRNG(seed: 4)
        let a = (0..<(n * lda)).map { Double(rng.uniform(stream: .test, index: UInt64($0))) - 0.5 }
        var c = (0..<(n * ldc)).map { Double(rng.uniform(stream: .test, index: UInt64($0), substream: 1)) }
        let before = c
        a.withUnsafeBufferPointer { ap in
            c.withUnsafeMutableBufferPointer { cp in
                syrkUpper(n: n, k: k, alpha: 0.5, a: ap.baseAddress!, lda: lda, beta: 2, c: cp.baseAddress!, ldc: ldc)
            }
        }
        for i in 0..<n {
            for j in 0..<ldc {
                var want = before[i * ldc + j]
                if j >= i && j < n {
                    var dot = 0.0
                    for p in 0..<k { dot += a[i * lda + p] * a[j * lda + p] }
                    want = 0.5 * dot + 2 * want
                }
                #expect(abs(c[i * ldc + j] - want) < 1e-12, "entry (\(i), \(j)): \(c[i * ldc + j]) vs \(want)")
            }
        }
    }

    @Test func counterRNGDependsOnlyOnItsKey() {
        let r = CounterRNG(seed: 42)
        let x = r.uniform(stream: .augmentation, index: 1234, substream: 5)
        #expect(x == CounterRNG(seed: 42).uniform(stream: .augmentation, index: 1234, substream: 5))
        #expect(x != r.uniform(stream: .augmentation, index: 1235, substream: 5))
        #expect(x != r.uniform(stream: .initialisation, index: 1234, substream: 5))
        #expect(x != CounterRNG(seed: 43).uniform(stream: .augmentation, index: 1234, substream: 5))
    }

    @Test func counterRNGUniformMomentsAndIntegerRange() {
        let r = CounterRNG(seed: 7)
        var sum = 0.0, sq = 0.0
        var hist = [Int](repeating: 0, count: 5)
        let n = 100_000
        for i in 0..<n {
            let u = Double(r.uniform(stream: .test, index: UInt64(i)))
            #expect(u >= 0 && u < 1)
            sum += u; sq += u * u
            hist[r.integer(below: 5, stream: .test, index: UInt64(i), substream: 9)] += 1
        }
        #expect(abs(sum / Double(n) - 0.5) < 0.005)
        #expect(abs(sq / Double(n) - 1.0 / 3.0) < 0.005)
        for h in hist { #expect(abs(Double(h) / Double(n) - 0.2) < 0.01) }
        let p = r.permutation(count: 100, stream: .permutation, key: 0)
        #expect(p.sorted() == Array(0..<100))
        #expect(p != Array(0..<100))
    }

    @Test func arenaLayoutAlignsSlicesAndBuffersAreZeroed() {
        var layout = ArenaLayout()
        let a = layout.reserve(3, name: "a"), b = layout.reserve(20, name: "b")
        #expect(a.offset == 0 && b.offset == 16 && layout.total == 36)
        let arena = Arena(count: layout.total)
        #expect(Int(bitPattern: arena.base) % 64 == 0)
        #expect(arena.toArray().allSatisfy { $0 == 0 })
        arena.view(b).update(repeating: 2)
        #expect(arena[15] == 0 && arena[16] == 2 && arena[35] == 2)
    }
}
