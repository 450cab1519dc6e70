import Tensor

// The trainer's entry point: one call per step computes the blended loss of `LossKind` on this rank's rows and
// writes both gradients. See Contrastive.swift for the distributed convention.

/// Loss values of one call, each already divided by the global batch size.
public struct LossValue: Sendable, Equatable {
    /// crossEntropyWeight·crossEntropy + contrastiveWeight·contrastive: the value whose gradient was written.
    public var total: Double
    /// The unweighted cross-entropy term of the local rows (0, not computed, when its weight is 0 or no rows).
    public var crossEntropy: Double
    /// The unweighted contrastive term of the local anchors (0, not computed, for `ce` or when its weight is 0).
    public var contrastive: Double

    public init(total: Double, crossEntropy: Double, contrastive: Double) {
        self.total = total
        self.crossEntropy = crossEntropy
        self.contrastive = contrastive
    }
}

/// Computes a blended loss and its gradients on preallocated scratch: the workspace for the contrastive term and
/// the softmax cache for cross-entropy. A call allocates nothing.
public final class LossComputer<T: BLASScalar>: @unchecked Sendable {
    /// Scratch of the contrastive term.
    public let workspace: ContrastiveWorkspace<T>
    /// Number of classes K of the head.
    public let classes: Int
    /// Softmax of the local logits, (localRows, classes).
    public let probs: Buffer<T>
    /// Where `clce` puts the average over positives (Eq. 3 as printed: `.inside`).
    public var placement: LogPlacement = .inside
    /// Whether `clce` and the HSCL kinds treat the hard-negative weights as constants in the backward pass.
    public var detachedWeights = false

    /// Scratch for `rows` gathered rows of width `embedDim`, up to `localRows` local rows of logits with `classes`
    /// columns, and similarity blocks of at most `maxAnchors` anchors (default: min(localRows, 1024); the blocks
    /// are further capped at 4M elements, and a single process's symmetric form uses min(maxAnchors, 256)-square
    /// tiles — see ContrastiveWorkspace).
    public init(rows: Int, embedDim: Int, localRows: Int, classes: Int, maxAnchors: Int? = nil) {
        precondition(localRows >= 1 && classes >= 1, "LossComputer: localRows \(localRows), classes \(classes)")
        workspace = ContrastiveWorkspace(rows: rows, embedDim: embedDim,
                                         maxAnchors: maxAnchors ?? min(localRows, 1024))
        self.classes = classes
        probs = Buffer(count: localRows * classes)
    }

    /// Computes `kind` on this rank's rows and overwrites both gradients.
    ///
    /// - gatheredEmbeddings, dEmbeddings: (N, D), the all-gathered batch in rank order and ∂total/∂(that matrix);
    ///   the caller reduce-scatters dEmbeddings with sum. For `ce` both may be empty (dEmbeddings is zeroed).
    /// - labels: the N gathered labels; anchorRows: this rank's rows r0..<r1 (0..<N for a single process).
    /// - localLogits, dLogits: (n, K) for the n = localLabels.count local rows; may be empty for `supcon`/`hscl`,
    ///   whose dLogits is zeroed (CE weight 0). A rank may own no rows (empty anchorRows and local buffers).
    /// - globalCount: N_global, the divisor of every term; tau, lambda, beta: temperature, blend weight,
    ///   hard-negative exponent. lambda is a Double so the weights 1 − λ and λ are formed before rounding to T.
    /// Returns the local terms (each Σ_local l_i / N_global); summed over ranks they give the global loss.
    @_specialize(exported: true, where T == Float)
    public func compute(kind: LossKind, gatheredEmbeddings: UnsafeBufferPointer<T>,
                        labels: UnsafeBufferPointer<Int32>, anchorRows: Range<Int>,
                        localLogits: UnsafeBufferPointer<T>, localLabels: UnsafeBufferPointer<Int32>,
                        globalCount: Int, tau: T, lambda: Double, beta: T,
                        dEmbeddings: UnsafeMutableBufferPointer<T>,
                        dLogits: UnsafeMutableBufferPointer<T>) -> LossValue {
        let ceWeight = kind.crossEntropyWeight(lambda: lambda)
        let conWeight = kind.contrastiveWeight(lambda: lambda)
        var ce = 0.0, con = 0.0

        // A term of weight 0 (λ = 0 or 1, pure kinds) is skipped: its gradient is exactly 0 and costs nothing.
        let n = localLabels.count
        if n > 0 && ceWeight > 0 {
            precondition(localLogits.count > 0, "LossComputer: \(kind.rawValue) needs logits")
            precondition(localLogits.count == n * classes, "LossComputer: localLogits has \(localLogits.count) "
                         + "elements, expected \(n) rows × \(classes) classes")
            precondition(n * classes <= probs.count,
                         "LossComputer: \(n) local rows exceed the capacity \(probs.count / classes)")
            let p = UnsafeMutableBufferPointer(start: probs.base, count: n * classes)
            ce = crossEntropy(logits: localLogits, labels: localLabels, classes: classes, globalCount: globalCount,
                              probs: p)
            crossEntropyBackward(probs: UnsafeBufferPointer(p), labels: localLabels, classes: classes,
                                 globalCount: globalCount, scale: T(ceWeight), dLogits: dLogits)
        } else {
            dLogits.update(repeating: 0)
        }

        if conWeight > 0, let loss = kind.contrastiveLoss(beta: Double(beta), placement: placement,
                                                          detachedWeights: detachedWeights) {
            con = contrastiveLoss(loss, embeddings: gatheredEmbeddings, labels: labels, anchorRows: anchorRows,
                                  globalCount: globalCount, tau: tau, scale: T(conWeight), workspace: workspace,
                                  dEmbeddings: dEmbeddings)
        } else {
            dEmbeddings.update(repeating: 0)
        }
        return LossValue(total: ceWeight * ce + conWeight * con, crossEntropy: ce, contrastive: con)
    }
}

// MARK: - Counts

extension LossComputer {
    /// FLOPs of the products `compute` performs on one rank with `anchors` anchor rows against `rows` gathered rows
    /// of width `embedDim` (2 FLOPs per multiply-add), the one place that counts them: 0 without a contrastive term
    /// (weight 0 for `kind` and `lambda`), else `contrastiveMatrixFlops`: 4·N²·D for the symmetric form (one
    /// process, a pooled loss), 6·anchors·rows·D for the anchor-block form. Cross-entropy, the normalisation and
    /// the per-row passes are elementwise and not counted.
    public static func performedFlops(anchors: Int, rows: Int, embedDim: Int, kind: LossKind,
                                      lambda: Double) -> Double {
        guard kind.contrastiveWeight(lambda: lambda) > 0 else { return 0 }
        return contrastiveMatrixFlops(kind.contrastiveLoss(), rows: rows, anchors: anchors, embedDim: embedDim)
    }

    /// Bytes of this computer's buffers by name: the contrastive workspace (normalised rows and their gradient,
    /// the similarity block, norms and negative weights) and the cross-entropy softmax cache.
    public var arenaBytes: [(name: String, bytes: Int)] {
        [("loss similarity block", workspace.block.byteCount),
         ("loss z and dZ", workspace.normalized.byteCount + workspace.dNormalized.byteCount),
         ("loss norms and weights", workspace.norms.byteCount + workspace.negativeWeights.byteCount),
         ("loss softmax cache", probs.byteCount)]
    }
}
