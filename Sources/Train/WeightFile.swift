// Weights in and out in the ecosystem's safetensors files (`--init`, `dtrain export`, `dtrain embed`).
//
// Three namings are recognised by the tensor names a file holds:
//   dtrain checkpoint   `param/<name>`, `buffer/<name>`, `counter/<name>` (a `dtrain-checkpoint` file);
//   dtrain / peer       `encoder.<module name>`, `head.weight`, `head.bias` (`peer/torch_peer.py`'s modules);
//   torchvision         bare `conv1.weight`, `layer1.0.bn1.running_mean`, …, `fc.weight` (a `resnet18()` state dict);
//   timm                bare `patch_embed.proj.weight`, `cls_token`, `pos_embed`, `blocks.0.attn.qkv.weight`, …,
//                       `norm.weight`, `head.weight` (a `VisionTransformer` state dict; `head.*` may be absent);
//   peer ViT            `encoder.vit.<timm name>`, `head.*` (the peer's `ViTEncoder` wraps timm's model as `vit`).
// Every registry entry of the network is looked up under the file's naming. Loading checks every tensor (presence,
// shape, dtype F32/F16/BF16, I64 counters) before writing anything, so a failed load leaves the network untouched.
// Input-channel adaptation follows timm's `adapt_input_conv`: RGB weights on 1-channel data are summed over the
// input channels; 1-channel weights on RGB data are repeated and divided by 3. The head is loaded when its shape
// fits, dropped with a note when the class count differs, and never loaded with `includeHead: false`. A ViT's
// `pos_embed` of another patch grid is resampled as timm's `resample_abs_pos_embed` (bicubic, antialiased), and a
// timm file without a head (`num_classes=0`) leaves the head freshly initialised, with a note.
import Checkpoint
import Foundation
import Model
import Tensor

/// The naming convention of a weight file.
public enum WeightNaming: String, Sendable, CaseIterable {
    /// `param/…` tensors of a dtrain checkpoint.
    case checkpoint
    /// `encoder.*` and `head.*` (dtrain's parameter names, the peer's modules).
    case dtrain
    /// torchvision's bare ResNet state dict (`conv1.weight`, …, `fc.weight`).
    case torchvision
    /// timm's bare ViT state dict (`patch_embed.proj.weight`, `cls_token`, …, `head.weight`).
    case timm
    /// The peer's ViT module (`encoder.vit.<timm name>`, `head.*`).
    case peerViT = "peer-vit"

    /// The file name of the dtrain name `name` (`encoder.conv1.weight`, `head.bias`) of a parameter, buffer or
    /// counter of the given kind ("param", "buffer" or "counter").
    func fileName(of name: String, kind: String) -> String {
        switch self {
        case .checkpoint: return kind + "/" + name
        case .dtrain: return name
        case .torchvision:
            if name.hasPrefix("encoder.") { return String(name.dropFirst("encoder.".count)) }
            if name.hasPrefix("head.") { return "fc." + name.dropFirst("head.".count) }
            return name
        case .timm:
            return name.hasPrefix("encoder.") ? String(name.dropFirst("encoder.".count)) : name
        case .peerViT:
            return name.hasPrefix("encoder.") ? "encoder.vit." + name.dropFirst("encoder.".count) : name
        }
    }

    /// Detects the naming of `file` from its metadata and tensor names.
    static func detect(_ file: SafeTensors) -> WeightNaming {
        if file.metadata[CheckpointKey.format] == "dtrain-checkpoint" || file.names.contains(where: { $0.hasPrefix("param/") }) {
            return .checkpoint
        }
        if file["encoder.vit.patch_embed.proj.weight"] != nil { return .peerViT }
        if file.names.contains(where: { $0.hasPrefix("encoder.") }) { return .dtrain }
        if file["patch_embed.proj.weight"] != nil { return .timm }
        return .torchvision
    }
}

/// What a weight load did, for the run's log.
public struct WeightLoadReport: Sendable {
    public var naming: WeightNaming
    /// Parameter, buffer and counter tensors read.
    public var loaded = 0
    /// Notes for the user (a dropped head, an adapted input convolution).
    public var notes: [String] = []
}

/// A weight file that does not fit the network: the message lists the problems.
public struct WeightFileError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

extension Network {
    /// The dtrain name of the convolution that reads the input image (adapted when input channels differ).
    var inputConvolutionName: String? {
        switch body {
        case .sequential(let e): return e.stages.isEmpty ? nil : e.stages[0].first.weight.name
        case .resnet(let e): return e.stemConv.weight.name
        case .vit(let e): return e.patchEmbedding.weight.name
        }
    }

    /// The dtrain name of a ViT's position embedding and its patch grid (rows, columns), nil for other encoders.
    var positionEmbedding: (name: String, grid: (rows: Int, columns: Int))? {
        guard case .vit(let e) = body else { return nil }
        return (e.positionEmbedding.name, (e.patchEmbedding.gridHeight, e.patchEmbedding.gridWidth))
    }

    /// Loads every parameter, buffer and counter of this network from `file` (see the file comment). Throws
    /// `WeightFileError` listing the missing, unexpected and mis-shaped tensors, or naming an unreadable dtype,
    /// before changing anything.
    public func load(weights file: SafeTensors, includeHead: Bool = true) throws -> WeightLoadReport {
        let naming = WeightNaming.detect(file)
        var report = WeightLoadReport(naming: naming)
        var used = Set<String>()
        var missing: [String] = [], misshaped: [String] = [], unreadable: [String] = []
        var writes: [(values: [Float], into: Arena, slice: Slice)] = []
        let headClasses = registry.parameter(named: "head.bias")?.shape[0] ?? 0
        var headDropped = false

        func describe(_ shape: [Int]) -> String { "(" + shape.map(String.init).joined(separator: ", ") + ")" }
        func read(_ fileName: String, _ t: TensorData) -> [Float]? {
            guard t.isFloatReadable else {
                unreadable.append("\(fileName) is \(t.dtype.rawValue) (F32, F16 or BF16 expected)")
                return nil
            }
            return t.floatValues()
        }

        for entry in registry.parameters {
            let fileName = naming.fileName(of: entry.name, kind: "param")
            let isHead = entry.name.hasPrefix("head.")
            guard let t = file[fileName] else {
                if !(isHead && !includeHead) { missing.append("\(fileName) \(describe(entry.shape))") }
                continue
            }
            used.insert(fileName)
            if isHead && !includeHead { continue }
            if t.shape == entry.shape {
                if let v = read(fileName, t) { writes.append((v, params, entry.slice)) }
            } else if let pos = positionEmbedding, entry.name == pos.name, t.shape.count == 3, t.shape[0] == 1,
                      t.shape[2] == entry.shape[2], let old = squareGrid(tokens: t.shape[1] - 1) {
                // timm's resample_abs_pos_embed: the file's grid is taken to be square.
                guard let v = read(fileName, t) else { continue }
                writes.append((resamplePositionEmbedding(v, embedDim: entry.shape[2], prefixTokens: 1,
                                                         oldGrid: (old, old), newGrid: pos.grid), params, entry.slice))
                report.notes.append("\(fileName): \(old)×\(old) patch grid resampled to \(pos.grid.rows)×"
                                    + "\(pos.grid.columns) (bicubic, antialiased, as timm's resample_abs_pos_embed)")
            } else if isHead && t.shape.count == entry.shape.count && t.shape.dropFirst() == entry.shape.dropFirst()
                        && t.shape[0] != headClasses {
                headDropped = true
            } else if entry.name == inputConvolutionName, t.shape.count == 4, entry.shape.count == 4,
                      t.shape[0] == entry.shape[0], t.shape[2...] == entry.shape[2...],
                      t.shape[1] == 3 && entry.shape[1] == 1 || t.shape[1] == 1 && entry.shape[1] == 3 {
                guard let v = read(fileName, t) else { continue }
                writes.append((adaptInputChannels(v, shape: t.shape, to: entry.shape[1]), params, entry.slice))
                report.notes.append("\(fileName): \(t.shape[1])-channel weights adapted to \(entry.shape[1]) input "
                                    + "channel(s) (" + (entry.shape[1] == 1 ? "summed" : "repeated and divided by 3")
                                    + ", as timm's adapt_input_conv)")
            } else {
                misshaped.append("\(fileName): file \(describe(t.shape)), model \(describe(entry.shape))")
            }
        }
        for entry in registry.buffers {
            let fileName = naming.fileName(of: entry.name, kind: "buffer")
            guard let t = file[fileName] else { missing.append("\(fileName) \(describe(entry.shape))"); continue }
            used.insert(fileName)
            if t.shape != entry.shape {
                misshaped.append("\(fileName): file \(describe(t.shape)), model \(describe(entry.shape))")
            } else if let v = read(fileName, t) {
                writes.append((v, buffers, entry.slice))
            }
        }
        var counterValues: [(Int, Int64)] = []
        for (i, name) in registry.counters.enumerated() {
            let fileName = naming.fileName(of: name, kind: "counter")
            // A missing num_batches_tracked is harmless (momentum-based running statistics never read it).
            guard let t = file[fileName] else { continue }
            used.insert(fileName)
            guard t.dtype == .i64, t.count == 1 else {
                misshaped.append("\(fileName): \(t.dtype.rawValue) \(describe(t.shape)), I64 scalar expected")
                continue
            }
            counterValues.append((i, t.values(as: Int64.self)[0]))
        }
        // A timm feature extractor (num_classes=0) has no head at all: keep the fresh one.
        let headless = naming == .timm && file[naming.fileName(of: "head.weight", kind: "param")] == nil
            && file[naming.fileName(of: "head.bias", kind: "param")] == nil
        if headless { missing.removeAll { $0.hasPrefix("head.") } }
        if headDropped {
            used.formUnion(["head.weight", "head.bias"].map { naming.fileName(of: $0, kind: "param") })
        }
        // Tensors of a checkpoint that are not weights (optimiser state, step) are not unexpected.
        let unexpected = file.names.filter { name in
            !used.contains(name) && !(naming == .checkpoint && !name.hasPrefix("param/") && !name.hasPrefix("buffer/")
                                      && !name.hasPrefix("counter/"))
        }
        if headDropped { missing.removeAll { $0.hasPrefix(naming.fileName(of: "head.", kind: "param")) } }
        let problems = [("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped),
                        ("unreadable", unreadable)].filter { !$0.1.isEmpty }
        guard problems.isEmpty else {
            let lines = problems.map { kind, list in
                "\(list.count) \(kind): " + list.prefix(5).joined(separator: "; ") + (list.count > 5 ? "; …" : "")
            }
            throw WeightFileError(message: "\(file.file) does not fit --model \(modelDescription) (read as "
                                  + "\(naming.rawValue) names): " + lines.joined(separator: " | "))
        }
        for w in writes { w.into.view(w.slice).update(fromContentsOf: w.values) }
        for (i, v) in counterValues { counters[i] = v }
        report.loaded = writes.count + counterValues.count
        if headDropped {
            report.notes.append("the file's head has a different class count than the data's \(headClasses): "
                                + "head dropped (freshly initialised)")
        }
        if !includeHead {
            report.notes.append("head not loaded (--init-head no): freshly initialised")
        } else if headless {
            report.notes.append("the file has no head (a timm model with num_classes=0): head freshly initialised")
        }
        return report
    }

    /// A short description of the encoder for messages.
    var modelDescription: String {
        switch (config.encoder, body) {
        case (.resnet(let spec, _, let norm, _), .resnet(let r)):
            return "resnet (\(spec.blocksPerStage.map(String.init).joined(separator: "-")) \(spec.block) blocks, "
                + "\(r.stem) stem, \(norm) norm)"
        case (.sequential(let conv, _, _), _): return conv.isEmpty ? "mlp" : "cnn"
        case (.vit(let s), _):
            return "vit (patch \(s.patchSize), dim \(s.embedDim), depth \(s.depth), \(s.heads) heads, MLP ratio "
                + "\(s.mlpRatio), \(config.height)×\(config.width) images)"
        default: return "?"
        }
    }

    /// The tensors of this network under `naming` (F32 parameters and buffers, I64 counters), e.g. for export.
    public func weightTensors(naming: WeightNaming) -> SafeTensors {
        var file = SafeTensors(metadata: ["format": "pt", "producer": "dtrain"])
        for entry in registry.parameters {
            file.add(naming.fileName(of: entry.name, kind: "param"), arena: params, slice: entry.slice,
                     shape: entry.shape)
        }
        for entry in registry.buffers {
            file.add(naming.fileName(of: entry.name, kind: "buffer"), arena: buffers, slice: entry.slice,
                     shape: entry.shape)
        }
        for (i, name) in registry.counters.enumerated() {
            file.add(naming.fileName(of: name, kind: "counter"), [counters[i]], shape: [])
        }
        return file
    }
}

/// The side of a square grid of `tokens` patches, or nil when `tokens` is not a square.
func squareGrid(tokens: Int) -> Int? {
    guard tokens > 0 else { return nil }
    let side = Int(Double(tokens).squareRoot().rounded())
    return side * side == tokens ? side : nil
}

/// timm's `adapt_input_conv` for (O, C, k, k) weights: C = 3 → 1 sums over the input channels; C = 1 → 3 repeats
/// the channel and divides by 3.
func adaptInputChannels(_ w: [Float], shape: [Int], to channels: Int) -> [Float] {
    let o = shape[0], c = shape[1], plane = shape[2] * shape[3]
    var out = [Float](repeating: 0, count: o * channels * plane)
    for i in 0..<o {
        for j in 0..<channels {
            for p in 0..<plane {
                if c == 3 {
                    out[(i * channels + j) * plane + p] = w[(i * 3) * plane + p] + w[(i * 3 + 1) * plane + p]
                        + w[(i * 3 + 2) * plane + p]
                } else {
                    out[(i * channels + j) * plane + p] = w[i * plane + p] / 3
                }
            }
        }
    }
    return out
}
