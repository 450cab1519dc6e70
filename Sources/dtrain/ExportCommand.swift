import ArgumentParser
import FileIO
import Foundation
import Train

/// The tensor names of `dtrain export` (`--names`).
enum ExportNames: String, CaseIterable, ExpressibleByArgument {
    case dtrain, torchvision, timm
    var naming: WeightNaming {
        switch self {
        case .dtrain: return .dtrain
        case .torchvision: return .torchvision
        case .timm: return .timm
        }
    }
}

/// `dtrain export`: a checkpoint's weights as a plain safetensors file.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a run's weights and BatchNorm buffers as a safetensors file for other tools.",
        discussion: """
            Reads DIR/checkpoint.safetensors and writes the parameters (F32), BatchNorm running statistics (F32) \
            and num_batches_tracked counters (I64 scalars), without optimiser state. --names dtrain gives \
            encoder.* and head.* names (dtrain's and the PyTorch peer's); --names torchvision gives a ResNet state \
            dict that torchvision.models.resnet18(num_classes=K).load_state_dict(..., strict=True) accepts \
            (conv1.weight, layer1.0.bn1.running_mean, ..., fc.weight; read it with safetensors.torch.load_file); \
            --names timm gives a ViT state dict that timm's VisionTransformer(...) of the same shape loads strictly \
            (patch_embed.proj.weight, cls_token, pos_embed, blocks.i.*, norm.*, head.*). \
            The file is written atomically; an existing file is kept unless --force.
            Example: dtrain export --checkpoint runs/a --names torchvision --out resnet18.safetensors
            """)

    @Option(help: ArgumentHelp("The training run's folder (its checkpoint.safetensors is read).", valueName: "DIR"))
    var checkpoint: String

    @Option(help: ArgumentHelp("The safetensors file to write.", valueName: "FILE.safetensors"))
    var out: String

    @Option(help: ArgumentHelp("Tensor names: dtrain (encoder.*, head.*), torchvision (conv1.*, layerN.i.*, fc.*; "
                               + "ResNets only) or timm (patch_embed.*, blocks.i.*, head.*; ViTs only)."))
    var names: ExportNames = .dtrain

    @Flag(help: "Replace an existing output file.")
    var force = false

    func validate() throws {
        try OutputGuard.file(out, force: force)
    }

    func run() throws {
        try runOnWorld(blasThreads: 1) { comm in
            guard comm.rank == 0 else { return }
            let file = try exportCheckpoint(directory: checkpoint, naming: names.naming)
            try file.write(to: out)
            printError("exported \(file.names.count) tensors with \(names.rawValue) names to \(out)")
        }
    }
}
