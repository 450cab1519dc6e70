// Scoring a frozen network on a test split three ways, on every rank alike:
//   head          argmax of the network's head on one un-augmented view;
//   knn           cosine k-nearest neighbours among the training-set embeddings (`knnPredictions`);
//   linear-probe  multinomial logistic regression by L-BFGS on the L2-normalised, standardised training-set
//                 embeddings (`LinearProbe`).
// Each rank embeds its even share of each split; the training-set embeddings are all-gathered (every rank holds
// the full (n, D) matrix, for k-NN and the probe); each rank predicts its test share and the predictions are
// all-gathered, so every rank returns the same full prediction vector. The probe is fitted on every rank from the
// same gathered matrix, and rank 0's parameters are broadcast so that the ranks hold the same bits even on
// heterogeneous nodes. Collectives are issued in the same order on every rank.
import Collective
import Data
import Model

/// Test-set predictions of a frozen network under each protocol, computed lazily and shared between them.
public final class SplitEvaluator<C: Communicator> {
    public let embedder: Embedder<C>
    public let train: Dataset, test: Dataset
    private var trainFeatures: [Float]?
    private var testFeatures: [Float]?
    /// The solver report of the last probe fit (nil before one).
    public private(set) var probeResult: LBFGSResult?

    /// An evaluator of `embedder`'s network with `train` as the reference / probe-fitting split and `test` scored.
    public init(embedder: Embedder<C>, train: Dataset, test: Dataset) {
        self.embedder = embedder
        self.train = train
        self.test = test
    }

    /// Labels of the whole test split (m).
    public var testLabels: [Int32] { Array(UnsafeBufferPointer(test.labels.storage)) }

    private func features() throws -> (train: [Float], test: [Float]) {
        if trainFeatures == nil {
            trainFeatures = try embedder.gatheredEmbeddings(of: train)
            testFeatures = try embedder.embeddings(of: test, range: embedder.share(of: test))
        }
        return (trainFeatures!, testFeatures!)
    }

    /// The head's predictions for every test image, identical on every rank.
    public func headPredictions() throws -> [Int32] {
        try embedder.gathered(embedder.headPredictions(of: test, range: embedder.share(of: test)), of: test)
    }

    /// k-NN predictions (cosine, `k` neighbours, weights exp(sim/0.07)) for every test image.
    public func knnPredictions(k: Int) throws -> [Int32] {
        let (reference, queries) = try features()
        let trainLabels = Array(UnsafeBufferPointer(train.labels.storage))
        let local = reference.withUnsafeBufferPointer { r in trainLabels.withUnsafeBufferPointer { rl in
            queries.withUnsafeBufferPointer { q in
                Evaluation.knnPredictions(reference: r, referenceLabels: rl, queries: q, embedDim: embedder.embedDim,
                                          classes: embedder.classes, k: k, progress: embedder.progress)
            }
        } }
        return try embedder.gathered(local, of: test)
    }

    /// Linear-probe predictions for every test image (the probe fitted on the training split's embeddings).
    public func probePredictions() throws -> [Int32] {
        let (reference, queries) = try features()
        var probe = LinearProbe(features: reference, labels: Array(UnsafeBufferPointer(train.labels.storage)),
                                embedDim: embedder.embedDim, classes: embedder.classes, progress: embedder.progress)
        try probe.model.parameters.withUnsafeMutableBufferPointer { try embedder.comm.broadcast($0, root: 0) }
        probeResult = probe.model.result
        return try embedder.gathered(probe.predict(queries), of: test)
    }
}

/// Fraction of `predictions` equal to `labels`.
public func accuracy(predictions: [Int32], labels: [Int32]) -> Double {
    precondition(predictions.count == labels.count, "accuracy: \(predictions.count) vs \(labels.count)")
    return Double(zip(predictions, labels).filter { $0 == $1 }.count) / Double(labels.count)
}
