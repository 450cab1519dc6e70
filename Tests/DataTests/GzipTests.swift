import FileIO
import Testing
import Data

// DEFLATE vectors made with Python's zlib (raw streams, wbits = −15):
//   stored:  compressobj(level 0) of "hello, stored world"
//   fixed:   compressobj(level 9, strategy Z_FIXED) of "abracadabra abracadabra abracadabra!"
//   dynamic: compressobj(level 9) of lcgBytes(400)  (block type 2, CRC-32 0xFEA0A8B9)
//   gzip:    gzip.compress(b"gzip member\n", mtime=0)
let storedVector: [UInt8] = [0x01, 0x13, 0x00, 0xEC, 0xFF, 0x68, 0x65, 0x6C, 0x6C, 0x6F, 0x2C, 0x20, 0x73, 0x74, 0x6F,
                             0x72, 0x65, 0x64, 0x20, 0x77, 0x6F, 0x72, 0x6C, 0x64]
let fixedVector: [UInt8] = [0x4B, 0x4C, 0x2A, 0x4A, 0x4C, 0x4E, 0x4C, 0x49, 0x04, 0x52, 0x0A, 0x89, 0xD8, 0xD9, 0x8A,
                            0x00]
let dynamicVector: [UInt8] = [
    0x35, 0x90, 0x81, 0x0D, 0xC4, 0x30, 0x0C, 0x02, 0x67, 0x35, 0xB0, 0xFF, 0x0C, 0xCF, 0x91, 0xAF, 0xD2, 0xAA, 0xAE,
    0x83, 0x31, 0x60, 0x2B, 0x89, 0x73, 0xFD, 0xDE, 0x29, 0x3D, 0xB6, 0xD7, 0x92, 0xDB, 0xA0, 0xB6, 0x74, 0xDC, 0xB5,
    0x88, 0xDD, 0x3A, 0x40, 0xB4, 0xC1, 0x4E, 0x8A, 0x09, 0x5F, 0x9F, 0x56, 0xD9, 0x7D, 0x74, 0x3D, 0xBA, 0x72, 0xF4,
    0x9E, 0xE6, 0xDE, 0xFD, 0x94, 0xB6, 0xC8, 0xC2, 0x41, 0xC3, 0x6D, 0xF6, 0x74, 0x88, 0xED, 0xC3, 0x07, 0x66, 0x41,
    0xC0, 0x0E, 0xC6, 0x80, 0x18, 0xA5, 0x23, 0xF7, 0xC4, 0x94, 0xDD, 0xEC, 0x41, 0x31, 0x35, 0x06, 0x9E, 0x18, 0x00,
    0xA5, 0x3E, 0x56, 0xB5, 0x05, 0x74, 0xBD, 0x92, 0x77, 0xEE, 0xA0, 0x38, 0xB4, 0x64, 0xCA, 0xB7, 0x10, 0x5B, 0x38,
    0x32, 0x4A, 0x41, 0x22, 0x82, 0x4C, 0x32, 0x5B, 0x4F, 0xE9, 0x8B, 0xA4, 0xF0, 0xCA, 0xCD, 0x78, 0x97, 0x9B, 0xF4,
    0x59, 0x56, 0xFE, 0xD6, 0x6F, 0xE8, 0x68, 0x41, 0xDD, 0x84, 0x60, 0xB3, 0xB4, 0xCA, 0x47, 0xDA, 0x14, 0x66, 0x67,
    0xE9, 0x79, 0x79, 0x15, 0xF7, 0x03]
let gzipVector: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x4B, 0xAF, 0xCA, 0x2C, 0x50,
                           0xC8, 0x4D, 0xCD, 0x4D, 0x4A, 0x2D, 0xE2, 0x02, 0x00, 0xBF, 0x03, 0xA0, 0xEE, 0x0C, 0x00,
                           0x00, 0x00]

/// Structured but not trivially repetitive bytes: long matches at many distances, plus literal noise.
func mixedPayload(_ count: Int) -> [UInt8] {
    var out: [UInt8] = []
    var x: UInt32 = 12345
    while out.count < count {
        x = x &* 1_664_525 &+ 1_013_904_223
        if x >> 30 == 0 && out.count > 40_000 {
            let distance = Int((x >> 8) % 32_768) + 1, length = Int(x % 258) + 3
            for _ in 0..<length where out.count < count { out.append(out[out.count - distance]) }
        } else {
            out.append(UInt8((x >> 24) % 16) &+ UInt8(out.count % 7))
        }
    }
    return out
}

@Suite("Gzip and DEFLATE")
struct GzipTests {
    @Test func crc32OfCheckString() {
        #expect(crc32(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(crc32([]) == 0)
        #expect(crc32(lcgBytes(400)) == 0xFEA0_A8B9)
    }

    @Test func inflatesStoredBlock() throws {
        let (output, consumed) = try inflate(storedVector, name: "stored")
        #expect(output == Array("hello, stored world".utf8))
        #expect(consumed == storedVector.count)
    }

    @Test func inflatesFixedHuffmanBlock() throws {
        #expect(fixedVector[0] >> 1 & 3 == 1)
        let (output, consumed) = try inflate(fixedVector, name: "fixed")
        #expect(output == Array("abracadabra abracadabra abracadabra!".utf8))
        #expect(consumed == fixedVector.count)
    }

    @Test func inflatesDynamicHuffmanBlock() throws {
        #expect(dynamicVector[0] >> 1 & 3 == 2)
        let (output, consumed) = try inflate(dynamicVector, name: "dynamic")
        #expect(output == lcgBytes(400))
        #expect(consumed == dynamicVector.count)
    }

    @Test func gunzipsKnownMember() throws {
        #expect(try gunzip(gzipVector, name: "v.gz") == Array("gzip member\n".utf8))
    }

    @Test(.enabled(if: hasGzip), arguments: [1, 6, 9])
    func roundTripsSystemGzip(level: Int) throws {
        let payload = mixedPayload(600_000)
        let compressed = try systemGzip(payload, level: level)
        #expect(try gunzip(compressed, name: "payload.gz") == payload)
    }

    @Test(.enabled(if: hasGzip))
    func roundTripsEmptyAndMultiMember() throws {
        #expect(try gunzip(try systemGzip([]), name: "empty.gz") == [])
        let first = Array("first member ".utf8), second = mixedPayload(70_000)
        let joined = try systemGzip(first) + systemGzip(second)
        #expect(try gunzip(joined, name: "two.gz") == first + second)
    }

    @Test func rejectsBadCRC() {
        var bytes = gzipVector
        bytes[bytes.count - 8] ^= 0x01
        let error = expectDataError(.corruptGzip) { _ = try gunzip(bytes, name: "bad-crc.gz") }
        #expect(error?.description.contains("CRC-32 mismatch") == true)
        #expect(error?.description.hasPrefix("bad-crc.gz: ") == true)
    }

    @Test func concatenatedMembersAndCorruptCRCInTheSecond() throws {
        // Without the gzip tool: the embedded member twice is one file holding both payloads.
        let line = Array("gzip member\n".utf8)
        #expect(try gunzip(gzipVector + gzipVector, name: "twice.gz") == line + line)
        #expect(try gunzip(gzipVector + gzipVector + gzipVector, name: "thrice.gz") == line + line + line)
        // A bad CRC in the second member is reported with both values, as for the first.
        var bytes = gzipVector + gzipVector
        bytes[bytes.count - 8] ^= 0x01
        let crc = expectDataError(.corruptGzip) { _ = try gunzip(bytes, name: "second.gz") }
        #expect(crc?.description == "second.gz: CRC-32 mismatch: trailer says 0xEEA003BE, data gives 0xEEA003BF")
        var size = gzipVector + gzipVector
        size[size.count - 4] ^= 0x01
        let isize = expectDataError(.corruptGzip) { _ = try gunzip(size, name: "size.gz") }
        #expect(isize?.description == "size.gz: ISIZE mismatch: trailer says 13 bytes, stream gave 12")
        // A second member cut anywhere, or a stray magic number, is an error, not a short read.
        for cut in (gzipVector.count + 1)..<(2 * gzipVector.count) {
            expectDataError(.corruptGzip) { _ = try gunzip(Array((gzipVector + gzipVector)[..<cut]), name: "cut.gz") }
        }
        expectDataError(.corruptGzip) { _ = try gunzip(gzipVector + [0x1F, 0x8B], name: "stray.gz") }
    }

    @Test func rejectsBadISIZE() {
        var bytes = gzipVector
        bytes[bytes.count - 4] ^= 0x01
        let error = expectDataError(.corruptGzip) { _ = try gunzip(bytes, name: "isize.gz") }
        #expect(error?.description.contains("ISIZE") == true)
    }

    @Test func rejectsTruncatedStreamAtEveryLength() {
        // Every proper prefix of a valid file is an error, never a crash or a silent short read.
        for cut in 0..<gzipVector.count {
            expectDataError(.corruptGzip) { _ = try gunzip(Array(gzipVector[..<cut]), name: "cut.gz") }
        }
        for cut in 0..<dynamicVector.count {
            expectDataError(.corruptGzip) { _ = try inflate(Array(dynamicVector[..<cut]), name: "cut") }
        }
    }

    @Test func rejectsTrailingGarbage() {
        let error = expectDataError(.corruptGzip) { _ = try gunzip(gzipVector + [1, 2, 3], name: "tail.gz") }
        #expect(error?.description.contains("3 trailing bytes") == true)
    }

    @Test func rejectsBadHeaderAndBlockType() {
        expectDataError(.corruptGzip) { _ = try gunzip([0x1F, 0x8C] + gzipVector.dropFirst(2), name: "m.gz") }
        var method = gzipVector
        method[2] = 7
        expectDataError(.corruptGzip) { _ = try gunzip(method, name: "cm.gz") }
        expectDataError(.corruptGzip) { _ = try inflate([0x07, 0x00], name: "btype3") }  // final block, type 3
        // Stored block whose NLEN is not the complement of LEN.
        expectDataError(.corruptGzip) { _ = try inflate([0x01, 0x01, 0x00, 0x00, 0x00, 0x41], name: "nlen") }
    }

    @Test func enforcesOutputLimit() {
        let error = expectDataError(.corruptGzip) { _ = try inflate(dynamicVector, name: "limit", maxOutput: 100) }
        #expect(error?.description.contains("limit") == true)
    }

    @Test func survivesRandomCorruption() {
        // Flipped bytes anywhere must give either the right output (a flip the format cannot see is impossible
        // here thanks to the CRC) or a DataError — never a crash, a hang or another error type.
        var state: UInt32 = 7
        for _ in 0..<400 {
            var bytes = gzipVector + []
            state = state &* 1_664_525 &+ 1_013_904_223
            let position = Int(state >> 8) % bytes.count
            bytes[position] ^= UInt8(truncatingIfNeeded: state | 1)
            do {
                _ = try gunzip(bytes, name: "fuzz.gz")
            } catch let error as DataError {
                #expect(error.kind == .corruptGzip)
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        // Corrupted dynamic-Huffman headers and data: malformed code sets, bad distances, overruns.
        for _ in 0..<2000 {
            var bytes = dynamicVector + []
            state = state &* 1_664_525 &+ 1_013_904_223
            let position = Int(state >> 8) % 40  // mostly the code-length header
            bytes[position] ^= UInt8(truncatingIfNeeded: state | 1)
            do {
                _ = try inflate(bytes, name: "fuzz", maxOutput: 1 << 20)
            } catch let error as DataError {
                #expect(error.kind == .corruptGzip)
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }
}
