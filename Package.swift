// swift-tools-version:6.0
import Foundation
import PackageDescription

// Layering (see docs/ARCHITECTURE.md): only Collective touches MPI, only Tensor touches BLAS, only FileIO (CRC-32)
// and Data (gzip) touch zlib, only Data touches libpng and libjpeg (image folders); Model and Loss know nothing of
// ranks; Train orchestrates; dtrain is the command line.
// Numeric modules are optimised in debug builds too, so `swift test` runs real-size checks quickly.
let unchecked: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
                                 .unsafeFlags(["-O"], .when(configuration: .debug))]
// Model's hand kernels (attention, LayerNorm, softmax, GELU) work on 8-lane vectors with fused multiply-adds. On
// x86-64 the module is compiled for Haswell's instruction set (AVX2 + FMA; every x86 server CPU since 2013), so an
// 8-lane vector is one ymm register and `fma8` one vfmadd instead of two SSE halves and a libm `fmaf` call per lane.
// Only the instruction set changes, not the arithmetic (Swift never contracts a·b + c on its own). The contrastive
// loss's 8-lane exponentials (Loss) get the same. A build host whose /proc/cpuinfo lacks avx2 or fma, or
// `DTRAIN_PORTABLE=1 swift build`, builds for baseline x86-64 (then `fma8` is a multiply and an add).
#if arch(x86_64)
let hostHasAVX2FMA: Bool = {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return true }
    guard let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
    let flags = Set(line.split(separator: " ").map(String.init))
    return flags.contains("avx2") && flags.contains("fma")
}()
let vectorISA: [SwiftSetting] = ProcessInfo.processInfo.environment["DTRAIN_PORTABLE"] == "1" || !hostHasAVX2FMA ? []
    : [.unsafeFlags(["-target-cpu", "haswell"]), .define("DTRAIN_FMA")]
#else
let vectorISA: [SwiftSetting] = []
#endif

let package = Package(
    name: "dtrain",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dtrain", targets: ["dtrain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg62-turbo-dev"])]),
        .target(name: "Tensor", dependencies: ["CBLAS", .product(name: "RealModule", package: "swift-numerics")],
                swiftSettings: unchecked),
        .target(name: "Collective", dependencies: ["CMPI"]),
        .target(name: "Model", dependencies: ["Tensor"], swiftSettings: unchecked + vectorISA),
        .target(name: "Loss", dependencies: ["Tensor", .product(name: "RealModule", package: "swift-numerics")],
                swiftSettings: unchecked + vectorISA),
        .target(name: "FileIO", dependencies: ["CZlib"]),
        .target(name: "Data", dependencies: ["Tensor", "FileIO", "CZlib", "CPNG", "CJPEG"], swiftSettings: unchecked),
        .target(name: "Checkpoint", dependencies: ["Tensor", "FileIO"]),
        .target(name: "Evaluation", dependencies: ["Tensor", "Collective", "Model", "Data"], swiftSettings: unchecked),
        .target(name: "Train", dependencies: ["Tensor", "Collective", "Model", "Loss", "Data", "Checkpoint", "FileIO",
                                              "Evaluation", .product(name: "Yams", package: "Yams")],
                swiftSettings: unchecked),
        .executableTarget(name: "dtrain", dependencies: [
            "Train", "Evaluation", "Tensor", "Collective", "Model", "Loss", "Data", "FileIO",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "CollectiveTests", dependencies: ["Collective"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Tensor", "Train", "Checkpoint"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LossTests", dependencies: ["Loss", "Tensor", "Collective"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "DataTests", dependencies: ["Data", "Tensor", "FileIO"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "Tensor", "FileIO"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "Tensor", "Collective", "Model", "Data"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "TrainTests", dependencies: ["Train", "Evaluation", "dtrain", "Tensor", "Collective", "Model", "Loss",
                                                  "Data", "Checkpoint"]),
    ]
)
