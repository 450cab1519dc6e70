import Foundation
import Testing
@testable import Checkpoint

/// Every malformed file must fail with a `CheckpointError` naming the file and the problem: never a crash, a trap,
/// or an allocation sized by what the file claims.
@Suite("safetensors reader rejects bad files")
struct SafeTensorsRejectionTests {
    let f32x2 = "\"dtype\":\"F32\",\"shape\":[2]"

    func zeros(_ count: Int) -> [UInt8] { [UInt8](repeating: 0, count: count) }

    @Test func rejectsFilesShorterThanTheLengthField() {
        for count in 0..<8 {
            let error = expectCheckpointError(.truncated) {
                _ = try SafeTensors.parse([UInt8](repeating: 0, count: count), file: "short.safetensors")
            }
            #expect(error?.description == "short.safetensors: truncated: \(count) bytes, fewer than the 8-byte "
                        + "header length")
        }
    }

    @Test func rejectsEveryTruncationOfAValidFile() {
        let bytes = sampleCheckpoint().serialized()
        for cut in 0..<bytes.count {
            do {
                _ = try SafeTensors.parse(Array(bytes[..<cut]), file: "cut")
                Issue.record("prefix of \(cut) bytes was accepted")
            } catch let error as CheckpointError {
                #expect(error.kind == .truncated, "cut at \(cut): \(error)")
            } catch {
                Issue.record("cut at \(cut): unexpected \(error)")
            }
        }
    }

    @Test func rejectsHeaderSizeBeyondTheFileOrTheCap() {
        var bytes = rawFile("{}")
        bytes[0] = 200  // claims 200 header bytes, 2 follow
        let beyond = expectCheckpointError(.truncated) { _ = try SafeTensors.parse(bytes, file: "h") }
        #expect(beyond?.description == "h: truncated: the header length says 200 bytes, only 2 follow")
        for length: UInt64 in [UInt64(SafeTensors.maxHeaderBytes) + 1, 1 << 40, UInt64.max] {
            var huge: [UInt8] = []
            withUnsafeBytes(of: length.littleEndian) { huge += $0 }
            let error = expectCheckpointError(.badHeaderSize) { _ = try SafeTensors.parse(huge + [0x7B], file: "h") }
            #expect(error?.description.contains("exceeds the limit of 100000000 bytes") == true)
        }
        expectCheckpointError(.badHeaderSize) { _ = try SafeTensors.parse([0, 0, 0, 0, 0, 0, 0, 0], file: "zero") }
        expectCheckpointError(.badHeaderSize) { _ = try SafeTensors.parse(rawFile("{"), file: "one") }
    }

    @Test func rejectsNonUTF8AndInvalidJSON() {
        let utf8 = expectCheckpointError(.badHeader) {
            _ = try SafeTensors.parse(rawFile("{\"a\":1}").enumerated().map { $0.offset == 10 ? 0xFF : $0.element },
                                      file: "u")
        }
        #expect(utf8?.description == "u: header is not valid UTF-8")
        for text in ["{\"a\":", "{\"a\" 1}", "{a:1}", "{\"a\":[1,]}", "{\"a\":01}", "{\"a\":tru}", "{\"a\":\"\u{01}\"}",
                     "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{} {}", "{\"a\":1.}", "{\"a\":-}",
                     "{\"a\":\"\\u12\"}"] {
            let message = expectRejected(.badHeader, text)
            #expect(message.hasPrefix("bad.safetensors: header is not valid JSON: "), "\(text): \(message)")
        }
    }

    @Test func rejectsHeaderThatIsNotAnObject() {
        #expect(expectRejected(.badHeader, "[1, 2]").contains("does not start with '{'"))
        #expect(expectRejected(.badHeader, "  {}").contains("does not start with '{'"))
        expectRejected(.badHeader, "\"{}\"")
    }

    @Test func rejectsDeepNestingWithoutExhaustingTheStack() {
        let deep = "{\"a\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(expectRejected(.badHeader, deep).contains("nesting deeper than 32 levels"))
    }

    @Test func rejectsMalformedEntries() {
        #expect(expectRejected(.badEntry, "{\"w\":[1]}").contains("tensor \"w\" is an array, expected an object"))
        #expect(expectRejected(.badEntry, "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", data: zeros(8))
                    .contains("tensor \"w\" lacks dtype"))
        #expect(expectRejected(.badEntry, "{\"w\":{\"dtype\":\"F32\"}}").contains("lacks shape, data_offsets"))
        #expect(expectRejected(.badEntry, "{\"w\":{\(f32x2)}}").contains("lacks data_offsets"))
        #expect(expectRejected(.badEntry, "{\"w\":{\(f32x2),\"data_offsets\":[0,8],\"extra\":1}}")
                    .contains("unexpected field \"extra\""))
        expectRejected(.badEntry, "{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}")
        #expect(expectRejected(.badEntry, "{\"__metadata__\":{\"step\":12}}")
                    .contains("__metadata__ \"step\" is a number, expected a string"))
        expectRejected(.badEntry, "{\"__metadata__\":[]}")
    }

    @Test func rejectsUnknownDType() {
        let message = expectRejected(.unknownDType, "{\"w\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}")
        #expect(message.contains("tensor \"w\" has unknown dtype \"F31\" (known: BOOL, U8"))
        expectRejected(.unknownDType, "{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}")
    }

    @Test func rejectsNegativeAndNonIntegerShapes() {
        func entry(_ shape: String) -> String {
            "{\"w\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":[0,8]}}"
        }
        #expect(expectRejected(.badShape, entry("[-2]")).contains("tensor \"w\" shape[0] is negative (-2)"))
        #expect(expectRejected(.badShape, entry("[2.0]")).contains("shape[0] is 2.0, not an integer"))
        // Foundation keeps a number's value, not its spelling: 2e0 is reported as 2.0.
        #expect(expectRejected(.badShape, entry("[1, 2e0]")).contains("shape[1] is 2.0, not an integer"))
        #expect(expectRejected(.badShape, entry("[1.5]")).contains("shape[0] is 1.5, not an integer"))
        #expect(expectRejected(.badShape, entry("[-1]")).contains("shape[0] is negative (-1)"))
        #expect(expectRejected(.badShape, entry("[18446744073709551615]")).contains("too large"))
        #expect(expectRejected(.badShape, entry("[true]")).contains("shape[0] is a boolean"))
        expectRejected(.badHeader, entry("[1e999]"))
        expectRejected(.badHeader, entry("[2,]"))
        expectRejected(.badHeader, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],}}")
        #expect(expectRejected(.badShape, entry("[\"2\"]")).contains("shape[0] is a string"))
        #expect(expectRejected(.badShape, entry("[99999999999999999999]")).contains("too large"))
        expectRejected(.badShape, entry("2"))
        expectRejected(.badShape, entry("[null]"))
    }

    @Test func rejectsShapeProductOverflow() {
        let big = "4294967296"  // 2^32: [2^32, 2^32] overflows Int64
        let message = expectRejected(.badShape,
                                     "{\"w\":{\"dtype\":\"F32\",\"shape\":[\(big),\(big)],\"data_offsets\":[0,8]}}")
        #expect(message.contains("tensor \"w\" shape [4294967296, 4294967296] overflows"))
        // 2^62 elements fit in Int, 2^62 × 4 bytes do not.
        let bytes = expectRejected(.badShape,
                                   "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}")
        #expect(bytes.contains("overflows as a byte count"))
    }

    @Test func rejectsBadOffsets() {
        #expect(expectRejected(.badOffsets, "{\"w\":{\(f32x2),\"data_offsets\":[8,0]}}", data: zeros(8))
                    .contains("data_offsets [8, 0] end before they begin"))
        #expect(expectRejected(.badOffsets, "{\"w\":{\(f32x2),\"data_offsets\":[0,12]}}", data: zeros(12))
                    .contains("span 12 bytes, but F32 [2] needs 8"))
        expectRejected(.badOffsets, "{\"w\":{\(f32x2),\"data_offsets\":[0]}}")
        expectRejected(.badOffsets, "{\"w\":{\(f32x2),\"data_offsets\":[0,8,16]}}")
        expectRejected(.badOffsets, "{\"w\":{\(f32x2),\"data_offsets\":[-8,0]}}")
        expectRejected(.badOffsets, "{\"w\":{\(f32x2),\"data_offsets\":[0,99999999999999999999999]}}")
    }

    @Test func rejectsOffsetsOutOfRange() {
        // A consistent layout running past the data section: the file was cut short.
        let cut = expectRejected(.truncated,
                                 "{\"a\":{\(f32x2),\"data_offsets\":[0,8]},\"b\":{\(f32x2),\"data_offsets\":[8,16]}}",
                                 data: [UInt8](repeating: 0, count: 12))
        #expect(cut.contains("the header describes 16 bytes of tensor data, the file holds 12"))
        let far = "{\"w\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[9223372036854775799,9223372036854775807]}}"
        #expect(expectRejected(.unreferencedBytes, far, data: [1, 2, 3])
                    .contains("data bytes [0, 9223372036854775799)"))
    }

    @Test func rejectsOverlapsGapsAndTrailingBytes() {
        let data = [UInt8](repeating: 0, count: 16)
        let overlap = expectRejected(.overlap, "{\"a\":{\(f32x2),\"data_offsets\":[0,8]},"
                                         + "\"b\":{\"dtype\":\"F32\",\"shape\":[3],"
                                         + "\"data_offsets\":[4,16]}}", data: data)
        #expect(overlap.contains("tensors \"a\" [0, 8) and \"b\" [4, 16) overlap"))
        expectRejected(.overlap, "{\"a\":{\(f32x2),\"data_offsets\":[0,8]},\"b\":{\(f32x2),\"data_offsets\":[0,8]}}",
                       data: data)
        expectRejected(.overlap, "{\"a\":{\(f32x2),\"data_offsets\":[0,8]},\"z\":{\"dtype\":\"F32\",\"shape\":[0],"
                           + "\"data_offsets\":[4,4]}}", data: [UInt8](repeating: 0, count: 8))
        #expect(expectRejected(.unreferencedBytes, "{\"a\":{\(f32x2),\"data_offsets\":[8,16]}}", data: data)
                    .contains("data bytes [0, 8) belong to no tensor"))
        #expect(expectRejected(.unreferencedBytes, "{\"a\":{\(f32x2),\"data_offsets\":[0,8]}}", data: data)
                    .contains("8 trailing bytes after the last tensor"))
    }

    @Test func rejectsDuplicateNames() {
        let data = [UInt8](repeating: 0, count: 16)
        let message = expectRejected(.duplicateName, "{\"a\":{\(f32x2),\"data_offsets\":[0,8]},"
                                         + "\"a\":{\(f32x2),\"data_offsets\":[8,16]}}", data: data)
        #expect(message.contains("duplicate key \"a\""))
        // The same name spelled with an escape is the same key.
        expectRejected(.duplicateName, "{\"a\":{\(f32x2),\"data_offsets\":[0,8]},"
                           + "\"\\u0061\":{\(f32x2),\"data_offsets\":[8,16]}}", data: data)
        expectRejected(.duplicateName, "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}")
        expectRejected(.duplicateName, "{\"a\":{\(f32x2),\"dtype\":\"F64\",\"data_offsets\":[0,8]}}", data: data)
    }

    @Test func rejectsChecksumMismatchAnywhere() {
        let bytes = sampleCheckpoint().serialized()
        // A flipped data bit.
        var data = bytes
        data[data.count - 30] ^= 0x04
        let error = expectCheckpointError(.checksumMismatch) { _ = try SafeTensors.parse(data, file: "c.safetensors") }
        #expect(error?.description.hasPrefix("c.safetensors: checksum mismatch: the header records crc32 ") == true)
        // An edited metadata value of the same length ("1200" → "1201").
        let text = Array("\"step\":\"1200\"".utf8)
        var edited = bytes
        let at = (0..<(bytes.count - text.count)).first { Array(bytes[$0..<($0 + text.count)]) == text }!
        edited[at + text.count - 2] = UInt8(ascii: "1")
        expectCheckpointError(.checksumMismatch) { _ = try SafeTensors.parse(edited, file: "c") }
    }

    @Test func rejectsMissingOrMalformedChecksum() {
        let plain = rawFile("{\"w\":{\(f32x2),\"data_offsets\":[0,8]}}", data: [UInt8](repeating: 0, count: 8))
        let error = expectCheckpointError(.missingChecksum) { _ = try SafeTensors.parse(plain, file: "p") }
        #expect(error?.description.contains("no dtrain.crc32 in __metadata__") == true)
        #expect(expectRejected(.badEntry, "{\"__metadata__\":{\"dtrain.crc32\":\"xyz\"}}").contains("not 8 hex digits"))
        expectRejected(.badEntry, "{\"__metadata__\":{\"dtrain.crc32\":\"+1234567\"}}")
    }

    @Test func rejectsLayoutMismatches() throws {
        let st = try SafeTensors.parse(sampleCheckpoint().serialized(), file: "ckpt.safetensors")
        let missing = expectCheckpointError(.missingTensor) {
            _ = try st.tensor("param/fc9.weight", dtype: .f32, shape: [2])
        }
        #expect(missing?.description.hasPrefix("ckpt.safetensors: no tensor \"param/fc9.weight\" (the file has ")
                    == true)
        let dtype = expectCheckpointError(.layoutMismatch) { _ = try st.tensor("step", dtype: .i32, shape: [1]) }
        #expect(dtype?.description == "ckpt.safetensors: tensor \"step\" is I64 [1], expected I32 [1]")
        let shape = expectCheckpointError(.layoutMismatch) { _ = try st.tensor("mask", dtype: .u8, shape: [4]) }
        #expect(shape?.description == "ckpt.safetensors: tensor \"mask\" is U8 [2, 2], expected U8 [4]")
        expectCheckpointError(.badEntry) { _ = try st.requiredMetadata("optimizer") }
        #expect(try st.requiredMetadata(CheckpointKey.epoch) == "3")
    }

    @Test func missingAndNonRegularFiles() throws {
        let directory = try TemporaryDirectory()
        let missing = expectCheckpointError(.missingFile) { _ = try SafeTensors.read(path: directory.path + "/none") }
        #expect(missing?.description == directory.path + "/none: no such file")
        expectCheckpointError(.unreadable) { _ = try SafeTensors.read(path: directory.path) }
        let path = try directory.write("empty.safetensors", [])
        expectCheckpointError(.truncated) { _ = try SafeTensors.read(path: path) }
    }

    @Test func survivesRandomCorruption() {
        // Flipped bytes anywhere give either a CheckpointError or (a flip in header padding) the same contents.
        let bytes = sampleCheckpoint().serialized()
        let original = try! SafeTensors.parse(bytes, file: "ok")
        var state: UInt32 = 12345
        for _ in 0..<2000 {
            var corrupt = bytes
            for _ in 0..<(1 + Int(state % 3)) {
                state = state &* 1_664_525 &+ 1_013_904_223
                corrupt[Int(state >> 8) % corrupt.count] ^= UInt8(truncatingIfNeeded: state | 1)
            }
            do {
                let parsed = try SafeTensors.parse(corrupt, file: "fuzz")
                for name in original.names { #expect(parsed[name] == original[name]) }
            } catch is CheckpointError {
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }
}
