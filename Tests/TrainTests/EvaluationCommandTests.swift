import Checkpoint
import Collective
import Data
import Evaluation
import FileIO
import Foundation
import Testing
@testable import dtrain
@testable import Train

/// The dtrain binary next to the test bundle's build products (nil when not built).
func dtrainBinary() -> String? {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let path = root.appendingPathComponent(".build/debug/dtrain").path
    return FileManager.default.isExecutableFile(atPath: path) ? path : nil
}

/// Runs the dtrain binary with `arguments`: (exit status, stdout, stderr).
func runDTrain(_ arguments: [String]) throws -> (Int32, String, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try #require(dtrainBinary()))
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["DTRAIN_PLOT_SCRIPT"] = "/nonexistent"  // no PNGs in tests: they need matplotlib
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, o, e)
}

/// The last line of `text` parsed as a JSON object.
func lastJSON(_ text: String) throws -> [String: Any] {
    let line = try #require(text.split(separator: "\n").last)
    return try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
}

/// CIFAR-100-format files in a new folder: `perClass` images of each of the 100 fine classes in each split, records
/// (coarse, fine, 3072 pixels) with the coarse label of the fine class's superclass; pixels are a class-dependent
/// pattern plus noise, so classes are separable.
func writeSyntheticCIFAR100(perClass: Int) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-cifar100-\(getpid())").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var coarseOf = [Int](repeating: 0, count: 100)
    for (c, s) in cifar100Superclasses.enumerated() {
        for m in s.members { coarseOf[cifar100FineNames.firstIndex(of: m)!] = c }
    }
    for (file, salt) in [("train.bin", 0), ("test.bin", 1)] {
        var bytes: [UInt8] = []
        for i in 0..<(100 * perClass) {
            let fine = i % 100
            bytes += [UInt8(coarseOf[fine]), UInt8(fine)]
            for p in 0..<3072 { bytes.append(UInt8(((p * (fine + 3)) % 97 + (i * 7 + p * 13 + salt) % 29) % 256)) }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + file))
    }
    return dir
}

@Suite(.serialized) struct EvaluationCommandTests {
    static let base: TrainConfig = {
        var c = TrainConfig.synthetic(loss: "ce", batchSize: 40, trainLimit: 400, testLimit: 150)
        c.epochs = 1; c.knnK = 5
        c.eval = [.head, .knn, .linearProbe]
        return c
    }()

    /// Trains `config` into a new folder; returns (folder, summary).
    func trainRun(_ config: TrainConfig, name: String) throws -> (String, RunSummary) {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-\(name)-\(getpid())").path
        try? FileManager.default.removeItem(atPath: out)
        var c = config
        c.out = out
        let (train, test) = try loadDatasets(c)
        let summary = try LocalGroup.run(size: 1) { comm in
            try runTraining(config: c, comm: comm, train: train, test: test)
        }[0]
        return (out, summary)
    }

    @Test(arguments: [1, 2])
    func evalOfFinishedCheckpointGivesTheRunsAccuracy(ranks: Int) throws {
        let (dir, summary) = try trainRun(Self.base, name: "eval-finished-\(ranks)")
        // restore refuses a finished run (nothing left to train); evaluation loads it.
        let config = try checkpointConfig(directory: dir)
        let results = try LocalGroup.run(size: ranks) { comm in
            let test = try loadEvaluationSplit(config, split: .test)
            let train = try loadEvaluationSplit(config, split: .train)
            let source = try EvaluationSource.load(config: config, weights: checkpointPath(directory: dir),
                                                   channels: test.channels, height: test.height, width: test.width,
                                                   classes: test.classes, maxBatch: 64)
            return try evaluateSource(source, comm: comm, train: train, test: test,
                                      modes: [.head, .knn, .linearProbe], knnK: config.knnK)
        }
        for r in results {
            for (mode, result) in r {
                // One rank: the same computation as the run's final evaluation, to the bit. Two ranks: the
                // embeddings are per image, so only the probe's reductions could differ (a flipped image at most).
                let reported = summary.accuracies[mode.rawValue]!
                if ranks == 1 { #expect(result.accuracy == reported, "\(mode)") }
                #expect(abs(result.accuracy - reported) <= 1.0 / 150, "\(mode): \(result.accuracy) vs \(reported)")
                #expect(result.confusion.total == 150)
                #expect((mode == .linearProbe) == (result.solver != nil))
            }
        }
    }

    @Test func classSubsetRunKeepsItsClassIds() throws {
        var c = Self.base
        c.classes = [7, 2, 5]
        c.eval = [.head, .knn]
        let (dir, summary) = try trainRun(c, name: "subset")
        let saved = try checkpointConfig(directory: dir)
        #expect(saved.classes == [7, 2, 5])
        let test = try loadEvaluationSplit(saved, split: .test)
        let full = try loadSplit(saved, split: .test, limit: saved.testLimit)
        let expected = (0..<full.count).filter { [7, 2, 5].contains(full.labels[$0]) }
        #expect(test.count == expected.count && test.classes == 3)
        for (row, i) in expected.enumerated() {
            #expect(test.labels[row] == Int32([7, 2, 5].firstIndex(of: Int(full.labels[i]))!))
        }
        // The head has three outputs; the eval command scores it on the same three classes.
        let (status, out, err) = try runDTrain(["eval", "--checkpoint", dir, "--eval", "head,knn", "--json"])
        #expect(status == 0, "\(err)")
        let json = try lastJSON(out)
        let acc = try #require(json["accuracies"] as? [String: Double])
        // JSON text round trip: equal to the printed precision.
        for mode in ["head", "knn"] {
            #expect(abs(acc[mode]! - summary.accuracies[mode]!) < 1e-12, "\(mode): \(acc) vs \(summary.accuracies)")
        }
        #expect(json["class_ids"] as? [Int] == [7, 2, 5] && json["classes"] as? Int == 3)
        #expect(json["event"] as? String == "eval")
        // Few-shot on the held-out classes works; on a trained class it is refused unless --allow-overlap.
        let novel = ["fewshot", "--checkpoint", dir, "--ways", "3", "--shots", "1,2", "--queries", "5",
                     "--episodes", "20", "--seed", "3", "--json", "--classes"]
        let (s1, o1, e1) = try runDTrain(novel + ["0,1,3,4"])
        #expect(s1 == 0, "\(e1)")
        let fs = try lastJSON(o1)
        #expect(fs["event"] as? String == "fewshot" && fs["ways"] as? Int == 3 && fs["episodes"] as? Int == 20)
        let shots = try #require(fs["shots"] as? [String: [String: Double]])
        #expect(Set(shots.keys) == ["1", "2"] && shots["1"]!["mean"]! >= 0 && shots["1"]!["mean"]! <= 100)
        let (s2, _, e2) = try runDTrain(novel + ["0,1,2"])
        #expect(s2 != 0 && e2.contains("--allow-overlap"), "\(e2)")
        let (s3, _, e3) = try runDTrain(novel + ["0,1,2", "--allow-overlap"])
        #expect(s3 == 0, "\(e3)")
    }

    @Test func commandsOnCIFAR100FormatFiles() throws {
        let dir = try writeSyntheticCIFAR100(perClass: 20)
        // A fine_label_names.txt in another order: the named splits resolve through it.
        var names = cifar100FineNames
        names.swapAt(0, names.firstIndex(of: "whale")!)
        try (names.joined(separator: "\n") + "\n").write(toFile: dir + "/fine_label_names.txt", atomically: true,
                                                         encoding: .utf8)
        let ids = try resolveClasses("cifar-fs:test", names: cifar100Names(directory: dir), classes: 100)
        #expect(ids.contains(0) && ids.count == 20)
        // A randomly initialised mlp as weights.
        var config = TrainConfig()
        config.model = "mlp"; config.dataset = "cifar100"; config.dataDir = dir
        let network = try makeNetwork(config: config, channels: 3, height: 32, width: 32, classes: 100, maxBatch: 8)
        let weights = dir + "/mlp.safetensors"
        try network.weightTensors(naming: .dtrain).write(to: weights)
        let common = ["--init", weights, "--model", "mlp", "--dataset", "cifar100", "--data-dir", dir, "--json"]
        let (s1, o1, e1) = try runDTrain(["fewshot"] + common + ["--classes", "cifar-fs:test", "--episodes", "30",
                                                                 "--queries", "5", "--classifier", "logreg"])
        #expect(s1 == 0, "\(e1)")
        let fs = try lastJSON(o1)
        #expect(fs["classes"] as? [Int] == ids.map(Int.init) && fs["classifier"] as? String == "logreg")
        let out = dir + "/analysis"
        let (s2, o2, e2) = try runDTrain(["analyze"] + common + ["--classes", "fc100:test", "--out", out])
        #expect(s2 == 0, "\(e2)")
        let an = try lastJSON(o2)
        let iso = try #require(an["isotropy"] as? Double)
        #expect(iso > 0 && iso <= 1 && an["normalised"] as? Bool == true && an["images"] as? Int == 400)
        let emb = try parseNPYFloat32(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/embeddings.npy"))))
        #expect(emb.shape == [400, 128])
        let sim = try #require(an["similarity"] as? [String: Any])
        #expect(sim["positive_pairs"] as? Int == 20 * (20 * 19 / 2))
        let (s3, o3, e3) = try runDTrain(["eval"] + common + ["--eval", "knn", "--out", dir + "/eval"])
        #expect(s3 == 0, "\(e3)")
        #expect(try lastJSON(o3)["images"] as? Int == 2000)
        #expect(FileManager.default.fileExists(atPath: dir + "/eval/confusion-knn.csv"))
    }

    @Test func embeddingsAreBitIdenticalAcrossRankCounts() throws {
        var config = TrainConfig()
        config.model = "mlp"
        let data = try loadDataset(name: "synthetic", directory: "", split: .test, limit: 53)
        func run(_ ranks: Int) throws -> [[Float]] {
            try LocalGroup.run(size: ranks) { comm in
                let network = try makeNetwork(config: config, channels: 1, height: 28, width: 28, classes: 10,
                                              maxBatch: 7)
                let e = Embedder(network: network, comm: comm)
                // Whole chunks per rank: 8 chunks of 7 (the last of 4).
                #expect(e.layout(of: data).counts.allSatisfy { $0 % 7 == 0 || $0 == 4 || $0 % 7 == 4 })
                return try e.gatheredEmbeddings(of: data)
            }
        }
        let reference = try run(1)[0]
        for ranks in [2, 3, 4, 9] {
            for got in try run(ranks) { #expect(got == reference, "\(ranks) ranks") }
        }
    }

    @Test func commandLineValidation() throws {
        #expect(throws: (any Error).self) { try EvalCommand.parse(["--eval", "head"]) }
        #expect(throws: (any Error).self) { try EvalCommand.parse(["--init", "w", "--model", "mlp", "--eval", "x"]) }
        #expect(throws: (any Error).self) { try EvalCommand.parse(["--init", "w"]) }
        let e = try EvalCommand.parse(["--init", "w", "--model", "mlp", "--eval", "head,knn", "--json"])
        #expect(e.weights.json && e.eval == "head,knn" && e.weights.split == .test)
        let f = try FewShotCommand.parse(["--init", "w", "--model", "mlp", "--classes", "cifar-fs:test"])
        #expect(f.ways == 5 && f.shots == "1,5" && f.queries == 15 && f.episodes == 3000 && f.classifier == "prototype")
        #expect(throws: (any Error).self) {
            try FewShotCommand.parse(["--init", "w", "--model", "mlp", "--classes", "1", "--classifier", "svm"])
        }
        #expect(throws: (any Error).self) { try AnalyzeCommand.parse(["--init", "w", "--model", "mlp"]) }
        var c = TrainConfig()
        try c.set("classes", to: "0+1+4")
        #expect(c.classes == [0, 1, 4])
        #expect(throws: (any Error).self) { try c.set("classes", to: "1,1") }
    }
}
