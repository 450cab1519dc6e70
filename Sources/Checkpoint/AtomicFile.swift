// Whole-file reads and crash-safe writes through the C library.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The text of the current `errno`.
private func errnoText() -> String { String(cString: strerror(errno)) }

/// The folder holding `path` ("." when it has none).
func parentDirectory(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    let parent = String(path[..<slash])
    return parent.isEmpty ? "/" : parent
}

/// Writes `bytes` to `path` so that a crash at any point leaves either the old file or the complete new one:
/// write a temporary file in the same folder, fsync it, rename it over `path`, then fsync the folder so the rename
/// itself is durable. Throws `.unwritable` naming the path and the system error; the temporary file is removed.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let temporary = path + ".tmp.\(getpid())"
    func fail(_ what: String) -> CheckpointError {
        CheckpointError(.unwritable, file: path, "\(what): \(errnoText())")
    }
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw fail("cannot create \(temporary)") }
    var closed = false
    defer {
        if !closed {
            close(fd)
            unlink(temporary)
        }
    }
    var done = 0
    try bytes.withUnsafeBytes { raw in
        while done < raw.count {
            let wrote = write(fd, raw.baseAddress! + done, raw.count - done)
            if wrote < 0 {
                if errno == EINTR { continue }
                throw fail("write to \(temporary) failed")
            }
            done += wrote
        }
    }
    guard fsync(fd) == 0 else { throw fail("fsync of \(temporary) failed") }
    closed = true
    guard close(fd) == 0 else {
        unlink(temporary)
        throw fail("close of \(temporary) failed")
    }
    guard rename(temporary, path) == 0 else {
        let error = fail("cannot rename \(temporary) to \(path)")
        unlink(temporary)
        throw error
    }
    let directory = parentDirectory(path)
    let dirFD = open(directory, O_RDONLY | O_DIRECTORY)
    guard dirFD >= 0 else { throw fail("cannot open folder \(directory) to fsync it") }
    defer { close(dirFD) }
    guard fsync(dirFD) == 0 else { throw fail("fsync of folder \(directory) failed") }
}

/// The bytes of the regular file at `path`; throws `.missingFile` or `.unreadable`. Allocates the size `fstat`
/// reports, so never more than what is on disk.
func readAll(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    if fd < 0 {
        if errno == ENOENT || errno == ENOTDIR { throw CheckpointError(.missingFile, file: path, "no such file") }
        throw CheckpointError(.unreadable, file: path, "cannot open: \(errnoText())")
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
        throw CheckpointError(.unreadable, file: path, "cannot stat: \(errnoText())")
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
        throw CheckpointError(.unreadable, file: path, "not a regular file")
    }
    let size = Int(info.st_size)
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    try bytes.withUnsafeMutableBytes { raw in
        while done < size {
            let got = read(fd, raw.baseAddress! + done, size - done)
            if got < 0 {
                if errno == EINTR { continue }
                throw CheckpointError(.unreadable, file: path, "read failed: \(errnoText())")
            }
            if got == 0 { break }
            done += got
        }
    }
    guard done == size else {
        throw CheckpointError(.truncated, file: path, "file shrank while reading: expected \(size) bytes, got \(done)")
    }
    return bytes
}
