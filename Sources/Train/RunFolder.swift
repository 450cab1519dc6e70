// Ownership of an output folder. A run (rank 0) holds DIR/.dtrain.lock for its whole life: a small text file with
// the holder's host, pid, start time and command, created with O_EXCL so two jobs cannot both hold it. A lock left
// by a process that is gone (same host, pid no longer running dtrain) is taken over with a note; a live holder, or
// one on another host (whose pid cannot be checked from here), makes the second job stop with a message naming it.
// A folder that already holds a run (checkpoint or metrics) is not trained into again unless the run is resumed or
// explicitly overwritten.
import Checkpoint
import FileIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An output folder that cannot be used: held by another job, holding a run already, or not writable.
public struct OutputFolderError: Error, CustomStringConvertible, Sendable {
    public enum Kind: String, Sendable {
        /// Another live job holds the folder's lock (an I/O condition: exit 74).
        case locked
        /// The folder holds a finished or interrupted run and neither --resume nor --overwrite was given (usage: 64).
        case occupied
        /// The folder or its lock file cannot be created or written (exit 74).
        case unwritable
    }
    public let kind: Kind
    public let message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }
}

/// The name of the lock file inside an output folder.
public let lockFileName = ".dtrain.lock"

/// The lock on one output folder, held until `release()` (or until the process ends; a dead holder's lock is
/// taken over by the next run on the same host).
public final class RunFolderLock {
    /// The lock file's path.
    public let path: String
    /// What this process wrote into it (released only while it still holds exactly this).
    let contents: String
    /// "took over the lock of …" when a stale lock was replaced, else nil.
    public let note: String?
    private var held = true

    private init(path: String, contents: String, note: String?) {
        self.path = path
        self.contents = contents
        self.note = note
    }

    /// Creates `directory` if needed and takes its lock; throws `OutputFolderError` (.locked naming the holder,
    /// .unwritable with the path and the system's reason).
    public static func acquire(directory: String, command: String = "dtrain") throws -> RunFolderLock {
        do { try createDirectories(directory) } catch {
            throw OutputFolderError(.unwritable, "cannot use output folder \(directory): \(error.detail)")
        }
        let path = directory + "/" + lockFileName
        let me = LockHolder.current(command: command)
        var note: String?
        for _ in 0..<3 {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            if fd >= 0 {
                let text = me.text
                let ok = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
                    == text.utf8.count
                close(fd)
                guard ok else {
                    unlink(path)
                    throw OutputFolderError(.unwritable, "cannot write the lock file \(path): "
                                            + String(cString: strerror(errno)))
                }
                return RunFolderLock(path: path, contents: text, note: note)
            }
            guard errno == EEXIST else {
                throw OutputFolderError(.unwritable, "cannot create the lock file \(path): "
                                        + String(cString: strerror(errno)))
            }
            guard let old = try? String(contentsOfFile: path, encoding: .utf8) else { continue }  // just released
            let holder = LockHolder(text: old)
            if let holder, holder.host == me.host, !holder.isAlive {
                // Re-read before removing, so a lock another job has just taken is not removed.
                guard (try? String(contentsOfFile: path, encoding: .utf8)) == old else { continue }
                unlink(path)
                note = "took over the lock of \(holder.summary), which is no longer running"
                continue
            }
            let who = holder?.summary ?? "an unknown job (unreadable lock file)"
            throw OutputFolderError(.locked, "output folder \(directory) is in use by \(who); wait for that job to "
                                    + "end or use another --out (if it is no longer running, remove \(path))")
        }
        throw OutputFolderError(.locked, "output folder \(directory): could not take the lock \(path) (another job "
                                + "keeps taking it)")
    }

    /// Removes the lock file if it is still this process's.
    public func release() {
        guard held else { return }
        held = false
        if (try? String(contentsOfFile: path, encoding: .utf8)) == contents { unlink(path) }
    }

    deinit { release() }
}

/// Who holds a lock: the fields of a lock file.
struct LockHolder: Equatable {
    var host: String
    var pid: Int32
    var started: String
    var command: String

    /// This process.
    static func current(command: String) -> LockHolder {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let formatter = ISO8601DateFormatter()
        return LockHolder(host: host, pid: getpid(), started: formatter.string(from: Date()), command: command)
    }

    /// Parses "key=value" lines; nil when host or pid is missing.
    init?(text: String) {
        var fields = [String: String]()
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            fields[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        guard let host = fields["host"], let pid = fields["pid"].flatMap({ Int32($0) }) else { return nil }
        self.init(host: host, pid: pid, started: fields["started"] ?? "?", command: fields["command"] ?? "?")
    }

    init(host: String, pid: Int32, started: String, command: String) {
        self.host = host; self.pid = pid; self.started = started; self.command = command
    }

    /// The lock file's text.
    var text: String { "host=\(host)\npid=\(pid)\nstarted=\(started)\ncommand=\(command)\n" }

    /// "pid 1234 on host h (started 2025-…: dtrain train)".
    var summary: String { "pid \(pid) on host \(host) (started \(started): \(command))" }

    /// Whether the pid (on this host) is still the process that wrote the lock: a live, non-zombie process that
    /// started no later than the lock was written (a pid reused by a process started afterwards holds nothing).
    /// The program's name is not compared: a copied binary (`dtrain-new`) is the same program.
    var isAlive: Bool {
        if pid == getpid() { return true }
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        // A killed job's process can linger a moment as a zombie (state Z in /proc/<pid>/stat): it holds nothing.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")"), let state = stat[stat.index(after: close)...].split(separator: " ").first,
           state == "Z" || state == "X" {
            return false
        }
        guard let processStart = LockHolder.startTime(pid: pid),
              let written = ISO8601DateFormatter().date(from: started) else { return true }
        return processStart <= written.timeIntervalSince1970 + 2  // the lock's time has whole seconds
    }

    /// When process `pid` started, in seconds since 1970 (Linux: /proc/<pid>/stat's start time in clock ticks after
    /// boot plus /proc/stat's btime), or nil where unknown.
    static func startTime(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command: state is field 3, starttime field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]),
              let system = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let boot = Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) else { return nil }
        let hertz = Double(sysconf(Int32(_SC_CLK_TCK)))
        return hertz > 0 ? boot + ticks / hertz : nil
    }
}

/// A sentence describing the run `directory` holds ("a finished run (checkpoint at step 30 of 30)", "an
/// interrupted run (checkpoint at step 12 of 30)", "the metrics.jsonl of a run without a checkpoint"), or nil when
/// it holds none. Reads only the checkpoint's header.
public func existingRun(in directory: String) -> String? {
    let checkpoint = checkpointPath(directory: directory)
    if fileExists(checkpoint) {
        let meta = checkpointHeaderMetadata(path: checkpoint)
        if let step = meta["step"].flatMap({ Int($0) }), let total = meta["total_steps"].flatMap({ Int($0) }) {
            return step >= total ? "a finished run (checkpoint at step \(step) of \(total))"
                : "an interrupted run (checkpoint at step \(step) of \(total))"
        }
        return "a run (\(checkpoint))"
    }
    let metrics = directory + "/metrics.jsonl"
    var info = stat()
    if stat(metrics, &info) == 0, info.st_size > 0 { return "the metrics.jsonl of a run without a checkpoint" }
    return nil
}

/// The `__metadata__` strings of a safetensors file, read from its header only (empty when unreadable).
func checkpointHeaderMetadata(path: String) -> [String: String] {
    guard let handle = FileHandle(forReadingAtPath: path) else { return [:] }
    defer { try? handle.close() }
    let sizeBytes = handle.readData(ofLength: 8)
    guard sizeBytes.count == 8 else { return [:] }
    let size = sizeBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    guard size > 0, size < 100_000_000 else { return [:] }
    let header = handle.readData(ofLength: Int(size))
    guard let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any],
          let meta = object["__metadata__"] as? [String: String] else { return [:] }
    return meta
}

/// The run folder named by `--resume PATH`: PATH itself, or its folder when PATH is a checkpoint file.
public func resumeDirectory(_ path: String) -> String {
    if fileExists(path) && path.hasSuffix(".safetensors") { return parentDirectory(path) }
    var p = path
    while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
    return p
}
