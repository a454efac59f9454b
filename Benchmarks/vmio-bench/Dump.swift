// Items 2 and 5: `vmio-ptrace dump` of the random fixture's buffer to a file against
// bench-c-dump and gdb's `dump binary memory`, and the dump's peak memory.

import Foundation
import Glibc
import VmioPtrace

extension Bench {
    mutating func dump(pid: pid_t, base: UInt64, end: UInt64, cli: String, gdb: String?) {
        note("2/4 dump (each run writes \((end - base) >> 20) MiB to \(opts.tmp))")
        let work = workDirectory(opts.tmp, "dump")
        defer { try? FileManager.default.removeItem(atPath: work) }
        let cFile = "\(work)/c.bin", ourDir = "\(work)/ours", gdbFile = "\(work)/gdb.bin"
        let length = end - base
        var sides: [(Bool) -> ChildResult?] = [
            { _ in cDump(pid: pid, base: base, length: length, to: cFile) },
            { counted in
                let r = runChecked(
                    [cli, "dump", String(pid), "--region", "\(hex(base))-\(hex(end))", "-o", ourDir],
                    what: "vmio-ptrace dump")
                if !counted { verifyDump(ourDir, pid: pid, base: base, length: length) }
                removeAndSync(ourDir)
                return r
            },
        ]
        if let gdb {
            let command = "dump binary memory \(gdbFile) \(hex(base)) \(hex(end))"
            sides.append { _ in gdbWriting(gdb, pid: pid, command, file: gdbFile, length: length)?.result }
        }
        let results = compare(sides)
        let (c, ours, g) = (results[0], results[1], results.count > 2 ? results[2] : [])
        spreads(2, [("ours", ours), ("C", c), ("gdb", g)])
        let cm = median(c.map(\.seconds)), om = median(ours.map(\.seconds))
        rows.append(
            Row(
                name: "2 dump \(length >> 20) MiB to a file (CLI)", ours: "\(seconds(om)) \(gbps(length, om))",
                baseline: "\(seconds(cm)) \(gbps(length, cm)) (C readv+write)",
                ratio: cm / om, target: ">= 0.85x", pass: cm / om >= 0.85))
        headline("2 dump vs gdb dump binary memory (headline)", ours: om, theirs: g, tool: "gdb")
        peakMemory("5 peak memory, dump \(length >> 20) MiB", ours: ours, theirs: g, tool: "gdb")
    }
}

/// Checks once that the CLI's dump holds the same bytes as the target (read back
/// through the library), so the timings compare equal work.
func verifyDump(_ dir: String, pid: pid_t, base: UInt64, length: UInt64) {
    let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    guard files.contains("manifest.json"), let data = files.first(where: { $0.hasSuffix(".bin") }) else {
        die("vmio-ptrace dump wrote no manifest.json and .bin into \(dir): \(files)")
    }
    let fd = open("\(dir)/\(data)", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { die("cannot open \(dir)/\(data)") }
    defer { close(fd) }
    let chunk = 16 << 20
    let mine = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
    let theirs = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
    defer { mine.deallocate(); theirs.deallocate() }
    var done: UInt64 = 0
    let backend = ProcessVMBackend()
    while done < length {
        let want = Int(min(UInt64(chunk), length - done))
        let got = pread(fd, mine.baseAddress, want, off_t(done))
        let t = backend.read(
            pid: pid, at: base + done, into: UnsafeMutableRawBufferPointer(rebasing: theirs[0..<want]))
        guard got == want, t.moved == want, memcmp(mine.baseAddress!, theirs.baseAddress!, want) == 0 else {
            die("the dump file \(data) differs from the target's memory near +\(hex(done))")
        }
        done += UInt64(want)
    }
    guard lseek(fd, 0, SEEK_END) == off_t(length) else { die("the dump file \(data) is not \(length) bytes") }
}
