// CRC-32 (ISO 3309 / zlib, reflected polynomial 0xEDB88320): the checkpoint checksum. Slicing-by-4 tables keep it
// well above disk speed without pulling in the Data module (Checkpoint depends on Tensor only).

/// A running CRC-32: feed bytes with `update`, read `value`. `CRC32().update("123456789")` gives 0xCBF43926.
public struct CRC32: Sendable {
    /// The CRC of everything fed so far.
    public var value: UInt32 { ~state }
    private var state: UInt32 = 0xFFFF_FFFF

    /// An empty checksum (value 0).
    public init() {}

    /// Continues the checksum over `bytes`.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard var p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        var n = bytes.count
        var c = state
        crc32Tables.withUnsafeBufferPointer { t in
            while n >= 4 {
                let x = c ^ (UInt32(p[0]) | UInt32(p[1]) << 8 | UInt32(p[2]) << 16 | UInt32(p[3]) << 24)
                c = t[3 * 256 + Int(x & 0xFF)] ^ t[2 * 256 + Int((x >> 8) & 0xFF)]
                    ^ t[256 + Int((x >> 16) & 0xFF)] ^ t[Int(x >> 24)]
                p += 4
                n -= 4
            }
            while n > 0 {
                c = t[Int((c ^ UInt32(p[0])) & 0xFF)] ^ (c >> 8)
                p += 1
                n -= 1
            }
        }
        state = c
    }

    /// Continues the checksum over an array of bytes.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Continues the checksum over the UTF-8 bytes of `text`.
    public mutating func update(_ text: String) {
        update(Array(text.utf8))
    }

    /// Continues the checksum over the 8 little-endian bytes of `value`.
    public mutating func update(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { update($0) }
    }
}

/// Entry [k·256 + b] is the CRC of byte b followed by k zero bytes.
private let crc32Tables: [UInt32] = {
    var t = [UInt32](repeating: 0, count: 4 * 256)
    for b in 0..<256 {
        var c = UInt32(b)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        t[b] = c
    }
    for k in 1..<4 {
        for b in 0..<256 {
            let previous = t[(k - 1) * 256 + b]
            t[k * 256 + b] = (previous >> 8) ^ t[Int(previous & 0xFF)]
        }
    }
    return t
}()
