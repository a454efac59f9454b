// Items 2 and 5: `vmio-ptrace dump` of the random fixture's buffer to a file against
// bench-c-dump and gdb's `dump binary memory`, and the dump's peak memory.

import Foundation
import Glibc
import VmioPtrace

extension Bench {
    /// Where the dump rows write: a tmpfs (so the disk's write-back is not what is measured)
    /// and the real disk, each synced (dump's default, bench-c-dump --fsync) and not
    /// (--no-sync, bench-c-dump alone); gdb writes to the first place, never syncing. Each
    /// place and sync also times the writing alone (bench-c-dump --write-only): the floor no
    /// overlap of the reads can go below, so C's time over it is the most any dump can gain.
    mutating func dump(pid: pid_t, base: UInt64, end: UInt64, cli: String, gdb: String?) {
        let length = end - base
        let places = [opts.tmpfs.map { ("tmpfs", $0) }, ("disk", opts.tmp)].compactMap { $0 }
        var sides: [(Bool) -> ChildResult?] = []
        // Each group's sides from `first`: C, ours, ours on one thread, the writing alone, and on
        // the tmpfs ours without pages made ahead (VMIO_NO_PAGES_AHEAD=1).
        var groups: [(place: String, sync: Bool, first: Int)] = []
        var works: [String] = []
        for (place, parent) in places {
            let work = workDirectory(parent, "dump")
            works.append(work)
            for sync in [true, false] {
                let cFile = "\(work)/c-\(sync).bin", ourDir = "\(work)/ours-\(sync)"
                groups.append((place, sync, sides.count))
                sides.append { _ in cDump(pid: pid, base: base, length: length, to: cFile, sync: sync) }
                // The dump of ours under `environment`, checked against the target once.
                func ours(_ environment: [String], _ what: String) -> (Bool) -> ChildResult? {
                    { counted in
                        let r = runChecked(
                            (environment.isEmpty ? [] : ["/usr/bin/env"] + environment)
                                + [cli, "dump", String(pid), "--region", "\(hex(base))-\(hex(end))", "-o", ourDir]
                                + (sync ? [] : ["--no-sync"]), what: what)
                        if !counted { verifyDump(ourDir, pid: pid, base: base, length: length) }
                        removeAndSync(ourDir)
                        return r
                    }
                }
                sides.append(ours([], "vmio-ptrace dump"))
                // Before the overlap: the same dump on one thread (VMIO_ONE_THREAD=1), in the same rounds.
                sides.append(ours(["VMIO_ONE_THREAD=1"], "vmio-ptrace dump, one thread"))
                sides.append { _ in
                    cDump(pid: pid, base: base, length: length, to: cFile, sync: sync, writeOnly: true)
                }
                guard place == "tmpfs" else { continue }
                // Without the pages the reader makes ahead on a tmpfs, in the same rounds.
                sides.append(ours(["VMIO_NO_PAGES_AHEAD=1"], "vmio-ptrace dump, no pages ahead"))
            }
        }
        defer { for work in works { try? FileManager.default.removeItem(atPath: work) } }
        if let gdb {
            let gdbFile = "\(works[0])/gdb.bin"
            let command = "dump binary memory \(gdbFile) \(hex(base)) \(hex(end))"
            sides.append { _ in gdbWriting(gdb, pid: pid, command, file: gdbFile, length: length)?.result }
        }
        note("2 dump: each run writes \((end - base) >> 20) MiB to \(places.map(\.1).joined(separator: " and "))")
        let results = compare(sides, touching: Int(length + length / 4))
        var ours = Samples()
        for group in groups {
            let at = group.first
            let (c, mine, before, floor) = (results[at], results[at + 1], results[at + 2], results[at + 3])
            let name = "2 dump \(length >> 20) MiB to \(group.place) (CLI)\(group.sync ? ", synced" : ", --no-sync")"
            ratioRow(
                name, ours: mine, baseline: c, label: "C readv+write" + (group.sync ? "+fsync" : ""), target: ">= 1.3x",
                atLeast: 1.3)
            ratioRow(
                name + ", one thread (before)", ours: before, baseline: c,
                label: "C readv+write" + (group.sync ? "+fsync" : ""), target: "-", atLeast: 0)
            rows[rows.count - 1].pass = nil  // the figure before the change, no target
            if group.place == "tmpfs" {
                ratioRow(
                    name + ", no pages ahead (before)", ours: results[at + 4], baseline: c,
                    label: "C readv+write" + (group.sync ? "+fsync" : ""), target: "-", atLeast: 0)
                rows[rows.count - 1].pass = nil  // the figure before the change, no target
            }
            ratioRow(
                name + ", against the writing alone", ours: mine, baseline: floor,
                label: "C write alone, no read" + (group.sync ? ", fsync" : ""), target: "-", atLeast: 0)
            rows[rows.count - 1].pass = nil  // how near the floor, no target
            details.append(
                "2: \(group.place), \(group.sync ? "synced" : "--no-sync"): ours \(gbps(length, mine.wallMedian)), "
                    + "one thread \(gbps(length, before.wallMedian)), C \(gbps(length, c.wallMedian)), "
                    + "writing alone \(gbps(length, floor.wallMedian)); the most a dump can be ahead of C "
                    + "here (C over the writing alone): \(String(format: "%.2fx", c.wallMedian / floor.wallMedian))")
            ours.wall += mine.wall
            ours.cpu += mine.cpu
            ours.maxRSSKiB += mine.maxRSSKiB
        }
        let unsynced = results[1 + groups.first { !$0.sync }!.first]
        let g = gdb == nil ? Samples() : results[results.count - 1]
        headline("2 dump --no-sync vs gdb dump binary memory (headline)", ours: unsynced, theirs: g, tool: "gdb")
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
