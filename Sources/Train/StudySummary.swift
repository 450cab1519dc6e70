// DIR/summary.md of a study: runs grouped by every varying grid axis except the seed, accuracy as mean ± sample std
// over the group's successful runs (in %), then pivot tables of two varying axes (loss × batch size, like Table 3 of
// Long et al., when both vary), one table per combination of any further varying axes. Every accuracy names the
// evaluation that produced it.
import Foundation

/// Mean and sample standard deviation (n − 1; 0 for a single value) of `values`.
public func meanAndStd(_ values: [Double]) -> (mean: Double, std: Double) {
    guard !values.isEmpty else { return (.nan, .nan) }
    let mean = values.reduce(0, +) / Double(values.count)
    guard values.count > 1 else { return (mean, 0) }
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
    return (mean, variance.squareRoot())
}

/// The runs of one group: the same value on every varying axis but the seed.
struct StudyGroup {
    /// (axis, value) of the varying non-seed axes.
    let key: [String: String]
    var records: [StudyRecord]

    var ok: [StudyRecord] { records.filter(\.ok) }

    /// Accuracy of evaluation `mode` (nil: each run's first evaluation) as "85.12 ± 0.31 (head)" ("85.12 (head)" for
    /// a single run), noting how many runs succeeded when some failed and how many were run when fewer than the
    /// grid's `expected` seeds have finished (a study still running); "failed" when none succeeded.
    func cell(_ mode: String? = nil, expected: Int) -> String {
        let runs = ok.filter { r in mode == nil || r.summary?.accuracies[mode!] != nil }
        guard !runs.isEmpty else { return records.allSatisfy(\.ok) ? "–" : "failed" }
        let values = runs.map { r in 100 * (mode.map { r.summary!.accuracies[$0]! } ?? r.summary!.testAccuracy) }
        let (m, s) = meanAndStd(values)
        let evals = Set(runs.map { mode ?? $0.summary!.eval }).sorted().joined(separator: "/")
        var count = runs.count == records.count ? "" : ", \(runs.count)/\(records.count) ok"
        if records.count < expected { count += ", \(records.count) of \(expected) seeds run" }
        // One run has no spread to report: print its value alone rather than a "± 0.00" nobody measured.
        if values.count == 1 { return String(format: "%.2f (%@%@)", m, evals, count) }
        return String(format: "%.2f ± %.2f (%@%@)", m, s, evals, count)
    }

    /// Mean of a summary value over the successful runs, formatted, or "–".
    func mean(_ value: (RunSummary) -> Double, format: String) -> String {
        let v = ok.compactMap(\.summary).map(value)
        return v.isEmpty ? "–" : String(format: format, meanAndStd(v).mean)
    }
}

/// The markdown of DIR/summary.md for `records` (grid order) of `grid`; `otherRuns` finished runs of other grids in
/// the same folder are counted (they are in results.csv, not summarised here).
public func studySummaryMarkdown(_ records: [StudyRecord], grid: StudyGrid, otherRuns: Int = 0) -> String {
    let varying = grid.axes.filter { $0.values.count > 1 && $0.name != "seed" }.map(\.name)
    let seeds = grid.axes.first { $0.name == "seed" }?.values.count ?? 1
    var groups = [StudyGroup]()
    for r in records {
        let key = Dictionary(uniqueKeysWithValues: varying.map { ($0, r.parameters[$0] ?? "") })
        if let g = groups.firstIndex(where: { $0.key == key }) { groups[g].records.append(r) } else {
            groups.append(StudyGroup(key: key, records: [r]))
        }
    }
    // An axis's values in numeric order when they are all numbers (batch 64,256,32 → 32,64,256), else as given.
    func sortedValues(_ axis: String) -> [String] {
        let values = grid.axes.first { $0.name == axis }!.values
        let numbers = values.compactMap(Double.init)
        guard numbers.count == values.count else { return values }
        return zip(numbers, values).sorted { $0.0 < $1.0 }.map(\.1)
    }
    let fixed = grid.axes.filter { $0.values.count == 1 }.map { "\($0.name)=\($0.values[0])" }
    var md = "# Study summary\n\n"
    md += "\(records.count) of \(grid.count) run(s) recorded, \(records.filter(\.ok).count) ok, "
        + "\(records.filter { !$0.ok }.count) failed. Grid: "
        + grid.axes.map { "\($0.name)=\($0.values.joined(separator: ","))" }.joined(separator: " ") + ".\n"
    if otherRuns > 0 {
        md += "The folder also holds \(otherRuns) run(s) of other grids or settings: they are in results.csv, not "
            + "in this summary of the last grid run.\n"
    }
    if let c = records.first?.config {
        md += "Common settings: dataset \(c.dataset), model \(c.model), epochs \(c.epochs)"
            + (c.trainLimit.map { ", train-limit \($0)" } ?? "") + (c.testLimit.map { ", test-limit \($0)" } ?? "")
            + (fixed.isEmpty ? "" : ", " + fixed.joined(separator: ", ")) + ".\n"
    }
    md += "\nTest accuracy in %, mean ± sample std over \(seeds) seed(s); the evaluation that produced each number is "
        + "in parentheses (head = trained linear head, linear-probe = logistic regression on frozen embeddings, "
        + "knn = cosine k-NN).\n\n"

    // All groups.
    let modes = ["head", "linear-probe", "knn"].filter { m in
        records.contains { r in (r.summary?.accuracies.count ?? 0) > 1 && r.summary?.accuracies[m] != nil }
    }
    md += "## All groups\n\n"
    let header = varying + ["runs", "accuracy"] + modes.map { "acc. \($0)" } + ["final loss", "images/s", "s/run"]
    md += markdownRow(header) + markdownRow(header.map { _ in "---" })
    for g in groups {
        md += markdownRow(varying.map { g.key[$0]! }
                          + ["\(g.ok.count)/\(g.records.count)", g.cell(expected: seeds)]
                          + modes.map { g.cell($0, expected: seeds) }
                          + [g.mean(\.finalLoss, format: "%.4f"), g.mean(\.imagesPerS, format: "%.0f"),
                             String(format: "%.1f", meanAndStd(g.records.map(\.seconds)).mean)])
    }

    // Pivot tables.
    if varying.count >= 2 {
        let rowAxis = varying.contains("loss") ? "loss" : varying[0]
        let colAxis = varying.contains("batch-size") && rowAxis != "batch-size" ? "batch-size"
            : varying.first { $0 != rowAxis }!
        let others = varying.filter { $0 != rowAxis && $0 != colAxis }
        let rowValues = sortedValues(rowAxis), colValues = sortedValues(colAxis)
        var sections = [[String: String]]()
        for g in groups {
            let k = g.key.filter { others.contains($0.key) }
            if !sections.contains(k) { sections.append(k) }
        }
        md += "\n## \(rowAxis) × \(colAxis)\n"
        for section in sections {
            if !others.isEmpty {
                md += "\n### " + others.map { "\($0) = \(section[$0]!)" }.joined(separator: ", ") + "\n"
            }
            md += "\n" + markdownRow(["\(rowAxis) \\ \(colAxis)"] + colValues)
            md += markdownRow(Array(repeating: "---", count: colValues.count + 1))
            for rv in rowValues {
                let cells = colValues.map { cv -> String in
                    var key = section
                    key[rowAxis] = rv
                    key[colAxis] = cv
                    return groups.first { $0.key == key }?.cell(expected: seeds) ?? "–"
                }
                md += markdownRow([rv] + cells)
            }
        }
    } else if let axis = varying.first {
        md += "\n## By \(axis)\n\n" + markdownRow([axis, "accuracy"]) + markdownRow(["---", "---"])
        for v in sortedValues(axis) {
            md += markdownRow([v, groups.first { $0.key[axis] == v }?.cell(expected: seeds) ?? "–"])
        }
    }

    let failures = records.filter { !$0.ok }
    if !failures.isEmpty {
        md += "\n## Failed runs\n\n"
        for f in failures { md += "- `\(f.run)`: \(f.failure ?? "?")\n" }
    }
    return md
}

/// One markdown table row (pipes in cells escaped).
func markdownRow(_ cells: [String]) -> String {
    "| " + cells.map { $0.replacingOccurrences(of: "|", with: "\\|") }.joined(separator: " | ") + " |\n"
}
