// NumPy `.npy` files (format version 1.0) of little-endian float32 arrays, C order: the magic `\x93NUMPY`, version
// 1 0, a little-endian UInt16 header length, the header dict
// `{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }` padded with spaces to end in `\n` at a multiple of
// 64 bytes, then the data. Written by `dtrain embed`; read back by `numpy.load` (and `readNPYFloat32`, for tests).

/// The header dict text of a float32 C-order array of `shape`, as numpy writes it.
func npyDictionary(shape: [Int]) -> String {
    let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    return "{'descr': '<f4', 'fortran_order': False, 'shape': \(dims), }"
}

/// The bytes of a version-1.0 `.npy` file holding `values` (float32, C order) of `shape`.
public func npyBytes(_ values: UnsafeBufferPointer<Float>, shape: [Int]) -> [UInt8] {
    precondition(shape.reduce(1, *) == values.count, "npy: \(values.count) values do not fill shape \(shape)")
    var dict = Array(npyDictionary(shape: shape).utf8)
    // magic (6) + version (2) + length (2) + dict + padding + "\n" is a multiple of 64.
    let unpadded = 10 + dict.count + 1
    dict += [UInt8](repeating: UInt8(ascii: " "), count: (64 - unpadded % 64) % 64)
    dict.append(UInt8(ascii: "\n"))
    precondition(dict.count <= Int(UInt16.max), "npy header too long for format 1.0")
    var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
    out.reserveCapacity(10 + dict.count + values.count * 4)
    out.append(UInt8(dict.count & 0xff))
    out.append(UInt8(dict.count >> 8))
    out += dict
    for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 } }
    return out
}

/// Writes `values` of `shape` as a float32 `.npy` file at `path`, atomically (see `writeFileAtomically`).
public func writeNPY(_ values: [Float], shape: [Int], to path: String) throws(FileIOError) {
    let bytes = values.withUnsafeBufferPointer { npyBytes($0, shape: shape) }
    try writeFileAtomically(bytes, to: path)
}

/// A `.npy` file that is not a version-1.0 little-endian float32 C-order array.
public struct NPYError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}

/// Parses the bytes of a version-1.0 float32 C-order `.npy` file (as written by `npyBytes` or numpy): its shape
/// and values. Throws `NPYError` for anything else.
public func parseNPYFloat32(_ bytes: [UInt8]) throws -> (shape: [Int], values: [Float]) {
    func fail(_ what: String) -> NPYError { NPYError(message: "npy: \(what)") }
    guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1..<6]) == Array("NUMPY".utf8) else {
        throw fail("no \\x93NUMPY magic")
    }
    guard bytes[6] == 1, bytes[7] == 0 else { throw fail("version \(bytes[6]).\(bytes[7]), 1.0 expected") }
    let length = Int(bytes[8]) | Int(bytes[9]) << 8
    guard bytes.count >= 10 + length, (10 + length) % 64 == 0 else { throw fail("bad header length \(length)") }
    let header = String(decoding: bytes[10..<(10 + length)], as: UTF8.self)
    guard header.hasSuffix("\n") else {
        throw fail("header is not text ending in a newline")
    }
    guard header.contains("'descr': '<f4'") else { throw fail("dtype is not '<f4' in \(header)") }
    guard header.contains("'fortran_order': False") else { throw fail("not C order in \(header)") }
    guard let open = header.firstRange(of: "'shape': ("),
          let close = header[open.upperBound...].firstIndex(of: ")") else {
        throw fail("no shape in \(header)")
    }
    let dims = header[open.upperBound..<close].split(separator: ",").map { $0.trimmingSpaces }.filter { !$0.isEmpty }
    var shape: [Int] = []
    for d in dims {
        guard let n = Int(d), n >= 0 else { throw fail("bad dimension \"\(d)\"") }
        shape.append(n)
    }
    let count = shape.reduce(1, *)
    let data = bytes[(10 + length)...]
    guard data.count == count * 4 else { throw fail("\(data.count) data bytes, shape \(shape) needs \(count * 4)") }
    var values = [Float](repeating: 0, count: count)
    var i = data.startIndex
    for k in 0..<count {
        let bits = UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24
        values[k] = Float(bitPattern: bits)
        i += 4
    }
    return (shape, values)
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
