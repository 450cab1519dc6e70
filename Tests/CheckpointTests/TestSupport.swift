import Foundation
import Testing
@testable import Checkpoint

/// A fresh empty directory under the system temporary directory, removed on deinit.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "dtrain-checkpoint-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` in the directory and returns the full path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let full = path + "/" + name
        guard FileManager.default.createFile(atPath: full, contents: Foundation.Data(bytes)) else {
            throw CocoaError(.fileWriteUnknown)
        }
        return full
    }
}

/// The bytes of a safetensors file with `header` as its JSON text (not padded) and `data` as its data section.
func rawFile(_ header: String, data: [UInt8] = []) -> [UInt8] {
    let text = Array(header.utf8)
    var bytes: [UInt8] = []
    withUnsafeBytes(of: UInt64(text.count).littleEndian) { bytes += $0 }
    return bytes + text + data
}

/// Runs `body`, expecting a `CheckpointError` of `kind`; returns it for further checks.
@discardableResult
func expectCheckpointError(_ kind: CheckpointError.Kind, sourceLocation: SourceLocation = #_sourceLocation,
                           _ body: () throws -> Void) -> CheckpointError? {
    do {
        try body()
        Issue.record("expected CheckpointError.\(kind), nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as CheckpointError {
        #expect(error.kind == kind, "got \(error.kind): \(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected CheckpointError.\(kind), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Parses `header` + `data` without requiring a checksum, expecting `kind`; returns the message.
@discardableResult
func expectRejected(_ kind: CheckpointError.Kind, _ header: String, data: [UInt8] = [],
                    sourceLocation: SourceLocation = #_sourceLocation) -> String {
    let error = expectCheckpointError(kind, sourceLocation: sourceLocation) {
        _ = try SafeTensors.parse(rawFile(header, data: data), file: "bad.safetensors", requireChecksum: false)
    }
    return error?.description ?? ""
}

/// A small checkpoint of every dtype dtrain writes, with metadata that needs escaping.
func sampleCheckpoint() -> SafeTensors {
    var st = SafeTensors(metadata: [
        CheckpointKey.format: "dtrain-checkpoint",
        CheckpointKey.formatVersion: "1",
        CheckpointKey.config: "{\n  \"batch-size\" : 256,\n  \"loss\" : \"clce\",\n  \"out\" : \"runs/a\\\\b\"\n}",
        CheckpointKey.step: "1200",
        CheckpointKey.epoch: "3",
        CheckpointKey.seed: "18446744073709551615",
        "note": "τ=0.5 \u{1F600} tab\there\u{01}",
    ])
    st.add("param/conv1.weight", (0..<24).map { Float($0) * 0.25 - 3 }, shape: [2, 3, 2, 2])
    st.add("param/head.bias", [Float(1.5), -0.0, .infinity], shape: [3])
    st.add("momentum/head.bias", [Float](repeating: 0, count: 3), shape: [3])
    st.add("moments.f64", [Double.pi, -1e-300], shape: [2])
    st.add("step", [Int64(1200)], shape: [1])
    st.add("labels", [Int32(-5), 9, 2_000_000_000], shape: [3])
    st.add("mask", [UInt8(0), 1, 255, 7], shape: [2, 2])
    st.add("scalar", [Float(42)], shape: [])
    st.add("empty", [Float](), shape: [0, 5])
    return st
}

/// Whether `python3` can import safetensors and numpy (the interop test runs only then).
let hasPythonSafetensors: Bool = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import safetensors.numpy, numpy"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do {
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus == 0
    } catch {
        return false
    }
}()

/// Runs a Python script with `arguments`; returns its standard output, throws on a non-zero exit.
func runPython(_ script: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw CocoaError(.executableLoad, userInfo: ["stderr": errors]) }
    return text
}
