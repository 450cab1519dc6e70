// Whole-file reads and crash-safe writes through the C library, shared by the dataset readers, the checkpoint
// format and the run outputs. Each caller maps `FileIOError` into its own error type.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed file operation: what went wrong, the path, and the system's text.
public struct FileIOError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// No such file (or a path component is not a folder).
        case missing
        /// It exists but cannot be opened, inspected or read, or is not a regular file.
        case unreadable
        /// It changed size while being read.
        case shrank
        /// It cannot be written, synced or renamed into place.
        case unwritable
    }
    public let kind: Kind
    public let path: String
    public let detail: String
    public init(_ kind: Kind, path: String, _ detail: String) { self.kind = kind; self.path = path; self.detail = detail }
    public var description: String { "\(path): \(detail)" }
}

/// The text of the current `errno`.
private func errnoText() -> String { String(cString: strerror(errno)) }

/// Whether a regular file exists at `path`.
public func fileExists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

/// The folder holding `path` ("." when it has none).
public func parentDirectory(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let parent = String(path[..<slash])
    return parent.isEmpty ? "/" : parent
}

/// The bytes of the regular file at `path`. Allocates the size `fstat` reports, so never more than what is on disk.
public func readFileBytes(_ path: String) throws(FileIOError) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    if fd < 0 {
        if errno == ENOENT || errno == ENOTDIR { throw FileIOError(.missing, path: path, "no such file") }
        throw FileIOError(.unreadable, path: path, "cannot open: \(errnoText())")
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw FileIOError(.unreadable, path: path, "cannot stat: \(errnoText())") }
    guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileIOError(.unreadable, path: path, "not a regular file") }
    let size = Int(info.st_size)
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    var failure: FileIOError?
    bytes.withUnsafeMutableBytes { raw in
        while done < size {
            let got = read(fd, raw.baseAddress! + done, size - done)
            if got < 0 {
                if errno == EINTR { continue }
                failure = FileIOError(.unreadable, path: path, "read failed: \(errnoText())")
                return
            }
            if got == 0 { break }
            done += got
        }
    }
    if let failure { throw failure }
    guard done == size else {
        throw FileIOError(.shrank, path: path, "file shrank while reading: expected \(size) bytes, got \(done)")
    }
    return bytes
}

/// Writes `bytes` to `path` so that a crash at any point leaves either the old file or the complete new one:
/// write a temporary file in the same folder, fsync it, rename it over `path`, then fsync the folder so the rename
/// itself is durable. The temporary file is removed on failure.
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws(FileIOError) {
    let temporary = path + ".tmp.\(getpid())"
    func fail(_ what: String) -> FileIOError { FileIOError(.unwritable, path: path, "\(what): \(errnoText())") }
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw fail("cannot create \(temporary)") }
    var done = 0
    var failure: FileIOError?
    bytes.withUnsafeBytes { raw in
        while done < raw.count {
            let wrote = write(fd, raw.baseAddress! + done, raw.count - done)
            if wrote < 0 {
                if errno == EINTR { continue }
                failure = fail("write to \(temporary) failed")
                return
            }
            done += wrote
        }
    }
    if failure == nil && fsync(fd) != 0 { failure = fail("fsync of \(temporary) failed") }
    if close(fd) != 0 && failure == nil { failure = fail("close of \(temporary) failed") }
    if failure == nil && rename(temporary, path) != 0 { failure = fail("cannot rename \(temporary) to \(path)") }
    if let failure {
        unlink(temporary)
        throw failure
    }
    let directory = parentDirectory(path)
    let dirFD = open(directory, O_RDONLY | O_DIRECTORY)
    guard dirFD >= 0 else { throw fail("cannot open folder \(directory) to fsync it") }
    defer { close(dirFD) }
    guard fsync(dirFD) == 0 else { throw fail("fsync of folder \(directory) failed") }
}

/// Whether a folder exists at `path`.
public func directoryExists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

/// Creates the folder `path` and any missing parents (as `mkdir -p`); throws a `FileIOError` naming the path that
/// could not be made and the system's reason ("Permission denied", "Not a directory", "File exists" for a file in
/// the way).
public func createDirectories(_ path: String) throws(FileIOError) {
    if directoryExists(path) { return }
    let parent = parentDirectory(path)
    if parent != path && parent != "." && parent != "/" && !directoryExists(parent) {
        try createDirectories(parent)
    }
    if mkdir(path, 0o755) != 0 && errno != EEXIST {
        throw FileIOError(.unwritable, path: path, "cannot create the folder: \(errnoText())")
    }
    guard directoryExists(path) else {
        throw FileIOError(.unwritable, path: path, "cannot create the folder: a file of that name is in the way")
    }
}
