import ArgumentParser
import Foundation

/// What the commands that write results outside a training run (`export`, `embed`, `eval --out`, `analyze`) do with
/// an output that is already there: they refuse it unless `--force`, so that no earlier result is replaced by
/// mistake. Checked in `validate()`, which every rank runs, so every rank exits with the usage error.
enum OutputGuard {
    /// Throws unless a file can be written at `path`: not a folder, and either absent or `force`.
    static func file(_ path: String, force: Bool, option: String = "--out") throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        if isDirectory.boolValue { throw ValidationError("\(option) \(path) is a folder") }
        if !force { throw ValidationError("\(option) \(path) exists; give --force to replace it") }
    }

    /// Throws unless `path` can take a command's output files: not a file, and either absent, empty or `force`
    /// (which replaces the files of the same names and keeps the others).
    static func folder(_ path: String, force: Bool, option: String = "--out") throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        if !isDirectory.boolValue { throw ValidationError("\(option) \(path) is a file, not a folder") }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        if !force && !entries.isEmpty {
            throw ValidationError("\(option) \(path) already holds \(entries.count) file(s); give --force to replace "
                                  + "the ones this command writes, or choose another folder")
        }
    }
}
