import ArgumentParser
import Foundation
import Loss
import Model
import Tensor
import Train

/// `dtrain bench`: training-step throughput (default) or the loss alone (`dtrain bench loss`).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput against the machine's sgemm ceiling.",
        subcommands: [BenchTrain.self, BenchLoss.self], defaultSubcommand: BenchTrain.self)
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time training steps: images/s, ms per phase, FLOPs per image as performed, achieved vs sgemm "
            + "GFLOP/s, peak resident memory and arena bytes per rank.",
        discussion: "Example: mpirun -n 2 dtrain bench --model cnn --loss clce --batch-size 256 --steps 20")

    @Option(help: .keySentence("model")) var model = ModelKind.mlp
    @Option(help: .keySentence("loss")) var loss = LossKind.clce
    @Option(help: .keySentence("stem")) var stem = StemKind.imagenet
    @Option(help: .keySentence("norm")) var norm = NormKind.batch
    @Option(help: .keySentence("norm-groups")) var normGroups = 8
    @Option(help: .key("image-size")) var imageSize: Int?
    @Option(help: "Global images per step.") var batchSize = 256
    @Option(help: "Timed steps.") var steps = 20
    @Option(help: "Untimed warm-up steps.") var warmupSteps = 3
    @Option(help: "Dataset: synthetic (no files needed) or any train dataset.") var dataset = DatasetName.synthetic
    @Option(help: "Dataset folder (for real datasets).") var dataDir = "/usr/share/datasets/fashion-mnist"
    @Option(help: "OpenBLAS threads per rank.") var blasThreads = 1
    @Option(help: "Gradient elements per all-reduce bucket.") var bucketSize = 1 << 18
    @Flag(help: "One all-reduce after backward instead of buckets overlapped with it.") var noOverlap = false
    @Option(help: ArgumentHelp("Gradient caching: images per rank per chunk. Times an unchunked step at this many "
                               + "images per rank first, then the chunked step at --batch-size, and reports the peak "
                               + "resident memory of each.", valueName: "K"))
    var chunkSize: Int?
    @Flag(help: "Print one JSON object on stdout.") var json = false

    func validate() throws {
        if let chunkSize, chunkSize < 1 { throw ValidationError("--chunk-size must be >= 1, got \(chunkSize)") }
        guard steps >= 1, warmupSteps >= 0 else { throw ValidationError("--steps must be >= 1 and --warmup-steps >= 0") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be >= 1, got \(batchSize)") }
        guard blasThreads >= 1 else { throw ValidationError("--blas-threads must be >= 1, got \(blasThreads)") }
        guard normGroups >= 1 else { throw ValidationError("--norm-groups must be >= 1, got \(normGroups)") }
        if let imageSize, imageSize < 8 { throw ValidationError("--image-size must be >= 8, got \(imageSize)") }
    }

    func run() throws {
        var config = TrainConfig()
        config.model = model.rawValue; config.loss = loss.rawValue; config.batchSize = batchSize
        config.stem = stem; config.norm = norm; config.normGroups = normGroups; config.imageSize = imageSize
        config.dataset = dataset.rawValue
        config.dataDir = dataDir; config.blasThreads = blasThreads; config.overlap = !noOverlap
        config.bucketSize = bucketSize; config.quiet = true; config.testLimit = 10
        try runOnWorld(blasThreads: blasThreads) { comm in
            let (train, test) = try loadDatasets(config)
            if let chunkSize {
                var chunked = config
                chunked.chunkSize = chunkSize
                let report = try runChunkMemoryBenchmark(config: chunked, comm: comm, train: train, test: test,
                                                         steps: steps, warmup: warmupSteps)
                if comm.rank == 0 {
                    let text = report.reference.table() + "\n" + report.chunked.table() + "\n" + report.table()
                    if json {
                        printError(text)
                        print(jsonLine(report))
                    } else { print(text, terminator: "") }
                }
                return
            }
            let report = try runBenchmark(config: config, comm: comm, train: train, test: test, steps: steps,
                                          warmup: warmupSteps)
            if comm.rank == 0 {
                if json {
                    printError(report.table())
                    print(jsonLine(report))
                } else { print(report.table(), terminator: "") }
            }
        }
    }
}

struct BenchLoss: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loss",
        abstract: "Time one loss forward+backward on random embeddings against the GEMM floor of the same shapes.",
        discussion: "Example: dtrain bench loss --n 8192 --dim 128")

    @Option(name: .customLong("n"), help: "Rows (views) of the batch, all anchors.") var rows = 8192
    @Option(help: "Embedding width D.") var dim = 128
    @Option(help: "Classes.") var classes = 10
    @Option(help: .keySentence("loss")) var loss = LossKind.clce
    @Option(help: "Temperature.") var tau: Float = 0.5
    @Option(help: "Timed repeats (median reported).") var repeats = 5
    @Option(help: "OpenBLAS threads.") var blasThreads = 1
    @Option(help: "Simulate rank 0 of this many processes: anchors are its n/ranks rows, contrasted with all n.")
    var ranks = 1
    @Option(help: "Cap on the anchors of one similarity block (LossComputer's maxAnchors; default 1024).")
    var maxAnchors: Int?
    @Flag(help: "Print one JSON object on stdout.") var json = false

    func validate() throws {
        guard rows >= 2, dim >= 1, classes >= 1, repeats >= 1 else {
            throw ValidationError("need --n >= 2, --dim >= 1, --classes >= 1, --repeats >= 1")
        }
        guard ranks >= 1, ranks <= rows else { throw ValidationError("need 1 <= --ranks <= --n") }
        if let maxAnchors, maxAnchors < 1 { throw ValidationError("--max-anchors must be >= 1") }
        guard tau > 0 else { throw ValidationError("--tau must be > 0, got \(tau)") }
    }

    func run() throws {
        BLASThreads.set(blasThreads)
        let sgemm = measureSgemmGFLOPs(size: 1024, repeats: 3)
        let r = benchmarkLoss(rows: rows, embedDim: dim, classes: classes, kind: loss, tau: tau,
                              repeats: repeats, sgemmGFLOPs: sgemm, maxAnchors: maxAnchors ?? 1024, ranks: ranks)
        struct Out: Encodable {
            let loss: String, n: Int, dim: Int, classes: Int, anchors: Int, blasThreads: Int
            let seconds: Double, gemmFloorSeconds: Double, ratioToFloor: Double, sgemmGFLOPs: Double
            let performedGFLOP: Double, performedFloorSeconds: Double, gemmsAloneSeconds: Double
        }
        let performedFloor = r.performedFlops / (sgemm * 1e9)
        let out = Out(loss: loss.rawValue, n: rows, dim: dim, classes: classes, anchors: r.anchors,
                      blasThreads: blasThreads, seconds: r.medianSeconds, gemmFloorSeconds: r.floorSeconds,
                      ratioToFloor: r.ratioToFloor, sgemmGFLOPs: sgemm, performedGFLOP: r.performedFlops / 1e9,
                      performedFloorSeconds: performedFloor, gemmsAloneSeconds: r.measuredGemmSeconds)
        if json { print(jsonLine(out)) } else {
            print(String(format: "%@ n=%d D=%d anchors=%d: forward+backward %.2f ms; three-gemm floor %.2f ms at "
                         + "%.1f GFLOP/s (3 gemms of 2·a·n·D); ratio %.2f×; performed %.2f GFLOP = %.2f ms at that "
                         + "rate (ratio %.2f×); the three gemms alone took %.2f ms", loss.rawValue, rows, dim,
                         r.anchors, 1000 * r.medianSeconds, 1000 * r.floorSeconds, sgemm, r.ratioToFloor,
                         r.performedFlops / 1e9, 1000 * performedFloor, r.medianSeconds / performedFloor,
                         1000 * r.measuredGemmSeconds))
        }
    }
}
