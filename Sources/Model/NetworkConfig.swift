/// The encoders dtrain builds (`--model`).
public enum EncoderKind: String, Sendable, CaseIterable {
    /// Flatten, I→512, ReLU, 512→512, ReLU, 512→128.
    case mlp
    /// [conv3×3(C→32), ReLU, conv(32→32), ReLU, maxpool2] ×1, then the same with 64 channels, flatten,
    /// 64·(H/4)·(W/4)→256, ReLU, 256→128.
    case cnn
    /// torchvision ResNet-18/34 (basic blocks) and ResNet-50/101 (bottlenecks); embedding 512 or 2048.
    case resnet18, resnet34, resnet50, resnet101
    /// The CIFAR ResNet-20 of He et al. (2016, sec. 4.2); embedding 64.
    case resnet20
    /// timm's Vision Transformer, shaped by `--patch-size`, `--embed-dim`, `--depth`, `--heads`, `--mlp-ratio`
    /// (each defaulting to `vit-tiny`'s).
    case vit
    /// The peer's ViT for 28-pixel images: patch 4, D 64, depth 6, 4 heads, MLP ratio 2.
    case vitTiny = "vit-tiny"
    /// timm's `vit_tiny_patch16_224`, `vit_small_patch16_224` and `vit_base_patch16_224` shapes (224-pixel images:
    /// `--image-size 224`).
    case vitTinyPatch16 = "vit_tiny_patch16_224", vitSmallPatch16 = "vit_small_patch16_224"
    case vitBasePatch16 = "vit_base_patch16_224"

    /// The ResNet shape of a ResNet kind, nil for `mlp` and `cnn`.
    public var resnetSpec: ResNetSpec? {
        switch self {
        case .mlp, .cnn, .vit, .vitTiny, .vitTinyPatch16, .vitSmallPatch16, .vitBasePatch16: return nil
        case .resnet18: return .resnet18
        case .resnet34: return .resnet34
        case .resnet50: return .resnet50
        case .resnet101: return .resnet101
        case .resnet20: return .resnet20
        }
    }

    /// The ViT shape of a ViT kind before any `--patch-size`… override, nil for the others.
    public var vitSpec: ViTSpec? {
        switch self {
        case .vit, .vitTiny: return .vitTiny
        case .vitTinyPatch16: return .vitTinyPatch16
        case .vitSmallPatch16: return .vitSmallPatch16
        case .vitBasePatch16: return .vitBasePatch16
        default: return nil
        }
    }

    /// Whether this is the small sequential `mlp` or `cnn` encoder.
    public var isSequential: Bool { self == .mlp || self == .cnn }
}

/// What the encoder is: the sequential `mlp`/`cnn` topology or a ResNet.
public enum EncoderShape: Sendable, Equatable {
    /// `convWidths.count` stages of (conv, ReLU, conv, ReLU, maxpool2), a flatten, one (Linear, ReLU) per entry of
    /// `hiddenWidths`, then Linear → embedDim. The `mlp` encoder is the case with no conv stages.
    case sequential(convWidths: [Int], hiddenWidths: [Int], embedDim: Int)
    /// A ResNet with its stem and normalisation (`groups` for GroupNorm).
    case resnet(ResNetSpec, stem: StemKind, norm: NormKind, groups: Int)
    /// A Vision Transformer.
    case vit(ViTSpec)
}

/// Shapes of a `Network`: input image, encoder, embedding size and classes. The head is Linear(embedDim → classes).
public struct NetworkConfig: Sendable, Equatable {
    public var inputChannels: Int
    public var height: Int
    public var width: Int
    public var encoder: EncoderShape
    /// K, the number of classes of the linear head on the embedding.
    public var classes: Int

    public init(inputChannels: Int, height: Int, width: Int, encoder: EncoderShape, classes: Int = 10) {
        self.inputChannels = inputChannels; self.height = height; self.width = width
        self.encoder = encoder; self.classes = classes
    }

    /// A sequential encoder (see `EncoderShape.sequential`).
    public init(inputChannels: Int, height: Int, width: Int, convWidths: [Int], hiddenWidths: [Int],
                embedDim: Int = 128, classes: Int = 10) {
        self.init(inputChannels: inputChannels, height: height, width: width,
                  encoder: .sequential(convWidths: convWidths, hiddenWidths: hiddenWidths, embedDim: embedDim),
                  classes: classes)
    }

    /// The encoder `kind` for C×H×W inputs (Fashion-MNIST: 1×28×28, CIFAR: 3×32×32). `embedDim` applies to the
    /// sequential encoders; a ResNet's is its last stage's width. `stem`, `norm` and `groups` apply to ResNets;
    /// `vit` replaces a ViT kind's preset shape.
    public init(kind: EncoderKind, inputChannels: Int = 1, height: Int = 28, width: Int = 28,
                embedDim: Int = 128, classes: Int = 10, stem: StemKind = .imagenet, norm: NormKind = .batch,
                groups: Int = 8, vit: ViTSpec? = nil) {
        switch kind {
        case .mlp:
            self.init(inputChannels: inputChannels, height: height, width: width, convWidths: [],
                      hiddenWidths: [512, 512], embedDim: embedDim, classes: classes)
        case .cnn:
            self.init(inputChannels: inputChannels, height: height, width: width, convWidths: [32, 64],
                      hiddenWidths: [256], embedDim: embedDim, classes: classes)
        case .resnet18, .resnet34, .resnet50, .resnet101, .resnet20:
            self.init(inputChannels: inputChannels, height: height, width: width,
                      encoder: .resnet(kind.resnetSpec!, stem: stem, norm: norm, groups: groups), classes: classes)
        case .vit, .vitTiny, .vitTinyPatch16, .vitSmallPatch16, .vitBasePatch16:
            self.init(inputChannels: inputChannels, height: height, width: width,
                      encoder: .vit(vit ?? kind.vitSpec!), classes: classes)
        }
    }

    /// D, the embedding size (the encoder output).
    public var embedDim: Int {
        switch encoder {
        case .sequential(_, _, let d): return d
        case .resnet(let spec, _, _, _): return spec.embedDim
        case .vit(let spec): return spec.embedDim
        }
    }

    /// Elements per input sample, C·H·W.
    public var inputSize: Int { inputChannels * height * width }
}
