import Foundation
import Testing
@testable import Train

/// The JSON config loader and `problems()`: every bad file or value is an error naming the file or flag.
@Suite("config loading and validation")
struct ConfigFileTests {
    /// Writes `text` to a fresh temporary file and loads it.
    func load(_ text: String) throws -> TrainConfig {
        let path = NSTemporaryDirectory() + "dtrain-config-" + UUID().uuidString + ".json"
        _ = FileManager.default.createFile(atPath: path, contents: Foundation.Data(text.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try TrainConfig.load(path: path)
    }

    /// Loads `text`, expecting a ConfigError whose message contains `fragment`.
    func expectRejected(_ text: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try load(text)
            Issue.record("accepted \(text)", sourceLocation: sourceLocation)
        } catch let error as ConfigError {
            #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.contains("dtrain-config-"), "names the file", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func loadsPartialConfigOverDefaults() throws {
        let config = try load("{\"batch-size\": 64, \"eval\": [\"knn\", \"linear-probe\"], \"max-steps\": 10}")
        #expect(config.batchSize == 64 && config.eval == [.knn, .linearProbe] && config.maxSteps == 10)
        #expect(config.tau == TrainConfig().tau)
        #expect(try load("{}") == TrainConfig())
    }

    @Test func rejectsBadFiles() {
        #expect(throws: ConfigError.self) { _ = try TrainConfig.load(path: "/nonexistent/dtrain.json") }
        expectRejected("{\"batchsize\": 12}", "unknown key \"batchsize\"")
        expectRejected("{\"epochs\": \"15\"}", "bad value for \"epochs\"")
        // Valid JSON with a value the field cannot hold names the key, not "not valid JSON".
        expectRejected("{\"epochs\": 1.5}", "bad value for \"epochs\"")
        expectRejected("{\"seed\": -1}", "bad value for \"seed\"")
        expectRejected("{\"eval\": [\"top5\"]}", "bad value for \"eval.Index 0\"")
        expectRejected("{\"tau\": 0.5,", "not valid JSON")
        expectRejected("[1, 2]", "bad value for the top level (a JSON object is expected)")
        expectRejected("", "not valid JSON")
        expectRejected("{\"lr\": null, \"out\": 3}", "out")
    }

    @Test func problemsNameEveryBadValue() {
        var c = TrainConfig()
        #expect(c.problems().isEmpty)
        c.tau = 0; c.lambda = 1.5; c.beta = -1; c.batchSize = 0; c.epochs = 0; c.maxSteps = 0; c.lr = .nan
        c.weightDecay = -1; c.momentum = 1; c.warmupEpochs = -1; c.trainLimit = 0; c.testLimit = 0; c.logEvery = 0
        c.blasThreads = 0; c.knnK = 0; c.model = "vit-huge"; c.optimizer = "lamb"; c.dataset = "imagenet"
        let problems = c.problems()
        for flag in ["--tau", "--lambda", "--beta", "--batch-size", "--epochs", "--max-steps", "--lr", "--weight-decay",
                     "--momentum", "--warmup-epochs", "--train-limit", "--test-limit", "--log-every", "--blas-threads",
                     "--knn-k", "--model", "--optimizer", "--dataset"] {
            #expect(problems.contains { $0.hasPrefix(flag + " ") }, "no problem reported for \(flag)")
        }
        c = TrainConfig()
        c.tau = .infinity
        #expect(c.problems().count == 1)
    }
}
