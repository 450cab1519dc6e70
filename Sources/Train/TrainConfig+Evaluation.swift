// Which evaluations a run reports, resolved from `TrainConfig.eval` and the loss: the head needs a CE term, so runs
// without one (supcon, hscl, or a blend at λ = 1) default to the linear probe and use k-NN for per-epoch lines.
import Foundation
import Loss

extension TrainConfig {
    /// Whether the loss gives cross-entropy a non-zero weight, i.e. the linear head is trained.
    public var trainsHead: Bool {
        guard let kind = LossKind(rawValue: loss) else { return false }
        return kind.crossEntropyWeight(lambda: lambda) > 0
    }

    /// The evaluations of the final summary, in order (the first gives `test_accuracy`): `eval`, or the default,
    /// head where CE is in the loss, else linear-probe.
    public var evaluations: [EvalMode] {
        if let eval, !eval.isEmpty { return eval }
        return [trainsHead ? .head : .linearProbe]
    }

    /// The cheap evaluations of per-epoch lines: the requested head and k-NN, or, when only the linear probe was
    /// requested, the head (CE in the loss) or k-NN (pure contrastive).
    public var epochEvaluations: [EvalMode] {
        let cheap = evaluations.filter { $0 != .linearProbe }
        return cheap.isEmpty ? [trainsHead ? .head : .knn] : cheap
    }

    /// Problems with the evaluation settings, as messages (empty when fine).
    public func evaluationProblems() -> [String] {
        var p = [String]()
        if let eval {
            if eval.isEmpty { p.append("--eval needs at least one of head, linear-probe, knn") }
            if Set(eval).count != eval.count { p.append("--eval lists a mode twice: \(eval.map(\.rawValue))") }
            if eval.contains(.head) && !trainsHead {
                p.append("--eval head needs cross-entropy in the loss (loss \(loss), λ \(lambda) trains no head); "
                         + "use linear-probe or knn")
            }
        }
        if let problem = ConfigKey.named("probe-epochs")?.problem(in: self) { p.append(problem) }
        return p
    }

    /// Parses a comma-separated list of evaluation modes ("head,knn"); throws `ConfigError` naming a bad one.
    public static func parseEvaluations(_ text: String) throws -> [EvalMode] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let mode = EvalMode(rawValue: name) else {
                throw ConfigError("unknown evaluation \"\(name)\" (one of "
                                  + "\(EvalMode.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return mode
        }
    }

    /// Parses a class-id list ("0,1,2" or "0+1+2"); throws `ConfigError` for a non-integer, negative or repeated id.
    public static func parseClasses(_ text: String) throws -> [Int] {
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "," || $0 == "+" })
        let ids = try parts.map { part -> Int in
            let t = part.trimmingCharacters(in: .whitespaces)
            guard let id = Int(t), id >= 0 else { throw ConfigError("class id \"\(t)\" is not an integer >= 0") }
            return id
        }
        guard !ids.isEmpty else { throw ConfigError("--classes lists no class") }
        guard Set(ids).count == ids.count else { throw ConfigError("--classes lists a class twice: \(ids)") }
        return ids
    }
}
