import RealModule

// A counter-based generator (Philox4x32-10, Salmon et al., SC'11): the output is a pure function of
// (seed, stream, index), so which rank draws a number, and in which order, never changes the number.

/// What a stream of random numbers is for; each purpose has its own stream of the same seed.
public enum RandomStream: UInt32, Sendable {
    case initialisation = 1, permutation = 2, augmentation = 3, synthetic = 4, test = 5, probe = 6, episode = 7
}

/// Philox4x32-10 keyed by `seed`; `block(stream:index:)` is the 128-bit block for one counter value.
public struct CounterRNG: Sendable {
    public let seed: UInt64
    public init(seed: UInt64) { self.seed = seed }

    /// Four 32-bit words depending only on (seed, stream, index, substream).
    @inlinable
    public func block(stream: UInt32, index: UInt64, substream: UInt32 = 0) -> (UInt32, UInt32, UInt32, UInt32) {
        var c0 = UInt32(truncatingIfNeeded: index), c1 = UInt32(truncatingIfNeeded: index >> 32)
        var c2 = substream, c3 = stream
        var k0 = UInt32(truncatingIfNeeded: seed), k1 = UInt32(truncatingIfNeeded: seed >> 32)
        for _ in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(c0), p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
            k0 = k0 &+ 0x9E37_79B9; k1 = k1 &+ 0xBB67_AE85
        }
        return (c0, c1, c2, c3)
    }

    /// A 64-bit value for (stream, index, substream).
    @inlinable
    public func uint64(stream: RandomStream, index: UInt64, substream: UInt32 = 0) -> UInt64 {
        let b = block(stream: stream.rawValue, index: index, substream: substream)
        return UInt64(b.0) | (UInt64(b.1) << 32)
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inlinable
    public func uniform(stream: RandomStream, index: UInt64, substream: UInt32 = 0) -> Float {
        let b = block(stream: stream.rawValue, index: index, substream: substream)
        return Float(b.0 >> 8) * (1.0 / 16_777_216.0)
    }

    /// Uniform integer in [0, bound), bound > 0 (multiply-shift on 64 random bits; bias < 2⁻³²).
    @inlinable
    public func integer(below bound: Int, stream: RandomStream, index: UInt64, substream: UInt32 = 0) -> Int {
        precondition(bound > 0, "integer(below:) needs bound > 0, got \(bound)")
        let r = uint64(stream: stream, index: index, substream: substream)
        return Int(r.multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Standard normal via Box–Muller on the block for (stream, index, substream).
    @inlinable
    public func normal(stream: RandomStream, index: UInt64, substream: UInt32 = 0) -> Double {
        let b = block(stream: stream.rawValue, index: index, substream: substream)
        let u1 = (Double(b.0) + 1) / 4_294_967_297.0, u2 = Double(b.1) / 4_294_967_296.0
        return (-2 * Double.log(u1)).squareRoot() * Double.cos(2 * Double.pi * u2)
    }

    /// A permutation of 0..<count from (seed, stream, key): Fisher–Yates with counter-based draws.
    public func permutation(count: Int, stream: RandomStream, key: UInt32) -> [Int] {
        var p = Array(0..<count)
        var i = count - 1
        while i > 0 {
            let j = integer(below: i + 1, stream: stream, index: UInt64(i), substream: key)
            p.swapAt(i, j)
            i -= 1
        }
        return p
    }
}
