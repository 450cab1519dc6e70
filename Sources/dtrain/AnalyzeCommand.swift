import ArgumentParser
import Data
import Evaluation
import FileIO
import Foundation
import Train

/// The JSON line of `dtrain analyze --json`.
struct AnalyzeEvent: Encodable {
    var event = "analyze"
    /// I = min Z(c) / max Z(c) (Mu & Viswanath; the CLCE paper's Eq. 4).
    var isotropy: Double
    /// Whether the embeddings were L2-normalised before the isotropy score (false with --raw).
    var normalised: Bool
    var similarity: SimilaritySummary
    var similarityPerClass: [String: SimilaritySummary]
    var images: Int, embedDim: Int
    var dataset: String, split: String, weights: String
    var files: [String]

    enum CodingKeys: String, CodingKey {
        case event, isotropy, normalised, similarity, similarityPerClass = "similarity_per_class", images
        case embedDim = "embed_dim", dataset, split, weights, files
    }
}

/// `dtrain analyze`: isotropy, similarity statistics and a t-SNE map of a split's embeddings.
struct AnalyzeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Embedding analysis: isotropy, positive/negative cosine similarities, t-SNE; writes .npy files.",
        discussion: """
            The split's images (cut to --classes, labels kept) are embedded in eval mode (ranks share the work). \
            Isotropy: min over max of Z(c) = Σ_v exp(cᵀv), c over ± the eigenvectors of VᵀV (LAPACK dsyevd), log \
            space, on L2-normalised embeddings (--raw: as they are). Similarities: every pair of L2-normalised \
            embeddings, positive when the labels agree. Writes DIR/embeddings.npy (float32 (n, D)), \
            DIR/labels.npy (int32 (n)), similarity histograms (CSV; PNG and a t-SNE map of up to 20 classes when \
            matplotlib and openTSNE or scikit-learn are available). See docs/EVALUATION.md.
            Example:
              dtrain analyze --checkpoint runs/clce --classes 0,1,2,3,4 --out runs/clce/analysis --json
            """)

    @OptionGroup var weights: WeightsOptions

    @Option(help: ArgumentHelp("Only these classes: comma-separated ids, or cifar-fs:…, fc100:… (CIFAR-100).",
                               valueName: "LIST"))
    var classes: String?

    @Option(help: ArgumentHelp("Classes with their own similarity statistics and histogram (default: the first two).",
                               valueName: "LIST"))
    var similarityClasses: String?

    @Option(help: "Use only the first N images of the split (before --classes).")
    var limit: Int?

    @Flag(help: "Isotropy of the embeddings as they are, not L2-normalised.")
    var raw = false

    @Option(help: "Classes in the t-SNE map (at most 20).")
    var tsneClasses = 10

    @Option(help: ArgumentHelp("Output folder.", valueName: "DIR"))
    var out: String

    @Flag(help: "Write into an --out folder that already holds files (replacing the ones of the same names).")
    var force = false

    func validate() throws {
        try OutputGuard.folder(out, force: force)
        if let limit, limit < 1 { throw ValidationError("--limit must be >= 1, got \(limit)") }
        if !(1...20).contains(tsneClasses) { throw ValidationError("--tsne-classes must be in 1...20") }
    }

    func run() throws {
        let config = try weights.config()
        try runOnWorld(blasThreads: weights.blasThreads) { comm in
            var data = try loadSplit(config, split: weights.split.split, limit: limit)
            let names = config.dataset == "cifar100" ? cifar100Names(directory: config.dataDir)
                : classNames(TrainConfig(dataset: config), classes: data.classes)
            if let classes {
                do {
                    data = data.keeping(classes: try resolveClasses(classes, names: names, classes: data.classes),
                                        remap: false)
                } catch { throw ValidationError("\(error)") }
            }
            let labels = Array(UnsafeBufferPointer(data.labels.storage))
            let present = Array(Set(labels)).sorted()
            let tracked: [Int32]
            if let similarityClasses {
                do { tracked = try resolveClasses(similarityClasses, names: names, classes: data.classes) } catch {
                    throw ValidationError("\(error)")
                }
            } else {
                tracked = Array(present.prefix(2))
            }
            let source = try weights.source(config: config, data: data)
            let watchdog = weights.watchdog(comm)
            let embedder = Embedder(network: source.network, comm: comm, progress: watchdog?.progress)
            let embeddings = try embedder.gatheredEmbeddings(of: data)
            watchdog?.stop()
            guard comm.rank == 0 else { return }
            let D = embedder.embedDim, n = data.count
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            var files: [String] = []
            func write(_ text: String, _ name: String) throws {
                try writeText(text, to: out + "/" + name)
                files.append(out + "/" + name)
            }
            try writeNPY(embeddings, shape: [n, D], to: out + "/embeddings.npy")
            try writeNPY(int32: labels, shape: [n], to: out + "/labels.npy")
            files += [out + "/embeddings.npy", out + "/labels.npy"]
            try write(names.joined(separator: "\n") + "\n", "class_names.txt")

            let iso = try isotropy(embeddings, embedDim: D, normalise: !raw)
            let stats = SimilarityStatistics(embeddings: embeddings, labels: labels, embedDim: D, classes: tracked)
            try write(histogramCSV(positive: stats.positive, negative: stats.negative), "similarity.csv")
            var perClass: [String: SimilaritySummary] = [:]
            for c in tracked {
                let h = stats.perClass[c]!
                perClass["\(c)"] = SimilaritySummary(positive: h.positive, negative: h.negative)
                try write(histogramCSV(positive: h.positive, negative: h.negative), "similarity-class\(c).csv")
            }
            var notes: [String] = []
            func plot(_ arguments: [String], _ png: String) {
                if let note = runPlotScript(arguments + []) { notes.append(note) } else { files.append(png) }
            }
            plot(["similarity", out + "/similarity.csv", out + "/similarity.png", "all classes"],
                 out + "/similarity.png")
            for c in tracked {
                let name = Int(c) < names.count ? names[Int(c)] : "\(c)"
                plot(["similarity", out + "/similarity-class\(c).csv", out + "/similarity-class\(c).png",
                      "class \(name)"], out + "/similarity-class\(c).png")
            }
            plot(["tsne", out + "/embeddings.npy", out + "/labels.npy", out + "/tsne.png", "\(tsneClasses)",
                  out + "/class_names.txt"], out + "/tsne.png")
            for note in Set(notes) { printError("note: \(note)") }
            let overall = SimilaritySummary(positive: stats.positive, negative: stats.negative)
            printError(String(format: "isotropy %.6f (%@), positive cos %.4f, negative cos %.4f, overlap %.4f "
                              + "(%d images, D %d)", iso.score, raw ? "raw" : "L2-normalised", overall.positiveMean,
                              overall.negativeMean, overall.overlap, n, D))
            if weights.json {
                print(jsonLine(AnalyzeEvent(isotropy: iso.score, normalised: iso.normalised, similarity: overall,
                                            similarityPerClass: perClass, images: n, embedDim: D,
                                            dataset: config.dataset, split: weights.split.rawValue,
                                            weights: source.weightsPath, files: files)))
            }
        }
    }
}

extension TrainConfig {
    /// A config with only `dataset`'s data settings of `config` (for class names of the whole dataset).
    init(dataset config: TrainConfig) {
        self.init()
        dataset = config.dataset
        dataDir = config.dataDir
    }
}
