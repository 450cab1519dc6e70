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
            EMB.npy holds float32 (N, D) embeddings and LOGITS.npy float32 (N, K) logits, rows in dataset order; \
            files are written atomically, and existing ones are kept unless --force.
            With --checkpoint DIR the model, dataset, data folder, image size, stem and norm default to the run's \
            own settings and the weights are DIR/checkpoint.safetensors; with --init FILE give --model (and the \
            data options) yourself. One process does the work: under mpirun rank 0 computes and writes, the \
            other ranks exit.
            Examples:
              dtrain embed --checkpoint runs/a --out emb.npy --logits logits.npy
              dtrain embed --model resnet18 --init r18.safetensors --dataset cifar10 --split train --out emb.npy
            """)

    @OptionGroup var weights: WeightsOptions

    @Option(help: "Embed only the first N images of the split (normalised as in the whole split).")
    var limit: Int?

    @Option(help: ArgumentHelp("Output .npy file of the (N, D) float32 embeddings.", valueName: "EMB.npy"))
    var out: String

    @Option(help: ArgumentHelp("Also write the (N, K) float32 logits of the head to this .npy file.",
                               valueName: "LOGITS.npy"))
    var logits: String?

    @Flag(help: "Replace existing output files.")
    var force = false

    /// The settings: the weights options', with every image of the split (a checkpoint's train/test limits
    /// dropped).
    func embedConfig() throws -> TrainConfig {
        var c = try weights.config()
        c.trainLimit = nil
        c.testLimit = nil
        return c
    }

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be >= 1, got \(limit)") }
        if let logits, logits == out { throw ValidationError("--logits and --out name the same file") }
        try OutputGuard.file(out, force: force)
        if let logits { try OutputGuard.file(logits, force: force, option: "--logits") }
        _ = try embedConfig()
    }

    func run() throws {
        let config = try embedConfig()
        try runOnWorld(blasThreads: weights.blasThreads) { comm in
            guard comm.rank == 0 else { return }
            let result = try embedSplit(config: config, weights: weights.weightsPath, split: weights.split.split,
                                        limit: limit)
            for note in result.report.notes { printError("note: \(note)") }
            try writeNPY(result.embeddings, shape: [result.count, result.embedDim], to: out)
            if let logits { try writeNPY(result.logits, shape: [result.count, result.classes], to: logits) }
            if weights.json {
                print("{\"event\":\"embed\",\"images\":\(result.count),\"embed_dim\":\(result.embedDim),"
                      + "\"classes\":\(result.classes)}")
            }
            printError("embedded \(result.count) \(weights.split.rawValue) images of \(config.dataset) with \(config.model): "
                       + "\(out) (\(result.count), \(result.embedDim))"
                       + (logits.map { ", \($0) (\(result.count), \(result.classes))" } ?? ""))
        }
    }
}
