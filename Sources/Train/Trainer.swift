// The distributed training loop. One step, on every rank (DESIGN.md):
//   1. fill this rank's share of the global batch (two augmented views per image)  → input (2b, C, H, W)
//   2. forward                                                                      → embeddings (2b, D), logits
//   3. all-gather embeddings and labels, in rank order                              → (2B, D), (2B)
//   4. loss of this rank's anchors against the gathered matrix, divided by 2B       → dGathered (2B, D), dLogits
//   5. reduce-scatter dGathered with SUM                                            → dEmbeddings (2b, D)
//   6. backward                                                                     → gradient arena
//   7. all-reduce the gradient arena with SUM (the loss is already divided by the global count)
//   8. optimiser step with the scheduled learning rate
// Nothing in steps 1–8 allocates: every buffer below is made once in `init`.
//
// Gradient caching (`--chunk-size K`, Gao et al. 2021): steps 1–2 run chunk by chunk (K images, 2K views) without
// keeping activations, caching only embeddings and logits; 3–5 run on the cache; then each chunk is filled again
// (the counter RNG gives the same views), run forward again and backward with its rows of ∂loss/∂embeddings and
// ∂loss/∂logits, accumulating the gradient arena; the last chunk's backward overlaps the all-reduce. The first
// pass runs the chunks last to first, so the first chunk's activations (and input) are still in place when the
// second pass starts with it: it goes straight to backward, and the extra forward covers the other chunks only.
// The gradient is the unchunked step's (every layer is per-sample: BatchNorm is refused), at the memory of one
// chunk.
import Checkpoint
import Collective
import Data
import Foundation
import Loss
import Model
import Tensor

/// A run that cannot continue: the message says why and at which step.
public struct TrainingError: Error, CustomStringConvertible {
    public let message: String
    /// A mistake in how the run was asked for (a resume with other settings), not a failure while running.
    public let isUsage: Bool
    public init(_ message: String, usage: Bool = false) { self.message = message; self.isUsage = usage }
    public var description: String { message }
}

/// The scalar results of one step (global: identical on every rank).
public struct StepResult: Sendable {
    public var loss: Double
    public var ce: Double
    public var contrastive: Double
    public var gradNorm: Double
    public var lr: Double
}

/// The optimiser a run uses.
enum Optimiser {
    case sgd(SGD)
    case adamw(AdamW)
    func step(lr: Float) {
        switch self {
        case .sgd(let o): o.step(lr: lr)
        case .adamw(let o): o.step(lr: lr)
        }
    }
}

/// Trains one network on one communicator. Every rank builds the same trainer from the same config.
public final class Trainer<C: Communicator> {
    public let config: TrainConfig
    public let comm: C
    public let train: Dataset
    public let test: Dataset
    public let kind: LossKind
    public let network: Network
    public let sampler: EpochSampler
    public let schedule: LearningRateSchedule
    public let totalSteps: Int
    let filler: BatchFiller
    let optimiser: Optimiser
    /// The weights of the CE and contrastive terms for this loss kind and λ.
    let ceWeight: Double, contrastiveWeight: Double

    // Shapes.
    let embedDim: Int, classes: Int, imageSize: Int
    /// Rows (views) per rank and the same in embedding elements.
    let rowLayout: ShardLayout, embeddingLayout: ShardLayout
    let localRows: Int, globalRows: Int

    // Buffers of the step.
    let input: Arena
    let localLabels: Buffer<Int32>
    let globalLabels: Buffer<Int32>
    let gathered: Arena
    let dGathered: Arena
    let dEmbeddings: Arena
    let dLogits: Arena
    let lossComputer: LossComputer<Float>
    /// The (weighted CE, weighted contrastive) loss of this rank and its stop requests (SIGINT seen, SIGTERM seen:
    /// 0 or 1), summed over ranks in place: the stop request rides on the step's loss all-reduce.
    let reduced: Buffer<Double>
    /// The signal some rank received by the last step's all-reduce (SIGINT when any rank saw one, else SIGTERM,
    /// else 0): identical on every rank, so all stop after the same step.
    public internal(set) var stopRequest: Int32 = 0
    /// A signal this rank reports as received (fault injection for tests; 0: only real signals count).
    var injectedSignal: Int32 = 0
    /// Called as evaluations progress (every embedding chunk, k-NN block and probe objective evaluation): the run
    /// loop's watchdog listens here (nil: nobody).
    var evaluationProgress: (() -> Void)?

    /// Images of this rank's batch per chunk of the gradient-cached step (nil: the whole local batch in one pass).
    public let chunkImages: Int?
    /// Images in this rank's share of the batch.
    let localImages: Int
    /// Gradient caching only: the local batch's embeddings (localRows, D) and logits (localRows, K) from the first
    /// pass, one chunk's rows of ∂loss/∂embeddings and ∂loss/∂logits, and one chunk's labels.
    let cachedEmbeddings: Arena, cachedLogits: Arena, chunkDEmbeddings: Arena, chunkDLogits: Arena
    let chunkLabels: Buffer<Int32>
    /// Where this step's images are: positions in the permutation and the epoch (for the chunks' refills).
    var batchPositions: Range<Int> = 0..<0
    var batchEpoch = 0

    /// The permutation of the current epoch (made once per epoch, outside the step).
    var permutation: [Int] = []
    var permutationEpoch = -1
    /// What `--init` loaded (nil without it).
    public private(set) var initReport: WeightLoadReport?
    /// Steps completed.
    public internal(set) var step = 0
    /// Seconds spent in each phase since the last `resetTimes()`.
    public var times = PhaseTimes()
    /// Outstanding bucket all-reduces of the current step (fixed capacity: no allocation in the step).
    var pending = [CollectiveRequest](repeating: .completed, count: 64)
    var pendingCount = 0
    var bucketStart = 0

    /// Builds the model, optimiser and every buffer. Throws on configurations the data makes impossible
    /// (batch larger than the dataset or smaller than the rank count).
    public init(config: TrainConfig, comm: C, train: Dataset, test: Dataset) throws {
        let problems = config.problems()
        guard problems.isEmpty else { throw TrainingError(problems.joined(separator: "; ")) }
        guard let kind = LossKind(rawValue: config.loss) else {
            throw TrainingError("unknown loss \(config.loss) (one of \(LossKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard train.channels == test.channels, train.height == test.height, train.width == test.width else {
            throw TrainingError("train and test images differ in shape")
        }
        self.config = config
        self.comm = comm
        self.train = train
        self.test = test
        self.kind = kind
        sampler = try EpochSampler(count: train.count, globalBatch: config.batchSize, ranks: comm.size, seed: config.seed)
        let epochSteps = sampler.stepsPerEpoch
        let warmupSteps: Int
        if let steps = config.steps {
            // A fixed number of steps: the warm-up keeps its share of the run (warmup-epochs / epochs).
            totalSteps = steps
            warmupSteps = Int((Double(steps) * config.warmupEpochs / Double(config.epochs)).rounded())
        } else {
            totalSteps = min(config.maxSteps ?? Int.max, config.epochs * epochSteps)
            warmupSteps = Int((config.warmupEpochs * Double(epochSteps)).rounded())
        }
        schedule = LearningRateSchedule(base: config.baseLearningRate, warmupSteps: min(totalSteps, warmupSteps),
                                        totalSteps: totalSteps)
        filler = BatchFiller(dataset: train, seed: config.seed)

        classes = max(train.classes, test.classes)
        imageSize = train.imageSize
        let shares = (0..<comm.size).map { EpochSampler.share(batch: config.batchSize, ranks: comm.size, rank: $0).count }
        rowLayout = ShardLayout(counts: shares.map { 2 * $0 })
        localRows = rowLayout.counts[comm.rank]
        globalRows = rowLayout.total
        guard let encoder = EncoderKind(rawValue: config.model) else {
            throw TrainingError("unknown model \(config.model)")
        }
        if let spec = config.vitSpec {
            if let problem = spec.problem(height: train.height, width: train.width) { throw TrainingError(problem) }
        } else if config.setsViTShape {
            throw TrainingError("--patch-size, --embed-dim, --depth, --heads and --mlp-ratio shape the ViT models, "
                                + "not --model \(config.model)")
        }
        let netConfig = NetworkConfig(kind: encoder, inputChannels: train.channels, height: train.height,
                                      width: train.width, classes: classes, stem: config.stem,
                                      norm: config.norm, groups: config.normGroups, vit: config.vitSpec)
        let localImages = shares[comm.rank]
        self.localImages = localImages
        if let k = config.chunkSize, let largest = shares.max(), largest > k {
            if case .resnet(_, _, let norm, _) = netConfig.encoder, norm == .batch {
                throw TrainingError("--chunk-size \(k) splits a rank's batch of \(largest) images into chunks, but "
                                    + "BatchNorm's statistics depend on the chunk, so the gradient would not be the "
                                    + "whole batch's; use --norm group (per-sample statistics), or a --chunk-size of "
                                    + "at least \(largest)", usage: true)
            }
        }
        let chunkImages = config.chunkSize.flatMap { $0 < localImages ? $0 : nil }
        self.chunkImages = chunkImages
        let rowsPerPass = chunkImages.map { 2 * $0 } ?? localRows
        // The sequential encoders are small: room for the evaluation chunk too. A ResNet's or ViT's activations are
        // large, so it holds one pass's views and evaluation runs in chunks of that size.
        let maxBatch = encoder.isSequential ? max(rowsPerPass, Trainer.evalChunk) : rowsPerPass
        network = Network(config: netConfig, maxBatch: maxBatch, seed: config.seed)
        if let path = config.initWeights {
            // Every rank reads the file itself and applies the same deterministic load.
            let file: SafeTensors
            do { file = try SafeTensors.read(path: path, requireChecksum: false) } catch {
                throw TrainingError("--init \(path): \(error)")
            }
            do { initReport = try network.load(weights: file, includeHead: config.initHead) } catch {
                throw TrainingError("--init \(path): \(error)")
            }
        }
        if comm.size > 1 {
            // BatchNorm statistics over the global batch, so the step does not depend on the rank count.
            network.reducer = StatisticsReducer { [comm] values in try comm.allReduceSum(values) }
        }
        embedDim = netConfig.embedDim
        embeddingLayout = rowLayout.scaled(by: embedDim)

        switch config.optimizer {
        case "adamw":
            optimiser = .adamw(AdamW(params: network.params, grads: network.grads, weightDecay: config.weightDecay,
                                     noDecay: network.registry.noDecayRanges))
        default:
            optimiser = .sgd(SGD(params: network.params, grads: network.grads, momentum: Float(config.momentum),
                                 weightDecay: Float(config.weightDecay), noDecay: network.registry.noDecayRanges))
        }
        ceWeight = kind.crossEntropyWeight(lambda: config.lambda)
        contrastiveWeight = kind.contrastiveWeight(lambda: config.lambda)

        input = Arena(count: rowsPerPass * imageSize)
        let cached = chunkImages == nil ? 0 : localRows
        cachedEmbeddings = Arena(count: cached * embedDim)
        cachedLogits = Arena(count: cached * classes)
        chunkDEmbeddings = Arena(count: chunkImages == nil ? 0 : rowsPerPass * embedDim)
        chunkDLogits = Arena(count: chunkImages == nil ? 0 : rowsPerPass * classes)
        chunkLabels = Buffer<Int32>(count: chunkImages == nil ? 0 : rowsPerPass)
        localLabels = Buffer<Int32>(count: localRows)
        globalLabels = Buffer<Int32>(count: globalRows)
        gathered = Arena(count: globalRows * embedDim)
        dGathered = Arena(count: globalRows * embedDim)
        dEmbeddings = Arena(count: localRows * embedDim)
        dLogits = Arena(count: localRows * classes)
        // Unchunked: one similarity block of all local anchors. Chunked (large batches): blocks of 256 anchors, so
        // the loss's scratch (256 × global rows) stays small too.
        lossComputer = LossComputer<Float>(rows: globalRows, embedDim: embedDim, localRows: localRows,
                                           classes: classes, maxAnchors: chunkImages == nil ? localRows : min(localRows, 256))
        reduced = Buffer<Double>(count: 4)
    }

    /// Rows per forward pass when embedding or scoring whole datasets.
    static var evalChunk: Int { 500 }

    /// Steps in one epoch.
    public var stepsPerEpoch: Int { sampler.stepsPerEpoch }

    /// Makes the permutation of `epoch` current (allocates; call between steps).
    func prepareEpoch(_ epoch: Int) {
        if permutationEpoch != epoch {
            permutation = sampler.permutation(epoch: epoch)
            permutationEpoch = epoch
        }
    }

    // MARK: - The step

    /// Runs training step `step` (global step index) and returns its global loss values and gradient norm.
    @discardableResult
    public func runStep() throws -> StepResult {
        let epoch = step / stepsPerEpoch, k = step % stepsPerEpoch
        prepareEpoch(epoch)
        var t = monotonicSeconds()
        // 1. this rank's views (chunk by chunk inside forwardAndBackward when gradient caching).
        prepareBatch(step: k, epoch: epoch)
        times.data += lap(&t)
        let lossValues = try forwardAndBackward(reduceGradients: true, clock: &t)
        if config.debug { try checkFinite() }
        let gradNorm = Double(Float.dot(count: network.grads.count, x: network.grads.base, y: network.grads.base))
            .squareRoot()
        // 8. optimiser.
        let lr = schedule.rate(at: step)
        let result = StepResult(loss: lossValues.0 + lossValues.1, ce: lossValues.0, contrastive: lossValues.1,
                                gradNorm: gradNorm, lr: Double(lr))
        guard result.loss.isFinite, gradNorm.isFinite else {
            // Name what was non-finite: a finite loss with an infinite gradient norm is not a "non-finite loss".
            let what = result.loss.isFinite ? "non-finite gradient norm" : "non-finite loss"
            throw TrainingError("\(what) at step \(step + 1) (loss \(result.loss), gradient norm \(gradNorm)); "
                                + "try a smaller --lr")
        }
        optimiser.step(lr: lr)
        times.optimiser += lap(&t)
        times.steps += 1
        step += 1
        return result
    }

    /// Seconds since `t`, and moves `t` to now.
    @inline(__always)
    func lap(_ t: inout Double) -> Double {
        let now = monotonicSeconds()
        defer { t = now }
        return now - t
    }

    /// Makes the images of step `k` of `epoch` (this rank's positions) the current batch: fills `input` and the
    /// labels now, or, when gradient caching, only records where they are (each chunk is filled when it runs).
    func prepareBatch(step k: Int, epoch: Int) {
        batchPositions = sampler.localPositions(step: k, rank: comm.rank)
        batchEpoch = epoch
        if chunkImages == nil {
            filler.fillTrainingBatch(permutation: permutation, positions: batchPositions, epoch: epoch,
                                     input: input.storage, labels: localLabels.storage)
        }
    }

    /// This rank's embeddings (localRows, D) and logits (localRows, K) of the current step's first forward.
    var localEmbeddings: UnsafeMutablePointer<Float> { chunkImages == nil ? network.embeddings : cachedEmbeddings.base }
    var localLogits: UnsafeMutablePointer<Float> { chunkImages == nil ? network.logits : cachedLogits.base }

    /// Steps 2–6 (and 7 when `reduceGradients`) for the batch of `prepareBatch`: leaves the gradient arena holding
    /// this rank's parameter gradients (summed over ranks when `reduceGradients`) and returns the global
    /// (weighted CE, weighted contrastive) loss.
    func forwardAndBackward(reduceGradients: Bool = false) throws -> (Double, Double) {
        var t = monotonicSeconds()
        return try forwardAndBackward(reduceGradients: reduceGradients, clock: &t)
    }

    func forwardAndBackward(reduceGradients: Bool, clock t: inout Double) throws -> (Double, Double) {
        if let k = chunkImages { return try cachedForwardAndBackward(chunk: k, reduceGradients: reduceGradients, clock: &t) }
        // 2. forward.
        try network.forward(input: input.base, batch: localRows)
        times.forward += lap(&t)
        let value = try gatherAndLoss(clock: &t)
        // 6. backward into the (zeroed) gradient arena; 7. all-reduce.
        network.zeroGradients()
        try backward(dEmbeddings: dEmbeddings.base, dLogits: dLogits.base, rows: localRows,
                     reduceGradients: reduceGradients, last: true, clock: &t)
        return try finishStep(value)
    }

    /// Steps 3–5 on this rank's embeddings and logits (`localEmbeddings`, `localLogits`, `localLabels`): leaves
    /// ∂loss/∂(local embeddings) in `dEmbeddings` and ∂loss/∂(local logits) in `dLogits`.
    func gatherAndLoss(clock t: inout Double) throws -> LossValue {
        let D = embedDim
        // 3. gather embeddings and labels in rank order.
        try comm.allGather(send: UnsafeBufferPointer(start: localEmbeddings, count: localRows * D),
                           into: gathered.storage, layout: embeddingLayout)
        try comm.allGather(send: UnsafeBufferPointer(localLabels.storage), into: globalLabels.storage, layout: rowLayout)
        times.allGather += lap(&t)
        // 4. losses of this rank's anchors, each divided by the global row count (a term of weight 0 is skipped).
        let value = lossComputer.compute(
            kind: kind, gatheredEmbeddings: UnsafeBufferPointer(gathered.storage),
            labels: UnsafeBufferPointer(globalLabels.storage), anchorRows: rowLayout.range(of: comm.rank),
            localLogits: UnsafeBufferPointer(start: localLogits, count: localRows * classes),
            localLabels: UnsafeBufferPointer(localLabels.storage), globalCount: globalRows, tau: Float(config.tau),
            lambda: config.lambda, beta: Float(config.beta), dEmbeddings: dGathered.storage,
            dLogits: dLogits.storage)
        times.loss += lap(&t)
        if contrastiveWeight > 0 {
            // 5. the backward of the all-gather: sum every rank's gradient of the gathered matrix, keep own rows.
            try comm.reduceScatterSum(send: UnsafeBufferPointer(dGathered.storage), into: dEmbeddings.storage,
                                      layout: embeddingLayout)
            times.reduceScatter += lap(&t)
        } else {
            dEmbeddings.zero()
        }
        return value
    }

    /// Step 6 for the `rows` views of the last forward, accumulating into the gradient arena; with `last`, step 7
    /// too when `reduceGradients`: with overlap each finished bucket of the arena is all-reduced (non-blocking) while
    /// backward continues, in the same order on every rank.
    func backward(dEmbeddings dE: UnsafePointer<Float>, dLogits dL: UnsafePointer<Float>, rows: Int,
                  reduceGradients: Bool, last: Bool, clock t: inout Double) throws {
        if last && reduceGradients && config.overlap {
            pendingCount = 0
            bucketStart = 0
            var failure: Error?
            try network.backward(dEmbeddings: dE, dLogits: dL, batch: rows) { ready in
                guard failure == nil else { return }
                do { try gradientsReady(upTo: ready) } catch { failure = error }
            }
            if let failure { throw failure }
            times.backward += lap(&t)
            for i in 0..<pendingCount { try comm.wait(&pending[i]) }
            times.allReduce += lap(&t)
        } else {
            try network.backward(dEmbeddings: dE, dLogits: dL, batch: rows, onReady: { _ in })
            times.backward += lap(&t)
            if last && reduceGradients {
                try comm.allReduceSum(network.grads.storage)
                times.allReduce += lap(&t)
            }
        }
    }

    /// Fills `input` and `chunkLabels` with the views of images [first, first + count) of this rank's batch: rows
    /// [0, count) the first views, [count, 2·count) the second, as `fillTrainingBatch` lays out a whole batch.
    func fillChunk(first: Int, count: Int) {
        let start = batchPositions.lowerBound + first
        filler.fillTrainingBatch(permutation: permutation, positions: start..<(start + count), epoch: batchEpoch,
                                 input: input.storage, labels: chunkLabels.storage)
    }

    /// Fills images [first, first + count) of this rank's batch into `input` (timed as data) and runs them forward.
    func forwardChunk(first: Int, count: Int, clock t: inout Double) throws {
        fillChunk(first: first, count: count)
        times.data += lap(&t)
        try network.forward(input: input.base, batch: 2 * count)
    }

    /// Copies `count` rows of width `width` for each of the two views between a chunk's layout (rows [0, count),
    /// [count, 2·count)) and the local batch's (rows [first, first + count), [b + first, b + first + count)).
    @inline(__always)
    func copyViews<T>(_ chunk: UnsafeMutablePointer<T>, _ local: UnsafeMutablePointer<T>, first: Int, count: Int,
                      width: Int, toLocal: Bool) {
        for view in 0..<2 {
            let c = chunk + view * count * width, l = local + (view * localImages + first) * width
            if toLocal { l.update(from: c, count: count * width) } else { c.update(from: l, count: count * width) }
        }
    }

    /// The gradient-cached steps 2–7 (see the file's comment).
    func cachedForwardAndBackward(chunk k: Int, reduceGradients: Bool, clock t: inout Double) throws -> (Double, Double) {
        let b = localImages, D = embedDim, K = classes
        // 1–2. every chunk forward, the first one last; keep its embeddings, logits and labels.
        for first in stride(from: (b - 1) / k * k, through: 0, by: -k) {  // not .reversed(): that builds an array
            let count = min(k, b - first)
            try forwardChunk(first: first, count: count, clock: &t)
            copyViews(network.embeddings, cachedEmbeddings.base, first: first, count: count, width: D, toLocal: true)
            copyViews(network.logits, cachedLogits.base, first: first, count: count, width: K, toLocal: true)
            copyViews(chunkLabels.base, localLabels.base, first: first, count: count, width: 1, toLocal: true)
            times.forward += lap(&t)
        }
        // 3–5. on the cache.
        let value = try gatherAndLoss(clock: &t)
        // 6–7. every chunk again: forward (except the first, whose activations are those of the first pass's last
        // forward), then backward with its rows of the cached gradient.
        network.zeroGradients()
        for first in stride(from: 0, to: b, by: k) {
            let count = min(k, b - first)
            if first > 0 { try forwardChunk(first: first, count: count, clock: &t) }
            copyViews(chunkDEmbeddings.base, dEmbeddings.base, first: first, count: count, width: D, toLocal: false)
            copyViews(chunkDLogits.base, dLogits.base, first: first, count: count, width: K, toLocal: false)
            times.forward += lap(&t)
            try backward(dEmbeddings: chunkDEmbeddings.base, dLogits: chunkDLogits.base, rows: 2 * count,
                         reduceGradients: reduceGradients, last: first + count == b, clock: &t)
        }
        return try finishStep(value)
    }

    /// The global (weighted CE, weighted contrastive) loss, and the stop request, through one small all-reduce.
    func finishStep(_ value: LossValue) throws -> (Double, Double) {
        reduced[0] = ceWeight * value.crossEntropy
        reduced[1] = contrastiveWeight * value.contrastive
        let signal = StopSignal.received != 0 ? StopSignal.received : injectedSignal
        reduced[2] = signal == SIGINT ? 1 : 0
        reduced[3] = signal != 0 && signal != SIGINT ? 1 : 0
        try comm.allReduceSum(reduced.storage)
        stopRequest = reduced[2] > 0 ? SIGINT : reduced[3] > 0 ? SIGTERM : 0
        return (reduced[0], reduced[1])
    }

    /// Backward has finished gradient elements [0, ready): start the all-reduce of the bucket [bucketStart, ready)
    /// once it is large enough (or complete), and let earlier buckets progress.
    func gradientsReady(upTo ready: Int) throws {
        let total = network.grads.count
        if ready - bucketStart >= config.bucketSize || (ready == total && ready > bucketStart) {
            precondition(pendingCount < pending.count, "more than \(pending.count) gradient buckets")
            let bucket = UnsafeMutableBufferPointer(start: network.grads.base + bucketStart, count: ready - bucketStart)
            pending[pendingCount] = try comm.startAllReduceSum(bucket)
            pendingCount += 1
            bucketStart = ready
        }
        for i in 0..<pendingCount { _ = try comm.test(&pending[i]) }
    }
}

/// Wall-clock seconds per phase of the training step, summed over `steps` steps.
public struct PhaseTimes: Sendable, Codable {
    public var data = 0.0, forward = 0.0, allGather = 0.0, loss = 0.0, reduceScatter = 0.0
    public var backward = 0.0, allReduce = 0.0, optimiser = 0.0
    public var steps = 0
    public init() {}
    /// Every phase with its name, in step order.
    public var phases: [(String, Double)] {
        [("data+augmentation", data), ("forward", forward), ("all-gather", allGather), ("loss", loss),
         ("reduce-scatter", reduceScatter), ("backward", backward), ("all-reduce", allReduce), ("optimiser", optimiser)]
    }
    /// Sum of the phases.
    public var total: Double { phases.reduce(0) { $0 + $1.1 } }
}
