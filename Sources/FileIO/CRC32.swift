// CRC-32 (ISO 3309 / zlib, reflected polynomial 0xEDB88320): gzip's member check and the checkpoint checksum.

/// The CRC-32 of `bytes`, continuing from `crc` (0 to start): `crc32(a + b) == crc32(b, crc: crc32(a))`.
public func crc32(_ bytes: UnsafeBufferPointer<UInt8>, crc: UInt32 = 0) -> UInt32 {
    CRC32Table.shared.update(crc, bytes)
}

/// The CRC-32 of an array of bytes.
public func crc32(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBufferPointer { crc32($0) }
}

/// A running CRC-32: feed bytes with `update`, read `value`. `CRC32().update("123456789")` gives 0xCBF43926.
public struct CRC32: Sendable {
    /// The CRC of everything fed so far.
    public private(set) var value: UInt32 = 0

    /// An empty checksum (value 0).
    public init() {}

    /// Continues the checksum over `bytes`.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        value = crc32(bytes.bindMemory(to: UInt8.self), crc: value)
    }

    /// Continues the checksum over an array of bytes.
    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Continues the checksum over the UTF-8 bytes of `text`.
    public mutating func update(_ text: String) { update(Array(text.utf8)) }

    /// Continues the checksum over the 8 little-endian bytes of `value`.
    public mutating func update(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { update($0) } }
}

/// Slicing-by-8 tables: entry [k·256 + b] is the CRC of byte b followed by k zero bytes.
final class CRC32Table: Sendable {
    static let shared = CRC32Table()
    let table: [UInt32]

    private init() {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for b in 0..<256 {
            var c = UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[b] = c
        }
        for k in 1..<8 {
            for b in 0..<256 {
                let previous = t[(k - 1) * 256 + b]
                t[k * 256 + b] = (previous >> 8) ^ t[Int(previous & 0xFF)]
            }
        }
        table = t
    }

    func update(_ crc: UInt32, _ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        guard var p = bytes.baseAddress else { return crc }
        var c = ~crc
        var n = bytes.count
        table.withUnsafeBufferPointer { t in
            while n >= 8 {
                let one = UInt32(p[0]) | UInt32(p[1]) << 8 | UInt32(p[2]) << 16 | UInt32(p[3]) << 24
                let two = UInt32(p[4]) | UInt32(p[5]) << 8 | UInt32(p[6]) << 16 | UInt32(p[7]) << 24
                let x = one ^ c
                c = t[7 * 256 + Int(x & 0xFF)] ^ t[6 * 256 + Int((x >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((x >> 16) & 0xFF)] ^ t[4 * 256 + Int(x >> 24)]
                    ^ t[3 * 256 + Int(two & 0xFF)] ^ t[2 * 256 + Int((two >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((two >> 16) & 0xFF)] ^ t[Int(two >> 24)]
                p += 8
                n -= 8
            }
            while n > 0 {
                c = t[Int((c ^ UInt32(p[0])) & 0xFF)] ^ (c >> 8)
                p += 1
                n -= 1
            }
        }
        return ~c
    }
}
