// `.npy` arrays of integer types (uint8 images, integer labels) as numpy writes them: `np.save("images.npy", x)`.
// Versions 1.0 to 3.0, C order, little-endian or byte-sized types. Float32 files have `parseNPYFloat32` (NPY.swift).
import Foundation

/// An integer `.npy` array: its numpy type string (`|u1`, `<i8`, …), shape and raw little-endian data.
public struct NPYArray: Sendable {
    /// The numpy `descr`: `|u1`, `|i1`, `<u2`, `<i2`, `<u4`, `<i4`, `<u8` or `<i8`.
    public let descr: String
    /// The array's shape, C order.
    public let shape: [Int]
    /// The element data, `shape.product × itemSize` bytes.
    public let data: [UInt8]

    /// Bytes per element.
    public var itemSize: Int { Int(descr.dropFirst(2)) ?? 1 }
    /// Whether the elements are signed.
    public var isSigned: Bool { descr.dropFirst().first == "i" }

    /// Element `i` as an Int (sign-extended for signed types).
    public func integer(at i: Int) -> Int {
        let size = itemSize
        var bits: UInt64 = 0
        for b in 0..<size { bits |= UInt64(data[i * size + b]) << (8 * UInt64(b)) }
        if isSigned && size < 8 && bits & (1 << (8 * UInt64(size) - 1)) != 0 { bits |= ~0 << (8 * UInt64(size)) }
        return Int(truncatingIfNeeded: bits)
    }
}

/// Parses an integer `.npy` file's bytes; throws `NPYError` naming what does not fit (another dtype, Fortran order,
/// a truncated file).
public func parseNPYArray(_ bytes: [UInt8]) throws -> NPYArray {
    func fail(_ what: String) -> NPYError { NPYError(message: "npy: \(what)") }
    guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
        throw fail("no \\x93NUMPY magic")
    }
    let major = bytes[6]
    guard (1...3).contains(major) else { throw fail("version \(major).\(bytes[7]) (1.0 to 3.0 expected)") }
    let lengthBytes = major == 1 ? 2 : 4
    guard bytes.count >= 8 + lengthBytes else { throw fail("truncated header") }
    var length = 0
    for b in 0..<lengthBytes { length |= Int(bytes[8 + b]) << (8 * b) }
    let start = 8 + lengthBytes
    guard length > 0, bytes.count >= start + length else { throw fail("bad header length \(length)") }
    let header = String(decoding: bytes[start..<(start + length)], as: UTF8.self)
    guard header.contains("'fortran_order': False") else { throw fail("not C order: \(header)") }
    let types = ["|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8"]
    guard let descr = types.first(where: { header.contains("'descr': '\($0)'") }) else {
        throw fail("dtype is not a little-endian integer type (\(types.joined(separator: ", "))): \(header)")
    }
    guard let open = header.firstRange(of: "'shape': ("),
          let close = header[open.upperBound...].firstIndex(of: ")") else {
        throw fail("no shape in \(header)")
    }
    var shape: [Int] = []
    for d in header[open.upperBound..<close].split(separator: ",") {
        let text = d.trimmingCharacters(in: .whitespaces)
        if text.isEmpty { continue }
        guard let n = Int(text), n >= 0 else { throw fail("bad dimension \"\(text)\"") }
        shape.append(n)
    }
    let count = shape.reduce(1, *)
    let size = Int(descr.dropFirst(2))!
    let data = Array(bytes[(start + length)...])
    guard data.count == count * size else {
        throw fail("\(data.count) data bytes, shape \(shape) of \(descr) needs \(count * size)")
    }
    return NPYArray(descr: descr, shape: shape, data: data)
}

/// The bytes of a version-1.0 `.npy` file of uint8 (`|u1`) values of `shape`.
public func npyBytes(uint8 values: [UInt8], shape: [Int]) -> [UInt8] {
    precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
    return npyHeader(descr: "|u1", shape: shape) + values
}

/// The bytes of a version-1.0 `.npy` file of int64 (`<i8`) values of `shape`.
public func npyBytes(int64 values: [Int], shape: [Int]) -> [UInt8] {
    precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
    var out = npyHeader(descr: "<i8", shape: shape)
    out.reserveCapacity(out.count + 8 * values.count)
    for v in values { withUnsafeBytes(of: Int64(v).littleEndian) { out.append(contentsOf: $0) } }
    return out
}

/// Magic, version 1.0, header length and the header dictionary padded to a multiple of 64 bytes.
func npyHeader(descr: String, shape: [Int]) -> [UInt8] {
    let dims = shape.count == 1 ? "\(shape[0])," : shape.map(String.init).joined(separator: ", ")
    var dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': (\(dims)), }"
    while (10 + dict.utf8.count + 1) % 64 != 0 { dict += " " }
    dict += "\n"
    let length = dict.utf8.count
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xff), UInt8(length >> 8)] + Array(dict.utf8)
}
