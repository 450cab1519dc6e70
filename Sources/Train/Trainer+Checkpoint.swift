// Saving a trainer's whole state to a safetensors checkpoint and restoring it, so that a resumed run continues
// bit for bit (same rank count) where the saved one stopped. Layout of OUT/checkpoint.safetensors (see also the
// top of Sources/Checkpoint/SafeTensors.swift):
//
//   param/<name>      F32, every parameter, shaped as the layer sees it; <name> is the PyTorch state-dict name
//                     (`encoder.1.weight` (O, I), `encoder.0.weight` (O, C, 3, 3), `head.bias` (K), …), so
//                     `{k[6:]: v for k, v in load_file(f).items() if k.startswith("param/")}` is a state dict;
//   momentum/<name>   F32, SGD's momentum buffer;             or, for AdamW,
//   adam.m/<name>, adam.v/<name>   F32, the first and second moments;
//   step              I64 [1], the optimiser's step counter (AdamW's t);
//   __metadata__      format, format_version, config (TrainConfig JSON), step (steps done), epoch (epochs done),
//                     seed, optimizer, ranks (informative), train_images, total_steps, metrics_bytes and the CRC.
//
// The random generator is counter-based: every draw is a function of (seed, purpose, epoch, image, view), so
// (seed, step) is its whole state and both are recorded. The epoch's permutation is recomputed from (seed, epoch).
// Everything here allocates and copies: it runs between steps, never inside one.
import Checkpoint
import Collective
import Foundation
import Model
import Tensor

/// Metadata keys of a training checkpoint beyond `CheckpointKey`.
public enum TrainCheckpointKey {
    /// "sgd" or "adamw": which optimiser tensors the file holds.
    public static let optimizer = "optimizer"
    /// Ranks of the run that wrote the file (informative: a resume may use another count).
    public static let ranks = "ranks"
    /// Training images of the run (the permutation depends on it).
    public static let trainImages = "train_images"
    /// The step the writing run would have ended at.
    public static let totalSteps = "total_steps"
    /// Bytes of OUT/metrics.jsonl when the checkpoint was written: a resume keeps exactly that prefix.
    public static let metricsBytes = "metrics_bytes"
    /// How to rebuild the random state: "philox4x32-10 (seed, step)".
    public static let rng = "rng"
}

/// The file name of a run's checkpoint inside its output folder.
public let checkpointFileName = "checkpoint.safetensors"

/// The checkpoint path of the run folder `directory`.
public func checkpointPath(directory: String) -> String { directory + "/" + checkpointFileName }

/// The TrainConfig recorded in the checkpoint of run folder `directory` (used as the defaults of a resumed run).
/// Throws `CheckpointError` for a missing or corrupt file, `ConfigError` for an unreadable config.
public func checkpointConfig(directory: String) throws -> TrainConfig {
    try savedConfig(of: SafeTensors.read(path: checkpointPath(directory: directory)))
}

/// The config JSON of a checkpoint, after checking that it is a dtrain checkpoint of a known version.
func savedConfig(of checkpoint: SafeTensors) throws -> TrainConfig {
    let format = try checkpoint.requiredMetadata(CheckpointKey.format)
    let version = try checkpoint.requiredMetadata(CheckpointKey.formatVersion)
    guard format == "dtrain-checkpoint", version == "1" else {
        throw CheckpointError(.badEntry, file: checkpoint.file,
                              "format \"\(format)\" version \"\(version)\" is not a dtrain-checkpoint of version 1")
    }
    let json = try checkpoint.requiredMetadata(CheckpointKey.config)
    do {
        return try JSONDecoder().decode(TrainConfig.self, from: Foundation.Data(json.utf8))
    } catch {
        throw CheckpointError(.badEntry, file: checkpoint.file,
                              "metadata config is not a valid dtrain config: \(error)")
    }
}

extension TrainConfig {
    /// The settings that shape the training trajectory and so must equal the checkpoint's to resume it, as
    /// (flag name, value): the `.trajectory` keys of `ConfigKey.all`. Run length, evaluation and runtime may differ.
    var trajectorySettings: [(name: String, value: String)] {
        ConfigKey.all.filter { $0.category == .trajectory }.map { ($0.name, $0.usedText(in: self) ?? $0.unsetText) }
    }

    /// "--batch-size: checkpoint 26, this run 32" for every trajectory setting that differs from `saved`.
    func resumeMismatches(with saved: TrainConfig) -> [String] {
        zip(saved.trajectorySettings, trajectorySettings).compactMap { s, c in
            s.value == c.value ? nil : "--\(s.name): checkpoint \(s.value), this run \(c.value)"
        }
    }
}

extension Trainer {
    /// Every parameter slice with its PyTorch shape, in arena layout order (from the network's registry).
    var parameterShapes: [(slice: Slice, shape: [Int])] {
        network.registry.parameters.map { ($0.slice, $0.shape) }
    }

    /// The optimiser's name and its state arenas with their tensor-name prefixes.
    var optimiserState: (name: String, buffers: [(prefix: String, arena: Arena)]) {
        switch optimiser {
        case .sgd(let o): return ("sgd", [("momentum/", o.momentumBuffer)])
        case .adamw(let o): return ("adamw", [("adam.m/", o.firstMoment), ("adam.v/", o.secondMoment)])
        }
    }

    /// The optimiser's step counter.
    var optimiserStepCount: Int {
        get {
            switch optimiser {
            case .sgd(let o): return o.stepCount
            case .adamw(let o): return o.stepCount
            }
        }
        set {
            switch optimiser {
            case .sgd(let o): o.stepCount = newValue
            case .adamw(let o): o.stepCount = newValue
            }
        }
    }

    /// The whole training state after `step` steps as a checkpoint (allocates: call between steps).
    /// `metricsBytes` is the length of metrics.jsonl at this point, kept by a resume.
    public func checkpoint(metricsBytes: Int) throws -> SafeTensors {
        let (name, buffers) = optimiserState
        var file = SafeTensors(metadata: [
            CheckpointKey.format: "dtrain-checkpoint", CheckpointKey.formatVersion: "1",
            CheckpointKey.config: try config.json(), CheckpointKey.step: "\(step)",
            CheckpointKey.epoch: "\(step / stepsPerEpoch)", CheckpointKey.seed: "\(config.seed)",
            TrainCheckpointKey.optimizer: name, TrainCheckpointKey.ranks: "\(comm.size)",
            TrainCheckpointKey.trainImages: "\(train.count)", TrainCheckpointKey.totalSteps: "\(totalSteps)",
            TrainCheckpointKey.metricsBytes: "\(metricsBytes)",
            TrainCheckpointKey.rng: "philox4x32-10, counter-based: the state is (seed, step)",
        ])
        for (slice, shape) in parameterShapes {
            file.add("param/" + slice.name, arena: network.params, slice: slice, shape: shape)
        }
        for (prefix, arena) in buffers {
            for (slice, shape) in parameterShapes {
                file.add(prefix + slice.name, arena: arena, slice: slice, shape: shape)
            }
        }
        for entry in network.registry.buffers {
            file.add("buffer/" + entry.name, arena: network.buffers, slice: entry.slice, shape: entry.shape)
        }
        for (i, name) in network.registry.counters.enumerated() {
            file.add("counter/" + name, [network.counters[i]], shape: [])
        }
        file.add("step", [Int64(optimiserStepCount)], shape: [1])
        return file
    }

    /// Restores parameters, optimiser state and the step counter from `checkpoint`, after checking that it was
    /// written by a run with the same trajectory settings (`TrainConfig.trajectorySettings`), the same training
    /// set size and a compatible layout, and that the run is not already over. Every rank reads the file itself;
    /// the ranks then check they read the same one (by its CRC). Throws `TrainingError` or `CheckpointError`.
    public func restore(from checkpoint: SafeTensors) throws {
        let file = checkpoint.file
        let saved = try savedConfig(of: checkpoint)
        let mismatches = config.resumeMismatches(with: saved)
        guard mismatches.isEmpty else {
            throw TrainingError("cannot resume from \(file): settings differ from the checkpoint's ("
                                + mismatches.joined(separator: "; ") + "); a resumed run must keep them "
                                + "(only the run length, evaluation and logging may change)", usage: true)
        }
        func integer(_ key: String) throws -> Int {
            let text = try checkpoint.requiredMetadata(key)
            guard let value = Int(text), value >= 0 else {
                throw CheckpointError(.badEntry, file: file, "metadata \(key) is \"\(text)\", not a count")
            }
            return value
        }
        let images = try integer(TrainCheckpointKey.trainImages)
        guard images == train.count else {
            throw TrainingError("cannot resume from \(file): it was trained on \(images) images, this run has "
                                + "\(train.count) (check --data-dir and --train-limit)", usage: true)
        }
        let savedStep = try integer(CheckpointKey.step)
        guard savedStep < totalSteps else {
            throw TrainingError("cannot resume from \(file): it is at step \(savedStep) and this run ends at step "
                                + "\(totalSteps); raise --epochs or --max-steps to continue it", usage: true)
        }
        let (name, buffers) = optimiserState
        let savedOptimiser = try checkpoint.requiredMetadata(TrainCheckpointKey.optimizer)
        guard savedOptimiser == name else {
            throw CheckpointError(.layoutMismatch, file: file, "holds \(savedOptimiser) state, this run uses \(name)")
        }
        let counter = try checkpoint.tensor("step", dtype: .i64, shape: [1]).values(as: Int64.self)[0]
        guard counter == Int64(savedStep) else {
            throw CheckpointError(.badEntry, file: file, "optimiser step \(counter) differs from metadata step "
                                      + "\(savedStep)")
        }
        // Check every tensor before changing anything, so a failed restore leaves the fresh initialisation.
        let shapes = parameterShapes
        for prefix in ["param/"] + buffers.map(\.prefix) {
            for (slice, shape) in shapes { _ = try checkpoint.tensor(prefix + slice.name, dtype: .f32, shape: shape) }
        }
        let registry = network.registry
        for entry in registry.buffers {
            _ = try checkpoint.tensor("buffer/" + entry.name, dtype: .f32, shape: entry.shape)
        }
        var counterValues: [Int64] = []
        for name in registry.counters {
            counterValues.append(try checkpoint.tensor("counter/" + name, dtype: .i64, shape: []).values(as: Int64.self)[0])
        }
        for (slice, shape) in shapes {
            try checkpoint.load("param/" + slice.name, shape: shape, into: network.params, slice: slice)
        }
        for (prefix, arena) in buffers {
            for (slice, shape) in shapes {
                try checkpoint.load(prefix + slice.name, shape: shape, into: arena, slice: slice)
            }
        }
        for entry in registry.buffers {
            try checkpoint.load("buffer/" + entry.name, shape: entry.shape, into: network.buffers, slice: entry.slice)
        }
        for (i, value) in counterValues.enumerated() { network.counters[i] = value }
        optimiserStepCount = savedStep
        step = savedStep

        // A cluster without a shared folder could hand ranks different files: they must agree.
        let crc = checkpoint.recordedChecksum ?? 0
        let crcs = try comm.allGather(value: Int32(bitPattern: crc))
        guard Set(crcs).count == 1 else {
            let list = crcs.map { String(UInt32(bitPattern: $0), radix: 16) }.joined(separator: ", ")
            throw TrainingError("ranks read different checkpoints from \(file) (crc32 per rank: \(list))")
        }
    }
}
