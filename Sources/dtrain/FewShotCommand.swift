import ArgumentParser
import Data
import Evaluation
import Foundation
import Train

/// The JSON line of `dtrain fewshot --json`.
struct FewShotEvent: Encodable {
    var event = "fewshot"
    var ways: Int, queries: Int, episodes: Int, classifier: String, seed: UInt64
    /// Mean accuracy and 95% CI half-width in percent, by shot count.
    var shots: [String: FewShotScore]
    var classes: [Int32]
    var dataset: String, split: String, weights: String
}

/// `dtrain fewshot`: N-way K-shot episodes on novel classes with frozen embeddings.
struct FewShotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fewshot",
        abstract: "Few-shot evaluation on novel classes: mean accuracy and 95% CI over seeded episodes.",
        discussion: """
            The images of the --classes of the split are embedded once (un-augmented, eval mode; ranks share the \
            work) and L2-normalised. Episode e draws --ways classes, then --shots + --queries distinct images of \
            each, from (--seed, e) with the counter RNG; the first --shots of a class are its support. prototype: \
            nearest support mean by cosine; logreg: multinomial logistic regression on the support as in RFS \
            (sklearn C = 1, L-BFGS). Reports mean and t(0.975, E−1)·sd/√E per shot count, in percent. Classes \
            the checkpoint was trained on are refused unless --allow-overlap. See docs/EVALUATION.md.
            Examples:
              dtrain fewshot --checkpoint runs/base --dataset cifar100 --data-dir data --classes cifar-fs:test --json
              dtrain fewshot --checkpoint runs/base --classes 5,6,7,8,9 --shots 1,5 --classifier logreg
            """)

    @OptionGroup var weights: WeightsOptions

    @Option(help: ArgumentHelp("Novel classes: comma-separated ids, or cifar-fs:train|val|test, "
                               + "fc100:train|val|test (CIFAR-100).", valueName: "LIST"))
    var classes: String

    @Option(help: "Classes per episode.")
    var ways = 5

    @Option(help: ArgumentHelp("Support images per class, comma-separated shot counts.", valueName: "LIST"))
    var shots = "1,5"

    @Option(help: "Query images per class.")
    var queries = 15

    @Option(help: "Episodes per shot count.")
    var episodes = 3000

    @Option(help: "Classifier: prototype or logreg.")
    var classifier: String = "prototype"

    @Option(help: "Seed of the episodes.")
    var seed: UInt64 = 0

    @Flag(help: "Allow novel classes the checkpoint was trained on.")
    var allowOverlap = false

    var shotCounts: [Int] {
        get throws {
            try shots.split(separator: ",").map { part in
                guard let k = Int(part.trimmingCharacters(in: .whitespaces)), k >= 1 else {
                    throw ValidationError("--shots: \"\(part)\" is not a count >= 1")
                }
                return k
            }
        }
    }

    func validate() throws {
        guard FewShotClassifier(rawValue: classifier) != nil else {
            throw ValidationError("--classifier must be prototype or logreg, got \(classifier)")
        }
        if try shotCounts.isEmpty { throw ValidationError("--shots lists no shot count") }
        if ways < 2 { throw ValidationError("--ways must be >= 2, got \(ways)") }
        if queries < 1 { throw ValidationError("--queries must be >= 1, got \(queries)") }
        if episodes < 2 { throw ValidationError("--episodes must be >= 2 (the CI needs two), got \(episodes)") }
    }

    func run() throws {
        let config = try weights.config()
        let shotList = try shotCounts
        let method = FewShotClassifier(rawValue: classifier)!
        try runOnWorld(blasThreads: weights.blasThreads) { comm in
            // The whole split (not a class-subset run's training classes).
            let data = try loadSplit(config, split: weights.split.split, limit: nil)
            let names = config.dataset == "cifar100" ? cifar100Names(directory: config.dataDir)
                : (0..<data.classes).map(String.init)
            let novel: [Int32]
            do { novel = try resolveClasses(classes, names: names, classes: data.classes) } catch {
                throw ValidationError("\(error)")
            }
            if let trained = try trainingClasses(config: config, data: data), !allowOverlap {
                let overlap = Set(novel).intersection(trained).sorted()
                if !overlap.isEmpty {
                    throw ValidationError("novel classes \(overlap.map { names[Int($0)] }) were trained on by the "
                                          + "checkpoint; pick others or pass --allow-overlap")
                }
            }
            let source = try weights.source(config: config, data: data)
            let watchdog = weights.watchdog(comm)
            let scores = try fewShot(network: source.network, comm: comm, data: data, novel: novel, ways: ways,
                                     shots: shotList, queries: queries, episodes: episodes, classifier: method,
                                     seed: seed, progress: watchdog?.progress)
            watchdog?.stop()
            guard comm.rank == 0 else { return }
            for k in shotList {
                printError(String(format: "%d-way %d-shot (%@, %d episodes, %d queries/class): %.2f ± %.2f%%",
                                  ways, k, classifier, episodes, queries, scores[k]!.mean, scores[k]!.ci95))
            }
            if weights.json {
                print(jsonLine(FewShotEvent(ways: ways, queries: queries, episodes: episodes, classifier: classifier,
                                            seed: seed,
                                            shots: Dictionary(uniqueKeysWithValues: shotList.map { ("\($0)",
                                                                                                   scores[$0]!) }),
                                            classes: novel, dataset: config.dataset, split: weights.split.rawValue,
                                            weights: source.weightsPath)))
            }
        }
    }

    /// The original class ids the checkpoint was trained on when it was trained on this dataset (its --classes,
    /// else every class), nil for an --init file or another dataset.
    func trainingClasses(config: TrainConfig, data: Dataset) throws -> Set<Int32>? {
        guard let dir = weights.checkpoint else { return nil }
        let saved = try checkpointConfig(directory: dir)
        guard saved.dataset == config.dataset else { return nil }
        return Set((saved.classes ?? Array(0..<data.classes)).map(Int32.init))
    }
}
