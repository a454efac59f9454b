// The benchmark's run: the fixtures it starts, the items it measures on each, in order, and
// the table and notes it prints at the end.

import Foundation
import Glibc
import VmioFixtures

@MainActor
struct Bench {
    let opts: Options
    var rows: [Row] = []
    var details: [String] = []

    init(_ opts: Options) { self.opts = opts }

    mutating func runAll() {
        let gdbPath = opts.gdb ? onPath("gdb") : nil
        let scanmemPath = opts.scanmem ? onPath("scanmem") : nil
        let cli = built("vmio-ptrace")

        let places = (opts.tmpfs.map { "\($0) (tmpfs) and " } ?? "") + opts.tmp
        emit(
            "vmio-bench: \(opts.reps) interleaved repetitions a figure (median, min–max, median CPU time), "
                + "1 warm-up round not counted; output files on \(places)")
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: uts.release) {
            String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        emit("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, kernel \(release), load \(loadAverage())")

        // --- the random fixture ------------------------------------------------
        if !opts.only.isDisjoint(with: [1, 2, 4, 6, 7, 9]) {
            randomItems(cli: cli, gdb: gdbPath, scanmem: scanmemPath)
        }

        // --- the core-maps fixture: a sparse core of a mostly zero buffer ------
        if opts.only.contains(6) { item(6, "sparse core") { $0.sparseCore(cli: cli, gdb: gdbPath) } }

        // --- the many-maps fixture ---------------------------------------------
        if !opts.only.isDisjoint(with: [3, 8]) {
            let many = startFixture(.manyMaps, [String(opts.maps)])
            emit("fixture: vmio-fixture-many-maps pid \(many.pid), \(opts.maps) one-page mappings")
            if opts.only.contains(3) { item(3, "maps parse + scattered reads") { $0.scatter(pid: many.pid) } }
            if opts.only.contains(8) {
                let (base, stride) = (many.number("base"), many.number("stride"))
                item(8, "session on many mappings") {
                    $0.sessionOnManyMaps(pid: many.pid, base: base, stride: stride, count: 10_000, cli: cli)
                }
            }
            many.terminate()
        }
        if opts.only.contains(8) {
            let holder = startFixture(.holder, [])
            let buf = holder.number("buf", 0)
            item(8, "session vs gdb -batch") {
                $0.sessionAgainstGDB(pid: holder.pid, buf: buf, count: 10_000, cli: cli, gdb: gdbPath)
            }
            holder.terminate()
        }

        emit("")
        printTable(rows)
        emit("")
        for detail in byItem(details, { $0 }) { emit(detail) }
        emit("load at the end: \(loadAverage())")
    }

    mutating func randomItems(cli: String, gdb gdbPath: String?, scanmem scanmemPath: String?) {
        let t0 = now()
        let random = startFixture(.random, [String(opts.mib), String(opts.seed)])
        let pid = random.pid
        let base = random.number("buf", 0), length = random.number("buf", 1)
        let needleOffset = random.number("needle", 0), needleHex = random.text("needle", 1)
        let end = base + length
        let expectedHit = base + needleOffset
        let share = String(format: "%.0f", Double(needleOffset) * 100 / Double(length))
        emit(
            "fixture: vmio-fixture-random pid \(pid), \(length >> 20) MiB at \(hex(base)), needle \(needleHex) "
                + "at +\(hex(needleOffset)) (\(share) %), started in \(seconds(now() - t0))")

        if opts.only.contains(1) { item(1, "bulk read") { $0.bulkRead(pid: pid, base: base, length: length) } }
        if opts.only.contains(2) { item(2, "dump") { $0.dump(pid: pid, base: base, end: end, cli: cli, gdb: gdbPath) } }
        if opts.only.contains(6) {
            item(6, "core") { $0.core(pid: pid, base: base, length: length, cli: cli, gdb: gdbPath) }
        }
        if opts.only.contains(7) {
            let shown = min(length, opts.hexMiB << 20)
            item(7, "hex dump") { $0.hexDump(pid: pid, base: base, length: shown, cli: cli) }
        }
        if opts.only.contains(4) {
            item(4, "search") {
                $0.search(
                    pid: pid, base: base, end: end, needleHex: needleHex, expected: expectedHit, cli: cli,
                    scanmem: scanmemPath)
            }
        }
        if opts.only.contains(9) {
            item(9, "scan") {
                $0.scan(
                    pid: pid, base: base, end: end, needleHex: needleHex, expected: expectedHit, cli: cli,
                    scanmem: scanmemPath)
            }
            item(9, "diff") { $0.diff(pid: pid, base: base, end: end, cli: cli) }
        }
        random.terminate()
    }
}
