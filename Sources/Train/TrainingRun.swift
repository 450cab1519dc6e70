// A whole training run: epochs of steps, logging (metrics.jsonl, progress line), evaluation after each epoch and
// the summary. Rank 0 writes every file and line; every rank computes the same global values.
import Collective
import Data
import FileIO
import Foundation
import Tensor

/// Where a run's lines go. The command line prints them; tests collect them.
public protocol RunObserver: AnyObject {
    /// A human-readable progress line (rank 0 only).
    func progress(_ line: String)
    /// A logged step (rank 0 only).
    func logged(_ metrics: StepMetrics)
    /// An evaluated epoch (rank 0 only).
    func evaluated(_ metrics: EpochMetrics)
}

/// Observer that ignores everything.
public final class SilentObserver: RunObserver {
    public init() {}
    public func progress(_ line: String) {}
    public func logged(_ metrics: StepMetrics) {}
    public func evaluated(_ metrics: EpochMetrics) {}
}

/// Loads the datasets a config names (every rank reads the files itself).
public func loadDatasets(_ config: TrainConfig) throws -> (train: Dataset, test: Dataset) {
    let train = try loadDataset(name: config.dataset, directory: config.dataDir, split: .train, limit: config.trainLimit)
    let test = try loadDataset(name: config.dataset, directory: config.dataDir, split: .test, limit: config.testLimit)
    return (train, test)
}

/// Trains to the end of `config` and returns the summary. Writes DIR/config.json and DIR/metrics.jsonl on rank 0
/// when `config.out` is set.
///
/// After each epoch but the last, the cheap evaluations (`config.epochEvaluations`: head, or k-NN for a loss
/// without CE) are logged; after the last, every requested evaluation (`config.evaluations`), the first giving
/// `test_accuracy`. Throws `TrainingError` for problems every rank sees alike (bad settings, non-finite loss).
public func runTraining<C: Communicator>(config: TrainConfig, comm: C, train: Dataset, test: Dataset,
                                         observer: RunObserver = SilentObserver()) throws -> RunSummary {
    let evalProblems = config.evaluationProblems()
    guard evalProblems.isEmpty else { throw TrainingError(evalProblems.joined(separator: "; ")) }
    let finalModes = config.evaluations, epochModes = config.epochEvaluations
    let trainer = try Trainer(config: config, comm: comm, train: train, test: test)
    let lead = comm.rank == 0
    var metricsFile: JSONLinesWriter?
    if lead, let out = config.out {
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try writeFileAtomically(Array(try config.json().utf8), to: out + "/config.json")
        metricsFile = try JSONLinesWriter(path: out + "/metrics.jsonl")
    }
    if lead {
        observer.progress("dtrain: \(config.loss) on \(config.dataset) (\(train.count) train / \(test.count) test), "
            + "model \(config.model) (\(trainer.network.parameterCount) parameters), \(comm.size) rank(s), "
            + "global batch \(config.batchSize) images = \(2 * config.batchSize) views, "
            + "\(trainer.totalSteps) steps (\(trainer.stepsPerEpoch)/epoch), lr \(config.baseLearningRate)")
    }

    let start = monotonicSeconds()
    var trainSeconds = 0.0
    var windowStart = start, windowSteps = 0
    var last = StepResult(loss: .nan, ce: .nan, contrastive: .nan, gradNorm: .nan, lr: 0)
    var finalEval = EpochMetrics(epoch: 0, testAccuracy: .nan, eval: finalModes[0].rawValue, accuracies: [:],
                                 seconds: 0)
    let epochs = (trainer.totalSteps + trainer.stepsPerEpoch - 1) / trainer.stepsPerEpoch
    while trainer.step < trainer.totalSteps {
        let t0 = monotonicSeconds()
        last = try trainer.runStep()
        trainSeconds += monotonicSeconds() - t0
        windowSteps += 1
        let step = trainer.step, epoch = (step - 1) / trainer.stepsPerEpoch
        let endOfEpoch = step % trainer.stepsPerEpoch == 0 || step == trainer.totalSteps
        if step % config.logEvery == 0 || step == trainer.totalSteps || step == 1 {
            let now = monotonicSeconds()
            let rate = Double(windowSteps * config.batchSize) / max(now - windowStart, 1e-9)
            windowStart = now; windowSteps = 0
            if lead {
                let m = StepMetrics(step: step, epoch: epoch + 1, loss: last.loss, ce: last.ce,
                                    contrastive: last.contrastive, lr: last.lr, gradNorm: last.gradNorm,
                                    imagesPerS: rate)
                try metricsFile?.write(m)
                observer.logged(m)
                if !config.quiet {
                    let eta = Double(trainer.totalSteps - step) * trainSeconds / Double(step)
                    observer.progress(String(format: "epoch %d/%d step %d/%d (%.1f%%) loss %.4f ce %.4f con %.4f "
                        + "lr %.4g gnorm %.3g | %.0f img/s | ETA %@", epoch + 1, epochs, step, trainer.totalSteps,
                        100 * Double(step) / Double(trainer.totalSteps), last.loss, last.ce, last.contrastive,
                        last.lr, last.gradNorm, rate, formatDuration(eta)))
                }
            }
        }
        if endOfEpoch {
            let e0 = monotonicSeconds()
            let modes = step == trainer.totalSteps ? finalModes : epochModes
            let accuracies = try trainer.evaluate(modes)
            let first = modes[0].rawValue
            finalEval = EpochMetrics(epoch: epoch + 1, testAccuracy: accuracies[first]!, eval: first,
                                     accuracies: accuracies, seconds: monotonicSeconds() - start)
            if lead {
                try metricsFile?.write(finalEval)
                observer.evaluated(finalEval)
                if !config.quiet {
                    let scores = modes.map { String(format: "%.4f (%@)", accuracies[$0.rawValue]!, $0.rawValue) }
                    observer.progress(String(format: "epoch %d/%d: test accuracy %@ [%.1fs]", epoch + 1, epochs,
                                             scores.joined(separator: ", "), monotonicSeconds() - e0))
                }
            }
            windowStart = monotonicSeconds()
        }
    }
    let seconds = monotonicSeconds() - start
    return RunSummary(testAccuracy: finalEval.testAccuracy, eval: finalEval.eval, accuracies: finalEval.accuracies,
                      finalLoss: last.loss, epochs: epochs, steps: trainer.step, ranks: comm.size,
                      globalBatch: config.batchSize,
                      imagesPerS: Double(trainer.step * config.batchSize) / max(trainSeconds, 1e-9), seconds: seconds)
}
