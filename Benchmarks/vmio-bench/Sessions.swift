// Item 8: sessions — the cost of one command on a target with many mappings, and 10,000
// reads against gdb -batch with the same 10,000 `x` commands on a small process.

import Foundation
import Glibc

extension Bench {
    /// A session script of `count` 8-byte reads as u64 at `addresses`, written under `work`.
    private func readScript(_ work: String, _ addresses: [UInt64]) -> String {
        let path = "\(work)/reads.vmio"
        let lines = addresses.map { "read \(hex($0)) 8 --format u64\n" }.joined()
        writeFile(path, lines)
        return path
    }

    /// `session PID SCRIPT` of one 8-byte read a page of the many-maps fixture (each page
    /// holds its index), checked once, then timed: the target is 30 µs a command, start-up
    /// included.
    mutating func sessionOnManyMaps(pid: pid_t, base: UInt64, stride: UInt64, count: Int, cli: String) {
        let work = workDirectory(opts.tmp, "session")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let script = readScript(work, (0..<UInt64(count)).map { base + $0 * stride })
        let argv = [cli, "session", String(pid), script]
        let answers = runChecked(argv, what: "session").output.split(separator: "\n")
        guard answers == (0..<count).map({ Substring(String($0)) }) else {
            die("8: the session's reads are not the pages' indices: \(answers.prefix(3))")
        }
        let ours = compare([{ _ in runChecked(argv, what: "session") }])[0]
        let each = ours.wallMedian / Double(count), eachCPU = ours.cpuMedian / Double(count)
        rows.append(
            Row(
                name: "8 session: \(count) reads, \(opts.maps) mappings", ours: ours.figure,
                baseline: String(format: "%.1f µs a command (cpu %.1f µs)", each * 1e6, eachCPU * 1e6),
                ratio: nil, target: "<= 30 µs a command", pass: each <= 30e-6))
    }

    /// The same session shape on the holder fixture (a small process) against
    /// `gdb -batch -p PID -x FILE` with one `x/gx ADDR` a read: the headline, target 5x.
    mutating func sessionAgainstGDB(pid: pid_t, buf: UInt64, count: Int, cli: String, gdb: String?) {
        let work = workDirectory(opts.tmp, "session-gdb")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let addresses = (0..<UInt64(count)).map { buf + 8 * ($0 % 8192) }
        let script = readScript(work, addresses)
        let argv = [cli, "session", String(pid), script]
        var sides: [(Bool) -> ChildResult?] = [{ _ in runChecked(argv, what: "session") }]
        if let gdb {
            let commands = "\(work)/reads.gdb"
            let text = addresses.map { "x/gx \(hex($0))\n" }.joined()
            writeFile(commands, text)
            let gdbArgv = [gdb, "-batch", "-nx", "-p", String(pid), "-x", commands]
            let shown = runChecked(gdbArgv, what: "gdb -batch").output.split(separator: "\n")
            // One "0x…:\tVALUE" line an x command (the attach's "0x… in read ()" line aside).
            let answered = shown.filter { $0.hasPrefix("0x") && $0.split(separator: "\t").first!.hasSuffix(":") }
            guard answered.count == count else {
                die("8: gdb did not answer every x command: \(shown.suffix(3))")
            }
            sides.append { _ in runChecked(gdbArgv, what: "gdb -batch") }
        }
        let results = compare(sides)
        headline(
            "8 session: \(count) reads vs gdb -batch (small process)", ours: results[0],
            theirs: results.count > 1 ? results[1] : Samples(), tool: "gdb -batch, \(count) x", target: ">= 5x",
            atLeast: 5)
    }
}
