// The grid of a study: named axes, each a list of values of one training setting, whose Cartesian product is the
// list of runs. Written as `"loss=ce,supcon batch=32,64 seed=0,1,2"`: axes separated by spaces, values by commas.
// Axis names are the config keys of `TrainConfig` (`batch-size`, `weight-decay`, …; `batch` is an alias of
// `batch-size`); a value of `eval` lists modes joined by `+` (`eval=head+knn`). A union of such products is written
// with `|` between them (`loss=supcon batch=512,1024 | loss=clce batch=32,64`). Presets give whole grids; an explicit
// axis replaces the preset's axis of the same name (in every part of a union).
import Foundation

/// One axis of a study grid: a config key and the values it takes, as written.
public struct StudyAxis: Sendable, Equatable {
    /// The canonical config key (`batch-size`, not `batch`).
    public let name: String
    /// The values, as written on the command line, in order.
    public let values: [String]

    public init(name: String, values: [String]) {
        self.name = name
        self.values = values
    }
}

/// The named grids of `--preset`.
public enum StudyPreset: String, CaseIterable, Sendable {
    /// Table 3 of the paper: every loss at every batch size, three seeds (pure SupCon scored by the linear probe).
    case batchScaling = "batch-scaling"
    /// CLCE at batch 64 over λ, three seeds (λ = 1 trains no head and is scored by the linear probe).
    case lambdaSweep = "lambda-sweep"
    /// CE against CLCE with and without hard-negative mining, three seeds.
    case ablation
    /// The design card's contrast: SupCon (linear probe) and CE+SupCon at large batches against CLCE and CE at small
    /// ones, three seeds, each run the usual number of epochs.
    case largeBatch = "large-batch"
    /// The same grid with a fixed number of steps for every batch size (`steps=500`), since a fixed number of epochs
    /// gives a batch of 4096 128× fewer steps than a batch of 32.
    case largeBatchSteps = "large-batch-steps"

    /// The large-batch grid: a union of the large-batch and the small-batch part, seeds outermost.
    static let largeBatchGrid = "seed=0,1,2 loss=supcon,ce+supcon batch-size=256,512,1024,2048,4096"
        + " | seed=0,1,2 loss=clce,ce batch-size=32,64,128,256"

    /// The preset's grid, in the same syntax as `--grid`.
    public var grid: String {
        switch self {
        case .batchScaling: return "loss=ce,supcon,ce+supcon,clce,clce-no-hnm batch-size=32,64,128,256,1024 seed=0,1,2"
        case .lambdaSweep: return "loss=clce lambda=0,0.1,0.3,0.5,0.7,0.9,1 batch-size=64 seed=0,1,2"
        case .ablation: return "loss=ce,clce-no-hnm,clce seed=0,1,2"
        case .largeBatch: return StudyPreset.largeBatchGrid
        case .largeBatchSteps:
            return StudyPreset.largeBatchGrid.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces)
                + " steps=500" }.joined(separator: " | ")
        }
    }
}

/// The runs of a study: one Cartesian product of named axes, or a union of several (`a=1,2 b=3 | a=4 b=5,6`) that
/// name the same axes in the same order. Runs are ordered by the first axis's value (across the parts), then part by
/// part, then with the last axis varying fastest; so with `seed` first every seed's runs finish before the next.
public struct StudyGrid: Sendable, Equatable {
    /// The parts of the union (one for a plain grid), each with the same axis names in the same order.
    public private(set) var parts: [[StudyAxis]]

    public init(axes: [StudyAxis] = []) { parts = [axes] }

    /// The parts as given (checked by `parse`).
    init(parts: [[StudyAxis]]) { self.parts = parts.isEmpty ? [[]] : parts }

    /// Every axis with all the values it takes in any part, in order of first appearance.
    public var axes: [StudyAxis] {
        guard var merged = parts.first else { return [] }
        for part in parts.dropFirst() {
            for (i, axis) in part.enumerated() {
                let extra = axis.values.filter { !merged[i].values.contains($0) }
                merged[i] = StudyAxis(name: axis.name, values: merged[i].values + extra)
            }
        }
        return merged
    }

    /// Settings that can be a grid axis: the config keys marked so in `ConfigKey.all` (all but `out`: each run gets
    /// its own folder).
    public static var axisNames: [String] { ConfigKey.all.filter(\.isGridAxis).map(\.name) }

    /// Alternative axis names and the config key each stands for.
    public static let aliases = ["batch": "batch-size"]

    /// The canonical config key for `name`, or a `ConfigError` listing the names that exist.
    public static func canonicalName(_ name: String) throws -> String {
        let key = aliases[name] ?? name
        if key == "out" { throw ConfigError("\"out\" cannot be a grid axis: each run writes to DIR/runs/<run>") }
        if let setting = ConfigKey.named(key), !setting.isGridAxis {
            throw ConfigError("\"\(key)\" cannot be a grid axis")
        }
        guard axisNames.contains(key) else {
            throw ConfigError("unknown grid axis \"\(name)\"; axes are config keys: "
                              + (axisNames + aliases.keys.sorted()).joined(separator: ", "))
        }
        return key
    }

    /// Parses `"name=v1,v2 name2=v3"`, or a union of such parts separated by `|`; checks every name, that every
    /// value fits its setting's type, that the parts name the same axes in the same order and repeat no run.
    public static func parse(_ text: String) throws -> StudyGrid {
        let pieces = text.split(separator: "|", omittingEmptySubsequences: false)
        var parts = [[StudyAxis]]()
        for piece in pieces {
            let part = try parsePart(String(piece))
            if pieces.count > 1 && part.isEmpty { throw ConfigError("grid union \"\(text)\" has an empty part") }
            if let first = parts.first, first.map(\.name) != part.map(\.name) {
                throw ConfigError("every part of a grid union names the same axes in the same order: \""
                                  + first.map(\.name).joined(separator: " ") + "\" vs \""
                                  + part.map(\.name).joined(separator: " ") + "\"")
            }
            parts.append(part)
        }
        let grid = StudyGrid(parts: parts)
        try grid.checkDistinct()
        return grid
    }

    /// One Cartesian part: `"name=v1,v2 name2=v3"`.
    public static func parsePart(_ text: String) throws -> [StudyAxis] {
        var axes = [StudyAxis]()
        for token in text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }) {
            guard let eq = token.firstIndex(of: "=") else {
                throw ConfigError("grid axis \"\(token)\" needs the form name=value1,value2,…")
            }
            let name = try canonicalName(String(token[..<eq]))
            let values = token[token.index(after: eq)...].split(separator: ",", omittingEmptySubsequences: false)
                .map(String.init)
            if values.contains(where: \.isEmpty) {
                throw ConfigError("grid axis \(name) has an empty value in \"\(token)\"")
            }
            if axes.contains(where: { $0.name == name }) { throw ConfigError("grid axis \(name) is given twice") }
            if Set(values).count != values.count { throw ConfigError("grid axis \(name) repeats a value: \(values)") }
            var probe = TrainConfig()
            for v in values { try probe.set(name, to: v) }
            axes.append(StudyAxis(name: name, values: values))
        }
        return axes
    }

    /// Throws when two parts of a union contain the same run.
    func checkDistinct() throws {
        guard parts.count > 1 else { return }
        var seen = Set<String>()
        for i in 0..<count {
            let label = point(i).map { "\($0.name)=\($0.value)" }.joined(separator: " ")
            if !seen.insert(label).inserted { throw ConfigError("the parts of the grid union both contain \(label)") }
        }
    }

    /// The grid of `preset` with every axis of `override` replacing the preset's axis of the same name in place (in
    /// every part of a union), and axes the preset lacks appended.
    public static func merge(preset: StudyGrid, override: StudyGrid) throws -> StudyGrid {
        guard override.parts.count == 1 else {
            throw ConfigError("a --grid union (with |) cannot be combined with --preset; give the whole grid instead")
        }
        let parts = preset.parts.map { part in
            var axes = part
            for axis in override.parts[0] {
                if let i = axes.firstIndex(where: { $0.name == axis.name }) { axes[i] = axis } else { axes.append(axis) }
            }
            return axes
        }
        let grid = StudyGrid(parts: parts)
        try grid.checkDistinct()
        return grid
    }

    /// The grid of an optional preset and optional explicit grid text; throws when both are missing.
    public static func make(preset: String?, grid: String?) throws -> StudyGrid {
        var base = StudyGrid()
        if let preset {
            guard let p = StudyPreset(rawValue: preset) else {
                throw ConfigError("unknown preset \"\(preset)\" (one of "
                                  + "\(StudyPreset.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            base = try parse(p.grid)
        }
        let explicit = try parse(grid ?? "")
        let merged = preset == nil ? explicit : try merge(preset: base, override: explicit)
        if merged.axes.isEmpty { throw ConfigError("a study needs --grid or --preset") }
        return merged
    }

    /// Runs in one part: the product of its axes' lengths.
    static func count(of part: [StudyAxis]) -> Int { part.reduce(1) { $0 * $1.values.count } }

    /// Number of runs: the sum over the parts of the product of their axes' lengths.
    public var count: Int { parts.reduce(0) { $0 + StudyGrid.count(of: $1) } }

    /// (part, index within the part) of every run, in run order (see the type's comment).
    var order: [(part: Int, index: Int)] {
        var runs = [(part: Int, index: Int, first: Int)]()
        let firstValues = axes.first?.values ?? []
        for (p, part) in parts.enumerated() {
            for i in 0..<StudyGrid.count(of: part) {
                let value = part.isEmpty ? "" : StudyGrid.point(i, of: part)[0].value
                runs.append((p, i, firstValues.firstIndex(of: value) ?? 0))
            }
        }
        if parts.count > 1 {
            // Stable: within one first-axis value, part order and then the part's own order.
            runs = runs.enumerated().sorted { ($0.element.first, $0.offset) < ($1.element.first, $1.offset) }
                .map(\.element)
        }
        return runs.map { ($0.part, $0.index) }
    }

    /// Point `index` of one Cartesian part; the last axis varies fastest.
    static func point(_ index: Int, of part: [StudyAxis]) -> [(name: String, value: String)] {
        var rest = index
        var out = [(name: String, value: String)]()
        for axis in part.reversed() {
            out.append((axis.name, axis.values[rest % axis.values.count]))
            rest /= axis.values.count
        }
        return out.reversed()
    }

    /// Run `index` (0..<count) as (axis name, value) pairs, axis order.
    public func point(_ index: Int) -> [(name: String, value: String)] {
        precondition(index >= 0 && index < count, "grid point \(index) outside 0..<\(count)")
        if parts.count == 1 { return StudyGrid.point(index, of: parts[0]) }
        let (p, i) = order[index]
        return StudyGrid.point(i, of: parts[p])
    }

    /// Every run in order.
    public var points: [[(name: String, value: String)]] { (0..<count).map(point) }

    /// The config of run `index`: `base` with each axis value set.
    public func config(_ index: Int, base: TrainConfig) throws -> TrainConfig {
        var c = base
        for (name, value) in point(index) { try c.set(name, to: value) }
        return c
    }

    /// A folder name for run `index`: `name=value` pairs of the axes with more than one value, joined by `_`
    /// (characters other than letters, digits and `.=+-_` become `-`); `run` when nothing varies.
    public func runName(_ index: Int) -> String {
        let varying = Set(axes.filter { $0.values.count > 1 }.map(\.name))
        let parts = point(index).filter { varying.contains($0.name) }.map { "\($0.name)=\($0.value)" }
        if parts.isEmpty { return "run" }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.=+-_")
        return String(parts.joined(separator: "_").map { allowed.contains($0) ? $0 : "-" })
    }
}
