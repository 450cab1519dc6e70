/// The two reference encoders of `torch_peer.py`.
public enum EncoderKind: String, Sendable, CaseIterable {
    /// Flatten, I→512, ReLU, 512→512, ReLU, 512→128.
    case mlp
    /// [conv3×3(C→32), ReLU, conv(32→32), ReLU, maxpool2] ×1, then the same with 64 channels, flatten,
    /// 64·(H/4)·(W/4)→256, ReLU, 256→128.
    case cnn
}

/// Shapes of a `Network`: input image, encoder widths, embedding size and classes.
///
/// The encoder is `convWidths.count` stages of (conv, ReLU, conv, ReLU, maxpool2), a flatten, one
/// (Linear, ReLU) per entry of `hiddenWidths`, then Linear → `embedDim`. The head is Linear(embedDim → classes).
/// The `mlp` encoder is the case with no conv stages.
public struct NetworkConfig: Sendable, Equatable {
    public var inputChannels: Int
    public var height: Int
    public var width: Int
    /// Output channels of each conv stage (two convs per stage, then a 2×2 max pool).
    public var convWidths: [Int]
    /// Width of each hidden Linear+ReLU after the flatten.
    public var hiddenWidths: [Int]
    /// D, the embedding size (the encoder output).
    public var embedDim: Int
    /// K, the number of classes of the linear head on the embedding.
    public var classes: Int

    public init(inputChannels: Int, height: Int, width: Int, convWidths: [Int], hiddenWidths: [Int],
                embedDim: Int = 128, classes: Int = 10) {
        self.inputChannels = inputChannels; self.height = height; self.width = width
        self.convWidths = convWidths; self.hiddenWidths = hiddenWidths
        self.embedDim = embedDim; self.classes = classes
    }

    /// The reference encoder `kind` for C×H×W inputs (Fashion-MNIST: 1×28×28, CIFAR: 3×32×32).
    public init(kind: EncoderKind, inputChannels: Int = 1, height: Int = 28, width: Int = 28,
                embedDim: Int = 128, classes: Int = 10) {
        switch kind {
        case .mlp:
            self.init(inputChannels: inputChannels, height: height, width: width, convWidths: [],
                      hiddenWidths: [512, 512], embedDim: embedDim, classes: classes)
        case .cnn:
            self.init(inputChannels: inputChannels, height: height, width: width, convWidths: [32, 64],
                      hiddenWidths: [256], embedDim: embedDim, classes: classes)
        }
    }

    /// Elements per input sample, C·H·W.
    public var inputSize: Int { inputChannels * height * width }
}
