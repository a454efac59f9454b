// The output: one table of rows (a figure, its baseline, the ratio, the target), then the
// notes of each item, and the formats of the figures.

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
    var ratio: Double?
    var target: String
    /// nil: no target (informational); true/false: met or not.
    var pass: Bool? = nil
}

func printTable(_ rows: [Row]) {
    let header = ["measurement", "ours", "baseline", "ratio", "target", "result"]
    let cells = byItem(rows, \.name).map { r in
        [
            r.name, r.ours, r.baseline, r.ratio.map { String(format: "%.2fx", $0) } ?? "n/a", r.target,
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
    /// A row against another tool (gdb, scanmem): informational unless `atLeast` is given,
    /// "n/a" when that tool did not run.
    mutating func headline(
        _ name: String, ours: Double, theirs: [ChildResult], tool: String, target: String = "-",
        atLeast: Double? = nil
    ) {
        guard !theirs.isEmpty else {
            rows.append(Row(name: name, ours: seconds(ours), baseline: "n/a (\(tool))", ratio: nil, target: target))
            return
        }
        let ratio = median(theirs.map(\.seconds)) / ours
        rows.append(
            Row(
                name: name, ours: seconds(ours), baseline: "\(seconds(median(theirs.map(\.seconds)))) (\(tool))",
                ratio: ratio, target: target, pass: atLeast.map { ratio >= $0 }))
    }

    /// The peak memory row: ours must stay under 64 MiB; the other tool's peak beside it.
    mutating func peakMemory(_ name: String, ours: [ChildResult], theirs: [ChildResult], tool: String) {
        let peak = ours.map(\.maxRSSKiB).max()!
        let theirPeak = theirs.map(\.maxRSSKiB).max()
        rows.append(
            Row(
                name: name, ours: mib(peak), baseline: theirPeak.map { "\(mib($0)) (\(tool))" } ?? "n/a (\(tool))",
                ratio: theirPeak.map { Double($0) / Double(peak) }, target: "< 64 MiB", pass: peak < 64 * 1024))
    }

    /// The note of an item's spreads: "N: spread (min–max of R): ours …, C …", sides without runs left out.
    mutating func spreads(_ item: Int, _ sides: [(String, [ChildResult])], suffix: String = "") {
        let shown = sides.filter { !$0.1.isEmpty }.map { "\($0.0) \(spread($0.1.map(\.seconds)))" }
        details.append("\(item): spread (min–max of \(opts.reps)): " + shown.joined(separator: ", ") + suffix)
    }
}
