// Whole-file reads through the C library (the Data module stays free of Foundation, whose `Data` type would
// collide with the module's name).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether a regular file exists at `path`.
public func fileExists(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

/// The bytes of the file at `path`; throws `.missingFile` (full path in the message) or `.unreadable`.
/// The allocation is the size `fstat` reports, so it is bounded by what is actually on disk.
public func readFileBytes(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    if fd < 0 {
        let code = errno
        if code == ENOENT || code == ENOTDIR { throw DataError(.missingFile, file: path, "no such file") }
        throw DataError(.unreadable, file: path, "cannot open: \(String(cString: strerror(code)))")
    }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
        throw DataError(.unreadable, file: path, "cannot stat: \(String(cString: strerror(errno)))")
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
        throw DataError(.unreadable, file: path, "not a regular file")
    }
    let size = Int(info.st_size)
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    try bytes.withUnsafeMutableBytes { raw in
        while done < size {
            let got = read(fd, raw.baseAddress! + done, size - done)
            if got < 0 {
                if errno == EINTR { continue }
                throw DataError(.unreadable, file: path, "read failed: \(String(cString: strerror(errno)))")
            }
            if got == 0 { break }
            done += got
        }
    }
    guard done == size else {
        throw DataError(.unreadable, file: path, "file shrank while reading: expected \(size) bytes, got \(done)")
    }
    return bytes
}
