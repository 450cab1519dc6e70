// Resident memory of this process, from Linux's /proc/self/status (VmRSS, VmHWM), and the reset of the peak
// (writing "5" to /proc/self/clear_refs, Linux ≥ 4.0), so one process can measure the peaks of two phases.
import Foundation

/// This process's resident memory.
public enum ProcessMemory {
    /// Peak resident set size in bytes since the start or the last `resetPeak()` (VmHWM), or nil where unknown.
    public static func peakResidentBytes() -> Int? { statusField("VmHWM:") }

    /// Current resident set size in bytes (VmRSS), or nil where unknown.
    public static func currentResidentBytes() -> Int? { statusField("VmRSS:") }

    /// Resets the peak to the current resident size; false when the kernel does not allow it.
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do { try handle.write(contentsOf: Data("5".utf8)) } catch { return false }
        return true
    }

    /// A "Name:   1234 kB" line of /proc/self/status, in bytes.
    static func statusField(_ name: String) -> Int? {
        guard let data = FileManager.default.contents(atPath: "/proc/self/status") else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name) {
            let parts = line.dropFirst(name.count).split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let value = parts.first.flatMap({ Int($0) }) else { return nil }
            return parts.count > 1 && parts[1] == "kB" ? value * 1024 : value
        }
        return nil
    }
}
