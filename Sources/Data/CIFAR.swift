import Tensor

// The binary CIFAR formats (https://www.cs.toronto.edu/~kriz/cifar.html). Each record is the label byte(s) then
// 3072 pixel bytes: 1024 red, 1024 green, 1024 blue, each 32×32 row-major, i.e. already (channels, height, width).
// CIFAR-10 records have one label byte; CIFAR-100 records have a coarse (0..<20) then a fine (0..<100) label byte,
// and the fine label is the one kept.

/// Which binary CIFAR layout a file uses.
public enum CIFARVariant: Sendable {
    case cifar10, cifar100

    /// Label bytes at the start of each record.
    public var labelBytes: Int { self == .cifar10 ? 1 : 2 }
    /// Classes of the kept (fine) label.
    public var classes: Int { self == .cifar10 ? 10 : 100 }
    /// Pixel bytes per record: 3×32×32.
    public static let imageBytes = 3 * 32 * 32
    /// Bytes per record.
    public var recordBytes: Int { labelBytes + Self.imageBytes }
}

/// Images (count, 3, 32, 32) and labels parsed from the bytes of one CIFAR file.
public struct CIFARRecords: Sendable {
    public let pixels: [UInt8]
    public let labels: [Int32]
    public var count: Int { labels.count }
}

/// Parses one CIFAR binary file's bytes, checking the size is a whole, non-zero number of records and every label
/// is in range (CIFAR-100: coarse < 20 and fine < 100).
public func parseCIFAR(_ bytes: [UInt8], name: String, variant: CIFARVariant) throws -> CIFARRecords {
    let record = variant.recordBytes
    guard bytes.count > 0 else { throw DataError(.truncated, file: name, "empty file") }
    guard bytes.count % record == 0 else {
        throw DataError(.badRecordSize, file: name,
                        "size \(bytes.count) is not a multiple of the \(record)-byte record: "
                            + "\(bytes.count / record) records + \(bytes.count % record) bytes (truncated record?)")
    }
    let count = bytes.count / record
    var pixels = [UInt8](repeating: 0, count: count * CIFARVariant.imageBytes)
    var labels = [Int32](repeating: 0, count: count)
    for i in 0..<count {
        let start = i * record
        if variant == .cifar100 {
            let coarse = Int(bytes[start])
            guard coarse < 20 else {
                throw DataError(.labelOutOfRange, file: name,
                                "coarse label \(coarse) of record \(i) is out of range 0..<20")
            }
        }
        let label = Int(bytes[start + variant.labelBytes - 1])
        guard label < variant.classes else {
            throw DataError(.labelOutOfRange, file: name,
                            "label \(label) of record \(i) is out of range 0..<\(variant.classes)")
        }
        labels[i] = Int32(label)
        let from = start + variant.labelBytes, to = i * CIFARVariant.imageBytes
        for k in 0..<CIFARVariant.imageBytes { pixels[to + k] = bytes[from + k] }
    }
    return CIFARRecords(pixels: pixels, labels: labels)
}

/// Reads CIFAR files in order and concatenates them into one dataset; `limit` keeps the first `limit` images.
public func loadCIFAR(paths: [String], variant: CIFARVariant, limit: Int? = nil) throws -> Dataset {
    var parts: [CIFARRecords] = []
    var total = 0
    for path in paths where total < (limit ?? Int.max) {
        let part = try parseCIFAR(readFileBytes(path), name: fileName(path), variant: variant)
        parts.append(part)
        total += part.count
    }
    let kept = min(total, limit ?? total)
    let imageBuffer = Buffer<UInt8>(count: kept * CIFARVariant.imageBytes, repeating: 0)
    let labelBuffer = Buffer<Int32>(count: kept, repeating: 0)
    var filled = 0
    for part in parts where filled < kept {
        let take = min(part.count, kept - filled)
        part.pixels.withUnsafeBufferPointer {
            (imageBuffer.base + filled * CIFARVariant.imageBytes)
                .update(from: $0.baseAddress!, count: take * CIFARVariant.imageBytes)
        }
        for i in 0..<take { labelBuffer[filled + i] = part.labels[i] }
        filled += take
    }
    let constants = variant == .cifar10 ? Normalisation.cifar10 : Normalisation.cifar100
    return Dataset(name: variant == .cifar10 ? "cifar10" : "cifar100", images: imageBuffer, labels: labelBuffer,
                   count: kept, channels: 3, height: 32, width: 32, classes: variant.classes,
                   mean: constants.mean, std: constants.std)
}
