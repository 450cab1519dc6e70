// The process's resident memory, for `dtrain bench` and memory tests. Linux reads /proc/self/status (VmRSS, VmHWM);
// elsewhere only the peak is known (getrusage), and it cannot be reset.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Resident set size of this process: now, at its peak, and a reset of the peak.
///
/// Usage (e.g. the extra memory of one phase):
///
///     _ = ProcessMemory.resetPeak()                  // false: not permitted, the peak is since process start
///     let before = ProcessMemory.currentResidentBytes() ?? 0
///     runThePhase()
///     let extra = (ProcessMemory.peakResidentBytes() ?? 0) - before
///
/// Values are bytes (the kernel counts in kB, so they are multiples of 1024), exact to about 64 pages per thread
/// (the kernel batches its per-thread counters), so compare with a slack of a MiB. Pages count once touched: a buffer
/// that is allocated but never written adds nothing. The reads allocate (a few hundred bytes), so do not call them
/// inside an allocation-counted region.
public enum ProcessMemory {
    /// The resident set size now (Linux: VmRSS), or nil where it cannot be read.
    public static func currentResidentBytes() -> Int? {
        #if os(Linux)
        return statusField("VmRSS:")
        #else
        return nil
        #endif
    }

    /// The peak resident set size since the process started or the last successful `resetPeak()` (Linux: VmHWM;
    /// elsewhere getrusage's ru_maxrss, never reset), or nil where it cannot be read.
    public static func peakResidentBytes() -> Int? {
        #if os(Linux)
        return statusField("VmHWM:")
        #else
        var usage = rusage()
        guard getrusage(RUSAGE_SELF, &usage) == 0 else { return nil }
        return Int(usage.ru_maxrss)  // bytes on Darwin
        #endif
    }

    /// Resets the peak to the current resident size (Linux: writes "5" to /proc/self/clear_refs). Returns false when
    /// that is not possible (not Linux, no permission, an old kernel); the peak then keeps counting from the start.
    @discardableResult
    public static func resetPeak() -> Bool {
        #if os(Linux)
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let written = "5".withCString { write(fd, $0, 1) }
        return written == 1
        #else
        return false
        #endif
    }

    /// The resident size now and its peak from one read of /proc/self/status (Linux; nil elsewhere or unreadable).
    /// One read gives peak ≥ current; two separate reads need not, when other threads free memory in between (the
    /// kernel raises its recorded peak only on some paths, and computes VmHWM as max(that, the current size)).
    public static func residentSnapshot() -> (current: Int, peak: Int)? {
        #if os(Linux)
        guard let text = readProcFile("/proc/self/status"), let current = field("VmRSS:", in: text),
              let peak = field("VmHWM:", in: text) else { return nil }
        return (current, peak)
        #else
        return nil
        #endif
    }

    /// The value in kB of the line "`key` <n> kB" of /proc/self/status, in bytes.
    static func statusField(_ key: String) -> Int? {
        readProcFile("/proc/self/status").flatMap { field(key, in: $0) }
    }

    /// The value in kB of the line "`key` <n> kB" of a /proc status text, in bytes.
    static func field(_ key: String, in text: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            let fields = line.dropFirst(key.count).split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let kB = fields.first.flatMap({ Int($0) }) else { return nil }
            return kB * 1024
        }
        return nil
    }

    /// The whole text of a /proc file (whose size `stat` reports as 0, so it is read until end of file).
    static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return nil }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
