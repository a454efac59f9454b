// Item 9: `scan` and `diff`. The first `scan --u32` of the random fixture's needle against
// scanmem's first int32 scan of the same value (the headline) with its peak memory, and a
// narrowing pass over 10 million candidates, interleaved; then `diff` of two dumps of the
// buffer against `cmp -l` on their data files, and of the live process against its dump
// against bench-c-diff, interleaved.

import Foundation
import Glibc

extension Bench {
    /// The needle's first four bytes as a decimal u32 (the needle sits at an 8-aligned offset).
    private func needleU32(_ needleHex: String) -> String {
        let bytes = stride(from: 0, to: 8, by: 2).map { i -> UInt32 in
            let s = needleHex.index(needleHex.startIndex, offsetBy: i)
            return UInt32(needleHex[s..<needleHex.index(s, offsetBy: 2)], radix: 16)!
        }
        return String(bytes.enumerated().reduce(0) { $0 | $1.element << (8 * UInt32($1.offset)) })
    }

    /// Where the scan states and the dumps of this item go: the tmpfs when there is one (they
    /// are the tool's own files, not what is measured), else the real disk.
    private var scratch: String { opts.tmpfs ?? opts.tmp }

    mutating func scan(
        pid: pid_t, base: UInt64, end: UInt64, needleHex: String, expected: UInt64, cli: String, scanmem: String?
    ) {
        let work = workDirectory(scratch, "scan")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let value = needleU32(needleHex)
        let firstState = "\(work)/first", passState = "\(work)/pass"
        let region = "\(hex(base))-\(hex(end))"
        let expectedText = hex(expected)
        var stateBytes: UInt64 = 0

        // 10 million u32 slots (fewer with a smaller --mib): a snapshot, then one --unchanged
        // pass that makes every slot a candidate; the timed passes keep them all (the buffer
        // does not change).
        let snapshotEnd = min(end, base + 10_000_000 * 4)
        let candidates = (snapshotEnd - base) / 4
        _ = runChecked(
            [
                cli, "scan", String(pid), "--snapshot", "u32", "--region", "\(hex(base))-\(hex(snapshotEnd))", "-o",
                passState,
            ], what: "vmio-ptrace scan --snapshot")
        _ = runChecked([cli, "scan", String(pid), "--state", passState, "--unchanged"], what: "vmio-ptrace scan")

        var sides: [(Bool) -> ChildResult?] = [
            { _ in
                let r = runChecked(
                    [cli, "scan", String(pid), "--u32", value, "--region", region, "-o", firstState, "--json"],
                    what: "vmio-ptrace scan --u32")
                guard r.output.contains("\"\(expectedText)\"") else {
                    die("vmio-ptrace scan did not find \(expectedText):\n\(r.output.suffix(2000))")
                }
                stateBytes = fileSize(firstState)
                return r
            },
            { _ in
                let r = runChecked(
                    [cli, "scan", String(pid), "--state", passState, "--unchanged", "--list", "0", "--json"],
                    what: "vmio-ptrace scan --unchanged")
                guard r.output.contains("\"candidates\":\(candidates),") else {
                    die("the narrowing pass did not keep \(candidates) candidates:\n\(r.output.suffix(2000))")
                }
                return r
            },
        ]
        if let side = scanmemSide(
            scanmem, pid: pid, holding: base, scan: "option scan_data_type int32;\(value)", expected: expected)
        {
            sides.append(side)
        }
        let results = compare(sides)
        let (ours, pass, sm) = (results[0], results[1], results.count > 2 ? results[2] : Samples())
        let length = end - base
        headline(
            "9 first scan --u32, \(length >> 20) MiB vs scanmem int32 (headline)", ours: ours, theirs: sm,
            tool: "scanmem", target: ">= 5x", atLeast: 5)
        peakMemory(
            "9 peak memory, first scan (state \(stateBytes) bytes)", ours: ours, theirs: sm, tool: "scanmem",
            allowance: stateBytes)
        rows.append(
            Row(
                name: "9 narrowing pass, \(candidates) candidates (--unchanged)", ours: pass.figure, baseline: "-",
                ratio: nil, target: "< 1 s", pass: pass.wallMedian < 1))
        details.append(
            "9: first scan \(gbps(length, ours.wallMedian))"
                + (sm.isEmpty ? "" : ", scanmem \(gbps(length, sm.wallMedian))")
                + "; the narrowing pass re-reads \(candidates) candidates and rewrites their state on \(scratch)")
    }

    mutating func diff(pid: pid_t, base: UInt64, end: UInt64, cli: String) {
        let length = end - base
        let work = workDirectory(scratch, "diff")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let region = "\(hex(base))-\(hex(end))"
        let one = "\(work)/one", two = "\(work)/two"
        note("9 diff: two \(length >> 20) MiB dumps on \(scratch)")
        for directory in [one, two] {
            _ = runChecked(
                [cli, "dump", String(pid), "--region", region, "-o", directory, "--no-sync"], what: "vmio-ptrace dump")
        }
        func dataFile(_ directory: String) -> String {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            guard let name = names.first(where: { $0.hasSuffix(".bin") }) else { die("no data file in \(directory)") }
            return "\(directory)/\(name)"
        }
        let fileOne = dataFile(one), fileTwo = dataFile(two)
        guard fileSize(fileOne) == length else { die("\(fileOne) is not \(length) bytes") }
        let cDiff = built("bench-c-diff")
        let unchanged = "0 changed ranges"
        let results = compare([
            { _ in
                let r = runChecked([cli, "diff", one, two], what: "vmio-ptrace diff DUMP DUMP")
                guard r.output.contains(unchanged) else { die("the dumps differ:\n\(r.output.suffix(2000))") }
                return r
            },
            { _ in
                let r = run(["cmp", "-l", fileOne, fileTwo])
                guard r.status == 0 else { die("cmp -l found differences (status \(r.status))") }
                return r
            },
            { _ in
                let r = runChecked(
                    [cli, "diff", one, String(pid), "--region", region], what: "vmio-ptrace diff DUMP PID")
                guard r.output.contains(unchanged) else { die("the process changed:\n\(r.output.suffix(2000))") }
                return r
            },
            { _ in
                let r = runChecked([cDiff, String(pid), hex(base), String(length), fileOne], what: "bench-c-diff")
                guard r.output.contains("changed 0\n") else { die("bench-c-diff found changes:\n\(r.output)") }
                return r
            },
        ])
        let (dumps, cmp, live, c) = (results[0], results[1], results[2], results[3])
        ratioRow(
            "9 diff two \(length >> 20) MiB dumps", ours: dumps, baseline: cmp, label: "cmp -l", target: ">= 1x",
            atLeast: 1)
        ratioRow(
            "9 diff a live process against its dump", ours: live, baseline: c, label: "C readv+read+memcmp",
            target: ">= 0.8x", atLeast: 0.8)
        var both = dumps
        both.maxRSSKiB += live.maxRSSKiB
        peakMemory("9 peak memory, diff \(length >> 20) MiB", ours: both, theirs: Samples(), tool: nil)
        details.append(
            "9: diff of two dumps \(gbps(length, dumps.wallMedian)), cmp -l \(gbps(length, cmp.wallMedian)); "
                + "live \(gbps(length, live.wallMedian)), C \(gbps(length, c.wallMedian)); dumps on \(scratch)")
    }
}
