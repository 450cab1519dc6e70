// Whole-file reads (FileIO), with errors as `DataError`s.
import FileIO

/// The bytes of the file at `path`; throws `.missingFile` (full path in the message) or `.unreadable`.
/// The allocation is the size `fstat` reports, so it is bounded by what is actually on disk.
public func readFileBytes(_ path: String) throws -> [UInt8] {
    do { return try FileIO.readFileBytes(path) } catch {
        throw DataError(error.kind == .missing ? .missingFile : .unreadable, file: path, error.detail)
    }
}
