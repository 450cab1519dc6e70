// The safetensors header as JSON, parsed by Foundation's JSONSerialization. One pass over the text before it
// (`HeaderScan`) adds what a checkpoint reader needs and Foundation does not check:
//   - nesting is capped at 32 levels before parsing, so hostile input cannot exhaust the stack;
//   - a key repeated within one object is rejected (JSONSerialization silently keeps the last, and a checkpoint
//     with two entries of the same name is corrupt);
//   - a trailing comma, `[1,]` or `{"a":1,}`, is rejected (swift-corelibs-foundation accepts it; RFC 8259 and
//     the Python and Rust safetensors readers do not);
//   - the root object's keys are kept in file order, so tensors keep the order of the header.
// Numbers keep their exactness through the NSNumber type Foundation chooses: a JSON integer that fits in Int is an
// `.integer`, never a detour through Double.
import Foundation

/// A parsed JSON value. The root object keeps its members in file order; nested objects list them sorted by key.
indirect enum JSONValue {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    /// An integer written without fraction or exponent that fits in Int.
    case integer(Int)
    /// Any other number, as Foundation renders it ("2.0", "1.5e+300", "99999999999999999999"); `isInteger` when
    /// it was written as an integer too large for Int.
    case number(String, isInteger: Bool)
    case bool(Bool)
    case null

    /// "an object", "an array", … for error messages.
    var typeName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .integer, .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }
}

/// Why the header text is not acceptable JSON, with the byte offset when known.
struct JSONSyntaxError: Error {
    let message: String
    var offset: Int?
    /// True when the error is a key repeated within one object.
    var duplicateKey = false

    /// The message followed by " at header byte N" when the offset is known.
    var detail: String { offset.map { "\(message) at header byte \($0)" } ?? message }
}

/// Parses the header text (already validated as UTF-8) into a JSONValue.
func parseHeaderJSON(_ bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
    let scan = try HeaderScan(bytes)
    let object: Any
    do {
        object = try JSONSerialization.jsonObject(with: Foundation.Data(buffer: bytes))
    } catch let error as NSError {
        let reason = error.userInfo[NSDebugDescriptionErrorKey] as? String ?? error.localizedDescription
        throw JSONSyntaxError(message: reason, offset: nil)
    }
    // Only now that the text is known to be JSON: its keys were read correctly.
    if let (key, offset) = scan.duplicate {
        throw JSONSyntaxError(message: "duplicate key \"\(key)\"", offset: offset, duplicateKey: true)
    }
    return jsonValue(object, keyOrder: scan.rootKeys)
}

/// Converts JSONSerialization's output; `keyOrder` lists an object's keys in file order (nil: sorted).
private func jsonValue(_ object: Any, keyOrder: [String]?) -> JSONValue {
    switch object {
    case let dictionary as [String: Any]:
        var keys = (keyOrder ?? []).filter { dictionary[$0] != nil }
        if keys.count != dictionary.count { keys += dictionary.keys.filter { !keys.contains($0) }.sorted() }
        return .object(keys.map { ($0, jsonValue(dictionary[$0]!, keyOrder: nil)) })
    case let array as [Any]:
        return .array(array.map { jsonValue($0, keyOrder: nil) })
    case let string as String:
        return .string(string)
    case let decimal as NSDecimalNumber:
        // Foundation's choice for numbers that Int64, UInt64 and Double cannot hold exactly.
        let text = decimal.description
        return .number(text, isInteger: text.allSatisfy { $0 == "-" || ($0.isASCII && $0.isNumber) })
    case let number as NSNumber:
        switch UInt8(bitPattern: number.objCType.pointee) {
        case UInt8(ascii: "c"): return .bool(number.boolValue)  // true and false are char-typed
        case UInt8(ascii: "d"), UInt8(ascii: "f"): return .number(number.description, isInteger: false)
        case UInt8(ascii: "Q"), UInt8(ascii: "L"), UInt8(ascii: "I"):
            // Unsigned: Foundation uses it only above Int64.max.
            if let exact = Int(exactly: number.uint64Value) { return .integer(exact) }
            return .number(number.description, isInteger: true)
        default: return .integer(number.intValue)
        }
    default:
        return .null
    }
}

// MARK: - The pass before Foundation

/// One pass over the header text: nesting depth, trailing commas, repeated keys and the root object's key order.
/// Text that is not JSON in other ways passes through for JSONSerialization to report.
struct HeaderScan {
    /// Deepest nesting accepted; a safetensors header needs 3 (root, entry, shape).
    static let maxDepth = 32

    /// The root object's keys in file order.
    private(set) var rootKeys: [String] = []
    /// The first key met twice in one object, and its byte offset.
    private(set) var duplicate: (key: String, offset: Int)?

    /// Scans `bytes`; throws on nesting deeper than `maxDepth` or a comma before a closing bracket.
    init(_ bytes: UnsafeBufferPointer<UInt8>) throws {
        var open: [Set<String>?] = []  // per open container, innermost last: its keys so far (nil for an array)
        var previous: UInt8 = 0  // the last byte outside strings that is not whitespace
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case 0x20, 0x0A, 0x0D, 0x09:
                i += 1
                continue
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard open.count < Self.maxDepth else {
                    throw JSONSyntaxError(message: "nesting deeper than \(Self.maxDepth) levels", offset: i)
                }
                open.append(c == UInt8(ascii: "{") ? [] : nil)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                guard previous != UInt8(ascii: ",") else {
                    throw JSONSyntaxError(message: "trailing comma before '\(UnicodeScalar(c))'", offset: i)
                }
                if !open.isEmpty { open.removeLast() }
            case UInt8(ascii: "\""):
                let start = i
                var escaped = false
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") {
                    if bytes[i] == UInt8(ascii: "\\") {
                        escaped = true
                        i += 1
                    }
                    i += 1
                }
                // A key: a terminated string right after '{' or ',' inside an object.
                if i < bytes.count, previous == UInt8(ascii: "{") || previous == UInt8(ascii: ","),
                   let last = open.indices.last, open[last] != nil {
                    let key = Self.decode(UnsafeBufferPointer(rebasing: bytes[start...i]), escaped: escaped)
                    if !open[last]!.insert(key).inserted, duplicate == nil { duplicate = (key, start) }
                    if last == 0 { rootKeys.append(key) }
                }
            default:
                break
            }
            previous = c
            i += 1
        }
    }

    /// The text of a string literal, quotes included; escapes are decoded by Foundation.
    static func decode(_ literal: UnsafeBufferPointer<UInt8>, escaped: Bool) -> String {
        if escaped, let text = try? JSONSerialization.jsonObject(with: Foundation.Data(buffer: literal),
                                                                 options: .fragmentsAllowed) as? String {
            return text
        }
        return String(decoding: literal.dropFirst().dropLast(), as: UTF8.self)
    }
}

// MARK: - Writing

/// Appends `text` to `out` as a JSON string literal, written by JSONSerialization (quotes, backslashes and control
/// characters escaped, everything else as raw UTF-8).
func appendJSONString(_ text: String, to out: inout [UInt8]) {
    // Any Swift String is valid Unicode, so encoding one as a JSON fragment cannot fail.
    let literal = try! JSONSerialization.data(withJSONObject: text, options: [.fragmentsAllowed,
                                                                              .withoutEscapingSlashes])
    out += literal
}
