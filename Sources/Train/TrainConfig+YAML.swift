// YAML config files (`--config run.yaml`), read with Yams: the same keys as JSON. The YAML is composed into a node
// tree, each top-level value turned into the JSON value its tag says (a quoted "5" stays a string, so it is
// rejected where a number is expected, as in JSON), and the result decoded by the JSON path, so both formats
// accept and reject the same settings. Errors name the line of the offending key, in YAML and JSON files alike.
import Foundation
import Yams

extension TrainConfig {
    /// Parses the text of a YAML config file (`path` names it in errors); every key optional, unknown keys and
    /// values of the wrong type rejected with their line.
    public static func parseYAML(_ text: String, path: String) throws -> TrainConfig {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw ConfigError("\(path): not valid YAML: \(error)")
        }
        guard let root else { return TrainConfig() }   // an empty file: every default
        guard case .mapping(let mapping) = root else {
            throw ConfigError("\(path):\(line(root)): a mapping of settings (key: value) is expected")
        }
        var object: [String: Any] = [:]
        var lines: [String: Int] = [:]
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let key) = keyNode else {
                throw ConfigError("\(path):\(line(keyNode)): a key must be a plain name")
            }
            lines[key.string] = line(keyNode)
            guard ConfigKey.named(key.string) != nil else {
                let known = ConfigKey.all.map(\.name).sorted().joined(separator: ", ")
                throw ConfigError("\(path):\(line(keyNode)): unknown key \"\(key.string)\" (known: \(known))")
            }
            object[key.string] = try jsonValue(valueNode, key: key.string, line: line(keyNode), path: path)
        }
        let data = try JSONSerialization.data(withJSONObject: object)
        do { return try decodeConfigJSON(data, path: path) } catch let e as ConfigError {
            throw ConfigError(withLine(e.message, path: path, lines: lines))
        }
    }

    /// The effective config as YAML, keys in table order (unset optional settings left out), as
    /// `dtrain train --print-config` prints it; `--config` reads it back.
    public func yaml() throws -> String {
        // Yams writes doubles in exponent form (0.9 as 9e-1); rewrite each plain float value as Swift prints it.
        // A plain value with a '.' or an 'e' that parses as a Double is a float: Yams quotes strings that would
        // read back as numbers, and writes integers without either character.
        let text = try YAMLEncoder().encode(self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { row -> String in
            let marker = row.range(of: ": ") ?? row.range(of: "- ")
            guard let marker else { return String(row) }
            let value = row[marker.upperBound...]
            guard value.contains(where: { $0 == "." || $0 == "e" }), let v = Double(value), v.isFinite else {
                return String(row)
            }
            return row[..<marker.upperBound] + "\(v)"
        }.joined(separator: "\n")
    }

    /// 1-based line of a node.
    private static func line(_ node: Node) -> Int { (node.mark?.line ?? 0) }

    /// The JSON value of a YAML value, by its resolved tag: null, bool, int, float, string, or a list of those.
    private static func jsonValue(_ node: Node, key: String, line: Int, path: String) throws -> Any {
        switch node {
        case .scalar:
            // Yams resolves the tag (plain 5 is an int, "5" a string, ~ null); anything JSON cannot hold (a date,
            // .nan) stays text, which the decoder then rejects with the key.
            switch node.any {
            case let v as NSNull: return v
            case let v as Bool: return v
            case let v as Int: return v
            case let v as Double where v.isFinite: return v
            default: return node.string ?? ""
            }
        case .sequence(let items):
            return try items.map { item -> Any in
                guard case .scalar = item else {
                    throw ConfigError("\(path):\(line): bad value for \"\(key)\": a list of plain values is expected")
                }
                return try jsonValue(item, key: key, line: line, path: path)
            }
        default:
            throw ConfigError("\(path):\(line): bad value for \"\(key)\": a mapping is not a setting's value")
        }
    }

    /// "path: … \"key\" …" as "path:LINE: …" for the first key of `lines` the message quotes.
    static func withLine(_ message: String, path: String, lines: [String: Int]) -> String {
        guard message.hasPrefix(path + ": "),
              let (_, line) = lines.sorted(by: { $0.key.count > $1.key.count })
                .first(where: { message.contains("\"\($0.key)\"") || message.contains("\"\($0.key).") })
        else { return message }
        return "\(path):\(line): " + message.dropFirst(path.count + 2)
    }

    /// Lines of the top-level keys of a JSON text: the first line where `"key"` is followed by a colon.
    static func jsonKeyLines(_ text: String) -> [String: Int] {
        var lines: [String: Int] = [:]
        for (i, row) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var rest = Substring(row)
            while let open = rest.firstIndex(of: "\"") {
                let after = rest[rest.index(after: open)...]
                guard let close = after.firstIndex(of: "\"") else { break }
                let name = String(after[..<close])
                let tail = after[after.index(after: close)...].drop { $0 == " " || $0 == "\t" }
                if tail.first == ":" && lines[name] == nil { lines[name] = i + 1 }
                rest = after[after.index(after: close)...]
            }
        }
        return lines
    }
}
