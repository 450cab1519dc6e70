import CZlib
import FileIO
// Gzip (RFC 1952) and raw DEFLATE (RFC 1951) decompression through the system zlib. zlib parses the gzip header,
// inflates, and checks each member's CRC-32 and ISIZE trailer; this file adds what zlib leaves to its caller:
// concatenated members, a cap on the output size, and errors that name the file.

// MARK: - Public entry points

/// Decompresses the bytes of a gzip file (one or more concatenated members) into the original bytes.
/// Checks the header, each member's CRC-32 and ISIZE, and that nothing but whole members follows.
/// `name` labels errors; `maxOutput` caps the decompressed size (a hostile file cannot make it allocate more).
public func gunzip(_ input: [UInt8], name: String, maxOutput: Int = 1 << 32) throws -> [UInt8] {
    guard input.count >= 2 else {
        throw DataError(.corruptGzip, file: name, "truncated gzip file: \(input.count) bytes")
    }
    guard isGzip(input) else {
        throw DataError(.corruptGzip, file: name, "not a gzip file (magic bytes \(hex(input[0])) \(hex(input[1])))")
    }
    return try input.withUnsafeBufferPointer { source in
        // ISIZE of the last member is a hint for the output size; DEFLATE cannot expand more than 1032:1, so a
        // larger claim is corrupt and is not used to reserve memory.
        var capacity = 1 << 16
        if source.count >= 18 {
            let hint = Int(UInt32(source[source.count - 4]) | UInt32(source[source.count - 3]) << 8
                           | UInt32(source[source.count - 2]) << 16 | UInt32(source[source.count - 1]) << 24)
            if hint <= 1032 * source.count + 1024 { capacity = max(capacity, hint + 1) }
        }
        let inflater = try Inflater(windowBits: 16 + 15, name: name, maxOutput: maxOutput, capacity: capacity)
        var position = 0
        while true {
            position = try inflater.stream(source, from: position, gzip: true)
            if position == source.count { return inflater.takeOutput() }
            let rest = source.count - position
            guard rest >= 2, source[position] == 0x1F, source[position + 1] == 0x8B else {
                throw DataError(.corruptGzip, file: name, "\(rest) trailing bytes after the gzip stream")
            }
            try inflater.reset()
        }
    }
}

/// Decompresses a raw DEFLATE stream (no gzip or zlib wrapper); returns the output and the bytes consumed.
public func inflate(_ input: [UInt8], name: String,
                    maxOutput: Int = 1 << 32) throws -> (output: [UInt8], consumed: Int) {
    guard !input.isEmpty else {
        throw DataError(.corruptGzip, file: name, "truncated deflate stream: no input")
    }
    return try input.withUnsafeBufferPointer { source in
        let inflater = try Inflater(windowBits: -15, name: name, maxOutput: maxOutput, capacity: 1 << 16)
        let consumed = try inflater.stream(source, from: 0, gzip: false)
        return (inflater.takeOutput(), consumed)
    }
}

/// Whether `bytes` start with the gzip magic number 1F 8B.
public func isGzip(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B
}

// MARK: - zlib stream

/// One zlib inflate stream and the output it fills. The z_stream lives on the heap because zlib keeps a pointer
/// back to it and checks it on every call.
final class Inflater {
    let name: String
    /// Largest output accepted; the buffer holds at most one byte more, so reaching it is detectable.
    let maxOutput: Int
    let zstream: UnsafeMutablePointer<z_stream>
    var output: [UInt8]
    var length = 0

    init(windowBits: Int32, name: String, maxOutput: Int, capacity: Int) throws {
        self.name = name
        self.maxOutput = maxOutput
        output = [UInt8](repeating: 0, count: min(capacity, maxOutput + 1))
        zstream = .allocate(capacity: 1)
        zstream.initialize(to: z_stream())
        let status = inflateInit2(zstream, windowBits)
        guard status == Z_OK else {
            zstream.deallocate()
            throw DataError(.corruptGzip, file: name, "zlib inflateInit2 failed (code \(status))")
        }
    }

    deinit {
        CZlib.inflateEnd(zstream)
        zstream.deallocate()
    }

    /// Starts the next gzip member, keeping the output so far.
    func reset() throws {
        let status = CZlib.inflateReset(zstream)
        guard status == Z_OK else { throw DataError(.corruptGzip, file: name, "zlib inflateReset failed") }
    }

    func takeOutput() -> [UInt8] {
        output.removeLast(output.count - length)
        return output
    }

    /// Inflates one stream (a gzip member when `gzip`) from `source[start...]`; returns the index after its end.
    func stream(_ source: UnsafeBufferPointer<UInt8>, from start: Int, gzip: Bool) throws -> Int {
        let memberStart = length
        var position = start
        while true {
            if length == output.count { try grow() }
            // avail_in and avail_out are 32-bit: larger buffers go through in pieces.
            let inCount = min(source.count - position, Int(UInt32.max))
            let outCount = min(output.count - length, Int(UInt32.max))
            zstream.pointee.next_in = UnsafeMutablePointer(mutating: source.baseAddress! + position)
            zstream.pointee.avail_in = UInt32(inCount)
            let status = output.withUnsafeMutableBufferPointer { out in
                zstream.pointee.next_out = out.baseAddress! + length
                zstream.pointee.avail_out = UInt32(outCount)
                return CZlib.inflate(zstream, Z_NO_FLUSH)
            }
            position += inCount - Int(zstream.pointee.avail_in)
            length += outCount - Int(zstream.pointee.avail_out)
            if length > maxOutput {
                throw DataError(.corruptGzip, file: name, "decompressed data exceeds the limit of \(maxOutput) bytes")
            }
            switch status {
            case Z_STREAM_END:
                return position
            case Z_OK, Z_BUF_ERROR:
                // Input used up with room left in the output: the stream needs bytes the file does not have.
                if position == source.count && length < output.count {
                    let what = gzip ? "truncated gzip file: the input ends inside a member"
                                    : "truncated deflate stream (input ended before the final block)"
                    throw DataError(.corruptGzip, file: name, what)
                }
            case Z_MEM_ERROR:
                throw DataError(.corruptGzip, file: name, "zlib ran out of memory")
            default:
                throw dataError(source, position: position, memberStart: memberStart)
            }
        }
    }

    /// Doubles the output buffer, up to maxOutput + 1 bytes.
    func grow() throws {
        guard output.count <= maxOutput else {
            throw DataError(.corruptGzip, file: name, "decompressed data exceeds the limit of \(maxOutput) bytes")
        }
        let target = min(max(2 * output.count, 1 << 16), maxOutput + 1)
        output.append(contentsOf: repeatElement(0, count: target - output.count))
    }

    /// zlib's complaint as a DataError; for a trailer mismatch (zlib has just read the 4 trailer bytes before
    /// `position`) the stored and the actual values.
    func dataError(_ source: UnsafeBufferPointer<UInt8>, position: Int, memberStart: Int) -> DataError {
        let message = zstream.pointee.msg.map { String(cString: $0) } ?? "zlib error"
        let stored = position >= 4 ? UInt32(source[position - 4]) | UInt32(source[position - 3]) << 8
            | UInt32(source[position - 2]) << 16 | UInt32(source[position - 1]) << 24 : 0
        switch message {
        case "incorrect data check":
            let actual = output.withUnsafeBufferPointer { all in
                crc32(UnsafeBufferPointer(rebasing: all[memberStart..<length]))
            }
            return DataError(.corruptGzip, file: name,
                             "CRC-32 mismatch: trailer says \(hex32(stored)), data gives \(hex32(actual))")
        case "incorrect length check":
            return DataError(.corruptGzip, file: name, "ISIZE mismatch: trailer says \(stored) bytes, stream gave "
                                 + "\(UInt32(truncatingIfNeeded: length - memberStart))")
        case "header crc mismatch":
            return DataError(.corruptGzip, file: name, "gzip header CRC mismatch")
        case "incorrect header check", "unknown compression method", "unknown header flags set":
            return DataError(.corruptGzip, file: name, "corrupt gzip header: \(message)")
        default:
            return DataError(.corruptGzip, file: name, "corrupt deflate stream: \(message)")
        }
    }
}

func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return "0x" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
}

func hex32(_ value: UInt32) -> String {
    let digits = Array("0123456789ABCDEF")
    return "0x" + String((0..<8).map { digits[Int((value >> UInt32(28 - 4 * $0)) & 15)] })
}
