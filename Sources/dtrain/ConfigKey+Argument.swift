import ArgumentParser
import Loss
import Model
import Train

// The command line's view of the config key table: flag help from `ConfigKey.all`, and the choices as flag values
// (ArgumentParser then lists the valid values when one is misspelt).

extension ArgumentHelp {
    /// The help of the flag of config key `name`: its sentence, valid values and default, from `ConfigKey.all`.
    static func key(_ name: String, valueName: String? = nil) -> ArgumentHelp {
        guard let key = ConfigKey.named(name) else { preconditionFailure("no config key \"\(name)\" in the table") }
        return ArgumentHelp(key.helpText, valueName: valueName)
    }

    /// The sentence of config key `name` without its default, for an option whose own default value
    /// ArgumentParser already shows (`dtrain bench --model`).
    static func keySentence(_ name: String) -> ArgumentHelp {
        guard let key = ConfigKey.named(name) else { preconditionFailure("no config key \"\(name)\" in the table") }
        return ArgumentHelp(key.help)
    }
}

extension ModelKind: ExpressibleByArgument {}
extension LossKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension DatasetName: ExpressibleByArgument {}
extension NormKind: ExpressibleByArgument {}
extension StemKind: ExpressibleByArgument {}
extension EvalMode: ExpressibleByArgument {}

/// A yes-or-no flag value (`--init-head no`).
enum YesNo: String, CaseIterable, ExpressibleByArgument {
    case yes, no

    /// `yes` as true.
    var isYes: Bool { self == .yes }
}
