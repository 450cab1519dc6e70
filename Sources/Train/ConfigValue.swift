// The value types a configuration key can hold, with their text form: how a flag or a study grid value is parsed
// and how a value is written in results.csv, resume messages and help defaults. Choices (enums with string raw
// values) list their valid values in every error message.
import Foundation
import Model
import Loss

/// A type a `ConfigKey` can hold: decodable from JSON, and parsed from and written as text.
public protocol ConfigValue: Codable, Equatable, Sendable {
    /// Parses a flag or grid value; nil when `text` does not fit the type.
    init?(configText text: String)
    /// The value as written in results.csv, resume messages and `(default: …)`.
    var configText: String { get }
    /// What fits, completing "is not …" in error messages: "an integer", "one of sgd, adamw".
    static var expectation: String { get }
    /// The value of `key` in a JSON object, nil when missing or null; throws `DecodingError` when it does not fit.
    static func decodeConfig<K>(_ box: KeyedDecodingContainer<K>, _ key: K) throws -> Self?
}

extension Int: ConfigValue {
    public init?(configText text: String) { self.init(text) }
    public var configText: String { "\(self)" }
    public static var expectation: String { "an integer" }
}

extension UInt64: ConfigValue {
    public init?(configText text: String) { self.init(text) }
    public var configText: String { "\(self)" }
    public static var expectation: String { "a non-negative integer" }
}

extension Double: ConfigValue {
    public init?(configText text: String) { self.init(text) }
    public var configText: String { "\(self)" }
    public static var expectation: String { "a number" }
}

extension Bool: ConfigValue {
    /// `true`/`false` (as in JSON) or `yes`/`no` (as in `--init-head no`).
    public init?(configText text: String) {
        switch text {
        case "true", "yes": self = true
        case "false", "no": self = false
        default: return nil
        }
    }
    public var configText: String { "\(self)" }
    public static var expectation: String { "true or false (or yes or no)" }
}

extension String: ConfigValue {
    public init?(configText text: String) { self = text }
    public var configText: String { self }
    public static var expectation: String { "a string" }
}

/// A setting with a fixed set of named values; the raw values are the names used in flags and config files.
public protocol ConfigChoice: ConfigValue, RawRepresentable<String>, CaseIterable {}

extension ConfigChoice {
    public init?(configText text: String) { self.init(rawValue: text) }
    public var configText: String { rawValue }
    public static var expectation: String { "one of " + names }
    /// Every valid value, comma-separated, in declaration order.
    public static var names: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// Decodes a name; an unknown one is an error listing the valid ones (also inside lists, as in `eval`).
    public init(from decoder: Decoder) throws {
        let box = try decoder.singleValueContainer()
        let text = try box.decode(String.self)
        guard let v = Self(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: box, debugDescription: "\"\(text)\" is not \(Self.expectation)")
        }
        self = v
    }
}

// MARK: - Choices

/// The encoder architecture (`--model`); raw values are the command-line names.
public typealias ModelKind = EncoderKind

extension EncoderKind: ConfigChoice {}
extension NormKind: ConfigChoice {}
extension StemKind: ConfigChoice {}

/// The optimiser; raw values are the command-line names.
public enum OptimizerKind: String, ConfigChoice {
    /// SGD with momentum and L2 weight decay.
    case sgd
    /// AdamW (decoupled weight decay).
    case adamw
}

/// The training data; raw values are the command-line names.
public enum DatasetName: String, ConfigChoice {
    /// Zalando's Fashion-MNIST (IDX files).
    case fashionMNIST = "fashion-mnist"
    /// LeCun's MNIST digits (IDX files).
    case mnist
    /// CIFAR-10 (binary version).
    case cifar10
    /// CIFAR-100 (binary version, fine labels).
    case cifar100
    /// Generated images, no files needed.
    case synthetic
    /// An image folder: train/<class>/*.png|jpg|jpeg and test/ (or val/), as torchvision's ImageFolder.
    case folder
    /// numpy arrays: train/images.npy (uint8) and train/labels.npy, and test/ (or val/).
    case npy
}

extension EvalMode: ConfigChoice {}

extension LossKind: ConfigChoice {}
