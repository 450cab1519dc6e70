// Int32 `.npy` files (labels.npy of `dtrain analyze`): the float32 layout of NPY.swift with descr '<i4'.

/// The bytes of a version-1.0 `.npy` file holding `values` (little-endian int32, C order) of `shape`.
public func npyBytes(int32 values: [Int32], shape: [Int]) -> [UInt8] {
    // Same header length as the float32 file of this shape ('<f4' and '<i4' are equally long); swap the type.
    var out = [Float](repeating: 0, count: values.count).withUnsafeBufferPointer { npyBytes($0, shape: shape) }
    let header = Array("'<f4'".utf8), replacement = Array("'<i4'".utf8)
    if let at = (10..<(out.count - header.count)).first(where: { Array(out[$0..<($0 + header.count)]) == header }) {
        out.replaceSubrange(at..<(at + header.count), with: replacement)
    }
    let dataStart = out.count - values.count * 4
    for (i, v) in values.enumerated() {
        withUnsafeBytes(of: v.littleEndian) { for b in 0..<4 { out[dataStart + i * 4 + b] = $0[b] } }
    }
    return out
}

/// Writes `values` of `shape` as an int32 `.npy` file at `path`, atomically.
public func writeNPY(int32 values: [Int32], shape: [Int], to path: String) throws(FileIOError) {
    try writeFileAtomically(npyBytes(int32: values, shape: shape), to: path)
}
