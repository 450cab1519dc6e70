import ArgumentParser
import Data
import FileIO
import Foundation
import Model
import Train

/// A split of the data (`--split`).
enum SplitName: String, CaseIterable, ExpressibleByArgument {
    case train, test
    var split: Split { self == .train ? .train : .test }
}

/// `dtrain embed`: eval-mode embeddings and logits of a split, as .npy files.
struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Write the eval-mode embeddings (and logits) of a data split as NumPy .npy files.",
        discussion: """
            Every image of the split (or its first --limit images), un-augmented and normalised as evaluation \
            sees it, goes through the encoder and head in evaluation mode (BatchNorm running statistics). \
            EMB.npy holds float32 (N, D) embeddings and LOGITS.npy float32 (N, K) logits, rows in dataset order.
            With --checkpoint DIR the model, dataset, data folder, image size, stem and norm default to the run's \
            own settings and the weights are DIR/checkpoint.safetensors; with --init FILE give --model (and the \
            data options) yourself. One process does the work: under mpirun rank 0 computes and writes, the \
            other ranks exit.
            Examples:
              dtrain embed --checkpoint runs/a --out emb.npy --logits logits.npy
              dtrain embed --model resnet18 --init r18.safetensors --dataset cifar10 --split train --out emb.npy
            """)

    @Option(help: "Encoder architecture (default with --checkpoint: the run's; required with --init).")
    var model: ModelKind?

    @Option(name: .customLong("init"), help: ArgumentHelp(
        "Weights to embed with: a safetensors file (a dtrain checkpoint, an encoder./head. file, or a torchvision "
        + "ResNet state dict). The logits use the file's head (its class count); without one, a seeded initialisation.",
        valueName: "FILE"))
    var initWeights: String?

    @Option(help: ArgumentHelp("A training run's folder: its checkpoint.safetensors gives the weights and its "
                               + "settings give the defaults of the other options.", valueName: "DIR"))
    var checkpoint: String?

    @Option(help: "Data set to embed (default: the checkpoint's, else fashion-mnist).")
    var dataset: DatasetName?

    @Option(help: "Folder holding the data set's files (default: the checkpoint's; '.' for CIFAR).")
    var dataDir: String?

    @Option(help: "Which split to embed.")
    var split: SplitName = .test

    @Option(help: "Embed only the first N images of the split (normalised as in the whole split).")
    var limit: Int?

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

    @Option(help: ArgumentHelp("Output .npy file of the (N, D) float32 embeddings.", valueName: "EMB.npy"))
    var out: String

    @Option(help: ArgumentHelp("Also write the (N, K) float32 logits of the head to this .npy file.",
                               valueName: "LOGITS.npy"))
    var logits: String?

    @Option(help: "OpenBLAS threads.")
    var blasThreads = 1

    /// The settings: the checkpoint's (or the defaults), then the options given.
    func embedConfig() throws -> TrainConfig {
        var c = TrainConfig()
        if let checkpoint {
            do { c = try checkpointConfig(directory: checkpoint) } catch {
                throw ValidationError("--checkpoint: \(error)")
            }
        }
        if let model { c.model = model.rawValue }
        if let dataset {
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
        if let limit, limit < 1 { throw ValidationError("--limit must be >= 1, got \(limit)") }
        if let imageSize, imageSize < 8 { throw ValidationError("--image-size must be >= 8, got \(imageSize)") }
        if let normGroups, normGroups < 1 { throw ValidationError("--norm-groups must be >= 1, got \(normGroups)") }
        if blasThreads < 1 { throw ValidationError("--blas-threads must be >= 1, got \(blasThreads)") }
        if let logits, logits == out { throw ValidationError("--logits and --out name the same file") }
        _ = try embedConfig()
    }

    func run() throws {
        let config = try embedConfig()
        try runOnWorld(blasThreads: blasThreads) { comm in
            guard comm.rank == 0 else { return }
            let result = try embedSplit(config: config, weights: weightsPath, split: split.split, limit: limit)
            for note in result.report.notes { printError("note: \(note)") }
            try writeNPY(result.embeddings, shape: [result.count, result.embedDim], to: out)
            if let logits { try writeNPY(result.logits, shape: [result.count, result.classes], to: logits) }
            printError("embedded \(result.count) \(split.rawValue) images of \(config.dataset) with \(config.model): "
                       + "\(out) (\(result.count), \(result.embedDim))"
                       + (logits.map { ", \($0) (\(result.count), \(result.classes))" } ?? ""))
        }
    }
}
