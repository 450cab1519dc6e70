// CRC-32 (ISO 3309 / zlib, reflected polynomial 0xEDB88320): the checkpoint checksum. Computed by the system zlib.
import CZlib

/// The CRC-32 of `bytes`, continuing from `crc` (0 to start): `crc32(a + b) == crc32(b, crc: crc32(a))`.
public func crc32(_ bytes: UnsafeBufferPointer<UInt8>, crc: UInt32 = 0) -> UInt32 {
    guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
    // crc32_z takes a size_t length, so no chunking is needed; the result fits in 32 bits.
    return UInt32(truncatingIfNeeded: CZlib.crc32_z(UInt(crc), base, bytes.count))
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
