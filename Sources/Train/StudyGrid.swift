// The grid of a study: named axes, each a list of values of one training setting, whose Cartesian product is the
// list of runs. Written as `"loss=ce,supcon batch=32,64 seed=0,1,2"`: axes separated by spaces, values by commas.
// Axis names are the config keys of `TrainConfig` (`batch-size`, `weight-decay`, …; `batch` is an alias of
// `batch-size`); a value of `eval` lists modes joined by `+` (`eval=head+knn`). Presets give whole grids; an explicit
// axis replaces the preset's axis of the same name.
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

    /// The preset's grid, in the same syntax as `--grid`.
    public var grid: String {
        switch self {
        case .batchScaling: return "loss=ce,supcon,ce+supcon,clce,clce-no-hnm batch-size=32,64,128,256,1024 seed=0,1,2"
        case .lambdaSweep: return "loss=clce lambda=0,0.1,0.3,0.5,0.7,0.9,1 batch-size=64 seed=0,1,2"
        case .ablation: return "loss=ce,clce-no-hnm,clce seed=0,1,2"
        }
    }
}

/// The axes of a study, outermost first: the last axis varies fastest.
public struct StudyGrid: Sendable, Equatable {
    public private(set) var axes: [StudyAxis]

    public init(axes: [StudyAxis] = []) { self.axes = axes }

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

    /// Parses `"name=v1,v2 name2=v3"`; checks every name and that every value fits its setting's type.
    public static func parse(_ text: String) throws -> StudyGrid {
        var grid = StudyGrid()
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
            if grid.axes.contains(where: { $0.name == name }) { throw ConfigError("grid axis \(name) is given twice") }
            if Set(values).count != values.count { throw ConfigError("grid axis \(name) repeats a value: \(values)") }
            var probe = TrainConfig()
            for v in values { try probe.set(name, to: v) }
            grid.axes.append(StudyAxis(name: name, values: values))
        }
        return grid
    }

    /// The grid of `preset` with every axis of `override` replacing the preset's axis of the same name in place, and
    /// axes the preset lacks appended.
    public static func merge(preset: StudyGrid, override: StudyGrid) -> StudyGrid {
        var axes = preset.axes
        for axis in override.axes {
            if let i = axes.firstIndex(where: { $0.name == axis.name }) { axes[i] = axis } else { axes.append(axis) }
        }
        return StudyGrid(axes: axes)
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
        let merged = merge(preset: base, override: explicit)
        if merged.axes.isEmpty { throw ConfigError("a study needs --grid or --preset") }
        return merged
    }

    /// Number of runs: the product of the axes' lengths.
    public var count: Int { axes.reduce(1) { $0 * $1.values.count } }

    /// Run `index` (0..<count) as (axis name, value) pairs, axis order; the last axis varies fastest.
    public func point(_ index: Int) -> [(name: String, value: String)] {
        precondition(index >= 0 && index < count, "grid point \(index) outside 0..<\(count)")
        var rest = index
        var out = [(name: String, value: String)]()
        for axis in axes.reversed() {
            out.append((axis.name, axis.values[rest % axis.values.count]))
            rest /= axis.values.count
        }
        return out.reversed()
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
