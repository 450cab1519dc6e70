// Errors raised while reading or sampling a dataset: each one names the file (or setting) and what is wrong with it.

/// An environment or user error from the Data module: a missing or corrupt file, or an impossible sampling setup.
/// `description` reads "<file>: <detail>", e.g. "train-images-idx3-ubyte.gz: truncated: header says …".
public struct DataError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The category, for callers and tests that branch on it.
    public enum Kind: String, Sendable {
        case missingFile, unreadable, badMagic, badDataType, badDimensions, truncated, trailingBytes
        case countMismatch, labelOutOfRange, badRecordSize, corruptGzip, unknownDataset, badSampling
        case corruptImage, emptyClass, mixedChannels, mixedSizes
    }

    /// What went wrong.
    public let kind: Kind
    /// The file (a name, or the full path when the path itself is the problem) or the setting the error is about.
    public let file: String
    /// A sentence naming the offending values.
    public let detail: String

    /// An error of `kind` about `file`.
    public init(_ kind: Kind, file: String, _ detail: String) {
        self.kind = kind
        self.file = file
        self.detail = detail
    }

    public var description: String { file.isEmpty ? detail : "\(file): \(detail)" }
}

/// The last component of `path` ("dir/train.bin" → "train.bin"), which error messages use to name a file.
func fileName(_ path: String) -> String {
    path.split(separator: "/").last.map(String.init) ?? path
}
