import ArgumentParser
import Foundation
import Testing
@testable import Train
@testable import dtrain

/// The config key table `ConfigKey.all`: every key round-trips through JSON, works as a grid axis when it is one,
/// reports bad choices with the valid values, and matches the command-line flags one to one.
@Suite struct ConfigKeyTests {
    /// `TrainConfig()` with the table key `key` set to its example value.
    func example(_ key: ConfigKey) throws -> TrainConfig {
        var c = TrainConfig()
        try key.set(key.example, in: &c)
        return c
    }

    @Test func namesAreUniqueKebabCaseAndExamplesDifferFromDefaults() throws {
        let names = ConfigKey.all.map(\.name)
        #expect(Set(names).count == names.count)
        for key in ConfigKey.all {
            #expect(key.name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" }, "\(key.name)")
            #expect(!key.help.isEmpty, "\(key.name) has no help")
            let c = try example(key)
            #expect(c != TrainConfig(), "the example of \(key.name) is its default")
            #expect(key.problem(in: c) == nil, "the example of \(key.name) is invalid: \(c.problems())")
        }
    }

    @Test func everyKeyRoundTripsThroughJSON() throws {
        for key in ConfigKey.all {
            let c = try example(key)
            let json = try c.json()
            #expect(json.contains("\"\(key.name)\""), "\(key.name) missing from \(json)")
            let back = try JSONDecoder().decode(TrainConfig.self, from: Foundation.Data(json.utf8))
            #expect(back == c, "\(key.name) did not round-trip: \(json)")
            #expect(key.text(in: back) == key.text(in: c))
        }
        // Sorted keys, and every non-optional setting written even at its default.
        let json = try TrainConfig().json()
        let keys = json.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: "\"", omittingEmptySubsequences: false)
            return parts.count > 2 ? String(parts[1]) : nil
        }
        #expect(keys == keys.sorted())
        #expect(Set(keys) == Set(ConfigKey.all.filter { $0.text(in: TrainConfig()) != nil }.map(\.name)))
    }

    @Test func newKeysAreCheckedAndShapeTheTrajectory() throws {
        var c = TrainConfig()
        #expect(c.initWeights == nil && c.initHead && c.imageSize == nil && c.norm == .batch && c.normGroups == 8)
        #expect(c.stem == .imagenet)
        c.imageSize = 4
        c.normGroups = 0
        let problems = c.problems()
        #expect(problems.contains("--image-size must be >= 8, got 4"), "\(problems)")
        #expect(problems.contains("--norm-groups must be >= 1, got 0"), "\(problems)")
        let trajectory = TrainConfig().trajectorySettings.map(\.name)
        for name in ["init", "init-head", "image-size", "norm", "norm-groups", "stem", "model", "loss", "seed"] {
            #expect(trajectory.contains(name), "\(name) is not checked on resume")
        }
        for name in ["epochs", "max-steps", "eval", "out", "log-every", "data-dir"] {
            #expect(!trajectory.contains(name), "\(name) must not block a resume")
        }
        var other = TrainConfig()
        other.stem = .cifar
        other.initWeights = "w.safetensors"
        #expect(other.resumeMismatches(with: TrainConfig())
                == ["--init: checkpoint random, this run w.safetensors", "--stem: checkpoint imagenet, this run cifar"])
        for model in ModelKind.allCases {
            other = TrainConfig()
            try other.set("model", to: model.rawValue)
            #expect(other.problems().isEmpty && other.modelKind == model)
        }
    }

    @Test func everyGridAxisIsAcceptedAndApplied() throws {
        for key in ConfigKey.all where key.isGridAxis {
            let grid = try StudyGrid.parse("\(key.name)=\(key.example)")
            #expect(try grid.config(0, base: TrainConfig()) == example(key), "axis \(key.name) not applied")
        }
        #expect(Set(StudyGrid.axisNames) == Set(ConfigKey.all.map(\.name)).subtracting(["out"]))
        // overlap and bucket-size used to be offered as axes the setter rejected.
        let c = try StudyGrid.parse("overlap=false,true bucket-size=1024").config(0, base: TrainConfig())
        #expect(!c.overlap && c.bucketSize == 1024)
    }

    @Test func resultColumnsComeFromTheTable() {
        let names = TrainConfig().parameterColumns.map(\.name)
        #expect(names == ConfigKey.all.filter(\.isResultColumn).map(\.name))
        #expect(Array(names.prefix(21)) == ["dataset", "data-dir", "model", "loss", "lambda", "tau", "beta",
                                            "batch-size", "epochs", "max-steps", "lr", "weight-decay", "optimizer",
                                            "momentum", "warmup-epochs", "seed", "train-limit", "test-limit", "eval",
                                            "knn-k", "probe-epochs"])
        // New keys go at the end of the table (results.csv column order): `classes`, the ViT shape keys, then
        // `chunk-size` (`steps` has no column: results.csv's `steps` is the steps the run made).
        #expect(Array(names.suffix(13)) == ["init", "init-head", "image-size", "norm", "norm-groups", "stem",
                                            "classes", "patch-size", "embed-dim", "depth", "heads", "mlp-ratio",
                                            "chunk-size"])
        #expect(TrainConfig().parameterColumns.first { $0.name == "lr" }?.value == "0.05")
    }

    @Test(arguments: [
        ("model", "vit-huge", "mlp, cnn, resnet18, resnet34, resnet50, resnet101, resnet20, vit, vit-tiny, "
            + "vit_tiny_patch16_224, vit_small_patch16_224, vit_base_patch16_224"),
        ("loss", "foo", "ce, supcon, ce+supcon, hscl, ce+hscl, clce, clce-no-hnm"),
        ("optimizer", "lbfgs", "sgd, adamw"), ("dataset", "imagenet", "fashion-mnist, mnist, cifar10"),
        ("norm", "layer", "batch, group"), ("stem", "deep", "imagenet, cifar"),
    ])
    func badChoicesNameTheValidValues(key: String, bad: String, valid: String) throws {
        // In a config file.
        let path = NSTemporaryDirectory() + "dtrain-config-" + UUID().uuidString + ".json"
        _ = FileManager.default.createFile(atPath: path, contents: Foundation.Data("{\"\(key)\": \"\(bad)\"}".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try TrainConfig.load(path: path)
            Issue.record("\(key) \(bad) accepted in a config file")
        } catch {
            #expect("\(error)".contains("bad value for \"\(key)\""), "\(error)")
            #expect("\(error)".contains(valid), "\(error)")
        }
        // As a grid value.
        #expect(throws: ConfigError.self) { try StudyGrid.parse("\(key)=\(bad)") }
        do { _ = try StudyGrid.parse("\(key)=\(bad)") } catch { #expect("\(error)".contains(valid), "\(error)") }
        // On the command line.
        do {
            _ = try TrainCommand.parse(["--\(key)", bad])
            Issue.record("--\(key) \(bad) accepted")
        } catch {
            let message = TrainCommand.message(for: error)
            #expect(message.contains(key), "\(message)")
            for name in valid.split(separator: ",") {
                #expect(message.contains(name.trimmingCharacters(in: .whitespaces)), "\(message)")
            }
        }
    }

    @Test func badEvaluationsNameTheValidModes() throws {
        let path = NSTemporaryDirectory() + "dtrain-config-" + UUID().uuidString + ".json"
        _ = FileManager.default.createFile(atPath: path, contents: Foundation.Data(#"{"eval": ["top5"]}"#.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: ConfigError.self) { _ = try TrainConfig.load(path: path) }
        do { _ = try TrainConfig.load(path: path) } catch {
            #expect("\(error)".contains("bad value for \"eval.Index 0\""), "\(error)")
            #expect("\(error)".contains("head, linear-probe, knn"), "\(error)")
        }
        do { _ = try TrainCommand.parse(["--eval", "top5"]) } catch {
            #expect(TrainCommand.message(for: error).contains("head, linear-probe, knn"))
        }
    }
}

/// The flags of `dtrain train` and the config key table agree one to one, so neither can drift from the other.
@Suite struct ConfigFlagTests {
    /// Long names of `dtrain train`'s options and flags, with whether each takes a value.
    func trainFlags() throws -> [String: Bool] {
        struct Dump: Decodable {
            struct Command: Decodable { let arguments: [Argument]? }
            struct Argument: Decodable {
                struct Name: Decodable { let kind: String; let name: String }
                let kind: String
                let names: [Name]?
            }
            let command: Command
        }
        let dump = try JSONDecoder().decode(Dump.self, from: Foundation.Data(TrainCommand._dumpHelp().utf8))
        var flags = [String: Bool]()
        for argument in dump.command.arguments ?? [] {
            for name in argument.names ?? [] where name.kind == "long" {
                flags["--" + name.name] = argument.kind == "option"
            }
        }
        return flags
    }

    /// Flags of `dtrain train` that are not settings of the run.
    let commandOnly: Set<String> = ["--config", "--resume", "--overwrite", "--fail-at-step", "--fail-rank", "--help",
                                    "--print-config", "--stall-in-evaluation-rank"]

    @Test func everyKeyHasAFlagAndEveryFlagAKey() throws {
        let flags = try trainFlags()
        #expect(Set(ConfigKey.all.map(\.flag)) == Set(flags.keys).subtracting(commandOnly))
    }

    @Test func everyFlagSetsItsKey() throws {
        let flags = try trainFlags()
        for key in ConfigKey.all {
            let takesValue: Bool = try #require(flags[key.flag] as Bool?, "no flag \(key.flag)")
            // --out too, which --checkpoint-every needs (parsing validates).
            let out = key.name == "out" ? [] : ["--out", "/tmp/dtrain-flag-test"]
            let cmd = try TrainCommand.parse((takesValue ? [key.flag, key.example] : [key.flag]) + out)
            if key.name == "debug" {
                #expect(cmd.debug)   // applied by `run()`, which also shrinks the data
                continue
            }
            let c = try makeConfig(data: cmd.data, model: cmd.model, optim: cmd.optim, run: cmd.runOptions,
                                   eval: cmd.evalOptions)
            #expect(key.text(in: c) == key.text(in: try example(key)), "\(key.flag) does not set \(key.name)")
        }
    }

    @Test func helpShowsTheTablesSentencesAndDefaults() throws {
        let help = TrainCommand.helpMessage(columns: 2000)
        for key in ConfigKey.all {
            #expect(help.contains(key.help), "help of \(key.flag) is not the table's")
        }
        #expect(help.contains("(default: 0.05·√(batch/256))") && help.contains("(default: 256)"))
        #expect(help.contains("(values: mlp, cnn, resnet18") && help.contains("head, linear-probe, knn;"))
        #expect(ConfigKey.named("init-head")?.defaultText == "yes")
    }

    func example(_ key: ConfigKey) throws -> TrainConfig {
        var c = TrainConfig()
        try key.set(key.example, in: &c)
        return c
    }
}
