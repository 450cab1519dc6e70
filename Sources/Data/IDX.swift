import Tensor

// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a big-endian header
// [0, 0, dtype, ndim] + ndim × UInt32 sizes, then the data in row-major order. Only dtype 0x08 (unsigned byte)
// is read, which is what image (ndim 3, magic 0x00000803) and label (ndim 1, magic 0x00000801) files use.

/// An unsigned-byte IDX array: its sizes and its row-major data.
public struct IDXArray: Sendable {
    /// Sizes from the header, outermost first, e.g. [60000, 28, 28].
    public let dimensions: [Int]
    /// The data, `dimensions.reduce(1, *)` bytes.
    public let bytes: [UInt8]
}

/// Largest accepted size of one dimension; a header claiming more is treated as corrupt.
public let idxMaxDimension = 1 << 28

/// Reads an IDX file, plain or gzip-compressed (detected by its magic bytes, whatever the name), and validates
/// the header against the data. `expectedDimensions`, when given, is the required dimension count (3 for
/// images, 1 for labels).
public func readIDX(path: String, expectedDimensions: Int? = nil) throws -> IDXArray {
    let name = fileName(path)
    var bytes = try readFileBytes(path)
    if isGzip(bytes) { bytes = try gunzip(bytes, name: name) }
    return try parseIDX(bytes, name: name, expectedDimensions: expectedDimensions)
}

/// Parses the (decompressed) bytes of an IDX file. Sizes are checked against the byte count before anything is
/// allocated: too few bytes is `.truncated`, too many `.trailingBytes`.
public func parseIDX(_ bytes: [UInt8], name: String, expectedDimensions: Int? = nil) throws -> IDXArray {
    guard bytes.count >= 4 else {
        throw DataError(.truncated, file: name, "truncated: \(bytes.count) bytes, the IDX header needs at least 4")
    }
    let magic = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
    guard bytes[0] == 0, bytes[1] == 0 else {
        throw DataError(.badMagic, file: name,
                        "bad magic \(hex32(magic)): not an IDX file (expected 0x00000803 for images, "
                            + "0x00000801 for labels)")
    }
    guard bytes[2] == 0x08 else {
        throw DataError(.badDataType, file: name,
                        "data type \(hex(bytes[2])) (\(idxTypeName(bytes[2]))) is not supported: "
                            + "only 0x08 (unsigned byte) is read")
    }
    let rank = Int(bytes[3])
    if let expected = expectedDimensions, rank != expected {
        let kind = expected == 3 ? "images" : expected == 1 ? "labels" : "this file"
        throw DataError(.badMagic, file: name,
                        "bad magic \(hex32(magic)): \(rank) dimensions, \(kind) need \(expected) "
                            + "(magic \(hex32(0x0800 | UInt32(expected))))")
    }
    guard rank >= 1 else { throw DataError(.badDimensions, file: name, "header declares 0 dimensions") }
    let headerSize = 4 + 4 * rank
    guard bytes.count >= headerSize else {
        throw DataError(.truncated, file: name,
                        "truncated: \(rank) dimensions need a \(headerSize)-byte header, file has \(bytes.count) bytes")
    }
    var dimensions: [Int] = []
    var total = 1
    var overflow = false
    for d in 0..<rank {
        let o = 4 + 4 * d
        let size = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
        dimensions.append(size)
        guard size <= idxMaxDimension else {
            throw DataError(.badDimensions, file: name,
                            "dimension \(d) is \(size), beyond the limit of \(idxMaxDimension)")
        }
        let (product, over) = total.multipliedReportingOverflow(by: size)
        overflow = overflow || over
        total = product
    }
    let shape = dimensions.map(String.init).joined(separator: "×")
    let available = bytes.count - headerSize
    guard !overflow else {
        throw DataError(.badDimensions, file: name, "header sizes \(shape) overflow; file has \(available) data bytes")
    }
    if total > available {
        throw DataError(.truncated, file: name,
                        "truncated: header says \(shape) = \(total) bytes of data, file has \(available)")
    }
    if total < available {
        throw DataError(.trailingBytes, file: name,
                        "\(available - total) trailing bytes: header says \(shape) = \(total) bytes of data, "
                            + "file has \(available)")
    }
    return IDXArray(dimensions: dimensions, bytes: Array(bytes[headerSize...]))
}

func idxTypeName(_ code: UInt8) -> String {
    switch code {
    case 0x08: return "unsigned byte"
    case 0x09: return "signed byte"
    case 0x0B: return "short"
    case 0x0C: return "int"
    case 0x0D: return "float"
    case 0x0E: return "double"
    default: return "unknown"
    }
}

/// Reads a pair of IDX files into a dataset: images (N, H, W) as one channel, labels (N) in 0..<classes.
/// Checks that both files agree on N; `limit` keeps the first `limit` images.
public func loadIDXPair(imagesPath: String, labelsPath: String, classes: Int, name: String,
                        mean: Float, std: Float, limit: Int? = nil) throws -> Dataset {
    let images = try readIDX(path: imagesPath, expectedDimensions: 3)
    let labels = try readIDX(path: labelsPath, expectedDimensions: 1)
    let count = images.dimensions[0], height = images.dimensions[1], width = images.dimensions[2]
    guard labels.dimensions[0] == count else {
        throw DataError(.countMismatch, file: fileName(labelsPath),
                        "\(labels.dimensions[0]) labels, but \(fileName(imagesPath)) has \(count) images")
    }
    guard count > 0, height > 0, width > 0 else {
        throw DataError(.badDimensions, file: fileName(imagesPath),
                        "empty image set: \(count)×\(height)×\(width)")
    }
    let kept = min(count, max(0, limit ?? count))
    let imageSize = height * width
    let imageBuffer = Buffer<UInt8>(count: kept * imageSize, repeating: 0)
    images.bytes.withUnsafeBufferPointer { source in
        imageBuffer.base.update(from: source.baseAddress!, count: kept * imageSize)
    }
    let labelBuffer = Buffer<Int32>(count: kept, repeating: 0)
    for i in 0..<count {
        let label = Int(labels.bytes[i])
        guard label < classes else {
            throw DataError(.labelOutOfRange, file: fileName(labelsPath),
                            "label \(label) at index \(i) is out of range 0..<\(classes)")
        }
        if i < kept { labelBuffer[i] = Int32(label) }
    }
    return Dataset(name: name, images: imageBuffer, labels: labelBuffer, count: kept, channels: 1,
                   height: height, width: width, classes: classes, mean: [mean], std: [std])
}
