import ArgumentParser
import Data
import Evaluation
import Foundation
import Train

/// The JSON line of `dtrain eval --json`.
struct EvalEvent: Encodable {
    var event = "eval"
    /// Fraction correct per evaluation (the training summary's units).
    var accuracies: [String: Double]
    /// Fraction correct per class, per evaluation.
    var perClass: [String: [Double]]
    /// The solver of each evaluation that fits one (linear-probe).
    var solver: [String: String]
    var lbfgs: [String: [String: Double]]
    var split: String, dataset: String, images: Int, classes: Int
    var classIds: [Int]?
    var weights: String
    var files: [String]

    enum CodingKeys: String, CodingKey {
        case event, accuracies, perClass = "per_class", solver, lbfgs, split, dataset, images, classes
        case classIds = "class_ids", weights, files
    }
}

/// `dtrain eval`: scores any checkpoint or weight file under head, linear probe and k-NN.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint or weight file: accuracy, per-class accuracy and confusion matrices.",
        discussion: """
            head: argmax of the trained head. linear-probe: multinomial logistic regression on the training \
            split's L2-normalised, standardised, frozen embeddings, mean CE + 1e-4·‖W‖², L-BFGS to max|grad| <= \
            1e-6. knn: cosine k-NN (k = --knn-k) with exp(sim/0.07) vote weights over the training split. A \
            checkpoint trained with --classes is evaluated on those classes (labels as in training). See \
            docs/EVALUATION.md. Runs on one rank or under mpirun (ranks share the embedding work).
            Examples:
              dtrain eval --checkpoint runs/a --eval head,linear-probe,knn --out runs/a/eval --json
              dtrain eval --init r18.safetensors --model resnet18 --dataset cifar10 --data-dir data --eval knn
            """)

    @OptionGroup var weights: WeightsOptions

    @Option(help: ArgumentHelp("Evaluations, comma-separated: head, linear-probe, knn (default: the checkpoint's "
                               + "evaluations, else head)."))
    var eval: String?

    @Option(help: "Neighbours of the k-NN evaluation (default: the checkpoint's, else 20).")
    var knnK: Int?

    @Option(help: ArgumentHelp("Write per-class accuracy and confusion matrices (CSV, and PNG when matplotlib is "
                               + "available) to this folder.", valueName: "DIR"))
    var out: String?

    @Flag(help: "Write into an --out folder that already holds files (replacing the ones of the same names).")
    var force = false

    func validate() throws {
        if let out { try OutputGuard.folder(out, force: force) }
        if let eval { _ = try TrainConfig.parseEvaluations(eval) }
        if let knnK, knnK < 1 { throw ValidationError("--knn-k must be >= 1, got \(knnK)") }
    }

    func run() throws {
        var config = try weights.config()
        if let knnK { config.knnK = knnK }
        let modes = try eval.map(TrainConfig.parseEvaluations) ?? config.evaluations
        try runOnWorld(blasThreads: weights.blasThreads) { comm in
            let test = try loadEvaluationSplit(config, split: weights.split.split)
            let needsTrain = modes.contains(.knn) || modes.contains(.linearProbe)
            let train = needsTrain ? try loadEvaluationSplit(config, split: .train) : test
            let source = try weights.source(config: config, data: test)
            let watchdog = weights.watchdog(comm)
            let results = try evaluateSource(source, comm: comm, train: train, test: test, modes: modes,
                                             knnK: config.knnK, progress: watchdog?.progress)
            watchdog?.stop()
            guard comm.rank == 0 else { return }
            for note in source.report.notes { printError("note: \(note)") }
            let K = source.network.config.classes
            let names = classNames(config, classes: K)
            var files: [String] = []
            if let out {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                for (mode, r) in results {
                    let confusion = out + "/confusion-\(mode.rawValue).csv"
                    let perClass = out + "/per-class-\(mode.rawValue).csv"
                    try writeText(r.confusion.csv(names: names), to: confusion)
                    try writeText(r.confusion.perClassCSV(names: names), to: perClass)
                    files += [confusion, perClass]
                    let png = out + "/confusion-\(mode.rawValue).png"
                    let title = "\(mode.rawValue): accuracy \(String(format: "%.2f", 100 * r.accuracy))%"
                        + (r.solver.map { _ in " (L-BFGS probe)" } ?? "")
                    if let note = runPlotScript(["confusion", confusion, png, title]) {
                        printError("note: \(note)")
                    } else {
                        files.append(png)
                    }
                }
            }
            for (mode, r) in results {
                printError(String(format: "%@: test accuracy %.4f", mode.rawValue, r.accuracy)
                           + (r.solver.map { " [solver: \($0)]" } ?? ""))
            }
            if weights.json {
                var lbfgs: [String: [String: Double]] = [:]
                for (mode, r) in results { if let l = r.lbfgs {
                    lbfgs[mode.rawValue] = ["iterations": Double(l.iterations), "objective": l.value,
                                            "max_gradient": l.gradientMaxNorm, "converged": l.converged ? 1 : 0]
                } }
                let event = EvalEvent(
                    accuracies: Dictionary(uniqueKeysWithValues: results.map { ($0.0.rawValue, $0.1.accuracy) }),
                    perClass: Dictionary(uniqueKeysWithValues: results.map {
                        ($0.0.rawValue, $0.1.confusion.perClassAccuracy)
                    }),
                    solver: Dictionary(uniqueKeysWithValues: results.compactMap { m, r in
                        r.solver.map { (m.rawValue, $0) }
                    }),
                    lbfgs: lbfgs, split: weights.split.rawValue, dataset: config.dataset, images: test.count,
                    classes: K, classIds: config.classes, weights: source.weightsPath, files: files)
                print(jsonLine(event))
            }
        }
    }
}
