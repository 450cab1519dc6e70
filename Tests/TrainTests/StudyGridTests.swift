import Collective
import Foundation
import Testing
@testable import dtrain
@testable import Train

@Suite struct StudyGridTests {
    @Test func parsesAxesAliasesAndOrder() throws {
        let grid = try StudyGrid.parse("loss=ce,supcon,ce+supcon,clce  batch=32,64 seed=0,1,2")
        #expect(grid.axes.map(\.name) == ["loss", "batch-size", "seed"])
        #expect(grid.axes[0].values == ["ce", "supcon", "ce+supcon", "clce"])
        #expect(grid.count == 4 * 2 * 3)
        // The last axis varies fastest.
        #expect(grid.point(0).map(\.value) == ["ce", "32", "0"])
        #expect(grid.point(1).map(\.value) == ["ce", "32", "1"])
        #expect(grid.point(3).map(\.value) == ["ce", "64", "0"])
        #expect(grid.point(23).map(\.value) == ["clce", "64", "2"])
        let c = try grid.config(7, base: TrainConfig())
        #expect(c.loss == "supcon" && c.batchSize == 32 && c.seed == 1)
        #expect(grid.runName(7) == "loss=supcon_batch-size=32_seed=1")
    }

    @Test func everyConfigKeyButOutCanBeAnAxis() throws {
        let grid = try StudyGrid.parse("lambda=0.5 tau=0.1 beta=2 model=cnn lr=0.1 epochs=3 eval=head+knn knn-k=5 "
                                       + "probe-epochs=2 weight-decay=0 optimizer=adamw train-limit=100 max-steps=7")
        let c = try grid.config(0, base: TrainConfig())
        #expect(c.lambda == 0.5 && c.tau == 0.1 && c.beta == 2 && c.model == "cnn" && c.lr == 0.1 && c.epochs == 3)
        #expect(c.eval == [.head, .knn] && c.knnK == 5 && c.probeEpochs == 2 && c.weightDecay == 0)
        #expect(c.optimizer == "adamw" && c.trainLimit == 100 && c.maxSteps == 7)
        #expect(grid.runName(0) == "run")
        #expect(Set(StudyGrid.axisNames) == Set(TrainConfig.CodingKeys.allCases.map(\.rawValue)).subtracting(["out"]))
    }

    @Test func badGridsGiveClearErrors() {
        func message(_ text: String) -> String {
            do { _ = try StudyGrid.parse(text); return "" } catch { return "\(error)" }
        }
        #expect(message("bacth=32,64").contains("unknown grid axis \"bacth\""))
        #expect(message("bacth=32").contains("batch-size"))   // the error lists the known names
        #expect(message("out=x").contains("cannot be a grid axis"))
        #expect(message("batch=32,abc").contains("\"abc\" is not an integer"))
        #expect(message("lambda=0.1,x").contains("not a number"))
        #expect(message("seed=-1").contains("seed"))
        #expect(message("loss").contains("name=value"))
        #expect(message("loss=ce,,clce").contains("empty value"))
        #expect(message("loss=ce batch-size=1 loss=clce").contains("given twice"))
        #expect(message("batch=32 batch-size=64").contains("given twice"))
        #expect(message("seed=1,1").contains("repeats"))
        #expect(message("eval=head+bogus").contains("unknown evaluation \"bogus\""))
        #expect(throws: ConfigError.self) { try StudyGrid.make(preset: "nope", grid: nil) }
        #expect(throws: ConfigError.self) { try StudyGrid.make(preset: nil, grid: nil) }
    }

    @Test func presetsAndOverrides() throws {
        let scaling = try StudyGrid.make(preset: "batch-scaling", grid: nil)
        #expect(scaling.axes.map(\.name) == ["loss", "batch-size", "seed"])
        #expect(scaling.axes[0].values == ["ce", "supcon", "ce+supcon", "clce", "clce-no-hnm"])
        #expect(scaling.axes[1].values == ["32", "64", "128", "256", "1024"])
        #expect(scaling.count == 75)
        // Pure SupCon is scored by the linear probe, every CE blend by the head.
        #expect(try scaling.config(15, base: TrainConfig()).evaluations == [.linearProbe])
        #expect(try scaling.config(0, base: TrainConfig()).evaluations == [.head])

        let sweep = try StudyGrid.make(preset: "lambda-sweep", grid: nil)
        #expect(sweep.axes.first { $0.name == "lambda" }?.values == ["0", "0.1", "0.3", "0.5", "0.7", "0.9", "1"])
        let last = try sweep.config(sweep.count - 1, base: TrainConfig())
        #expect(last.lambda == 1 && last.batchSize == 64 && !last.trainsHead && last.evaluations == [.linearProbe])

        let ablation = try StudyGrid.make(preset: "ablation", grid: nil)
        #expect(ablation.axes[0].values == ["ce", "clce-no-hnm", "clce"])

        // An explicit axis replaces the preset's in place; new axes are appended.
        let merged = try StudyGrid.make(preset: "batch-scaling", grid: "seed=7 batch=16 tau=0.1,0.2")
        #expect(merged.axes.map(\.name) == ["loss", "batch-size", "seed", "tau"])
        #expect(merged.axes[1].values == ["16"] && merged.axes[2].values == ["7"])
        #expect(merged.count == 5 * 2)
    }

    /// A union of grids (`a | b`): runs ordered by the first axis across the parts, the union's axes for names and
    /// summaries, overrides applied to every part, and clear errors for mismatched parts and repeated runs.
    @Test func gridUnionsAndTheLargeBatchPresets() throws {
        let union = try StudyGrid.parse("seed=0,1 loss=supcon batch=512,1024 | seed=0,1 loss=clce batch=32")
        #expect(union.count == 2 * 2 + 2 * 1)
        #expect(union.axes.map(\.name) == ["seed", "loss", "batch-size"])
        #expect(union.axes[1].values == ["supcon", "clce"] && union.axes[2].values == ["512", "1024", "32"])
        let labels = union.points.map { $0.map(\.value).joined(separator: " ") }
        #expect(labels == ["0 supcon 512", "0 supcon 1024", "0 clce 32", "1 supcon 512", "1 supcon 1024", "1 clce 32"])
        #expect(union.runName(2) == "seed=0_loss=clce_batch-size=32")
        #expect(try union.config(2, base: TrainConfig()).batchSize == 32)

        #expect(throws: ConfigError.self) { try StudyGrid.parse("loss=ce batch=32 | batch=64 loss=ce") }
        #expect(throws: ConfigError.self) { try StudyGrid.parse("loss=ce batch=32 | loss=ce batch=32,64") }
        #expect(throws: ConfigError.self) { try StudyGrid.parse("loss=ce | ") }
        #expect(throws: ConfigError.self) { try StudyGrid.make(preset: "ablation", grid: "seed=1 | seed=2") }

        let large = try StudyGrid.make(preset: "large-batch", grid: nil)
        #expect(large.count == 3 * (2 * 5 + 2 * 4))
        let seedZero = large.points.prefix(18)
        #expect(seedZero.allSatisfy { $0[0] == (name: "seed", value: "0") })
        #expect(large.points.contains { $0.map(\.value) == ["1", "supcon", "4096"] })
        #expect(!large.points.contains { $0.map(\.value) == ["1", "clce", "512"] })
        let steps = try StudyGrid.make(preset: "large-batch-steps", grid: "seed=0")
        #expect(steps.count == 18 && steps.axes.last?.name == "steps" && steps.axes.last?.values == ["500"])
        let c = try steps.config(0, base: TrainConfig())
        #expect(c.steps == 500 && c.loss == "supcon" && c.batchSize == 256)
    }

    /// `--steps`: exactly that many steps at any batch size, with the warm-up's share of --epochs kept.
    @Test func fixedStepsScheduleTheWholeRun() throws {
        var c = TrainConfig.synthetic(batchSize: 50, trainLimit: 100, testLimit: 20)
        c.steps = 30
        c.epochs = 15
        c.warmupEpochs = 1
        let (train, test) = try loadDatasets(c)
        let config = c
        let (total, perEpoch, warmup) = try LocalGroup.run(size: 1) { comm in
            let trainer = try Trainer(config: config, comm: comm, train: train, test: test)
            return (trainer.totalSteps, trainer.stepsPerEpoch, trainer.schedule.warmupSteps)
        }[0]
        #expect(total == 30 && perEpoch == 2 && warmup == 2)
        c.maxSteps = 10
        #expect(c.problems().contains { $0.contains("--steps and --max-steps") })
    }

    @Test func evaluationDefaultsFollowTheLoss() throws {
        var c = TrainConfig()
        c.loss = "clce"
        #expect(c.evaluations == [.head] && c.epochEvaluations == [.head])
        c.lambda = 1
        #expect(c.evaluations == [.linearProbe] && c.epochEvaluations == [.knn])
        c.loss = "hscl"; c.lambda = 0.9
        #expect(c.evaluations == [.linearProbe])
        c.eval = [.knn, .linearProbe]
        #expect(c.evaluations == [.knn, .linearProbe] && c.epochEvaluations == [.knn])
        c.eval = [.head]
        #expect(c.evaluationProblems().first?.contains("--eval head needs cross-entropy") == true)
        c.loss = "ce"
        #expect(c.evaluationProblems().isEmpty)
        #expect(try TrainConfig.parseEvaluations("head,knn,linear-probe") == [.head, .knn, .linearProbe])
    }

    @Test func commandLineFlags() throws {
        let train = try TrainCommand.parse(["--eval", "head,knn", "--knn-k", "5", "--probe-epochs", "3"])
        let c = try makeConfig(data: train.data, model: train.model, optim: train.optim, run: train.runOptions,
                               eval: train.evalOptions)
        #expect(c.eval == [.head, .knn] && c.knnK == 5 && c.probeEpochs == 3)
        #expect(throws: (any Error).self) { _ = try TrainCommand.parse(["--eval", "probe"]) }
        #expect(throws: (any Error).self) { _ = try TrainCommand.parse(["--loss", "supcon", "--eval", "head"]) }

        let study = try StudyCommand.parse(["--preset", "ablation", "--grid", "seed=0", "--out", "/tmp/x",
                                            "--epochs", "2"])
        #expect(try study.makeGrid().count == 3)
        #expect(throws: (any Error).self) { _ = try StudyCommand.parse(["--preset", "ablation"]) }   // no --out
        #expect(throws: (any Error).self) {
            _ = try StudyCommand.parse(["--grid", "bacth=1", "--out", "/tmp/x"])
        }
    }

    @Test func csvQuotingAndStatistics() {
        #expect(csvField("plain") == "plain")
        #expect(csvField("a,b") == "\"a,b\"")
        #expect(csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
        let (m, s) = meanAndStd([1, 2, 3])
        #expect(m == 2 && abs(s - 1) < 1e-12)
        #expect(meanAndStd([5]).std == 0)
    }
}
