import Foundation
import Testing
@testable import Train

/// YAML config files: the same keys as JSON, errors with the line of the key, and `--print-config` round trips.
@Suite("YAML config files")
struct ConfigYAMLTests {
    func load(_ text: String, suffix: String = ".yaml") throws -> TrainConfig {
        let path = NSTemporaryDirectory() + "dtrain-config-" + UUID().uuidString + suffix
        _ = FileManager.default.createFile(atPath: path, contents: Foundation.Data(text.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try TrainConfig.load(path: path)
    }

    func message(_ text: String, suffix: String = ".yaml") -> String {
        do { _ = try load(text, suffix: suffix); return "accepted" } catch { return "\(error)" }
    }

    @Test func readsTheSameKeysAsJSON() throws {
        let yaml = try load("""
            # a comment
            batch-size: 64
            eval: [knn, linear-probe]
            max-steps: 10
            lr: 0.1
            dataset: folder
            data-dir: /data/pets
            mean: [0.5, 0.4, 0.3]
            std: [0.2, 0.2, 0.2]
            quiet: true
            lambda: 1
            """)
        let json = try load("""
            {"batch-size": 64, "eval": ["knn", "linear-probe"], "max-steps": 10, "lr": 0.1, "dataset": "folder",
             "data-dir": "/data/pets", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2], "quiet": true, "lambda": 1}
            """, suffix: ".json")
        #expect(yaml == json)
        #expect(yaml.batchSize == 64 && yaml.eval == [.knn, .linearProbe] && yaml.lambda == 1 && yaml.quiet)
        #expect(yaml.mean == [0.5, 0.4, 0.3])
        #expect(try load("") == TrainConfig())
        #expect(try load("lr: null\n").lr == nil)
    }

    @Test func unknownKeysAndWrongTypesNameTheLine() {
        #expect(message("epochs: 3\nbatchsize: 12\n").contains(":2: unknown key \"batchsize\""))
        #expect(message("epochs: 3\nseed: 1\nbatch-size: \"64\"\n").contains(":3: bad value for \"batch-size\""))
        #expect(message("epochs: 1.5\n").contains(":1: bad value for \"epochs\""))
        #expect(message("tau: 0.5\nmodel: lenet\n").contains(":2: bad value for \"model\""))
        #expect(message("tau: 0.5\neval: [top5]\n").contains(":2: bad value for \"eval"))
        #expect(message("tau: 0.5\nlr:\n  a: 1\n").contains(":2: bad value for \"lr\": a mapping"))
        #expect(message("- 1\n- 2\n").contains(":1: a mapping of settings"))
        #expect(message("tau: [1, 2\n").contains("not valid YAML"))
        // JSON files get the line too.
        #expect(message("{\n  \"epochs\": 3,\n  \"batchsize\": 12\n}", suffix: ".json")
                    .contains(":3: unknown key \"batchsize\""))
        #expect(message("{\n  \"tau\": 0.5,\n  \"epochs\": \"15\"\n}", suffix: ".json")
                    .contains(":3: bad value for \"epochs\""))
    }

    @Test func printedConfigReadsBack() throws {
        var c = TrainConfig()
        c.batchSize = 32; c.lr = 0.2; c.eval = [.knn]; c.mean = [0.5]; c.std = [0.25]; c.imageSize = 64
        c.out = "runs/a b: c"   // quoting
        let text = try c.yaml()
        #expect(text.contains("batch-size: 32") && text.contains("\nlr: 0.2\n"), "\(text)")
        #expect(text.contains("tau: 0.5\n"), "\(text)")
        #expect(text.contains("weight-decay: 0.0005\n") && text.contains("- 0.25\n"), "\(text)")
        #expect(try load(text) == c)
        #expect(try load(try TrainConfig().yaml()) == TrainConfig())
    }
}
