import FileIO
import Foundation
import Testing
@testable import Checkpoint
import Tensor

@Suite("safetensors writer and reader")
struct SafeTensorsTests {
    // MARK: - Round trips and layout

    @Test func crc32OfCheckString() {
        var crc = CRC32()
        crc.update("123456789")
        #expect(crc.value == 0xCBF4_3926)
        var split = CRC32()
        split.update("1234")
        split.update("56789")
        #expect(split.value == crc.value)
    }

    @Test func roundTripsEveryDTypeAndMetadata() throws {
        let original = sampleCheckpoint()
        let parsed = try SafeTensors.parse(original.serialized(), file: "mem")
        #expect(Set(parsed.names) == Set(original.names))
        for name in original.names { #expect(parsed[name] == original[name], "\(name)") }
        var expected = original.metadata
        expected[CheckpointKey.checksum] = parsed.metadata[CheckpointKey.checksum]
        #expect(parsed.metadata == expected)
        #expect(parsed["moments.f64"]!.values(as: Double.self) == [Double.pi, -1e-300])
        #expect(parsed["step"]!.values(as: Int64.self) == [1200])
        #expect(parsed["labels"]!.values(as: Int32.self) == [-5, 9, 2_000_000_000])
        #expect(parsed["param/head.bias"]!.values(as: Float.self)[1].sign == .minus)
        #expect(parsed["scalar"]!.count == 1 && parsed["empty"]!.count == 0)
    }

    @Test func writesAtomicallyAndReadsBack() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/ckpt.safetensors"
        try sampleCheckpoint().write(to: path)
        var second = SafeTensors(metadata: [CheckpointKey.step: "2"])
        second.add("step", [Int64(2)], shape: [1])
        try second.write(to: path)  // replaces the first one
        let back = try SafeTensors.read(path: path)
        #expect(back.names == ["step"] && back.metadata[CheckpointKey.step] == "2")
        #expect(back.file == path)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(leftovers == ["ckpt.safetensors"], "temporary files left: \(leftovers)")
    }

    @Test func unwritableFolderNamesThePath() {
        let error = expectCheckpointError(.unwritable) {
            try sampleCheckpoint().write(to: "/nonexistent-dtrain-folder/ckpt.safetensors")
        }
        #expect(error?.description.hasPrefix("/nonexistent-dtrain-folder/ckpt.safetensors: cannot create") == true)
    }

    @Test func headerIsPaddedAndTensorsAligned() throws {
        let bytes = sampleCheckpoint().serialized()
        let length = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(length % 8 == 0)
        #expect(bytes[8] == UInt8(ascii: "{"))
        let header = String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
        #expect(header.hasPrefix("{\"__metadata__\":{"))
        #expect(header.hasSuffix("}") || header.hasSuffix(" "))
        let parsed = try SafeTensors.parse(bytes, file: "mem")
        // Every tensor starts on a multiple of its element size: largest elements are written first.
        let object = try JSONSerialization.jsonObject(with: Foundation.Data(header.utf8)) as! [String: Any]
        for name in parsed.names {
            let entry = object[name] as! [String: Any]
            let begin = (entry["data_offsets"] as! [Int])[0]
            #expect(begin % parsed[name]!.dtype.size == 0, "\(name) at \(begin)")
        }
    }

    @Test func arenaSlicesRoundTrip() throws {
        var layout = ArenaLayout()
        let weight = layout.reserve(6, name: "w"), bias = layout.reserve(3, name: "b")
        let source = Arena(count: layout.total)
        for i in 0..<source.count { source[i] = Float(i) * 0.5 + 1 }
        var st = SafeTensors()
        st.add("param/w", arena: source, slice: weight, shape: [3, 2])
        st.add("param/b", arena: source, slice: bias, shape: [3])
        let back = try SafeTensors.parse(st.serialized(), file: "arena")
        let target = Arena(count: layout.total)
        try back.load("param/w", shape: [3, 2], into: target, slice: weight)
        try back.load("param/b", shape: [3], into: target, slice: bias)
        #expect(Array(target.view(weight)) == Array(source.view(weight)))
        #expect(Array(target.view(bias)) == Array(source.view(bias)))
        expectCheckpointError(.layoutMismatch) { try back.load("param/w", shape: [2, 3], into: target, slice: weight) }
    }

    // MARK: - The reference format

    /// `safetensors.numpy.save({"weight": float32 [[1, -2], [0.5, 3]], "step": int64 [7]}, metadata={"epoch": "2"})`
    /// from safetensors 0.8.0, byte for byte.
    static let pythonBytes: [UInt8] = {
        let header = "{\"__metadata__\":{\"epoch\":\"2\"},"
            + "\"step\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
            + "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}"
            + String(repeating: " ", count: 5)
        let data: [UInt8] = [0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00,
                             0x00, 0xc0, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x40, 0x40]
        let bytes = rawFile(header, data: data)
        precondition(bytes.count == 184 && Array(bytes[0..<8]) == [0x98, 0, 0, 0, 0, 0, 0, 0])
        return bytes
    }()

    @Test func parsesBytesWrittenByTheReferenceImplementation() throws {
        let st = try SafeTensors.parse(Self.pythonBytes, file: "python.safetensors", requireChecksum: false)
        #expect(st.names == ["step", "weight"])
        #expect(st.metadata == ["epoch": "2"])
        #expect(try st.tensor("weight", dtype: .f32, shape: [2, 2]).values(as: Float.self) == [1, -2, 0.5, 3])
        #expect(try st.tensor("step", dtype: .i64, shape: [1]).values(as: Int64.self) == [7])
        // Without a dtrain checksum the file is not accepted as a dtrain checkpoint.
        expectCheckpointError(.missingChecksum) { _ = try SafeTensors.parse(Self.pythonBytes, file: "p") }
    }

    @Test func writesTheReferenceLayoutForTheSameTensors() throws {
        // Same tensors and metadata: the data section is identical, and the header differs only by our checksum.
        var st = SafeTensors(metadata: ["epoch": "2"])
        st.add("weight", [Float(1), -2, 0.5, 3], shape: [2, 2])
        st.add("step", [Int64(7)], shape: [1])
        let ours = st.serialized()
        #expect(Array(ours.suffix(24)) == Array(Self.pythonBytes.suffix(24)))
        let crc = try SafeTensors.parse(ours, file: "ours").metadata[CheckpointKey.checksum]!
        let header = "{\"__metadata__\":{\"dtrain.crc32\":\"\(crc)\",\"epoch\":\"2\"},"
            + "\"step\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
            + "\"weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[8,24]}}"
        let padded = header + String(repeating: " ", count: (8 - header.utf8.count % 8) % 8)
        #expect(ours == rawFile(padded, data: Array(Self.pythonBytes.suffix(24))))
    }

    @Test(.enabled(if: hasPythonSafetensors,
                   "needs python3 with safetensors and numpy (pip install safetensors numpy); skipped otherwise"))
    func pythonSafetensorsLoadsOurFileAndWeLoadItsFile() throws {
        let directory = try TemporaryDirectory()
        let ours = directory.path + "/ours.safetensors", theirs = directory.path + "/theirs.safetensors"
        try sampleCheckpoint().write(to: ours)
        let script = """
            import json, sys
            import numpy as np
            from safetensors import safe_open
            from safetensors.numpy import load_file, save_file
            t = load_file(sys.argv[1])
            with safe_open(sys.argv[1], framework="np") as f:
                meta = f.metadata()
            out = {k: {"dtype": str(v.dtype), "shape": list(v.shape), "values": [repr(float(x)) for x in v.ravel()]}
                   for k, v in t.items()}
            save_file({"x": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array([3], dtype=np.int64),
                       "h": np.array([1.5], dtype=np.float64)}, sys.argv[2], metadata={"from": "python"})
            print(json.dumps({"tensors": out, "metadata": meta}))
            """
        let output = try runPython(script, [ours, theirs])
        let object = try JSONSerialization.jsonObject(with: Foundation.Data(output.utf8)) as! [String: Any]
        let tensors = object["tensors"] as! [String: [String: Any]]
        let metadata = object["metadata"] as! [String: String]
        let sample = sampleCheckpoint()
        #expect(Set(tensors.keys) == Set(sample.names))
        for (key, value) in sample.metadata { #expect(metadata[key] == value, "metadata \(key)") }
        let numpyNames: [DType: String] = [.f32: "float32", .f64: "float64", .i64: "int64", .i32: "int32", .u8: "uint8"]
        for name in sample.names {
            let t = sample[name]!, p = tensors[name]!
            #expect(p["dtype"] as? String == numpyNames[t.dtype], "\(name)")
            #expect(p["shape"] as? [Int] == t.shape, "\(name)")
            let values = (p["values"] as! [String]).map { Double($0)! }
            let expected: [Double]
            switch t.dtype {
            case .f32: expected = t.values(as: Float.self).map(Double.init)
            case .f64: expected = t.values(as: Double.self)
            case .i64: expected = t.values(as: Int64.self).map(Double.init)
            case .i32: expected = t.values(as: Int32.self).map(Double.init)
            default: expected = t.values(as: UInt8.self).map(Double.init)
            }
            #expect(values == expected, "\(name)")
        }
        let back = try SafeTensors.read(path: theirs, requireChecksum: false)
        #expect(try back.tensor("x", dtype: .f32, shape: [2, 3]).values(as: Float.self) == [0, 1, 2, 3, 4, 5])
        #expect(try back.tensor("n", dtype: .i64, shape: [1]).values(as: Int64.self) == [3])
        #expect(try back.tensor("h", dtype: .f64, shape: [1]).values(as: Double.self) == [1.5])
        #expect(back.metadata == ["from": "python"])
    }
}
