import ArgumentParser
import Foundation
import Testing
@testable import Train
@testable import dtrain

@Suite struct ConfigTests {
    @Test func defaultsMatchTheProtocol() throws {
        let cmd = try TrainCommand.parse([])
        let c = try makeConfig(data: cmd.data, model: cmd.model, optim: cmd.optim, run: cmd.runOptions, eval: cmd.evalOptions)
        #expect(c.dataset == "fashion-mnist" && c.dataDir == "/usr/share/datasets/fashion-mnist")
        #expect(c.loss == "clce" && c.lambda == 0.9 && c.tau == 0.5 && c.batchSize == 256)
        #expect(c.optimizer == "sgd" && c.weightDecay == 5e-4 && c.warmupEpochs == 1 && c.epochs == 15)
        #expect(abs(c.baseLearningRate - 0.05) < 1e-12)
        var c64 = c
        c64.batchSize = 64
        #expect(abs(c64.baseLearningRate - 0.025) < 1e-12)
    }

    @Test func flagsAreParsed() throws {
        let cmd = try TrainCommand.parse(["--model", "cnn", "--loss", "ce+supcon", "--lambda", "0.5", "--tau", "0.1",
                                          "--batch-size", "64", "--lr", "0.01", "--optimizer", "adamw", "--seed", "7",
                                          "--train-limit", "100", "--out", "/tmp/x", "--log-every", "5", "--quiet"])
        let c = try makeConfig(data: cmd.data, model: cmd.model, optim: cmd.optim, run: cmd.runOptions, eval: cmd.evalOptions)
        #expect(c.model == "cnn" && c.loss == "ce+supcon" && c.lambda == 0.5 && c.tau == 0.1 && c.batchSize == 64)
        #expect(c.lr == 0.01 && c.optimizer == "adamw" && c.seed == 7 && c.trainLimit == 100 && c.out == "/tmp/x")
        #expect(c.logEvery == 5 && c.quiet)
    }

    @Test(arguments: [
        (["--tau", "0"], "tau"), (["--tau", "-1"], "tau"), (["--lambda", "1.5"], "lambda"),
        (["--lambda", "-0.1"], "lambda"), (["--batch-size", "0"], "batch-size"), (["--loss", "foo"], "loss"),
        (["--model", "resnet"], "model"), (["--optimizer", "lbfgs"], "optimizer"), (["--lr", "0"], "lr"),
        (["--epochs", "0"], "epochs"), (["--blas-threads", "0"], "blas-threads"),
    ])
    func impossibleFlagsAreRejected(args: [String], flag: String) {
        do {
            _ = try TrainCommand.parse(args)
            Issue.record("\(args) was accepted")
        } catch {
            let message = TrainCommand.message(for: error)
            #expect(message.contains(flag), "message for \(args): \(message)")
        }
    }

    @Test func unknownFlagsGetArgumentParsersError() {
        #expect(throws: (any Error).self) { _ = try TrainCommand.parse(["--no-such-flag"]) }
        #expect(throws: (any Error).self) { _ = try TrainCommand.parse(["--batch-size", "many"]) }
    }

    @Test func configFileGivesKeysAndFlagsOverrideIt() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dtrain-config-\(getpid()).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(#"{"batch-size": 64, "loss": "ce", "tau": 0.2, "eval": ["head"]}"#.utf8).write(to: URL(fileURLWithPath: path))
        let cmd = try TrainCommand.parse(["--config", path, "--loss", "clce"])
        let c = try makeConfig(data: cmd.data, model: cmd.model, optim: cmd.optim, run: cmd.runOptions, eval: cmd.evalOptions)
        #expect(c.batchSize == 64 && c.tau == 0.2 && c.loss == "clce" && c.eval == [EvalMode.head])
    }

    @Test(arguments: [
        (#"{"batch_size": 64}"#, "unknown key"), (#"{"tau": "hot"}"#, "tau"), (#"{"tau": 0.5"#, "not valid JSON"),
        (#"[1, 2]"#, "a JSON object is expected"),
    ])
    func badConfigFilesAreClearErrors(text: String, expected: String) throws {
        // One file per case: the cases of a parameterised test run in parallel.
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("dtrain-bad-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try TrainConfig.load(path: path)
            Issue.record("\(text) was accepted")
        } catch {
            #expect("\(error)".contains(expected), "error for \(text): \(error)")
            #expect("\(error)".contains(path))
        }
    }

    @Test func missingConfigFileIsAClearError() {
        #expect(throws: ConfigError.self) { _ = try TrainConfig.load(path: "/nonexistent/dtrain.json") }
    }
}
