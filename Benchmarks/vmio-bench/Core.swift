// Item 6: `vmio-ptrace core` of the random fixture against bench-c-dump of its buffer and
// gdb's gcore, its peak memory, and `core --sparse` of a mostly zero buffer on disk.

import Foundation
import Glibc
import VmioFixtures

extension Bench {
    /// A core of the random fixture (its buffer and everything else the filter keeps): our
    /// `core` against the C baseline's read+write of the buffer alone and against gdb's gcore.
    mutating func core(pid: pid_t, base: UInt64, length: UInt64, cli: String, gdb: String?) {
        let parent = opts.tmpfs ?? opts.tmp
        note("6 core: each run writes about \(length >> 20) MiB to \(parent)")
        let work = workDirectory(parent, "core")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let cFile = "\(work)/c.bin", ourFile = "\(work)/ours.core", gdbFile = "\(work)/gdb.core"
        var ourSize: UInt64 = 0, gdbSize: UInt64 = 0
        var sides: [(Bool) -> ChildResult?] = [
            { _ in cDump(pid: pid, base: base, length: length, to: cFile) },
            { _ in
                let r = runChecked([cli, "core", String(pid), "-o", ourFile], what: "vmio-ptrace core")
                ourSize = fileSize(ourFile)
                removeAndSync(ourFile)
                return r
            },
        ]
        if let gdb {
            sides.append { _ in
                guard let (r, size) = gdbWriting(gdb, pid: pid, "gcore \(gdbFile)", file: gdbFile, length: length)
                else { return nil }
                gdbSize = size
                return r
            }
        }
        let results = compare(sides, touching: Int(length + length / 4))
        let (c, ours, g) = (results[0], results[1], results.count > 2 ? results[2] : Samples())
        details.append(
            "6: core sizes: ours \(ourSize >> 20) MiB" + (g.isEmpty ? "" : ", gdb \(gdbSize >> 20) MiB")
                + " (the C baseline writes the buffer only), in \(parent)")
        ratioRow(
            "6 core of \(length >> 20) MiB (CLI) vs C read+write", ours: ours, baseline: c, label: "C readv+write",
            target: ">= 0.85x", atLeast: 0.85)
        headline("6 core vs gdb gcore (headline)", ours: ours, theirs: g, tool: "gdb", target: ">= 2x", atLeast: 2)
        peakMemory("6 peak memory, core of \(length >> 20) MiB", ours: ours, theirs: g, tool: "gdb")
    }

    /// `core --sparse` of a mostly zero buffer (the core-maps fixture: every page written, all
    /// zero but 16 bytes): the disk it takes against gdb's gcore of the same process. One run.
    mutating func sparseCore(cli: String, gdb: String?) {
        note("6 sparse core of a mostly zero \(opts.mib) MiB buffer")
        let fixture = startFixture(.coreMaps, [String(opts.mib)])
        defer { fixture.terminate() }
        let work = workDirectory(opts.tmp, "sparse")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let ourFile = "\(work)/ours.core", gdbFile = "\(work)/gdb.core"
        let r = runChecked(
            [cli, "core", String(fixture.pid), "-o", ourFile, "--sparse"], what: "vmio-ptrace core --sparse")
        let ours = diskBytes(ourFile)
        var row = Row(
            name: "6 sparse core of a mostly zero \(opts.mib) MiB buffer, disk used",
            ours: "\(ours >> 10) KiB of \(fileSize(ourFile) >> 20) MiB in \(seconds(r.seconds))", baseline: "n/a (gdb)",
            ratio: nil, target: "< 10% of gdb's", pass: nil)
        if let gdb {
            _ = run([gdb, "-p", String(fixture.pid), "-batch", "-ex", "gcore \(gdbFile)"])
            let theirs = diskBytes(gdbFile)
            if theirs > 0 {
                row.baseline = "\(theirs >> 20) MiB (gdb gcore)"
                row.ratio = Double(theirs) / Double(max(ours, 1))
                row.pass = ours * 10 < theirs
            }
        }
        rows.append(row)
    }
}
