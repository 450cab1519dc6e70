// One setting of a training run, declared once in the table `ConfigKey.all` (ConfigKeys.swift). Everything that
// lists settings derives from that table: JSON coding of `TrainConfig` (config files, DIR/config.json, checkpoint
// metadata), range checks (`TrainConfig.problems()`), study grid axes (`TrainConfig.set(_:to:)`), the settings
// columns of results.csv (`TrainConfig.parameterColumns`), the resume check (`TrainConfig.trajectorySettings`) and
// the help text of the command-line flags. A key is built by `value`, `optional`, `choice` or `custom` from a key
// path into `TrainConfig`; the default is the initial value of that `TrainConfig` property.
import Foundation

/// What a setting changes, which decides what may differ between a checkpoint and the run resuming it.
public enum ConfigCategory: String, Sendable, CaseIterable {
    /// Shapes the training trajectory: a resumed run must keep it.
    case trajectory
    /// How long the run trains (epochs, max-steps): a resume may extend it.
    case runLength
    /// What is measured on the test split, and when: a resume may change it.
    case evaluation
    /// Where and how the run reads data, logs, checkpoints, reduces and threads: changes nothing learnt.
    case runtime
}

/// A range check on a value: the requirement as a phrase ("must be >= 1") and the test.
public struct ConfigRule<Value>: Sendable {
    /// Completes "--flag …, got v" in `TrainConfig.problems()`.
    public let requirement: String
    /// Whether a value meets the requirement.
    public let holds: @Sendable (Value) -> Bool

    /// A rule with its requirement phrase and test.
    public init(_ requirement: String, _ holds: @escaping @Sendable (Value) -> Bool) {
        self.requirement = requirement
        self.holds = holds
    }
}

extension ConfigRule where Value == Int {
    /// `n` or more.
    public static func atLeast(_ n: Int) -> ConfigRule { ConfigRule("must be >= \(n)") { $0 >= n } }
}

extension ConfigRule where Value == Double {
    /// A finite number greater than 0.
    public static var positive: ConfigRule { ConfigRule("must be > 0") { $0 > 0 && $0.isFinite } }
    /// A finite number, 0 or more.
    public static var nonNegative: ConfigRule { ConfigRule("must be >= 0") { $0 >= 0 && $0.isFinite } }
}

/// One setting of `TrainConfig`: its name, help, category and how it is parsed, coded, checked and reported.
public struct ConfigKey: Sendable {
    /// The kebab-case name: JSON key, grid axis name, CSV column and (with `--`) the usual flag.
    public let name: String
    /// One sentence for `--help` (without the default, which `helpText` appends).
    public let help: String
    /// What the setting changes (trajectory settings must match to resume).
    public let category: ConfigCategory
    /// Whether a study grid may vary it.
    public let isGridAxis: Bool
    /// Whether results.csv has a column for it.
    public let isResultColumn: Bool
    /// The command-line flag that sets it: `--name`, or e.g. `--no-epoch-eval` for an on-by-default switch.
    public let flag: String
    /// What an unset optional value means ("all", "native"), shown as its default and in resume messages.
    public let unsetText: String
    /// A valid value other than the default, as text (for tests and examples).
    public let example: String
    /// The valid values when the setting is a choice ("mlp, cnn, …"), else nil.
    public let choices: String?
    /// The default as shown in help, when it is not the value's text (`yes` for a switch given as yes|no).
    let shownDefault: String?

    let read: @Sendable (TrainConfig) -> String?
    let readUsed: (@Sendable (TrainConfig) -> String)?
    let write: @Sendable (inout TrainConfig, String) throws -> Void
    let decodeValue: @Sendable (inout TrainConfig, KeyedDecodingContainer<TrainConfig.CodingKeys>) throws -> Void
    let encodeValue: @Sendable (TrainConfig, inout KeyedEncodingContainer<TrainConfig.CodingKeys>) throws -> Void
    let check: @Sendable (TrainConfig) -> String?

    /// The JSON coding key of this setting.
    public var codingKey: TrainConfig.CodingKeys { TrainConfig.CodingKeys(name) }

    /// The value in `config` as text, or nil when an optional setting is unset.
    public func text(in config: TrainConfig) -> String? { read(config) }

    /// The value as the run uses it, for results.csv and resume checks: the text, except where the run resolves an
    /// unset or derived value (`lr` is the base rate used, `eval` the evaluations run).
    public func usedText(in config: TrainConfig) -> String? { readUsed?(config) ?? read(config) }

    /// The default value as shown in help, or nil when there is nothing to show.
    public var defaultText: String? {
        shownDefault ?? text(in: TrainConfig()) ?? (unsetText.isEmpty ? nil : unsetText)
    }

    /// The help sentence with the default appended (a choice flag's valid values are listed by ArgumentParser).
    public var helpText: String {
        guard let d = defaultText, !d.isEmpty else { return help }
        return help + " (default: \(d))"
    }

    /// Sets the setting from its text form (a flag or grid value); throws `ConfigError` naming the key and what fits.
    public func set(_ text: String, in config: inout TrainConfig) throws { try write(&config, text) }

    /// "--name must be …, got v" when the value in `config` breaks this setting's rule, else nil.
    public func problem(in config: TrainConfig) -> String? { check(config) }
}

// MARK: - Building keys

extension ConfigKey {
    /// A setting held in a non-optional `TrainConfig` property of a `ConfigValue` type.
    static func value<V: ConfigValue>(
        _ name: String, _ path: WritableKeyPath<TrainConfig, V> & Sendable, _ category: ConfigCategory,
        _ help: String, example: String, rule: ConfigRule<V>? = nil, flag: String? = nil, axis: Bool = true,
        column: Bool = true, shownDefault: String? = nil, used: (@Sendable (TrainConfig) -> String)? = nil
    ) -> ConfigKey {
        let key = TrainConfig.CodingKeys(name)
        return ConfigKey(
            name: name, help: help, category: category, isGridAxis: axis, isResultColumn: column,
            flag: flag ?? "--" + name, unsetText: "", example: example,
            choices: (V.self as? any ConfigChoice.Type)?.names, shownDefault: shownDefault,
            read: { $0[keyPath: path].configText }, readUsed: used,
            write: { config, text in config[keyPath: path] = try parse(V.self, text, for: name) },
            decodeValue: { config, box in if let v = try V.decodeConfig(box, key) { config[keyPath: path] = v } },
            encodeValue: { config, box in try box.encode(config[keyPath: path], forKey: key) },
            check: { config in
                let v = config[keyPath: path]
                guard let rule, !rule.holds(v) else { return nil }
                return "--\(name) \(rule.requirement), got \(v.configText)"
            })
    }

    /// A setting held in an optional `TrainConfig` property; nil (the default) means `unset`.
    static func optional<V: ConfigValue>(
        _ name: String, _ path: WritableKeyPath<TrainConfig, V?> & Sendable, _ category: ConfigCategory,
        _ help: String, unset: String, example: String, rule: ConfigRule<V>? = nil, axis: Bool = true,
        column: Bool = true, used: (@Sendable (TrainConfig) -> String)? = nil
    ) -> ConfigKey {
        let key = TrainConfig.CodingKeys(name)
        return ConfigKey(
            name: name, help: help, category: category, isGridAxis: axis, isResultColumn: column,
            flag: "--" + name, unsetText: unset, example: example, choices: nil, shownDefault: nil,
            read: { $0[keyPath: path]?.configText }, readUsed: used,
            write: { config, text in config[keyPath: path] = try parse(V.self, text, for: name) },
            decodeValue: { config, box in
                // JSON null is the unset value, as when the key is missing.
                if box.contains(key) { config[keyPath: path] = try V.decodeConfig(box, key) }
            },
            encodeValue: { config, box in try box.encodeIfPresent(config[keyPath: path], forKey: key) },
            check: { config in
                guard let v = config[keyPath: path], let rule, !rule.holds(v) else { return nil }
                return "--\(name) \(rule.requirement), got \(v.configText)"
            })
    }

    /// A choice of `E` held as its raw value in a `String` property (so code may compare it with a name).
    static func choice<E: ConfigChoice>(
        _ name: String, _ path: WritableKeyPath<TrainConfig, String> & Sendable, _ type: E.Type,
        _ category: ConfigCategory, _ help: String, example: E, axis: Bool = true, column: Bool = true
    ) -> ConfigKey {
        let key = TrainConfig.CodingKeys(name)
        return ConfigKey(
            name: name, help: help, category: category, isGridAxis: axis, isResultColumn: column,
            flag: "--" + name, unsetText: "", example: example.rawValue, choices: E.names, shownDefault: nil,
            read: { $0[keyPath: path] }, readUsed: nil,
            write: { config, text in config[keyPath: path] = try parse(E.self, text, for: name).rawValue },
            decodeValue: { config, box in
                if let v = try E.decodeConfig(box, key) { config[keyPath: path] = v.rawValue }
            },
            encodeValue: { config, box in try box.encode(config[keyPath: path], forKey: key) },
            check: { config in
                let v = config[keyPath: path]
                return E(rawValue: v) == nil ? "--\(name) must be one of \(E.names), got \(v)" : nil
            })
    }

    /// A setting with hand-written text, JSON and check functions (a list, say).
    static func custom(
        _ name: String, _ category: ConfigCategory, _ help: String, unset: String, example: String,
        choices: String? = nil, axis: Bool = true, column: Bool = true,
        read: @escaping @Sendable (TrainConfig) -> String?, used: (@Sendable (TrainConfig) -> String)? = nil,
        write: @escaping @Sendable (inout TrainConfig, String) throws -> Void,
        decode: @escaping @Sendable (inout TrainConfig, KeyedDecodingContainer<TrainConfig.CodingKeys>) throws -> Void,
        encode: @escaping @Sendable (TrainConfig, inout KeyedEncodingContainer<TrainConfig.CodingKeys>) throws -> Void,
        check: @escaping @Sendable (TrainConfig) -> String? = { _ in nil }
    ) -> ConfigKey {
        ConfigKey(name: name, help: help, category: category, isGridAxis: axis, isResultColumn: column,
                  flag: "--" + name, unsetText: unset, example: example, choices: choices, shownDefault: nil,
                  read: read, readUsed: used, write: write, decodeValue: decode, encodeValue: encode, check: check)
    }

    /// `text` as a `V`, or a `ConfigError` "name: "text" is not <what fits>".
    static func parse<V: ConfigValue>(_ type: V.Type, _ text: String, for name: String) throws -> V {
        guard let v = V(configText: text) else { throw ConfigError("\(name): \"\(text)\" is not \(V.expectation)") }
        return v
    }
}

// MARK: - JSON

extension ConfigValue {
    /// The value of `key` in a JSON object, nil when missing or null.
    public static func decodeConfig<K>(_ box: KeyedDecodingContainer<K>, _ key: K) throws -> Self? {
        try box.decodeIfPresent(Self.self, forKey: key)
    }
}

extension ConfigChoice {
    /// The value of `key` in a JSON object, nil when missing or null; an unknown name is an error listing the valid
    /// ones.
    public static func decodeConfig<K>(_ box: KeyedDecodingContainer<K>, _ key: K) throws -> Self? {
        guard let text = try box.decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let v = Self(rawValue: text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: box,
                                                   debugDescription: "\"\(text)\" is not \(expectation)")
        }
        return v
    }
}
