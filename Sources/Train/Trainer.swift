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
import Collective
import Data
import Foundation
import Loss
import Model
import Tensor

/// A run that cannot continue: the message says why and at which step.
public struct TrainingError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
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
    let contrastive: ContrastiveLoss?
    let ceWeight: Float, contrastiveWeight: Float

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
    let probs: Arena
    let dLogits: Arena
    let workspace: ContrastiveWorkspace<Float>?
    let reduced: Buffer<Double>

    /// The permutation of the current epoch (made once per epoch, outside the step).
    var permutation: [Int] = []
    var permutationEpoch = -1
    /// Steps completed.
    public private(set) var step = 0

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
        totalSteps = min(config.maxSteps ?? Int.max, config.epochs * epochSteps)
        schedule = LearningRateSchedule(base: config.baseLearningRate,
                                        warmupSteps: min(totalSteps, Int((config.warmupEpochs * Double(epochSteps)).rounded())),
                                        totalSteps: totalSteps)
        filler = BatchFiller(dataset: train, seed: config.seed)

        classes = max(train.classes, test.classes)
        imageSize = train.imageSize
        let shares = (0..<comm.size).map { EpochSampler.share(batch: config.batchSize, ranks: comm.size, rank: $0).count }
        rowLayout = ShardLayout(counts: shares.map { 2 * $0 })
        localRows = rowLayout.counts[comm.rank]
        globalRows = rowLayout.total
        let netConfig = NetworkConfig(kind: config.model == "cnn" ? .cnn : .mlp, inputChannels: train.channels,
                                      height: train.height, width: train.width, classes: classes)
        network = Network(config: netConfig, maxBatch: max(localRows, Trainer.evalChunk), seed: config.seed)
        embedDim = netConfig.embedDim
        embeddingLayout = rowLayout.scaled(by: embedDim)

        switch config.optimizer {
        case "adamw":
            optimiser = .adamw(AdamW(params: network.params, grads: network.grads, weightDecay: config.weightDecay))
        default:
            optimiser = .sgd(SGD(params: network.params, grads: network.grads, momentum: Float(config.momentum),
                                 weightDecay: Float(config.weightDecay)))
        }
        contrastive = kind.contrastiveLoss(beta: config.beta)
        ceWeight = Float(kind.crossEntropyWeight(lambda: config.lambda))
        contrastiveWeight = Float(kind.contrastiveWeight(lambda: config.lambda))

        input = Arena(count: localRows * imageSize)
        localLabels = Buffer<Int32>(count: localRows)
        globalLabels = Buffer<Int32>(count: globalRows)
        gathered = Arena(count: globalRows * embedDim)
        dGathered = Arena(count: globalRows * embedDim)
        dEmbeddings = Arena(count: localRows * embedDim)
        probs = Arena(count: localRows * classes)
        dLogits = Arena(count: localRows * classes)
        workspace = contrastive == nil ? nil : ContrastiveWorkspace<Float>(rows: globalRows, embedDim: embedDim,
                                                                           maxAnchors: localRows)
        reduced = Buffer<Double>(count: 3)
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
        // 1. this rank's views.
        filler.fillTrainingBatch(permutation: permutation, positions: sampler.localPositions(step: k, rank: comm.rank),
                                 epoch: epoch, input: input.storage, labels: localLabels.storage)
        let lossValues = try forwardAndBackward()
        // 7. one all-reduce of the whole gradient arena.
        try comm.allReduceSum(network.grads.storage)
        if config.debug { try checkFinite() }
        let gradNorm = Double(Float.dot(count: network.grads.count, x: network.grads.base, y: network.grads.base))
            .squareRoot()
        // 8. optimiser.
        let lr = schedule.rate(at: step)
        let result = StepResult(loss: lossValues.0 + lossValues.1, ce: lossValues.0, contrastive: lossValues.1,
                                gradNorm: gradNorm, lr: Double(lr))
        guard result.loss.isFinite, gradNorm.isFinite else {
            throw TrainingError("non-finite loss at step \(step + 1) (loss \(result.loss), gradient norm \(gradNorm)); "
                                + "try a smaller --lr")
        }
        optimiser.step(lr: lr)
        step += 1
        return result
    }

    /// Steps 2–6 for the views already in `input`: leaves this rank's parameter gradients (not yet all-reduced) in
    /// the gradient arena and returns the global (weighted CE, weighted contrastive) loss.
    func forwardAndBackward() throws -> (Double, Double) {
        let D = embedDim
        // 2. forward.
        network.forward(input: input.base, batch: localRows)
        // 3. gather embeddings and labels in rank order.
        try comm.allGather(send: UnsafeBufferPointer(start: network.embeddings, count: localRows * D),
                           into: gathered.storage, layout: embeddingLayout)
        try comm.allGather(send: UnsafeBufferPointer(localLabels.storage), into: globalLabels.storage, layout: rowLayout)
        // 4. losses of this rank's anchors, each divided by the global row count.
        var ce = 0.0, con = 0.0
        let logits = UnsafeBufferPointer(start: network.logits, count: localRows * classes)
        if ceWeight > 0 {
            ce = crossEntropy(logits: logits, labels: UnsafeBufferPointer(localLabels.storage), classes: classes,
                              globalCount: globalRows, probs: probs.storage)
            crossEntropyBackward(probs: UnsafeBufferPointer(probs.storage), labels: UnsafeBufferPointer(localLabels.storage),
                                 classes: classes, globalCount: globalRows, scale: ceWeight, dLogits: dLogits.storage)
        } else {
            dLogits.zero()
        }
        if let contrastive, let workspace, contrastiveWeight > 0 {
            con = contrastiveLoss(contrastive, embeddings: UnsafeBufferPointer(gathered.storage),
                                  labels: UnsafeBufferPointer(globalLabels.storage),
                                  anchorRows: rowLayout.range(of: comm.rank), globalCount: globalRows,
                                  tau: Float(config.tau), scale: contrastiveWeight, workspace: workspace,
                                  dEmbeddings: dGathered.storage)
            // 5. the backward of the all-gather: sum every rank's gradient of the gathered matrix, keep own rows.
            try comm.reduceScatterSum(send: UnsafeBufferPointer(dGathered.storage), into: dEmbeddings.storage,
                                      layout: embeddingLayout)
        } else {
            dEmbeddings.zero()
        }
        // 6. backward into the (zeroed) gradient arena.
        network.zeroGradients()
        network.backward(dEmbeddings: dEmbeddings.base, dLogits: dLogits.base, batch: localRows, onReady: { _ in })
        reduced[0] = Double(ceWeight) * ce
        reduced[1] = Double(contrastiveWeight) * con
        reduced[2] = 0
        try comm.allReduceSum(reduced.storage)
        return (reduced[0], reduced[1])
    }
}
