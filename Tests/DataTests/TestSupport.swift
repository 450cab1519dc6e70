import Foundation
import Testing
import Data
import Tensor

/// A fresh empty directory under the system temporary directory, removed by `cleanup()`.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "dtrain-data-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` in the directory and returns the full path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let full = path + "/" + name
        let directory = (full as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: full, contents: Foundation.Data(bytes)) else {
            throw CocoaError(.fileWriteUnknown)
        }
        return full
    }
}

let gzipTool = "/usr/bin/gzip"
let hasGzip = FileManager.default.isExecutableFile(atPath: gzipTool)

/// Compresses `bytes` with the system gzip at `level` and returns the .gz file's bytes.
func systemGzip(_ bytes: [UInt8], level: Int = 6) throws -> [UInt8] {
    let directory = try TemporaryDirectory()
    let path = try directory.write("payload", bytes)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: gzipTool)
    process.arguments = ["-\(level)", "-n", "-f", path]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    return try readFileBytes(path + ".gz")
}

/// The bytes of an IDX file: [0, 0, dtype, dims.count] + big-endian sizes + data.
func idxBytes(dimensions: [UInt32], data: [UInt8], dtype: UInt8 = 0x08, magic: (UInt8, UInt8) = (0, 0)) -> [UInt8] {
    var bytes: [UInt8] = [magic.0, magic.1, dtype, UInt8(dimensions.count)]
    for d in dimensions { bytes += [UInt8(d >> 24), UInt8((d >> 16) & 0xFF), UInt8((d >> 8) & 0xFF), UInt8(d & 0xFF)] }
    return bytes + data
}

/// Pixels (n, h, w) with value (31·i + 7·y + x) mod 256 and labels i mod classes.
func patternImages(count: Int, height: Int, width: Int) -> [UInt8] {
    var pixels: [UInt8] = []
    for i in 0..<count {
        for y in 0..<height { for x in 0..<width { pixels.append(UInt8((31 * i + 7 * y + x) % 256)) } }
    }
    return pixels
}

/// Runs `body`, expecting a `DataError` of `kind`; returns it for further checks.
@discardableResult
func expectDataError(_ kind: DataError.Kind, sourceLocation: SourceLocation = #_sourceLocation,
                     _ body: () throws -> Void) -> DataError? {
    do {
        try body()
        Issue.record("expected DataError.\(kind), nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as DataError {
        #expect(error.kind == kind, "got \(error.kind): \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected DataError.\(kind), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// The linear congruential bytes the embedded dynamic-Huffman vector was made from (Python:
/// x = (x·1103515245 + 12345) mod 2³¹, byte = 97 + (x >> 16) mod 4, starting at x = 1).
func lcgBytes(_ count: Int) -> [UInt8] {
    var x: UInt64 = 1
    var out: [UInt8] = []
    for _ in 0..<count {
        x = (x &* 1_103_515_245 &+ 12345) % (1 << 31)
        out.append(UInt8(97 + (x >> 16) % 4))
    }
    return out
}
