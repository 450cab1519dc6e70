import ArgumentParser
import Collective
import Data
import Foundation
import Model
import Train

/// The weights and data options shared by `dtrain embed`, `eval`, `fewshot` and `analyze`.
struct WeightsOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A training run's folder: its checkpoint.safetensors gives the weights and its "
                               + "settings the defaults of the other options.", valueName: "DIR"))
    var checkpoint: String?

    @Option(name: .customLong("init"), help: ArgumentHelp(
        "The weights: a safetensors file (a dtrain checkpoint, an encoder./head. file, a torchvision ResNet or a "
        + "timm ViT state dict); needs --model. The logits use the file's head when its class count fits.",
        valueName: "FILE"))
    var initWeights: String?

    @Option(help: "Encoder architecture (default with --checkpoint: the run's; required with --init).")
    var model: ModelKind?

    @Option(help: "Data set (default: the checkpoint's, else fashion-mnist).")
    var dataset: DatasetName?

    @Option(help: "Folder holding the data set's files (default: the checkpoint's; '.' for CIFAR).")
    var dataDir: String?

    @Option(help: "Which split to evaluate on.")
    var split: SplitName = .test

    @Option(help: "Resize images to N×N (bilinear) first (default: the checkpoint's).")
    var imageSize: Int?

    @Option(help: "ResNet stem (default: the checkpoint's, else imagenet).")
    var stem: StemKind?

    @Option(help: "ResNet normalisation layers (default: the checkpoint's, else batch).")
    var norm: NormKind?

    @Option(help: "Groups of group norm (default: the checkpoint's, else 8).")
    var normGroups: Int?

    @Option(help: .key("patch-size")) var patchSize: Int?
    @Option(help: .key("embed-dim")) var embedDim: Int?
    @Option(help: .key("depth")) var depth: Int?
    @Option(help: .key("heads")) var heads: Int?
    @Option(help: .key("mlp-ratio")) var mlpRatio: Double?

    @Option(help: "OpenBLAS threads per rank.")
    var blasThreads = 1

    @Flag(help: "Print one JSON object on stdout (rank 0).")
    var json = false

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "eval, fewshot and analyze on several ranks: end the job (MPI_Abort) when the evaluation makes no progress "
        + "for this many seconds, e.g. a rank is stalled; 0: never (default: max(300, 10× the slowest interval "
        + "between two embedding chunks, k-NN blocks, probe iterations or episodes)).", valueName: "SECONDS"))
    var stallTimeout: Double?

    @Option(help: ArgumentHelp("Fault injection: this rank stops itself (SIGSTOP) as the evaluation starts.",
                               visibility: .hidden))
    var stallRank: Int?

    /// The stalled-rank watchdog of the evaluation that starts now on `comm` (nil on one rank or with
    /// `--stall-timeout 0`); stop it after the last collective.
    func watchdog(_ comm: MPICommunicator) -> EvaluationWatchdog? {
        if comm.rank == stallRank { raise(SIGSTOP) }
        guard comm.size > 1, stallTimeout != 0 else { return nil }
        return EvaluationWatchdog(comm: comm, timeout: stallTimeout)
    }

    /// The settings: the checkpoint's (or the defaults), then the options given. A checkpoint's `test-limit` and
    /// `train-limit` are kept (its run was scored on those images).
    func config() throws -> TrainConfig {
        var c = TrainConfig()
        if let checkpoint {
            do { c = try checkpointConfig(directory: checkpoint) } catch {
                throw ValidationError("--checkpoint: \(error)")
            }
        }
        if let model { c.model = model.rawValue }
        if let dataset {
            if dataset.rawValue != c.dataset { c.classes = nil; c.trainLimit = nil; c.testLimit = nil }
            c.dataset = dataset.rawValue
            if dataDir == nil, dataset != .fashionMNIST { c.dataDir = dataset == .synthetic ? "" : "." }
        }
        if let dataDir { c.dataDir = dataDir }
        if let imageSize { c.imageSize = imageSize }
        if let stem { c.stem = stem }
        if let norm { c.norm = norm }
        if let normGroups { c.normGroups = normGroups }
        if let patchSize { c.patchSize = patchSize }
        if let embedDim { c.embedDim = embedDim }
        if let depth { c.depth = depth }
        if let heads { c.heads = heads }
        if let mlpRatio { c.mlpRatio = mlpRatio }
        return c
    }

    /// The weight file: DIR/checkpoint.safetensors or --init FILE.
    var weightsPath: String { checkpoint.map { checkpointPath(directory: $0) } ?? initWeights! }

    func validate() throws {
        switch (initWeights, checkpoint) {
        case (nil, nil): throw ValidationError("give the weights: --checkpoint DIR or --init FILE")
        case (.some, .some): throw ValidationError("--checkpoint and --init exclude each other")
        case (.some, nil): if model == nil { throw ValidationError("--init needs --model") }
        default: break
        }
        if let imageSize, imageSize < 8 { throw ValidationError("--image-size must be >= 8, got \(imageSize)") }
        if let normGroups, normGroups < 1 { throw ValidationError("--norm-groups must be >= 1, got \(normGroups)") }
        if blasThreads < 1 { throw ValidationError("--blas-threads must be >= 1, got \(blasThreads)") }
        if let stallTimeout, !(stallTimeout >= 0 && stallTimeout.isFinite) {
            throw ValidationError("--stall-timeout must be >= 0, got \(stallTimeout)")
        }
        _ = try config()
    }

    /// Loads the network for images shaped like `data`.
    func source(config: TrainConfig, data: Dataset) throws -> EvaluationSource {
        try EvaluationSource.load(config: config, weights: weightsPath, channels: data.channels,
                                  height: data.height, width: data.width, classes: data.classes,
                                  maxBatch: embedChunk(model: config.model, count: 500))
    }
}

/// Writes `text` to `path`.
func writeText(_ text: String, to path: String) throws {
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
        throw ValidationError("cannot write \(path)")
    }
}

/// Runs scripts/plot_evaluation.py `arguments` with Python (`DTRAIN_PYTHON`, else python3), found through
/// `DTRAIN_PLOT_SCRIPT`, the current folder or the folder above the executable's build folder. Returns a note when
/// it could not draw (no script, no Python, no matplotlib), nil on success.
func runPlotScript(_ arguments: [String]) -> String? {
    let env = ProcessInfo.processInfo.environment
    let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var candidates = ["scripts/plot_evaluation.py"]
    if let path = env["DTRAIN_PLOT_SCRIPT"] { candidates.insert(path, at: 0) }
    var dir = executable.deletingLastPathComponent()
    for _ in 0..<4 {
        candidates.append(dir.appendingPathComponent("scripts/plot_evaluation.py").path)
        dir = dir.deletingLastPathComponent()
    }
    guard let script = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
        return "scripts/plot_evaluation.py not found (set DTRAIN_PLOT_SCRIPT); no PNG drawn"
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [env["DTRAIN_PYTHON"] ?? "python3", script] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch { return "could not run python: \(error)" }
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    if process.terminationStatus != 0 {
        return "no PNG drawn (\(script) \(arguments.first ?? "")): "
            + (output.split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)")
    }
    return nil
}
