// Items 4 and 5: `vmio-ptrace search --max 1` for the random fixture's needle against
// bench-c-search and scanmem's bytearray scan, and the search's peak memory.

import Foundation
import Glibc

extension Bench {
    mutating func search(
        pid: pid_t, base: UInt64, end: UInt64, needleHex: String, expected: UInt64, cli: String,
        scanmem: String?
    ) {
        let cSearch = built("bench-c-search")
        let length = end - base
        let spaced = stride(from: 0, to: needleHex.count, by: 2).map { i -> String in
            let s = needleHex.index(needleHex.startIndex, offsetBy: i)
            return String(needleHex[s..<needleHex.index(s, offsetBy: 2)])
        }.joined(separator: " ")
        let expectedText = hex(expected)
        var sides: [(Bool) -> ChildResult?] = [
            { _ in
                let r = runChecked(
                    [cSearch, String(pid), hex(base), String(length), needleHex, "1"], what: "bench-c-search")
                guard r.output.contains("hit \(expectedText)\n") else {
                    die("bench-c-search did not find \(expectedText):\n\(r.output)")
                }
                return r
            },
            { _ in
                let r = runChecked(
                    [
                        cli, "search", String(pid), "--hex", spaced, "--region", "\(hex(base))-\(hex(end))",
                        "--max", "1", "--json",
                    ], what: "vmio-ptrace search")
                guard r.output.contains("\"\(expectedText)\"") else {
                    die("vmio-ptrace search did not find \(expectedText):\n\(r.output)")
                }
                return r
            },
            { _ in
                // Before the overlap: the same search on one thread, in the same rounds.
                let r = runChecked(
                    [
                        "/usr/bin/env", "VMIO_ONE_THREAD=1", cli, "search", String(pid), "--hex", spaced, "--region",
                        "\(hex(base))-\(hex(end))", "--max", "1", "--json",
                    ], what: "vmio-ptrace search, one thread")
                guard r.output.contains("\"\(expectedText)\"") else {
                    die("vmio-ptrace search did not find \(expectedText):\n\(r.output)")
                }
                return r
            },
        ]
        if let side = scanmemSide(
            scanmem, pid: pid, holding: base, scan: "option scan_data_type bytearray;\(spaced)", expected: expected)
        {
            sides.append(side)
        }
        let results = compare(sides)
        let (c, ours, before) = (results[0], results[1], results[2])
        let sm = results.count > 3 ? results[3] : Samples()
        let reach = Double(expected - base + 8) / Double(length)
        ratioRow(
            "4 search 8 bytes, --max 1 (CLI)", ours: ours, baseline: c, label: "C readv+memmem", target: ">= 1.3x",
            atLeast: 1.3)
        ratioRow(
            "4 search 8 bytes, --max 1 (CLI), one thread (before)", ours: before, baseline: c,
            label: "C readv+memmem", target: "-", atLeast: 0)
        rows[rows.count - 1].pass = nil  // the figure before the change, no target
        details.append(
            "4: ours \(gbps(expected - base, ours.wallMedian)), one thread \(gbps(expected - base, before.wallMedian)), "
                + "C \(gbps(expected - base, c.wallMedian))")
        headline("4 search vs scanmem bytearray (headline)", ours: ours, theirs: sm, tool: "scanmem")
        peakMemory("5 peak memory, search \(length >> 20) MiB", ours: ours, theirs: sm, tool: "scanmem")
        details.append(
            String(format: "4: the needle is at %.0f %% of the buffer: ", reach * 100)
                + "search --max 1 and the C baseline stop there; scanmem always scans the whole region")
    }
}
