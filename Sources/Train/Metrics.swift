// What a run writes: DIR/config.json, DIR/metrics.jsonl (one object per logged step and per epoch), a progress
// line on stderr, and a summary JSON line last on stdout. Only rank 0 writes.
import FileIO
import Foundation

/// One logged training step.
public struct StepMetrics: Codable, Sendable, Equatable {
    public var step: Int
    public var epoch: Int
    public var loss: Double
    public var ce: Double
    public var contrastive: Double
    public var lr: Double
    public var gradNorm: Double
    public var imagesPerS: Double

    enum CodingKeys: String, CodingKey {
        case step, epoch, loss, ce, contrastive, lr, gradNorm = "grad_norm", imagesPerS = "images_per_s"
    }
}

/// One evaluated epoch: accuracy under each evaluation that was asked for.
public struct EpochMetrics: Codable, Sendable, Equatable {
    public var epoch: Int
    /// The first evaluation's accuracy (the one the summary reports).
    public var testAccuracy: Double
    /// Which evaluation produced `testAccuracy`.
    public var eval: String
    /// Every evaluation's accuracy, by name (head, linear-probe, knn).
    public var accuracies: [String: Double]
    public var seconds: Double
    /// The solver of the linear-probe figure (`LinearProbe.solver`), nil without one.
    public var probeSolver: String? = nil

    enum CodingKeys: String, CodingKey {
        case epoch, testAccuracy = "test_accuracy", eval, accuracies, seconds, probeSolver = "probe_solver"
    }
}

/// The last line a run prints on stdout.
public struct RunSummary: Codable, Sendable, Equatable {
    public var event = "summary"
    public var testAccuracy: Double
    public var eval: String
    public var accuracies: [String: Double]
    public var finalLoss: Double
    public var epochs: Int
    public var steps: Int
    public var ranks: Int
    public var globalBatch: Int
    public var imagesPerS: Double
    public var seconds: Double
    /// The step this run continued from (a resumed run: `imagesPerS` and `seconds` cover only the steps after it);
    /// nil for a run trained from step 0.
    public var resumedAtStep: Int?
    /// The solver of the linear-probe figure (`LinearProbe.solver`), nil without one.
    public var probeSolver: String? = nil

    enum CodingKeys: String, CodingKey {
        case event, testAccuracy = "test_accuracy", eval, accuracies, finalLoss = "final_loss", epochs, steps, ranks
        case globalBatch = "global_batch", imagesPerS = "images_per_s", seconds, resumedAtStep = "resumed_at_step"
        case probeSolver = "probe_solver"
    }

    /// The part of the run's steps trained by this process (1 unless it was resumed).
    public var shareRunNow: Double {
        guard let from = resumedAtStep, steps > 0 else { return 1 }
        return Double(max(steps - from, 0)) / Double(steps)
    }
}

/// Appends JSON lines to a file, flushing each line (a killed run keeps what it logged).
public final class JSONLinesWriter {
    private let handle: FileHandle
    private let encoder: JSONEncoder

    /// Opens (creating or, with `append`, extending) `path`.
    public init(path: String, append: Bool = false) throws {
        if !append || !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw FileIOError(.unwritable, path: path, "cannot create: " + String(cString: strerror(errno)))
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw FileIOError(.unwritable, path: path, "cannot open for writing: " + String(cString: strerror(errno)))
        }
        if append { h.seekToEndOfFile() }
        handle = h
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    }

    /// Bytes in the file so far (where the next line goes).
    public var offset: Int { Int(handle.offsetInFile) }

    /// Writes one value as one line.
    public func write<T: Encodable>(_ value: T) throws {
        var data = try encoder.encode(value)
        data.append(0x0A)
        handle.write(data)
    }

    deinit { try? handle.close() }
}

/// Encodes one value as a single sorted-key JSON line.
public func jsonLine<T: Encodable>(_ value: T) -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return (try? String(decoding: e.encode(value), as: UTF8.self)) ?? "{}"
}

/// "1h02m", "3m05s", "42s".
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
}
