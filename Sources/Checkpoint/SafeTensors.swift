// Checkpoints in the safetensors format (https://github.com/huggingface/safetensors), readable from Python with
// `safetensors.numpy.load_file` / `safetensors.torch.load_file`.
//
// # Layout
//
//     bytes [0, 8)        N, the header length: UInt64, little-endian
//     bytes [8, 8 + N)    the header: UTF-8 JSON object, starting with '{', space-padded so 8 + N is a multiple of 8
//     bytes [8 + N, end)  the data section: every tensor's raw little-endian elements, row-major, back to back
//
// The header maps each tensor name to {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, with the
// offsets in bytes relative to the start of the data section, and the reserved key "__metadata__" to a flat
// {string: string} map. The tensors tile the data section exactly: no gaps, no overlaps, nothing after the last.
// The writer orders tensors by element size, largest first, so every tensor starts aligned to its element size.
//
// # What dtrain stores
//
// Tensors (names are the lead's choice; these are the intended ones):
//   - `param/<slice>`        F32, the parameter arena slice by slice, shaped as the layer sees it;
//   - `momentum/<slice>`     F32, SGD momentum buffers (or `adam.m/<slice>`, `adam.v/<slice>` for AdamW);
//   - `step`                 I64 [1] optimiser step counter (also in metadata, as text, for humans).
// Metadata (`CheckpointKey`): `format` = "dtrain-checkpoint", `format_version` = "1", `config` (the run's
// TrainConfig JSON), `step`, `epoch`, `seed`, and `dtrain.crc32`.
//
// # Integrity
//
// `dtrain.crc32` is the CRC-32 (8 lowercase hex digits) of a canonical description of the header followed by the
// data section: for every metadata pair except the checksum itself, sorted by key, the key and the value; then for
// every tensor, sorted by name, its name, dtype, rank, dimensions and offsets (strings as UInt64-LE byte length +
// UTF-8 bytes, integers as UInt64 LE). It therefore covers the step and config as well as the weights, but not the
// header's formatting (key order, padding). It detects corruption, not tampering.
//
// Reading other writers' files: `floats(_:shape:)` and `readFloats(_:shape:into:)` accept F32, F16 and BF16 tensors
// (PyTorch exports often hold half-precision weights) and widen them to Float exactly; see "Half precision" below.
//
// Files are written atomically (temporary file in the same folder, fsync, rename, fsync of the folder), so a crash
// leaves either the old checkpoint or the new one. The reader validates everything listed in `CheckpointError.Kind`
// before trusting a single offset, and allocates at most the file's size.

import FileIO

#if _endian(big)
#error("the safetensors data section is little-endian; dtrain copies it as-is")
#endif

// MARK: - Element types

/// A safetensors element type, spelled as in the header.
public enum DType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case f64 = "F64", i64 = "I64", u64 = "U64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }
}

/// A Swift type stored as one safetensors dtype, copied bit for bit.
public protocol SafeTensorsScalar: BitwiseCopyable, Sendable {
    /// The header spelling of this type.
    static var dtype: DType { get }
}

extension Float: SafeTensorsScalar { public static var dtype: DType { .f32 } }
extension Double: SafeTensorsScalar { public static var dtype: DType { .f64 } }
extension Int64: SafeTensorsScalar { public static var dtype: DType { .i64 } }
extension Int32: SafeTensorsScalar { public static var dtype: DType { .i32 } }
extension Int16: SafeTensorsScalar { public static var dtype: DType { .i16 } }
extension Int8: SafeTensorsScalar { public static var dtype: DType { .i8 } }
extension UInt64: SafeTensorsScalar { public static var dtype: DType { .u64 } }
extension UInt32: SafeTensorsScalar { public static var dtype: DType { .u32 } }
extension UInt16: SafeTensorsScalar { public static var dtype: DType { .u16 } }
extension UInt8: SafeTensorsScalar { public static var dtype: DType { .u8 } }

/// The element count of `shape` (1 for a scalar), or nil when a dimension is negative or the product overflows.
func elementCount(_ shape: [Int]) -> Int? {
    var count = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        count = product
    }
    return count
}

/// "[2, 3]".
func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

// MARK: - One tensor

/// One named array of a checkpoint: its dtype, its shape (row-major, outermost first) and its raw little-endian
/// bytes, `shape.product × dtype.size` of them.
public struct TensorData: Sendable, Equatable {
    /// The element type.
    public let dtype: DType
    /// Sizes, outermost first; [] is a scalar.
    public let shape: [Int]
    /// The elements, little-endian, row-major.
    public let bytes: [UInt8]

    /// Elements: the product of `shape` (1 for a scalar of shape []).
    public var count: Int { bytes.count / dtype.size }

    /// A tensor from raw bytes. Precondition: `bytes.count` = product(shape) × dtype.size.
    public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
        let count = elementCount(shape)
        precondition(count != nil, "tensor shape \(shapeText(shape)) is negative or overflows")
        precondition(bytes.count == count! * dtype.size,
                     "tensor of \(dtype.rawValue) \(shapeText(shape)) needs \(count! * dtype.size) bytes, "
                         + "got \(bytes.count)")
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// A tensor holding a copy of `values`. Precondition: `values.count` = product(shape).
    public init<T: SafeTensorsScalar>(copying values: UnsafeBufferPointer<T>, shape: [Int]) {
        self.init(dtype: T.dtype, shape: shape, bytes: Array(UnsafeRawBufferPointer(values)))
    }

    /// A tensor holding a copy of `values`. Precondition: `values.count` = product(shape).
    public init<T: SafeTensorsScalar>(_ values: [T], shape: [Int]) {
        let bytes = values.withUnsafeBytes { Array($0) }
        self.init(dtype: T.dtype, shape: shape, bytes: bytes)
    }

    /// The elements as `T`. Precondition: `T.dtype == dtype`.
    public func values<T: SafeTensorsScalar>(as type: T.Type = T.self) -> [T] {
        precondition(T.dtype == dtype, "tensor is \(dtype.rawValue), read as \(T.dtype.rawValue)")
        return [T](unsafeUninitializedCapacity: count) { buffer, initialised in
            bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }
            initialised = count
        }
    }

    /// Copies the elements into `destination`. Precondition: `T.dtype == dtype`, `destination.count == count`.
    public func copy<T: SafeTensorsScalar>(into destination: UnsafeMutableBufferPointer<T>) {
        precondition(T.dtype == dtype, "tensor is \(dtype.rawValue), copied into \(T.dtype.rawValue)")
        precondition(destination.count == count, "tensor has \(count) elements, destination \(destination.count)")
        bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(destination).copyMemory(from: $0) }
    }
}

// MARK: - Half precision

// F16 is IEEE 754 binary16: sign (1 bit), exponent e (5 bits, bias 15), mantissa m (10 bits):
//   e = 0:       (−1)^sign · m · 2⁻²⁴               (zero and subnormals)
//   0 < e < 31:  (−1)^sign · (1 + m / 2¹⁰) · 2^(e−15)
//   e = 31:      ±inf when m = 0, else NaN
// Every F16 value is a Float (binary32 has 8 exponent and 23 mantissa bits), so widening is exact: a normal number
// keeps its mantissa (shifted up 13 bits) and gets the exponent e − 15 + 127; a subnormal is m · 2⁻²⁴ computed in
// Float (both factors exact, so the product is); inf and NaN keep the sign and the mantissa bits (the NaN payload).
// BF16 is the upper half of a binary32 (sign, 8-bit exponent, 7 mantissa bits): widening appends 16 zero bits.

/// The Float equal to the IEEE 754 binary16 number with bit pattern `bits`, exactly (subnormals, ±0, ±inf and NaN
/// included; a NaN keeps its sign and payload).
public func floatFromF16(bits: UInt16) -> Float {
    let sign = UInt32(bits >> 15) << 31
    let exponent = UInt32(bits >> 10) & 0x1F
    let mantissa = UInt32(bits) & 0x3FF
    switch exponent {
    case 0:
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    case 0x1F:
        return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
    default:
        return Float(bitPattern: sign | (exponent + 127 - 15) << 23 | mantissa << 13)
    }
}

/// The Float whose upper 16 bits are the bfloat16 pattern `bits` and lower 16 bits are zero: its exact value.
public func floatFromBF16(bits: UInt16) -> Float {
    Float(bitPattern: UInt32(bits) << 16)
}

extension TensorData {
    /// Whether `readFloats(into:)` accepts this tensor: its dtype is F32, F16 or BF16.
    public var isFloatReadable: Bool { dtype == .f32 || dtype == .f16 || dtype == .bf16 }

    /// Writes the elements as Floats into `destination`: F32 copied bit for bit, F16 and BF16 widened exactly
    /// (`floatFromF16(bits:)`, `floatFromBF16(bits:)`). Does not allocate.
    /// Precondition: `isFloatReadable`, `destination.count == count`.
    public func readFloats(into destination: UnsafeMutableBufferPointer<Float>) {
        precondition(isFloatReadable, "tensor is \(dtype.rawValue), read as F32, F16 or BF16")
        precondition(destination.count == count, "tensor has \(count) elements, destination \(destination.count)")
        switch dtype {
        case .f32:
            copy(into: destination)
        case .f16, .bf16:
            let widen = dtype == .f16 ? floatFromF16(bits:) : floatFromBF16(bits:)
            bytes.withUnsafeBytes { raw in
                for i in 0..<count {
                    // Little-endian, and not assumed 2-byte aligned.
                    destination[i] = widen(UInt16(raw[2 * i]) | UInt16(raw[2 * i + 1]) << 8)
                }
            }
        default:
            preconditionFailure("unreachable: \(dtype.rawValue) is not float-readable")
        }
    }

    /// The elements as Floats: see `readFloats(into:)`. Precondition: `isFloatReadable`.
    public func floatValues() -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialised in
            readFloats(into: buffer)
            initialised = count
        }
    }
}

// MARK: - Metadata keys

/// The `__metadata__` keys dtrain writes. Values are strings, as safetensors requires.
public enum CheckpointKey {
    /// "dtrain-checkpoint".
    public static let format = "format"
    /// "1" for the layout described at the top of this file.
    public static let formatVersion = "format_version"
    /// The run's TrainConfig as JSON.
    public static let config = "config"
    /// Optimiser steps taken, decimal.
    public static let step = "step"
    /// Epochs completed, decimal.
    public static let epoch = "epoch"
    /// The run's seed, decimal.
    public static let seed = "seed"
    /// The checksum described at the top of this file; written by `serialized()`, checked by `parse`.
    public static let checksum = "dtrain.crc32"
}

// MARK: - A checkpoint file

/// The contents of one safetensors file: named tensors in order, and string metadata.
public struct SafeTensors: Sendable {
    /// Largest header accepted (the reference implementation's limit); a bigger claim is corrupt.
    public static let maxHeaderBytes = 100_000_000

    /// The file this was read from ("" when built in memory); errors name it.
    public let file: String
    /// Tensor names, in the order they were added or appear in the header.
    public private(set) var names: [String] = []
    /// The `__metadata__` map. `serialized()` sets `CheckpointKey.checksum`.
    public var metadata: [String: String]
    private var tensors: [String: TensorData] = [:]

    /// An empty checkpoint with `metadata`.
    public init(metadata: [String: String] = [:]) {
        self.file = ""
        self.metadata = metadata
    }

    init(file: String, metadata: [String: String]) {
        self.file = file
        self.metadata = metadata
    }

    /// The checksum recorded in the metadata (`CheckpointKey.checksum`), nil when absent; `read` has already
    /// checked it against the contents.
    public var recordedChecksum: UInt32? { metadata[CheckpointKey.checksum].flatMap { UInt32($0, radix: 16) } }

    /// The tensor called `name`, if any.
    public subscript(name: String) -> TensorData? { tensors[name] }

    /// Adds `tensor` as `name`. Precondition: the name is new and is not "__metadata__".
    public mutating func add(_ name: String, _ tensor: TensorData) {
        precondition(name != "__metadata__", "tensor name __metadata__ is reserved")
        precondition(tensors[name] == nil, "tensor \(name) added twice")
        names.append(name)
        tensors[name] = tensor
    }

    /// Adds a copy of `values` with `shape` as `name`.
    public mutating func add<T: SafeTensorsScalar>(_ name: String, _ values: [T], shape: [Int]) {
        add(name, TensorData(values, shape: shape))
    }

    /// The metadata value for `key`; throws `.badEntry` naming the file when it is absent.
    public func requiredMetadata(_ key: String) throws -> String {
        guard let value = metadata[key] else {
            throw CheckpointError(.badEntry, file: file, "no metadata key \"\(key)\"")
        }
        return value
    }

    /// The tensor `name`, checked against the layout it is loaded into: throws `.missingTensor` when absent and
    /// `.layoutMismatch` when its dtype or shape differs.
    public func tensor(_ name: String, dtype: DType, shape: [Int]) throws -> TensorData {
        guard let tensor = tensors[name] else { throw missingTensor(name) }
        guard tensor.dtype == dtype, tensor.shape == shape else {
            throw CheckpointError(.layoutMismatch, file: file,
                                  "tensor \"\(name)\" is \(tensor.dtype.rawValue) \(shapeText(tensor.shape)), "
                                      + "expected \(dtype.rawValue) \(shapeText(shape))")
        }
        return tensor
    }

    /// The tensor `name` of dtype F32, F16 or BF16 and of `shape`, as Floats (F16 and BF16 widened exactly, see
    /// `TensorData.readFloats(into:)`); throws `.missingTensor` when absent and `.layoutMismatch` when its shape
    /// differs or its dtype is another one.
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        try floatTensor(name, shape: shape).floatValues()
    }

    /// Writes the tensor `name` (F32, F16 or BF16, of `shape`) as Floats into `destination`, e.g. an arena slice's
    /// view; throws as `floats(_:shape:)`. Precondition: `destination.count` = product(shape).
    public func readFloats(_ name: String, shape: [Int], into destination: UnsafeMutableBufferPointer<Float>) throws {
        precondition(elementCount(shape) == destination.count,
                     "read \(name): shape \(shapeText(shape)) does not match a destination of \(destination.count)")
        try floatTensor(name, shape: shape).readFloats(into: destination)
    }

    /// The tensor `name`, checked to be F32, F16 or BF16 of `shape`.
    private func floatTensor(_ name: String, shape: [Int]) throws -> TensorData {
        guard let tensor = tensors[name] else { throw missingTensor(name) }
        guard tensor.isFloatReadable, tensor.shape == shape else {
            throw CheckpointError(.layoutMismatch, file: file,
                                  "tensor \"\(name)\" is \(tensor.dtype.rawValue) \(shapeText(tensor.shape)), "
                                      + "expected F32, F16 or BF16 \(shapeText(shape))")
        }
        return tensor
    }

    /// `.missingTensor` for `name`, listing the first names the file has.
    private func missingTensor(_ name: String) -> CheckpointError {
        let listed = names.prefix(8).map { "\"\($0)\"" }.joined(separator: ", ")
        let more = names.count > 8 ? ", … (\(names.count) in all)" : ""
        return CheckpointError(.missingTensor, file: file,
                               "no tensor \"\(name)\" (the file has \(names.isEmpty ? "none" : listed + more))")
    }

    // MARK: Writing

    /// The file's bytes: length, space-padded header with `__metadata__` first (checksum included), then the data,
    /// tensors ordered by element size, largest first, then by insertion.
    public func serialized() -> [UInt8] {
        let order = names.enumerated().sorted { a, b in
            let sa = tensors[a.element]!.dtype.size, sb = tensors[b.element]!.dtype.size
            return sa != sb ? sa > sb : a.offset < b.offset
        }.map(\.element)
        var entries: [HeaderEntry] = []
        var offset = 0
        for name in order {
            let t = tensors[name]!
            entries.append(HeaderEntry(name: name, dtype: t.dtype, shape: t.shape, begin: offset,
                                       end: offset + t.bytes.count))
            offset += t.bytes.count
        }
        var data: [UInt8] = []
        data.reserveCapacity(offset)
        for name in order { data += tensors[name]!.bytes }

        var meta = metadata
        meta[CheckpointKey.checksum] = nil
        let crc = data.withUnsafeBytes { checksum(metadata: meta, entries: entries, data: $0) }
        meta[CheckpointKey.checksum] = hexDigits(crc)

        var header: [UInt8] = [UInt8(ascii: "{")]
        appendJSONString("__metadata__", to: &header)
        header += Array(":{".utf8)
        for (i, key) in meta.keys.sorted().enumerated() {
            if i > 0 { header.append(UInt8(ascii: ",")) }
            appendJSONString(key, to: &header)
            header.append(UInt8(ascii: ":"))
            appendJSONString(meta[key]!, to: &header)
        }
        header.append(UInt8(ascii: "}"))
        for e in entries {
            header.append(UInt8(ascii: ","))
            appendJSONString(e.name, to: &header)
            header += Array(":{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[".utf8)
            header += Array(e.shape.map(String.init).joined(separator: ",").utf8)
            header += Array("],\"data_offsets\":[\(e.begin),\(e.end)]}".utf8)
        }
        header.append(UInt8(ascii: "}"))
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }

        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + data.count)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
        out += header
        out += data
        return out
    }

    /// Writes `serialized()` to `path` atomically (see `writeAtomically`).
    public func write(to path: String) throws {
        try writeAtomically(serialized(), to: path)
    }

    // MARK: Reading

    /// Reads and validates the safetensors file at `path` (see `parse`).
    public static func read(path: String, requireChecksum: Bool = true) throws -> SafeTensors {
        try parse(readAll(path), file: path, requireChecksum: requireChecksum)
    }

    /// Parses and validates the bytes of a safetensors file; `file` names it in errors. Checks, in order: the
    /// length field, the header (UTF-8, JSON, no repeated key, an object), every entry's fields, dtype, shape and
    /// offsets, that the tensors tile the data section, and the checksum. When `requireChecksum` is false a file
    /// without `dtrain.crc32` (e.g. written by Python) is accepted; a present checksum is always verified.
    public static func parse(_ bytes: [UInt8], file: String, requireChecksum: Bool = true) throws -> SafeTensors {
        func fail(_ kind: CheckpointError.Kind, _ detail: String) -> CheckpointError {
            CheckpointError(kind, file: file, detail)
        }
        guard bytes.count >= 8 else {
            throw fail(.truncated, "truncated: \(bytes.count) bytes, fewer than the 8-byte header length")
        }
        var length: UInt64 = 0
        for i in 0..<8 { length |= UInt64(bytes[i]) << UInt64(8 * i) }
        guard length >= 2 else {
            throw fail(.badHeaderSize, "header length \(length) is too small for a JSON object")
        }
        guard length <= UInt64(maxHeaderBytes) else {
            throw fail(.badHeaderSize, "header length \(length) exceeds the limit of \(maxHeaderBytes) bytes")
        }
        let headerEnd = 8 + Int(length)
        guard headerEnd <= bytes.count else {
            throw fail(.truncated, "truncated: the header length says \(length) bytes, only \(bytes.count - 8) follow")
        }
        return try bytes.withUnsafeBufferPointer { all in
            let header = UnsafeBufferPointer(rebasing: all[8..<headerEnd])
            let data = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(all)[headerEnd...])
            guard header[0] == UInt8(ascii: "{") else {
                throw fail(.badHeader, "header does not start with '{' (first byte 0x\(String(header[0], radix: 16)))")
            }
            guard String(validating: header, as: UTF8.self) != nil else {
                throw fail(.badHeader, "header is not valid UTF-8")
            }
            let root: JSONValue
            do {
                root = try parseHeaderJSON(header)
            } catch let e as JSONSyntaxError {
                let kind: CheckpointError.Kind = e.duplicateKey ? .duplicateName : .badHeader
                throw fail(kind, "header is not valid JSON: \(e.detail)")
            }
            guard case .object(let members) = root else {
                throw fail(.badHeader, "header is \(root.typeName), expected an object")
            }

            var metadata: [String: String] = [:]
            var entries: [HeaderEntry] = []
            for (key, value) in members {
                if key == "__metadata__" {
                    metadata = try parseMetadata(value, fail: fail)
                } else {
                    entries.append(try parseEntry(name: key, value, fail: fail))
                }
            }
            try checkTiling(entries, dataSize: data.count, fail: fail)

            if let stored = metadata[CheckpointKey.checksum] {
                guard stored.utf8.count == 8, stored.allSatisfy(\.isHexDigit),
                      let expected = UInt32(stored, radix: 16) else {
                    throw fail(.badEntry, "metadata \(CheckpointKey.checksum) is \"\(stored)\", not 8 hex digits")
                }
                var rest = metadata
                rest[CheckpointKey.checksum] = nil
                let actual = checksum(metadata: rest, entries: entries, data: data)
                guard actual == expected else {
                    throw fail(.checksumMismatch, "checksum mismatch: the header records crc32 \(stored), the "
                                   + "contents give \(hexDigits(actual)); the file is corrupt")
                }
            } else if requireChecksum {
                throw fail(.missingChecksum, "no \(CheckpointKey.checksum) in __metadata__: not written by dtrain, "
                               + "or the header was edited")
            }

            var result = SafeTensors(file: file, metadata: metadata)
            for e in entries {
                let raw = Array(data[e.begin..<e.end])
                result.add(e.name, TensorData(dtype: e.dtype, shape: e.shape, bytes: raw))
            }
            return result
        }
    }
}

// MARK: - Header entries

/// One tensor's header entry, validated on its own (offsets not yet checked against the data section).
struct HeaderEntry {
    let name: String
    let dtype: DType
    let shape: [Int]
    let begin: Int
    let end: Int
}

typealias Fail = (CheckpointError.Kind, String) -> CheckpointError

func parseMetadata(_ value: JSONValue, fail: Fail) throws -> [String: String] {
    guard case .object(let members) = value else {
        throw fail(.badEntry, "__metadata__ is \(value.typeName), expected an object of strings")
    }
    var metadata: [String: String] = [:]
    for (key, v) in members {
        guard case .string(let s) = v else {
            throw fail(.badEntry, "__metadata__ \"\(key)\" is \(v.typeName), expected a string")
        }
        metadata[key] = s
    }
    return metadata
}

/// A JSON number that must be a non-negative integer fitting in Int; `what` names it in the error.
func nonNegativeInteger(_ value: JSONValue, _ what: String, _ kind: CheckpointError.Kind, fail: Fail) throws -> Int {
    switch value {
    case .integer(let n):
        guard n >= 0 else { throw fail(kind, "\(what) is negative (\(n))") }
        return n
    case .number(let text, let isInteger):
        if text.hasPrefix("-") { throw fail(kind, "\(what) is negative (\(text))") }
        throw fail(kind, isInteger ? "\(what) is \(text), too large" : "\(what) is \(text), not an integer")
    default:
        throw fail(kind, "\(what) is \(value.typeName), expected a non-negative integer")
    }
}

func parseEntry(name: String, _ value: JSONValue, fail: Fail) throws -> HeaderEntry {
    let label = "tensor \"\(name)\""
    guard case .object(let fields) = value else {
        throw fail(.badEntry, "\(label) is \(value.typeName), expected an object with dtype, shape, data_offsets")
    }
    var dtypeValue: JSONValue?, shapeValue: JSONValue?, offsetsValue: JSONValue?
    for (key, v) in fields {
        switch key {
        case "dtype": dtypeValue = v
        case "shape": shapeValue = v
        case "data_offsets": offsetsValue = v
        default: throw fail(.badEntry, "\(label) has an unexpected field \"\(key)\"")
        }
    }
    guard let dtypeValue, let shapeValue, let offsetsValue else {
        let missing = [("dtype", dtypeValue), ("shape", shapeValue), ("data_offsets", offsetsValue)]
            .filter { $0.1 == nil }.map(\.0).joined(separator: ", ")
        throw fail(.badEntry, "\(label) lacks \(missing)")
    }
    guard case .string(let dtypeName) = dtypeValue else {
        throw fail(.badEntry, "\(label) dtype is \(dtypeValue.typeName), expected a string")
    }
    guard let dtype = DType(rawValue: dtypeName) else {
        throw fail(.unknownDType, "\(label) has unknown dtype \"\(dtypeName)\" (known: "
                       + DType.allCases.map(\.rawValue).joined(separator: ", ") + ")")
    }
    guard case .array(let dims) = shapeValue else {
        throw fail(.badShape, "\(label) shape is \(shapeValue.typeName), expected an array of integers")
    }
    var shape: [Int] = []
    for (i, d) in dims.enumerated() {
        shape.append(try nonNegativeInteger(d, "\(label) shape[\(i)]", .badShape, fail: fail))
    }
    guard let count = elementCount(shape) else {
        throw fail(.badShape, "\(label) shape \(shapeText(shape)) overflows")
    }
    let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.size)
    guard !overflow else {
        throw fail(.badShape, "\(label) shape \(shapeText(shape)) of \(dtypeName) overflows as a byte count")
    }
    guard case .array(let offsets) = offsetsValue, offsets.count == 2 else {
        throw fail(.badOffsets, "\(label) data_offsets must be an array [begin, end]")
    }
    let begin = try nonNegativeInteger(offsets[0], "\(label) data_offsets begin", .badOffsets, fail: fail)
    let end = try nonNegativeInteger(offsets[1], "\(label) data_offsets end", .badOffsets, fail: fail)
    guard begin <= end else {
        throw fail(.badOffsets, "\(label) data_offsets [\(begin), \(end)] end before they begin")
    }
    guard end - begin == byteCount else {
        throw fail(.badOffsets, "\(label) data_offsets [\(begin), \(end)] span \(end - begin) bytes, but "
                       + "\(dtypeName) \(shapeText(shape)) needs \(byteCount)")
    }
    return HeaderEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
}

/// Checks that the entries tile [0, dataSize) exactly: sorted by offset, each begins where the previous ended.
func checkTiling(_ entries: [HeaderEntry], dataSize: Int, fail: Fail) throws {
    let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
    var previous: HeaderEntry?
    var position = 0
    for e in sorted {
        if e.begin < position, let p = previous {
            throw fail(.overlap, "tensors \"\(p.name)\" [\(p.begin), \(p.end)) and \"\(e.name)\" "
                           + "[\(e.begin), \(e.end)) overlap")
        }
        if e.begin > position {
            throw fail(.unreferencedBytes, "data bytes [\(position), \(e.begin)) belong to no tensor "
                           + "(next is \"\(e.name)\")")
        }
        position = e.end
        previous = e
    }
    if position > dataSize {
        throw fail(.truncated, "truncated: the header describes \(position) bytes of tensor data, "
                       + "the file holds \(dataSize)")
    }
    if position < dataSize {
        throw fail(.unreferencedBytes, "\(dataSize - position) trailing bytes after the last tensor")
    }
}

// MARK: - Checksum

/// The CRC-32 described at the top of this file. `metadata` must not contain the checksum key.
func checksum(metadata: [String: String], entries: [HeaderEntry], data: UnsafeRawBufferPointer) -> UInt32 {
    var crc = CRC32()
    func string(_ s: String) {
        crc.update(UInt64(s.utf8.count))
        crc.update(s)
    }
    for key in metadata.keys.sorted() {
        string(key)
        string(metadata[key]!)
    }
    for e in entries.sorted(by: { $0.name < $1.name }) {
        string(e.name)
        string(e.dtype.rawValue)
        crc.update(UInt64(e.shape.count))
        for d in e.shape { crc.update(UInt64(d)) }
        crc.update(UInt64(e.begin))
        crc.update(UInt64(e.end))
    }
    crc.update(data)
    return crc.value
}

/// 8 lowercase hex digits.
func hexDigits(_ value: UInt32) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: 8 - text.count) + text
}
