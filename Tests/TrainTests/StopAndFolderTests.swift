import ArgumentParser
import Checkpoint
import Collective
import Data
import FileIO
import Foundation
import Testing
@testable import Train
@testable import dtrain

/// A tiny run on synthetic data: 160 images / batch 16 = 10 steps per epoch.
private func tinyConfig(out: String?, optimizer: String = "sgd") -> TrainConfig {
    var c = TrainConfig.synthetic(batchSize: 16, trainLimit: 160, testLimit: 40)
    c.epochs = 2; c.logEvery = 1; c.lr = 0.1; c.warmupEpochs = 0.5; c.optimizer = optimizer
    c.out = out
    return c
}

private func freshFolder(_ name: String) -> String {
    let dir = NSTemporaryDirectory() + "dtrain-stop-\(name)-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    return dir
}

private func train(_ config: TrainConfig, ranks: Int = 2, control: RunControl = RunControl()) throws -> RunSummary {
    let data = try loadDatasets(config)
    return try LocalGroup.run(size: ranks) { comm in
        try runTraining(config: config, comm: comm, train: data.train, test: data.test, control: control)
    }[0]
}

/// metrics.jsonl without its timing fields.
private func metrics(_ dir: String) throws -> [String] {
    try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map { line in
        var d = try JSONSerialization.jsonObject(with: Foundation.Data(line.utf8)) as! [String: Any]
        d["images_per_s"] = nil; d["seconds"] = nil
        return String(decoding: try JSONSerialization.data(withJSONObject: d, options: .sortedKeys), as: UTF8.self)
    }
}

/// Graceful stop (an injected signal: the real handler is process-wide and other suites run in parallel), default
/// checkpoints, output-folder locks, divergence and the watchdog.
@Suite(.serialized) struct StopAndFolderTests {
    @Test(arguments: [(SIGINT, 0), (SIGTERM, 1)])
    func aStopSignalOnOneRankStopsEveryRankWithACheckpointThatResumesBitIdentically(signal: Int32, rank: Int) throws {
        let full = freshFolder("full-\(signal)"), cut = freshFolder("cut-\(signal)")
        let reference = try train(tinyConfig(out: full))
        var control = RunControl()
        control.signalAtStep = 7; control.signal = signal; control.signalRank = rank
        do {
            _ = try train(tinyConfig(out: cut), control: control)
            Issue.record("the run was not stopped")
        } catch let e as RunInterrupted {
            #expect(e.step == 7 && e.signal == signal && e.exitStatus == 128 + signal)
            #expect(e.message.contains("after step 7 of 20"), "\(e.message)")
            #expect(e.message.contains("--resume \(cut)"), "\(e.message)")
        }
        #expect(checkpointHeaderMetadata(path: checkpointPath(directory: cut))["step"] == "7")
        #expect(!fileExists(cut + "/" + lockFileName), "the lock was not released")
        let resumed = try train(tinyConfig(out: cut), control: RunControl(resume: cut))
        #expect(resumed.resumedAtStep == 7)
        #expect(resumed.finalLoss == reference.finalLoss && resumed.testAccuracy == reference.testAccuracy)
        #expect(try metrics(cut) == metrics(full))
        for d in [full, cut] { try? FileManager.default.removeItem(atPath: d) }
    }

    @Test func checkpointsByDefaultEveryEpochAndNoneWithNoCheckpoint() throws {
        let dir = freshFolder("epochs")
        var c = tinyConfig(out: dir)
        c.maxSteps = 15   // epoch 1 ends at step 10; a rank fails after step 13
        #expect(throws: TrainingError.self) { try train(c, control: RunControl(failAtStep: 13, failRank: 1)) }
        #expect(checkpointHeaderMetadata(path: checkpointPath(directory: dir))["step"] == "10")
        let none = freshFolder("none")
        var off = tinyConfig(out: none)
        off.checkpoint = false
        _ = try train(off)
        #expect(!fileExists(checkpointPath(directory: none)) && fileExists(none + "/metrics.jsonl"))
        off.checkpointEvery = 5
        #expect(off.problems().contains { $0.contains("--no-checkpoint contradicts") })
        for d in [dir, none] { try? FileManager.default.removeItem(atPath: d) }
    }

    @Test func aFolderIsLockedWhileARunHoldsItAndAStaleLockIsTakenOver() throws {
        let dir = freshFolder("lock")
        let lock = try RunFolderLock.acquire(directory: dir, command: "dtrain train --out x")
        #expect(lock.note == nil)
        do {
            _ = try RunFolderLock.acquire(directory: dir)
            Issue.record("a second lock was granted")
        } catch let e as OutputFolderError {
            #expect(e.kind == .locked)
            #expect(e.message.contains("in use by pid \(getpid())") && e.message.contains("dtrain train --out x"),
                    "\(e.message)")
        }
        // A run refuses the held folder, on every rank.
        #expect(throws: OutputFolderError.self) { try train(tinyConfig(out: dir)) }
        lock.release()
        #expect(!fileExists(dir + "/" + lockFileName))
        // A lock left by a dead process on this host is taken over with a note; one from another host is not.
        var me = LockHolder.current(command: "dtrain")
        me.pid = 999_999_99
        try writeFileAtomically(Array(me.text.utf8), to: dir + "/" + lockFileName)
        let taken = try RunFolderLock.acquire(directory: dir)
        #expect(taken.note?.contains("took over the lock of pid 99999999") == true, "\(taken.note ?? "nil")")
        taken.release()
        // A live process that started before the lock was written holds it, whatever its program's name (a study
        // run by a copied binary, `dtrain-new`, once lost its folder to a second study this way); a live pid that
        // started after the lock's time is a reused pid and holds nothing.
        me.pid = 1
        try writeFileAtomically(Array(me.text.utf8), to: dir + "/" + lockFileName)
        #expect(throws: OutputFolderError.self) { try RunFolderLock.acquire(directory: dir) }
        me.started = "2020-01-01T00:00:00Z"
        try writeFileAtomically(Array(me.text.utf8), to: dir + "/" + lockFileName)
        let reused = try RunFolderLock.acquire(directory: dir)
        #expect(reused.note?.contains("took over the lock of pid 1 ") == true, "\(reused.note ?? "nil")")
        reused.release()
        me.started = LockHolder.current(command: "dtrain").started
        me.host = "elsewhere.example"
        try writeFileAtomically(Array(me.text.utf8), to: dir + "/" + lockFileName)
        #expect(throws: OutputFolderError.self) { try RunFolderLock.acquire(directory: dir) }
        try? FileManager.default.removeItem(atPath: dir)
        // A folder that cannot be made: plain words, the path and the system's reason.
        do {
            _ = try RunFolderLock.acquire(directory: "/proc/dtrain-cannot-exist/run")
            Issue.record("an impossible folder was accepted")
        } catch let e as OutputFolderError {
            #expect(e.kind == .unwritable && e.message.contains("/proc/dtrain-cannot-exist"), "\(e.message)")
            #expect(!e.message.contains("NSCocoaErrorDomain"))
        }
    }

    @Test func aFolderHoldingARunNeedsResumeOrOverwrite() throws {
        let dir = freshFolder("occupied")
        var c = tinyConfig(out: dir)
        c.maxSteps = 4
        _ = try train(c)
        #expect(existingRun(in: dir) == "a finished run (checkpoint at step 4 of 4)")
        do {
            _ = try train(c)
            Issue.record("a finished run was overwritten")
        } catch let e as OutputFolderError {
            #expect(e.kind == .occupied && e.message.contains("--resume \(dir)") && e.message.contains("--overwrite"))
        }
        #expect(try train(c, control: RunControl(overwrite: true)).steps == 4)
        // The command line refuses before MPI starts, and accepts the checkpoint file as --resume.
        let args = ["--dataset", "synthetic", "--train-limit", "160", "--batch-size", "16", "--max-steps", "4"]
        #expect(throws: (any Error).self) { _ = try TrainCommand.parse(args + ["--out", dir]) }
        do { _ = try TrainCommand.parse(args + ["--out", dir]) } catch {
            #expect(TrainCommand.message(for: error).contains("holds a finished run"))
            #expect(TrainCommand.exitCode(for: error).rawValue == 64)
        }
        _ = try TrainCommand.parse(args + ["--out", dir, "--overwrite"])
        let resumed = try TrainCommand.parse(["--resume", dir + "/checkpoint.safetensors", "--max-steps", "6"])
        #expect(try resumed.trainConfig().out == dir)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func divergenceStopsTheRunWithTheStepAndAHint() throws {
        var c = tinyConfig(out: nil, optimizer: "adamw")
        c.lr = 1000; c.warmupEpochs = 0; c.epochs = 5
        do {
            _ = try train(c, ranks: 1)
            Issue.record("AdamW at lr 1000 was not stopped")
        } catch let e as TrainingError {
            #expect(e.message.contains("diverged at step") && e.message.contains("times its lowest smoothed value"),
                    "\(e.message)")
            #expect(e.message.contains("--lr"), "\(e.message)")
        }
        c.divergenceFactor = 0.5
        #expect(c.problems().contains { $0.contains("--divergence-factor must be 0 or a finite number > 1") })
    }

    @Test func theWatchdogFiresWhenNoStepFinishesOrTheEvaluationMakesNoProgress() throws {
        final class Fired: @unchecked Sendable { var message: String? }
        // Training: beats keep it quiet; without them it fires, naming the last step.
        let fired = Fired()
        let dog = StepWatchdog(fixedTimeout: 0.3, rank: 1) { message in if fired.message == nil { fired.message = message } }
        dog.start()
        for step in 1...12 {
            Thread.sleep(forTimeInterval: 0.05)
            dog.beat(step: step)
        }
        #expect(fired.message == nil, "fired while steps finished")
        Thread.sleep(forTimeInterval: 0.8)
        dog.stop()
        let message = try #require(fired.message)
        #expect(message.contains("rank 1: no training step finished for") && message.contains("the last was step 12"))
        #expect(message.contains("--step-timeout"))
        // An evaluation: its progress keeps it quiet for longer than the timeout; without progress it fires.
        let evaluation = Fired()
        let watched = StepWatchdog(fixedTimeout: 0.3, rank: 2) { message in
            if evaluation.message == nil { evaluation.message = message }
        }
        watched.beat(step: 40)
        watched.start()
        watched.evaluating()
        for _ in 0..<12 {
            Thread.sleep(forTimeInterval: 0.05)
            watched.progress()
        }
        #expect(evaluation.message == nil, "fired while the evaluation made progress")
        Thread.sleep(forTimeInterval: 0.8)
        watched.stop()
        let stalled = try #require(evaluation.message)
        #expect(stalled.contains("rank 2: the evaluation after step 40 made no progress for"), "\(stalled)")
        // An evaluation command's watchdog has no step to name.
        let command = Fired()
        let standalone = StepWatchdog(fixedTimeout: 0.2, rank: 0) { message in
            if command.message == nil { command.message = message }
        }
        standalone.evaluating()
        standalone.start()
        Thread.sleep(forTimeInterval: 0.6)
        standalone.stop()
        #expect(try #require(command.message).contains("rank 0: the evaluation made no progress for"))
        let auto = StepWatchdog(fixedTimeout: nil, rank: 0) { _ in }
        #expect(auto.timeout == 300)
        auto.beat(step: 1, stepSeconds: 45)
        #expect(auto.timeout == 450)
        // An evaluation whose progress calls come 0.2 s apart raises a 0.01 s-step watchdog's timeout to 2 s.
        let slow = StepWatchdog(fixedTimeout: nil, minimumTimeout: 0, rank: 0) { _ in }
        slow.beat(step: 1, stepSeconds: 0.01)
        slow.evaluating()
        Thread.sleep(forTimeInterval: 0.2)
        slow.progress()
        #expect(slow.timeout >= 2 && slow.timeout < 5, "\(slow.timeout)")
    }

    @Test func messagesAndExitStatuses() throws {
        func message(_ args: [String]) -> String {
            do { _ = try TrainCommand.parse(args); return "" } catch { return TrainCommand.message(for: error) }
        }
        #expect(message(["--tau", "-1"]).contains("--tau must be > 0, got -1.0"), "\(message(["--tau", "-1"]))")
        #expect(message(["--tau", "inf"]).contains("--tau must be > 0"))
        #expect(message(["--lr", "-0.5"]).contains("--lr must be > 0"))
        #expect(message(["--step-timeout", "-1"]).contains("--step-timeout must be >= 0"))
        #expect(ExitStatus.of(ValidationError("x")) == 64)
        #expect(ExitStatus.of(DataError(.truncated, file: "f", "short")) == 65)
        #expect(ExitStatus.of(DataError(.badSampling, file: "--batch-size", "too small")) == 64)
        #expect(ExitStatus.of(FileIOError(.unwritable, path: "p", "no")) == 74)
        #expect(ExitStatus.of(OutputFolderError(.locked, "held")) == 74)
        #expect(ExitStatus.of(OutputFolderError(.occupied, "held")) == 64)
        #expect(ExitStatus.of(TrainingError("diverged")) == 1)
        #expect(ExitStatus.of(RunInterrupted(signal: SIGINT, step: 3, message: "")) == 130)
        #expect(ExitStatus.of(RunInterrupted(signal: SIGTERM, step: 3, message: "")) == 143)
        #expect(resumeDirectory("runs/a/") == "runs/a")
        // A stop without a checkpoint says so, and why.
        #expect(stopMessage(signal: SIGTERM, step: 5, total: 9, config: tinyConfig(out: nil), ranks: 2, command: nil)
                == "dtrain: stopped by SIGTERM after step 5 of 9; no checkpoint was written (no --out), so the run "
                + "cannot be continued")
        var off = tinyConfig(out: "runs/my run")
        off.checkpoint = false
        #expect(stopMessage(signal: SIGINT, step: 5, total: 9, config: off, ranks: 1, command: nil)
                .hasSuffix("(--no-checkpoint), so the run cannot be continued"))
        #expect(stopMessage(signal: SIGINT, step: 5, total: 9, config: tinyConfig(out: "runs/my run"), ranks: 4,
                            command: nil).hasSuffix("Continue with:\n  mpirun -n 4 dtrain train --resume 'runs/my run'"))
        #expect(ExitStatus.of(CheckpointError(.unwritable, file: "c", "no room")) == 74)
        // A folder where a data file should be is not reported as missing.
        let data = freshFolder("data")
        try FileManager.default.createDirectory(atPath: data + "/train-images-idx3-ubyte", withIntermediateDirectories: true)
        do {
            _ = try loadDataset(name: "fashion-mnist", directory: data, split: .train)
            Issue.record("a folder was read as a data file")
        } catch let e as DataError {
            #expect(e.description.contains("train-images-idx3-ubyte: is a folder, not a data file"), "\(e)")
        }
        try? FileManager.default.removeItem(atPath: data)
    }

    @Test func studyGridValuesAreCheckedBeforeMPIStarts() throws {
        do {
            _ = try StudyCommand.parse(["--grid", "lambda=0.5,2 seed=0,1", "--out", "/tmp/x", "--dataset", "synthetic"])
            Issue.record("lambda=2 accepted")
        } catch {
            let text = StudyCommand.message(for: error)
            #expect(text.contains("lambda=2 seed=0: --lambda must be in [0, 1], got 2.0"), "\(text)")
            #expect(StudyCommand.exitCode(for: error).rawValue == 64)
        }
    }
}
