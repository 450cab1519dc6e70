import Foundation
import Testing
@testable import Checkpoint

/// The little-endian bytes of 16-bit patterns.
func littleEndianBytes(_ patterns: [UInt16]) -> [UInt8] {
    patterns.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
}

/// The probe written by scripts/export_fixtures.py (a copy of Tests/ModelTests/Fixtures/resnet18_f16_probe).
func probeFile() throws -> SafeTensors {
    let folder = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    return try SafeTensors.read(path: folder.appendingPathComponent("resnet18_f16_probe.safetensors").path,
                                requireChecksum: false)
}

/// Same value, or both NaN (bit patterns compared, so −0 differs from +0).
func sameBits(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

@Suite("F16 and BF16 tensors read as F32")
struct HalfPrecisionTests {
    @Test func f16HandMadePatterns() {
        let cases: [(UInt16, Float)] = [
            (0x0000, 0), (0x3C00, 1), (0xC000, -2), (0x3E00, 1.5), (0x3555, 0.333251953125),
            (0x7BFF, 65504),                      // largest finite
            (0x0400, 0x1p-14),                    // smallest normal
            (0x03FF, 1023 * 0x1p-24),             // largest subnormal
            (0x0001, 0x1p-24), (0x8001, -0x1p-24), // smallest subnormals
            (0x0200, 0x1p-15), (0x7C00, .infinity), (0xFC00, -.infinity),
        ]
        for (bits, expected) in cases {
            #expect(floatFromF16(bits: bits).bitPattern == expected.bitPattern,
                    "0x\(String(bits, radix: 16)) → \(floatFromF16(bits: bits)), expected \(expected)")
        }
        #expect(floatFromF16(bits: 0x8000).bitPattern == (-0.0 as Float).bitPattern)
        // NaNs keep sign and payload: mantissa shifted up by 13 bits.
        #expect(floatFromF16(bits: 0x7E00).bitPattern == 0x7FC0_0000)
        #expect(floatFromF16(bits: 0x7C01).bitPattern == 0x7F80_2000)
        #expect(floatFromF16(bits: 0xFE01).bitPattern == 0xFFC0_2000)
    }

    @Test func bf16HandMadePatterns() {
        let cases: [(UInt16, UInt32)] = [
            (0x3F80, 0x3F80_0000), (0xC049, 0xC049_0000), (0x0001, 0x0001_0000), (0x8000, 0x8000_0000),
            (0x7F7F, 0x7F7F_0000), (0x7F80, 0x7F80_0000), (0xFF80, 0xFF80_0000), (0x7FC1, 0x7FC1_0000),
        ]
        for (bits, expected) in cases { #expect(floatFromBF16(bits: bits).bitPattern == expected) }
        #expect(floatFromBF16(bits: 0x3F80) == 1 && floatFromBF16(bits: 0xC049) == -3.140625)
        #expect(floatFromBF16(bits: 0x0001) == 0x1p-133)
    }

    /// Every one of the 65,536 F16 patterns against the standard library's Float16 (where the platform has it),
    /// and against the defining formula everywhere.
    @Test func f16AllPatterns() {
        for b in 0...UInt16.max {
            let got = floatFromF16(bits: b)
            let sign: Double = b >> 15 == 0 ? 1 : -1, e = Int(b >> 10 & 0x1F), m = Double(b & 0x3FF)
            let formula: Double = e == 0 ? sign * m * 0x1p-24
                : e == 31 ? (m == 0 ? sign * .infinity : .nan)
                : sign * (1 + m / 1024) * Double(sign: .plus, exponent: e - 15, significand: 1)
            #expect(sameBits(got, Float(formula)) && (got.sign == .minus) == (sign < 0),
                    "0x\(String(b, radix: 16)): \(got) vs \(formula)")
            #if !(os(macOS) && arch(x86_64))
            let library = Float(Float16(bitPattern: b))
            if !sameBits(got, library) { Issue.record("0x\(String(b, radix: 16)): \(got) vs Float16 \(library)") }
            #endif
        }
    }

    @Test func tensorsOfEachDTypeReadAsFloats() throws {
        let f16 = TensorData(dtype: .f16, shape: [2, 2], bytes: littleEndianBytes([0x3C00, 0xC000, 0x0001, 0x7C00]))
        #expect(f16.floatValues() == [1, -2, 0x1p-24, .infinity])
        let bf16 = TensorData(dtype: .bf16, shape: [3], bytes: littleEndianBytes([0x3F80, 0xC049, 0x0000]))
        #expect(bf16.floatValues() == [1, -3.140625, 0])
        let f32 = TensorData([Float(0.1), -7, .greatestFiniteMagnitude], shape: [3])
        #expect(f32.floatValues() == [0.1, -7, .greatestFiniteMagnitude])
        #expect(f16.isFloatReadable && bf16.isFloatReadable && f32.isFloatReadable)
        #expect(!TensorData([Int64(1)], shape: [1]).isFloatReadable && !TensorData([1.0], shape: [1]).isFloatReadable)

        // Through a file: parsed tensors sit at offsets of the data section, read into a caller buffer.
        var st = SafeTensors()
        st.add("h", f16)
        st.add("b", bf16)
        st.add("f", f32)
        st.add("odd", TensorData(dtype: .u8, shape: [1], bytes: [7]))
        let parsed = try SafeTensors.parse(st.serialized(), file: "mem")
        #expect(try parsed.floats("h", shape: [2, 2]) == [1, -2, 0x1p-24, .infinity])
        #expect(try parsed.floats("b", shape: [3]) == [1, -3.140625, 0])
        var destination = [Float](repeating: .nan, count: 3)
        try destination.withUnsafeMutableBufferPointer { try parsed.readFloats("f", shape: [3], into: $0) }
        #expect(destination == [0.1, -7, .greatestFiniteMagnitude])

        expectCheckpointError(.missingTensor) { _ = try parsed.floats("absent", shape: [3]) }
        let wrongShape = expectCheckpointError(.layoutMismatch) { _ = try parsed.floats("h", shape: [4]) }
        #expect(wrongShape?.description.contains("F16 [2, 2], expected F32, F16 or BF16 [4]") == true)
        expectCheckpointError(.layoutMismatch) { _ = try parsed.floats("odd", shape: [1]) }
    }

    /// torch's own F16 / BF16 roundings (`t.half()`, `t.bfloat16()`) widen to exactly `t.half().float()` and
    /// `t.bfloat16().float()`.
    @Test func probeFromTorchWidensExactly() throws {
        let probe = try probeFile()
        let tensors: [(String, [Int])] = [("conv1.weight", [64, 3, 7, 7]), ("bn1.weight", [64]), ("bn1.bias", [64]),
                                          ("specials", [14])]
        for (name, shape) in tensors {
            let original = try probe.tensor(name + ".f32", dtype: .f32, shape: shape).values(as: Float.self)
            #expect(try probe.floats(name + ".f32", shape: shape).elementsEqual(original, by: sameBits))
            for format in ["f16", "bf16"] {
                #expect(probe[name + "." + format]?.dtype == (format == "f16" ? .f16 : .bf16))
                let widened = try probe.floats(name + "." + format, shape: shape)
                let expected = try probe.tensor(name + ".\(format)_as_f32", dtype: .f32, shape: shape)
                    .values(as: Float.self)
                let differing = zip(widened, expected).enumerated().filter { !sameBits($0.element.0, $0.element.1) }
                #expect(differing.isEmpty, "\(name).\(format): \(differing.count) differ, first \(differing.prefix(3))")
                // Rounding to nearest: within half an ulp of the original (2⁻¹¹ or 2⁻⁸ relative) for normal values.
                let relative: Float = format == "f16" ? 0x1p-11 : 0x1p-8
                for (w, o) in zip(widened, original) where o.isFinite && abs(o) >= 0x1p-14 && abs(o) <= 65504 {
                    #expect(abs(w - o) <= relative * abs(o), "\(name).\(format): \(w) from \(o)")
                }
            }
        }
        let specials = try probe.floats("specials.f16", shape: [14])
        #expect(specials[6] == 0x1p-24 && specials[9] == .infinity && specials[12].isNaN && specials[1].sign == .minus)
    }
}
