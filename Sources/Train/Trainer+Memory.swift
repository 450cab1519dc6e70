// What the trainer holds in memory, by arena: for `dtrain bench` and memory tests (see `ProcessMemory` in FileIO
// for the process's resident size).
import Collective
import Model

extension Trainer {
    /// Bytes of every buffer the trainer holds, by name: the network's (`Network.arenaBytes`: parameters, gradients,
    /// buffers, head, encoder), the optimiser's state, the step's buffers (input views, labels, gathered embeddings
    /// and their gradient, local embedding and logit gradients), the loss's (`LossComputer.arenaBytes`) and, last,
    /// the train and test datasets' images and labels. Fixed after `init`: nothing is allocated per step.
    public var arenaBytes: [(name: String, bytes: Int)] {
        var out = network.arenaBytes
        switch optimiser {
        case .sgd(let o): out.append(("optimiser (SGD momentum)", o.momentumBuffer.byteCount))
        case .adamw(let o): out.append(("optimiser (AdamW moments)", o.firstMoment.byteCount + o.secondMoment.byteCount))
        }
        out += [("step input views", input.byteCount),
                ("step labels", localLabels.byteCount + globalLabels.byteCount),
                ("step gathered embeddings", gathered.byteCount),
                ("step dGathered", dGathered.byteCount),
                ("step dEmbeddings and dLogits", dEmbeddings.byteCount + dLogits.byteCount + reduced.byteCount)]
        if chunkImages != nil {
            out.append(("gradient cache (embeddings, logits, chunk gradients and labels)",
                        cachedEmbeddings.byteCount + cachedLogits.byteCount + chunkDEmbeddings.byteCount
                        + chunkDLogits.byteCount + chunkLabels.byteCount))
        }
        out += lossComputer.arenaBytes
        out.append(("datasets (train + test)", train.images.byteCount + train.labels.byteCount
                    + test.images.byteCount + test.labels.byteCount))
        return out
    }
}
