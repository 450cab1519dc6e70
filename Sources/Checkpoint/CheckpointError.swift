// Errors raised while reading or writing a checkpoint: each one names the file and what is wrong with it.

/// An environment or user error from the Checkpoint module: a missing, unwritable or corrupt file, or a checkpoint
/// that does not match the layout it is loaded into. `description` reads "<file>: <detail>".
public struct CheckpointError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The category, for callers and tests that branch on it.
    public enum Kind: String, Sendable {
        case missingFile, unreadable, unwritable
        /// Fewer than 8 bytes, or a header or tensor reaching past the end of the file.
        case truncated
        /// The 8-byte header length is zero, beyond the cap or beyond the file.
        case badHeaderSize
        /// The header is not UTF-8, not JSON, or not a JSON object.
        case badHeader
        /// A tensor entry or the metadata has a missing, extra or mistyped field.
        case badEntry
        case unknownDType
        /// A shape value that is negative, not an integer, or whose product overflows.
        case badShape
        /// Offsets out of range, reversed, or not covering shape × dtype size bytes.
        case badOffsets
        /// Two tensors share bytes, bytes no tensor uses, or two entries share a name.
        case overlap, unreferencedBytes, duplicateName
        case checksumMismatch, missingChecksum
        /// Loading into a known layout: a tensor is absent, or its dtype or shape differs.
        case missingTensor, layoutMismatch
    }

    /// What went wrong.
    public let kind: Kind
    /// The file (its path as given) the error is about.
    public let file: String
    /// A sentence naming the offending values.
    public let detail: String

    /// An error of `kind` about `file`.
    public init(_ kind: Kind, file: String, _ detail: String) {
        self.kind = kind
        self.file = file
        self.detail = detail
    }

    /// "<file>: <detail>", or the detail alone when no file is involved.
    public var description: String { file.isEmpty ? detail : "\(file): \(detail)" }
}
