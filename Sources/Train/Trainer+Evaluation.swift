// Training's own evaluation: the protocols of the Evaluation module (head, k-NN, L-BFGS linear probe) applied to
// the trainer's network on its train and test splits. All ranks cooperate (see `SplitEvaluator`).
import Collective
import Evaluation

extension Trainer {
    /// An evaluator of this trainer's network over its splits (no optimiser or sampler involved).
    func evaluator() -> SplitEvaluator<C> {
        SplitEvaluator(embedder: Embedder(network: network, comm: comm, chunk: Trainer.evalChunk,
                                          progress: evaluationProgress),
                       train: train, test: test)
    }

    /// Test accuracy of the trained head, identical on every rank.
    public func headAccuracy() throws -> Double {
        let e = evaluator()
        return accuracy(predictions: try e.headPredictions(), labels: e.testLabels)
    }

    /// Test accuracy of every mode in `modes`, by `EvalMode.rawValue`; identical on every rank. The training-set
    /// embeddings and this rank's test embeddings are computed once and shared by k-NN and the linear probe.
    public func evaluate(_ modes: [EvalMode]) throws -> [String: Double] {
        let e = evaluator()
        let labels = e.testLabels
        var out = [String: Double]()
        for mode in modes where out[mode.rawValue] == nil {
            let predictions: [Int32]
            switch mode {
            case .head: predictions = try e.headPredictions()
            case .knn: predictions = try e.knnPredictions(k: config.knnK)
            case .linearProbe: predictions = try e.probePredictions()
            }
            out[mode.rawValue] = accuracy(predictions: predictions, labels: labels)
        }
        return out
    }
}
