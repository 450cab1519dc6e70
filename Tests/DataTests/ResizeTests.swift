import Foundation
import Testing
import Data
import Tensor

/// One case of Fixtures/resize.json (written by scripts/export_fixtures.py from torch's F.interpolate).
struct ResizeCase: Decodable {
    let name: String
    /// Input shape [N, C, H, W].
    let shape: [Int]
    /// Output size [H', W'].
    let size: [Int]
    let input: [Double]
    let output: [Double]
    /// torchvision's uint8 result (round half to even), present when the input holds bytes.
    let output_uint8: [Int]?

    var planes: Int { shape[0] * shape[1] }
}

struct ResizeFixture: Decodable {
    let cases: [ResizeCase]

    static func load() throws -> ResizeFixture {
        let folder = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let url = folder.appendingPathComponent("resize.json")
        return try JSONDecoder().decode(ResizeFixture.self, from: Foundation.Data(contentsOf: url))
    }
}

/// Floats resized by `resizeBilinear`.
func resizeFloats(_ input: [Float], planes: Int, height: Int, width: Int, to size: (Int, Int)) -> [Float] {
    var out = [Float](repeating: .nan, count: planes * size.0 * size.1)
    input.withUnsafeBufferPointer { source in
        out.withUnsafeMutableBufferPointer {
            resizeBilinear(source, planes: planes, height: height, width: width, into: $0, outHeight: size.0,
                           outWidth: size.1)
        }
    }
    return out
}

/// Bytes resized by `resizeBilinear`.
func resizeBytes(_ input: [UInt8], planes: Int, height: Int, width: Int, to size: (Int, Int)) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: planes * size.0 * size.1)
    input.withUnsafeBufferPointer { source in
        out.withUnsafeMutableBufferPointer {
            resizeBilinear(source, planes: planes, height: height, width: width, into: $0, outHeight: size.0,
                           outWidth: size.1)
        }
    }
    return out
}

@Suite("Bilinear resize (--image-size)")
struct ResizeTests {
    @Test func fixtureHasTheFourCases() throws {
        let names = try ResizeFixture.load().cases.map(\.name)
        #expect(names == ["28to32", "28to64", "28to20", "3ch_5x7to9x4"])
    }

    /// 28→32, 28→64, 28→20 and a 3-channel 5×7→9×4 case against torch, within 1e-5 + 1e-6·|expected|: the byte
    /// cases reach 255, where one Float ulp is 1.5e-5, and PyTorch's order of the four products is not fixed
    /// (fused or not, depending on the kernel it dispatches to), so they may differ by an ulp there.
    @Test func floatsMatchTorchInterpolate() throws {
        for c in try ResizeFixture.load().cases {
            let got = resizeFloats(c.input.map { Float($0) }, planes: c.planes, height: c.shape[2], width: c.shape[3],
                                   to: (c.size[0], c.size[1]))
            #expect(got.count == c.output.count, "\(c.name)")
            var worst = 0.0, worstIndex = -1
            for (i, (a, b)) in zip(got, c.output).enumerated() {
                let excess = abs(Double(a) - b) / (1e-5 + 1e-6 * abs(b))
                if !(excess <= worst) { worst = excess; worstIndex = i }
            }
            let at = max(worstIndex, 0)
            #expect(worst <= 1, "\(c.name): at \(at) got \(got[at]), torch \(c.output[at]); |Δ| / tolerance \(worst)")
        }
    }

    /// Bytes match torchvision's uint8 Resize (interpolate in Float, round half to even) exactly.
    @Test func bytesMatchTorchRounded() throws {
        let cases = try ResizeFixture.load().cases.filter { $0.output_uint8 != nil }
        #expect(cases.count == 3)
        for c in cases {
            let got = resizeBytes(c.input.map { UInt8($0) }, planes: c.planes, height: c.shape[2], width: c.shape[3],
                                  to: (c.size[0], c.size[1]))
            let expected = c.output_uint8!.map { UInt8($0) }
            let mismatches = zip(got, expected).enumerated().filter { $0.element.0 != $0.element.1 }
            #expect(mismatches.isEmpty, "\(c.name): \(mismatches.count) bytes differ, first \(mismatches.prefix(3))")
        }
    }

    @Test func datasetResizedMatchesTorchAndKeepsTheRest() throws {
        let c = try ResizeFixture.load().cases.first { $0.name == "28to20" }!
        // Two images: the fixture image and its negative, so planes are kept apart.
        let first = c.input.map { UInt8($0) }, second = first.map { 255 - $0 }
        let dataset = Dataset(name: "fashion-mnist", images: Buffer(first + second), labels: Buffer([Int32(3), 7]),
                              count: 2, channels: 1, height: 28, width: 28, classes: 10, mean: [0.2860],
                              std: [0.3530])
        let small = dataset.resized(to: 20)
        #expect(small.height == 20 && small.width == 20 && small.count == 2 && small.channels == 1)
        #expect(small.images.count == 2 * 20 * 20)
        #expect(Array(small.image(0)) == c.output_uint8!.map { UInt8($0) })
        #expect(Array(small.image(1)) == resizeBytes(second, planes: 1, height: 28, width: 28, to: (20, 20)))
        #expect(small.labels.toArray() == [3, 7] && small.classes == 10 && small.name == "fashion-mnist")
        #expect(small.mean == dataset.mean && small.std == dataset.std)

        let wide = dataset.resized(height: 28, width: 32)
        #expect(wide.height == 28 && wide.width == 32)
        #expect(dataset.resized(to: 28).images === dataset.images, "same size returns the dataset unchanged")
    }

    @Test func sameSizeIsACopyAndConstantsStayConstant() {
        let input = (0..<(3 * 5 * 7)).map { Float($0) * 0.37 - 4 }
        #expect(resizeFloats(input, planes: 3, height: 5, width: 7, to: (5, 7)) == input)
        for size in [(1, 1), (2, 9), (13, 3), (64, 64)] {
            let constant = [Float](repeating: 0.3, count: 2 * 6 * 4)
            let out = resizeFloats(constant, planes: 2, height: 6, width: 4, to: size)
            #expect(out.allSatisfy { abs($0 - 0.3) <= 1e-7 }, "\(size)")
            let bytes = resizeBytes([UInt8](repeating: 255, count: 24), planes: 1, height: 6, width: 4, to: size)
            #expect(bytes.allSatisfy { $0 == 255 }, "\(size)")
        }
    }

    /// A hand-checked 1-D case: 2 → 4 gives coordinates −0.25 (clamped to 0), 0.25, 0.75, 1.25 (neighbour clamped).
    @Test func handComputedUpsample() {
        let out = resizeFloats([10, 20], planes: 1, height: 1, width: 2, to: (1, 4))
        #expect(out == [10, 12.5, 17.5, 20])
        // 4 → 2: coordinates 0.5 and 2.5, the mean of each pair (no antialiasing: only two taps).
        #expect(resizeFloats([0, 4, 8, 16], planes: 1, height: 4, width: 1, to: (2, 1)) == [2, 12])
    }
}
