// The output: one table of rows (a figure, its baseline, the ratios of wall and CPU time, the
// target), then the notes of each item, and the formats of the figures.

import Foundation

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

func seconds(_ s: Double) -> String {
    s < 0.05 ? String(format: "%.2f ms", s * 1e3) : String(format: "%.3f s", s)
}

func mib(_ kib: Int) -> String { String(format: "%.1f MiB", Double(kib) / 1024) }

func gbps(_ bytes: UInt64, _ s: Double) -> String { String(format: "%.1f GB/s", Double(bytes) / s / 1e9) }

struct Row {
    var name: String
    var ours: String
    var baseline: String
    /// Baseline / ours, of the medians of wall-clock time (or of peak memory, of disk used).
    var ratio: Double?
    /// Baseline / ours, of the medians of CPU time (user + system).
    var cpuRatio: Double? = nil
    var target: String
    /// nil: no target (informational); true/false: met or not, on the median ratio.
    var pass: Bool? = nil
}

func printTable(_ rows: [Row]) {
    let header = ["measurement", "ours: median (min–max), cpu", "baseline", "ratio", "cpu ratio", "target", "result"]
    let cells = byItem(rows, \.name).map { r in
        [
            r.name, r.ours, r.baseline, r.ratio.map { String(format: "%.2fx", $0) } ?? "n/a",
            r.cpuRatio.map { String(format: "%.2fx", $0) } ?? "-", r.target,
            r.pass.map { $0 ? "PASS" : "FAIL" } ?? "-",
        ]
    }
    var widths = header.map(\.count)
    for row in cells { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ c: [String]) -> String {
        c.enumerated().map { i, s in s.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
            .joined(separator: " | ")
    }
    emit(line(header))
    emit(widths.map { String(repeating: "-", count: $0) }.joined(separator: "-|-"))
    for row in cells { emit(line(row)) }
}

/// By item number (each name starts with it), keeping the order within an item.
func byItem<T>(_ elements: [T], _ name: (T) -> String) -> [T] {
    elements.enumerated().sorted {
        (name($0.element).prefix(1), $0.offset) < (name($1.element).prefix(1), $1.offset)
    }.map(\.element)
}

extension Bench {
    /// A row of ours against a baseline: passes when the median ratio (baseline / ours, of
    /// wall-clock time) is at least `atLeast`.
    mutating func ratioRow(
        _ name: String, ours: Samples, baseline: Samples, label: String, target: String, atLeast: Double,
        suffix: String = ""
    ) {
        let ratio = baseline.wallMedian / ours.wallMedian
        rows.append(
            Row(
                name: name, ours: ours.figure + suffix, baseline: "\(baseline.figure) (\(label))", ratio: ratio,
                cpuRatio: baseline.cpuMedian / ours.cpuMedian, target: target, pass: ratio >= atLeast))
    }

    /// A row against another tool (gdb, scanmem): informational unless `atLeast` is given,
    /// "n/a" when that tool did not run.
    mutating func headline(
        _ name: String, ours: Samples, theirs: Samples, tool: String, target: String = "-", atLeast: Double? = nil
    ) {
        guard !theirs.isEmpty else {
            rows.append(Row(name: name, ours: ours.figure, baseline: "n/a (\(tool))", ratio: nil, target: target))
            return
        }
        let ratio = theirs.wallMedian / ours.wallMedian
        rows.append(
            Row(
                name: name, ours: ours.figure, baseline: "\(theirs.figure) (\(tool))", ratio: ratio,
                cpuRatio: theirs.cpuMedian / ours.cpuMedian, target: target, pass: atLeast.map { ratio >= $0 }))
    }

    /// The peak memory row: ours must stay under 64 MiB (plus `allowance` bytes: a file the
    /// command holds in memory as it writes it); the other tool's peak beside it (none: `tool` nil).
    mutating func peakMemory(_ name: String, ours: Samples, theirs: Samples, tool: String?, allowance: UInt64 = 0) {
        let peak = ours.maxRSSKiB.max()!
        let theirPeak = theirs.maxRSSKiB.max()
        let baseline = tool.map { tool in theirPeak.map { "\(mib($0)) (\(tool))" } ?? "n/a (\(tool))" } ?? "-"
        let limit = 64 << 20 + allowance
        rows.append(
            Row(
                name: name, ours: mib(peak), baseline: baseline, ratio: theirPeak.map { Double($0) / Double(peak) },
                target: allowance == 0 ? "< 64 MiB" : "< 64 MiB + state", pass: UInt64(peak) * 1024 < limit))
    }

    /// Runs one item between two lines of notes with the machine's load, before and after.
    mutating func item(_ number: Int, _ what: String, _ body: (inout Bench) -> Void) {
        let before = loadAverage()
        note("\(number) \(what)")
        body(&self)
        details.append("\(number): \(what): load \(before) before, \(loadAverage()) after")
    }
}
