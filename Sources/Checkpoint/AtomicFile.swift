// Whole-file reads and crash-safe writes (FileIO), with errors as `CheckpointError`s.
import FileIO

/// Writes `bytes` to `path` so that a crash at any point leaves either the old file or the complete new one
/// (FileIO's `writeFileAtomically`: temporary file, fsync, rename, fsync of the folder). Throws `.unwritable`.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    do { try writeFileAtomically(bytes, to: path) } catch {
        throw CheckpointError(.unwritable, file: path, error.detail)
    }
}

/// The bytes of the regular file at `path`; throws `.missingFile`, `.unreadable` or `.truncated`.
func readAll(_ path: String) throws -> [UInt8] {
    do { return try readFileBytes(path) } catch {
        switch error.kind {
        case .missing: throw CheckpointError(.missingFile, file: path, error.detail)
        case .shrank: throw CheckpointError(.truncated, file: path, error.detail)
        case .unreadable, .unwritable: throw CheckpointError(.unreadable, file: path, error.detail)
        }
    }
}
