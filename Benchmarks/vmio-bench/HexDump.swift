// Item 7: `vmio-ptrace read` as an xxd-style hex dump against xxd on the same bytes.

import Foundation
import Glibc

extension Bench {
    /// `read PID ADDR LEN` (the default format, an xxd-style hex dump) against `xxd` on the
    /// same bytes in a file (written once by `read --format raw -o`), both to /dev/null
    /// through `sh -c` (the same start-up on both sides). The first lines are compared once.
    mutating func hexDump(pid: pid_t, base: UInt64, length: UInt64, cli: String) {
        guard let xxd = onPath("xxd") else {
            note("7: xxd is not installed (apt-get install xxd): no hex dump row")
            return
        }
        let work = workDirectory(opts.tmp, "hex")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let raw = "\(work)/bytes.bin"
        _ = runChecked(
            [cli, "read", String(pid), hex(base), String(length), "--format", "raw", "-o", raw], what: "read -o")
        // The same bytes, the same columns: our lines are xxd's after the address.
        let ours = runChecked([cli, "read", String(pid), hex(base), "64"], what: "read").output
        let theirs = runChecked(["/bin/sh", "-c", "head -c 64 \"$0\" | \"$1\"", raw, xxd], what: "xxd").output
        func columns(_ text: String) -> [Substring] {
            text.split(separator: "\n").map { $0.drop { $0 != ":" } }
        }
        guard columns(ours) == columns(theirs) else { die("7: our hex dump differs from xxd's:\n\(ours)\n\(theirs)") }
        let script = "\"$0\" read \"$1\" \"$2\" \"$3\" > /dev/null"
        let results = compare([
            { _ in
                runChecked(
                    ["/bin/sh", "-c", script, cli, String(pid), hex(base), String(length)],
                    what: "vmio-ptrace read (hex dump)")
            },
            { _ in runChecked(["/bin/sh", "-c", "\"$0\" \"$1\" > /dev/null", xxd, raw], what: "xxd") },
        ])
        ratioRow(
            "7 hex dump \(length >> 20) MiB (CLI read) vs xxd", ours: results[0], baseline: results[1],
            label: "xxd on a file", target: ">= 1.0x", atLeast: 1.0)
    }
}
