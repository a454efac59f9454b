// vmio-bench: measures the library and the CLI against C baselines, gdb and scanmem
// in one run, and prints each figure as a ratio against a baseline measured in the
// same invocation (see README.md, "Benchmarks"). Not part of the test suite.
//
//   vmio-bench [--reps N] [--mib N] [--seed N] [--maps N] [--tmp DIR] [--no-gdb] [--no-scanmem] [--only 1,2,3,4,6]
//
// Every time is the median of N repetitions (default 5), taken after one warm-up
// round that is not counted; the measurements of one item are interleaved
// (ours, baseline, ours, ...) in a rotating order, so load from other processes
// and page-cache state fall on both sides alike. ratio = baseline time / our time
// (above 1: we are faster); for memory, baseline peak / our peak.

import Foundation
import Glibc
import VmIO
import VmioPtrace

// MARK: - Small helpers

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func median(_ xs: [Double]) -> Double {
    precondition(!xs.isEmpty)
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Writes all of `text` to a file descriptor (unbuffered, so lines show as they come).
func writeFD(_ fd: Int32, _ text: String) {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        bytes = bytes.dropFirst(n)
    }
}

/// One line on stdout.
func emit(_ line: String = "") { writeFD(1, line + "\n") }

func die(_ message: String) -> Never {
    writeFD(2, "vmio-bench: \(message)\n")
    exit(1)
}

func note(_ message: String) { writeFD(2, "vmio-bench: \(message)\n") }

/// pipe(2) with both ends close-on-exec (posix_spawn's dup2 clears it on the child's copy).
func makePipe() -> (read: Int32, write: Int32) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { die("pipe: \(String(cString: strerror(errno)))") }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return (fds[0], fds[1])
}

func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

func seconds(_ s: Double) -> String {
    s < 0.05 ? String(format: "%.2f ms", s * 1e3) : String(format: "%.3f s", s)
}

/// "min–max" of samples, for the spread behind a median.
func spread(_ xs: [Double]) -> String { "\(seconds(xs.min()!))–\(seconds(xs.max()!))" }

func mib(_ kib: Int) -> String { String(format: "%.1f MiB", Double(kib) / 1024) }

func gbps(_ bytes: UInt64, _ s: Double) -> String { String(format: "%.1f GB/s", Double(bytes) / s / 1e9) }

/// The directory holding this executable (and, after `swift build`, the fixtures,
/// the C baselines and `vmio-ptrace`).
func buildDirectory() -> String {
    var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    guard n > 0 else { die("cannot read /proc/self/exe") }
    let path = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return (path as NSString).deletingLastPathComponent
}

/// `name` on PATH, or nil.
func onPath(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if access(p, X_OK) == 0 { return p }
    }
    return nil
}

// MARK: - Child processes

struct ChildResult {
    var seconds: Double
    /// `ru_maxrss` from wait4: the child's peak resident set, in KiB.
    var maxRSSKiB: Int
    /// Exit status, or 128 + signal.
    var status: Int32
    /// stdout and stderr together.
    var output: String
}

/// posix_spawn with the given fds as the child's 0, 1, 2 (`nil`: /dev/null).
func spawn(_ argv: [String], stdin: Int32?, stdout: Int32?, stderr: Int32?) -> pid_t {
    let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
    defer { close(devnull) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdin ?? devnull, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout ?? devnull, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr ?? devnull, 2)
    var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for p in cargs { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, argv[0], &actions, nil, &cargs, environ)
    guard rc == 0 else { die("cannot start \(argv[0]): \(String(cString: strerror(rc)))") }
    return pid
}

/// Reads `fd` to EOF.
func readToEnd(_ fd: Int32) -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        out += chunk[0..<n]
    }
    return out
}

/// Runs a command to completion through bench-spawn (Benchmarks/bench-spawn/main.c):
/// wall-clock time from spawn to reap and the peak memory, as bench-spawn measured them
/// (spawned from here, a child's ru_maxrss would start at this process's own peak), and
/// the command's stdout and stderr together.
func run(_ argv: [String]) -> ChildResult {
    let helper = buildDirectory() + "/bench-spawn"
    guard access(helper, X_OK) == 0 else { die("\(helper) is missing; build first (scripts/bench does)") }
    let (r, w) = makePipe()
    let pid = spawn([helper] + argv, stdin: nil, stdout: w, stderr: w)
    close(w)
    let output = String(decoding: readToEnd(r), as: UTF8.self)
    close(r)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // The last line is bench-spawn's: "bench-spawn: status N seconds S maxrss_kib K".
    var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
    while lines.last == "" { lines.removeLast() }
    guard let last = lines.last, last.hasPrefix("bench-spawn: status ") else {
        die("bench-spawn did not report on \(argv.joined(separator: " ")):\n\(output)")
    }
    let f = last.split(separator: " ")
    guard f.count == 7, let code = Int32(f[2]), let secs = Double(f[4]), let rss = Int(f[6]) else {
        die("cannot read bench-spawn's report: \(last)")
    }
    return ChildResult(
        seconds: secs, maxRSSKiB: rss, status: code,
        output: lines.dropLast().joined(separator: "\n") + "\n")
}

/// Runs a command that must succeed.
func runChecked(_ argv: [String], what: String) -> ChildResult {
    let r = run(argv)
    guard r.status == 0 else { die("\(what) failed (status \(r.status)): \(argv.joined(separator: " "))\n\(r.output)") }
    return r
}

/// The `seconds S` lines a C baseline printed.
func reportedSeconds(_ r: ChildResult) -> [Double] {
    r.output.split(separator: "\n").compactMap { line in
        line.hasPrefix("seconds ") ? Double(line.dropFirst(8)) : nil
    }
}

// MARK: - Fixtures

/// A fixture process (fixtures/README.md): started with a pipe on stdin and stdout,
/// its fact lines read up to `ready`. Closing stdin makes it exit.
final class Fixture {
    let pid: pid_t
    let facts: [String: [String]]
    private let stdinFD: Int32
    private let stdoutFD: Int32

    init(_ argv: [String]) {
        let input = makePipe(), output = makePipe()
        pid = spawn(argv, stdin: input.read, stdout: output.write, stderr: 2)
        close(input.read)
        close(output.write)
        stdinFD = input.write
        stdoutFD = output.read
        var facts: [String: [String]] = [:]
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        reading: while true {
            let n = chunk.withUnsafeMutableBytes { read(output.read, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { die("\(argv[0]) exited before printing ready") }
            pending += chunk[0..<n]
            while let nl = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<nl], as: UTF8.self)
                pending.removeFirst(nl + 1)
                if line == "ready" { break reading }
                let fields = line.split(separator: " ").map(String.init)
                if let key = fields.first { facts[key] = Array(fields.dropFirst()) }
            }
        }
        self.facts = facts
    }

    func number(_ key: String, _ index: Int = 0) -> UInt64 {
        guard let text = facts[key]?[safe: index] else { die("fixture printed no '\(key)'") }
        let value = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        guard let value else { die("fixture fact '\(key)' is not a number: \(text)") }
        return value
    }

    func string(_ key: String, _ index: Int = 0) -> String {
        guard let text = facts[key]?[safe: index] else { die("fixture printed no '\(key)'") }
        return text
    }

    func stop() {
        close(stdinFD)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        close(stdoutFD)
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}

// MARK: - Results table

struct Row {
    var name: String
    var ours: String
    var baseline: String
    var ratio: Double?
    var target: String
    /// nil: no target (informational); true/false: met or not.
    var pass: Bool?
}

func printTable(_ rows: [Row]) {
    let header = ["measurement", "ours", "baseline", "ratio", "target", "result"]
    // By item number (the names start with it), keeping the order within an item.
    let ordered = rows.enumerated().sorted {
        ($0.element.name.prefix(1), $0.offset) < ($1.element.name.prefix(1), $1.offset)
    }
    let cells = ordered.map(\.element).map { r in
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

// MARK: - Options

struct Options {
    var reps = 5
    var mib: UInt64 = 1024
    /// Seed 4 puts the needle at 93 % of a 1 GiB buffer, so a search that stops at the
    /// first hit still reads nearly all of it (like scanmem, which always reads all).
    var seed: UInt64 = 4
    var maps = 10000
    var tmp = NSTemporaryDirectory()
    var gdb = true
    var scanmem = true
    /// Which items to run (1 bulk read, 2 dump, 3 maps + scattered reads, 4 search, 6 core,
    /// 7 hex dump); 5 comes with 2 and 4.
    var only: Set<Int> = [1, 2, 3, 4, 6, 7]
    /// MiB of the random fixture's buffer item 7 prints as a hex dump.
    var hexMiB: UInt64 = 100

    init(_ args: [String]) {
        var it = args.makeIterator()
        func value(_ flag: String) -> String {
            guard let v = it.next() else { die("\(flag) needs a value") }
            return v
        }
        while let a = it.next() {
            switch a {
            case "--reps": reps = Int(value(a)) ?? 0
            case "--mib": mib = UInt64(value(a)) ?? 0
            case "--seed": seed = UInt64(value(a)) ?? 0
            case "--maps": maps = Int(value(a)) ?? 0
            case "--tmp": tmp = value(a)
            case "--no-gdb": gdb = false
            case "--no-scanmem": scanmem = false
            case "--only": only = Set(value(a).split(separator: ",").compactMap { Int($0) })
            case "--hex-mib": hexMiB = UInt64(value(a)) ?? 0
            case "-h", "--help":
                emit(
                    "usage: vmio-bench [--reps N] [--mib N] [--seed N] [--maps N] [--tmp DIR] [--no-gdb] [--no-scanmem] [--only 1,2,3,4,6,7] [--hex-mib N]"
                )
                exit(0)
            default: die("unknown argument \(a) (try --help)")
            }
        }
        guard reps >= 1, mib >= 1, maps >= 1, hexMiB >= 1 else {
            die("--reps, --mib, --maps and --hex-mib must be at least 1")
        }
    }
}

// MARK: - The benchmark

@MainActor
struct Bench {
    let opts: Options
    let dir = buildDirectory()
    var rows: [Row] = []
    var details: [String] = []

    init(_ opts: Options) { self.opts = opts }

    func bin(_ name: String) -> String {
        let p = "\(dir)/\(name)"
        guard access(p, X_OK) == 0 else { die("\(p) is missing; build first (scripts/bench does)") }
        return p
    }

    /// One warm-up round, then `opts.reps` rounds; round r runs the closures starting at
    /// index r (rotating), so no side always runs first. Returns the counted samples.
    func interleaved(_ n: Int, _ body: (Int) -> Void) {
        for round in 0...opts.reps {
            for k in 0..<n { body((round + k) % n) }
        }
    }

    func removeAndSync(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
        sync()
    }

    mutating func runAll() {
        let gdbPath = opts.gdb ? onPath("gdb") : nil
        let scanmemPath = opts.scanmem ? onPath("scanmem") : nil
        let cli = bin("vmio-ptrace")

        emit("vmio-bench: \(opts.reps) repetitions a figure (medians), 1 warm-up round not counted")
        var uts = utsname()
        uname(&uts)
        let release = withUnsafeBytes(of: uts.release) {
            String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        emit("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, kernel \(release), load \(loadAverage())")

        // --- the random fixture ------------------------------------------------
        if !opts.only.isDisjoint(with: [1, 2, 4, 6, 7]) { randomItems(cli: cli, gdb: gdbPath, scanmem: scanmemPath) }

        // --- the core-maps fixture: a sparse core of a mostly zero buffer ------
        if opts.only.contains(6) { sparseCore(cli: cli, gdb: gdbPath) }

        // --- the many-maps fixture ---------------------------------------------
        if opts.only.contains(3) {
            let many = Fixture([bin("vmio-fixture-many-maps"), String(opts.maps)])
            emit("fixture: vmio-fixture-many-maps pid \(many.pid), \(opts.maps) one-page mappings")
            scatter(pid: many.pid)
            many.stop()
        }

        emit("")
        printTable(rows)
        emit("")
        // By item number, keeping the order within an item.
        for d in details.enumerated().sorted(by: {
            ($0.element.prefix(1), $0.offset) < ($1.element.prefix(1), $1.offset)
        }) {
            emit(d.element)
        }
        emit("load at the end: \(loadAverage())")
    }

    mutating func randomItems(cli: String, gdb gdbPath: String?, scanmem scanmemPath: String?) {
        let t0 = now()
        let random = Fixture([bin("vmio-fixture-random"), String(opts.mib), String(opts.seed)])
        let pid = random.pid
        let base = random.number("buf", 0), length = random.number("buf", 1)
        let needleOffset = random.number("needle", 0), needleHex = random.string("needle", 1)
        let end = base + length
        let expectedHit = base + needleOffset
        emit(
            "fixture: vmio-fixture-random pid \(pid), \(length >> 20) MiB at \(hex(base)), needle \(needleHex) at +\(hex(needleOffset)) (\(String(format: "%.0f", Double(needleOffset) * 100 / Double(length))) %), started in \(seconds(now() - t0))"
        )

        if opts.only.contains(1) { bulkRead(pid: pid, base: base, length: length) }
        if opts.only.contains(2) { dump(pid: pid, base: base, end: end, cli: cli, gdb: gdbPath) }
        if opts.only.contains(6) { core(pid: pid, base: base, length: length, cli: cli, gdb: gdbPath) }
        if opts.only.contains(7) { hexDump(pid: pid, base: base, length: min(length, opts.hexMiB << 20), cli: cli) }
        if opts.only.contains(4) {
            search(
                pid: pid, base: base, end: end, needleHex: needleHex, expected: expectedHit, cli: cli,
                scanmem: scanmemPath)
        }
        random.stop()
    }

    func loadAverage() -> String {
        var loads = [Double](repeating: 0, count: 3)
        getloadavg(&loads, 3)
        return loads.map { String(format: "%.2f", $0) }.joined(separator: " ")
    }

    // MARK: 1. bulk read

    mutating func bulkRead(pid: pid_t, base: UInt64, length: UInt64) {
        note("1/4 bulk read")
        let cRead = bin("bench-c-read")
        let cChunks = [1 << 20, 4 << 20, 16 << 20]
        let ourChunks = [1 << 20, 16 << 20]
        var c = [Int: [Double]](), ours = [Int: [Double]]()
        let range: AddressRange
        do { range = try AddressRange(start: base, count: length) } catch { die("\(error)") }
        let sides = cChunks.map { (true, $0) } + ourChunks.map { (false, $0) }
        var round = 0, calls = 0
        interleaved(sides.count) { k in
            let (isC, chunk) = sides[k]
            let counted = calls >= sides.count
            calls += 1
            if isC {
                let r = runChecked(
                    [cRead, String(pid), hex(base), String(length), String(chunk)], what: "bench-c-read")
                if counted { c[chunk, default: []] += reportedSeconds(r) }
            } else {
                let target: Target
                do { target = try Target(pid: pid) } catch { die("Target(pid:): \(error)") }
                let t = now()
                let report: TransferReport
                do { report = try target.stream(range, skipFaults: false, chunkSize: chunk) { _, _ in true } } catch {
                    die("stream: \(error)")
                }
                let elapsed = now() - t
                guard report.isComplete, report.moved == length else {
                    die("stream moved \(report.moved) of \(length)")
                }
                if counted { ours[chunk, default: []] += [elapsed] }
            }
            round += 1
        }
        let cBest = c.map { ($0.key, median($0.value)) }.min { $0.1 < $1.1 }!
        let oBest = ours.map { ($0.key, median($0.value)) }.min { $0.1 < $1.1 }!
        rows.append(
            Row(
                name: "1 library bulk read \(length >> 20) MiB (Target.stream)",
                ours: "\(seconds(oBest.1)) \(gbps(length, oBest.1)) @\(oBest.0 >> 20)M",
                baseline: "\(seconds(cBest.1)) \(gbps(length, cBest.1)) @\(cBest.0 >> 20)M (C)",
                ratio: cBest.1 / oBest.1, target: ">= 0.90x", pass: cBest.1 / oBest.1 >= 0.9))
        details.append(
            "1: C process_vm_readv by chunk: "
                + cChunks.map { "\($0 >> 20) MiB \(seconds(median(c[$0]!))) (\(gbps(length, median(c[$0]!))))" }.joined(
                    separator: ", "))
        details.append(
            "1: Target.stream by chunk:     "
                + ourChunks.map { "\($0 >> 20) MiB \(seconds(median(ours[$0]!))) (\(gbps(length, median(ours[$0]!))))" }
                .joined(separator: ", "))
    }

    // MARK: 7. hex dump

    /// `read PID ADDR LEN` (the default format, an xxd-style hex dump) against `xxd` on the
    /// same bytes in a file (written once by `read --format raw -o`), both to /dev/null
    /// through `sh -c` (the same start-up on both sides). The first lines are compared once.
    mutating func hexDump(pid: pid_t, base: UInt64, length: UInt64, cli: String) {
        guard let xxd = onPath("xxd") else {
            note("7: xxd is not installed (apt-get install xxd): no hex dump row")
            return
        }
        note("7 hex dump of \(length >> 20) MiB")
        let work = (opts.tmp as NSString).appendingPathComponent("vmio-bench-hex-\(getpid())")
        try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
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
        var o: [Double] = [], x: [Double] = []
        var calls = 0
        interleaved(2) { k in
            let counted = calls >= 2
            calls += 1
            if k == 0 {
                let r = runChecked(
                    [
                        "/bin/sh", "-c", "\"$0\" read \"$1\" \"$2\" \"$3\" > /dev/null", cli, String(pid), hex(base),
                        String(length),
                    ],
                    what: "vmio-ptrace read (hex dump)")
                if counted { o.append(r.seconds) }
            } else {
                let r = runChecked(["/bin/sh", "-c", "\"$0\" \"$1\" > /dev/null", xxd, raw], what: "xxd")
                if counted { x.append(r.seconds) }
            }
        }
        let om = median(o), xm = median(x)
        rows.append(
            Row(
                name: "7 hex dump \(length >> 20) MiB (CLI read) vs xxd", ours: seconds(om),
                baseline: "\(seconds(xm)) (xxd on a file)", ratio: xm / om, target: ">= 1.0x", pass: xm / om >= 1.0))
        details.append("7: spread (min–max of \(opts.reps)): ours \(spread(o)), xxd \(spread(x))")
    }

    // MARK: 6. core

    /// A core of the random fixture (its buffer and everything else the filter keeps): our
    /// `core` against the C baseline's read+write of the buffer alone and against gdb's gcore.
    mutating func core(pid: pid_t, base: UInt64, length: UInt64, cli: String, gdb: String?) {
        note("6/6 core (each run writes about \(length >> 20) MiB to \(opts.tmp))")
        let cDump = bin("bench-c-dump")
        let work = (opts.tmp as NSString).appendingPathComponent("vmio-bench-core-\(getpid())")
        try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let cFile = "\(work)/c.bin", ourFile = "\(work)/ours.core", gdbFile = "\(work)/gdb.core"
        var c: [Double] = [], ours: [Double] = [], g: [Double] = []
        var oursRSS: [Int] = [], gdbRSS: [Int] = [], ourSize: UInt64 = 0, gdbSize: UInt64 = 0
        var calls = 0
        let n = gdb == nil ? 2 : 3
        interleaved(n) { k in
            let counted = calls >= n
            calls += 1
            switch k {
            case 0:
                let r = runChecked([cDump, String(pid), hex(base), String(length), cFile], what: "bench-c-dump")
                if counted { c.append(r.seconds) }
                removeAndSync(cFile)
            case 1:
                let r = runChecked([cli, "core", String(pid), "-o", ourFile], what: "vmio-ptrace core")
                ourSize = fileSize(ourFile)
                if counted { ours.append(r.seconds); oursRSS.append(r.maxRSSKiB) }
                removeAndSync(ourFile)
            default:
                let r = run([gdb!, "-p", String(pid), "-batch", "-ex", "gcore \(gdbFile)"])
                gdbSize = fileSize(gdbFile)
                if gdbSize < length { note("gdb gcore failed (status \(r.status)):\n\(r.output)") }
                if counted && gdbSize >= length { g.append(r.seconds); gdbRSS.append(r.maxRSSKiB) }
                removeAndSync(gdbFile)
            }
        }
        details.append(
            "6: spread (min–max of \(opts.reps)): ours \(spread(ours)), C \(spread(c))"
                + (g.isEmpty ? "" : ", gdb \(spread(g))") + "; core sizes: ours \(ourSize >> 20) MiB"
                + (g.isEmpty ? "" : ", gdb \(gdbSize >> 20) MiB") + " (the C baseline writes the buffer only)")
        let cm = median(c), om = median(ours)
        rows.append(
            Row(
                name: "6 core of \(length >> 20) MiB (CLI) vs C read+write", ours: "\(seconds(om)) \(gbps(length, om))",
                baseline: "\(seconds(cm)) \(gbps(length, cm)) (C readv+write)", ratio: cm / om, target: ">= 0.85x",
                pass: cm / om >= 0.85))
        if g.isEmpty {
            rows.append(
                Row(
                    name: "6 core vs gdb gcore (headline)", ours: seconds(om), baseline: "n/a (gdb)", ratio: nil,
                    target: ">= 2x", pass: nil))
        } else {
            let gm = median(g)
            rows.append(
                Row(
                    name: "6 core vs gdb gcore (headline)", ours: seconds(om), baseline: "\(seconds(gm)) (gdb)",
                    ratio: gm / om, target: ">= 2x", pass: gm / om >= 2))
        }
        let peak = oursRSS.max()!
        let gdbPeak = gdbRSS.max()
        rows.append(
            Row(
                name: "6 peak memory, core of \(length >> 20) MiB", ours: mib(peak),
                baseline: gdbPeak.map { "\(mib($0)) (gdb)" } ?? "n/a (gdb)",
                ratio: gdbPeak.map { Double($0) / Double(peak) }, target: "< 64 MiB", pass: peak < 64 * 1024))
    }

    /// `core --sparse` of a mostly zero buffer (the core-maps fixture: every page written, all
    /// zero but 16 bytes): the disk it takes against gdb's gcore of the same process. One run.
    mutating func sparseCore(cli: String, gdb: String?) {
        note("6/6 sparse core of a mostly zero \(opts.mib) MiB buffer")
        let fixture = Fixture([bin("vmio-fixture-core-maps"), String(opts.mib)])
        defer { fixture.stop() }
        let work = (opts.tmp as NSString).appendingPathComponent("vmio-bench-sparse-\(getpid())")
        try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
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

    /// The length of a file, 0 when there is none.
    func fileSize(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_size) : 0
    }

    /// What a file takes on disk (`st_blocks` × 512), 0 when there is none.
    func diskBytes(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_blocks) * 512 : 0
    }

    // MARK: 2. dump

    mutating func dump(pid: pid_t, base: UInt64, end: UInt64, cli: String, gdb: String?) {
        note("2/4 dump (each run writes \((end - base) >> 20) MiB to \(opts.tmp))")
        let cDump = bin("bench-c-dump")
        let work = (opts.tmp as NSString).appendingPathComponent("vmio-bench-\(getpid())")
        try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let cFile = "\(work)/c.bin", ourDir = "\(work)/ours", gdbFile = "\(work)/gdb.bin"
        let length = end - base
        var c: [Double] = [], ours: [Double] = [], g: [Double] = []
        var oursRSS: [Int] = [], gdbRSS: [Int] = []
        var calls = 0
        let n = gdb == nil ? 2 : 3
        interleaved(n) { k in
            let counted = calls >= n
            calls += 1
            switch k {
            case 0:
                let r = runChecked([cDump, String(pid), hex(base), String(length), cFile], what: "bench-c-dump")
                if counted { c.append(r.seconds) }
                removeAndSync(cFile)
            case 1:
                let r = runChecked(
                    [cli, "dump", String(pid), "--region", "\(hex(base))-\(hex(end))", "-o", ourDir],
                    what: "vmio-ptrace dump")
                if !counted { verifyDump(ourDir, pid: pid, base: base, length: length) }
                if counted { ours.append(r.seconds); oursRSS.append(r.maxRSSKiB) }
                removeAndSync(ourDir)
            default:
                let r = run([
                    gdb!, "-p", String(pid), "-batch", "-ex", "dump binary memory \(gdbFile) \(hex(base)) \(hex(end))",
                ])
                let size = (try? FileManager.default.attributesOfItem(atPath: gdbFile)[.size] as? UInt64) ?? nil
                if size != length {
                    note(
                        "gdb dump failed (status \(r.status), file size \(size.map(String.init) ?? "none")):\n\(r.output)"
                    )
                }
                if counted && size == length { g.append(r.seconds); gdbRSS.append(r.maxRSSKiB) }
                removeAndSync(gdbFile)
            }
        }
        details.append(
            "2: spread (min–max of \(opts.reps)): ours \(spread(ours)), C \(spread(c))"
                + (g.isEmpty ? "" : ", gdb \(spread(g))"))
        let cm = median(c), om = median(ours)
        rows.append(
            Row(
                name: "2 dump \(length >> 20) MiB to a file (CLI)", ours: "\(seconds(om)) \(gbps(length, om))",
                baseline: "\(seconds(cm)) \(gbps(length, cm)) (C readv+write)",
                ratio: cm / om, target: ">= 0.85x", pass: cm / om >= 0.85))
        if g.isEmpty {
            rows.append(
                Row(
                    name: "2 dump vs gdb dump binary memory (headline)", ours: seconds(om), baseline: "n/a (gdb)",
                    ratio: nil, target: "-", pass: nil))
        } else {
            let gm = median(g)
            rows.append(
                Row(
                    name: "2 dump vs gdb dump binary memory (headline)", ours: seconds(om),
                    baseline: "\(seconds(gm)) (gdb)", ratio: gm / om, target: "-", pass: nil))
        }
        let peak = oursRSS.max()!
        let gdbPeak = gdbRSS.max()
        rows.append(
            Row(
                name: "5 peak memory, dump \(length >> 20) MiB", ours: mib(peak),
                baseline: gdbPeak.map { "\(mib($0)) (gdb)" } ?? "n/a (gdb)",
                ratio: gdbPeak.map { Double($0) / Double(peak) }, target: "< 64 MiB", pass: peak < 64 * 1024))
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

    // MARK: 4. search

    mutating func search(
        pid: pid_t, base: UInt64, end: UInt64, needleHex: String, expected: UInt64, cli: String,
        scanmem: String?
    ) {
        note("3/4 search")
        let cSearch = bin("bench-c-search")
        let length = end - base
        let spaced = stride(from: 0, to: needleHex.count, by: 2).map { i -> String in
            let s = needleHex.index(needleHex.startIndex, offsetBy: i)
            return String(needleHex[s..<needleHex.index(s, offsetBy: 2)])
        }.joined(separator: " ")
        let expectedText = hex(expected)

        // scanmem: find the id of the region holding the buffer, so the timed scan reads
        // that region only (dregion !ID deletes every other one).
        var scanmemScript: String?
        if let scanmem {
            let r = run([scanmem, "-p", String(pid), "-c", "lregions;exit"])
            for line in r.output.split(separator: "\n") where line.hasPrefix("[") {
                // "[ 2] 7f98a0000000, 67108864 bytes,  misc, ..."
                let parts = line.split(separator: "]", maxSplits: 1)
                guard parts.count == 2, let id = Int(parts[0].dropFirst().trimmingCharacters(in: .whitespaces)) else {
                    continue
                }
                let fields = parts[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                guard fields.count >= 2, let start = UInt64(fields[0], radix: 16),
                    let size = UInt64(fields[1].split(separator: " ").first ?? "")
                else { continue }
                if start <= base && base < start + size {
                    scanmemScript = "dregion !\(id);option scan_data_type bytearray;\(spaced);list;exit"
                }
            }
            if scanmemScript == nil {
                note("scanmem: no region holds \(hex(base)); scanmem figures are n/a\n\(r.output)")
            }
        }

        var c: [Double] = [], ours: [Double] = [], sm: [Double] = []
        var oursRSS: [Int] = [], smRSS: [Int] = []
        var calls = 0
        let n = scanmemScript == nil ? 2 : 3
        let hitInScanmem = String(expected, radix: 16)
        interleaved(n) { k in
            let counted = calls >= n
            calls += 1
            switch k {
            case 0:
                let r = runChecked(
                    [cSearch, String(pid), hex(base), String(length), needleHex, "1"], what: "bench-c-search")
                guard r.output.contains("hit \(expectedText)\n") else {
                    die("bench-c-search did not find \(expectedText):\n\(r.output)")
                }
                if counted { c.append(r.seconds) }
            case 1:
                let r = runChecked(
                    [
                        cli, "search", String(pid), "--hex", spaced, "--region", "\(hex(base))-\(hex(end))",
                        "--max", "1", "--json",
                    ], what: "vmio-ptrace search")
                guard r.output.contains("\"\(expectedText)\"") else {
                    die("vmio-ptrace search did not find \(expectedText):\n\(r.output)")
                }
                if counted { ours.append(r.seconds); oursRSS.append(r.maxRSSKiB) }
            default:
                let r = run([scanmem!, "-p", String(pid), "-c", scanmemScript!])
                let found = r.status == 0 && r.output.contains(hitInScanmem)
                if !found {
                    note("scanmem did not report \(expectedText) (status \(r.status)):\n\(r.output.suffix(2000))")
                }
                if counted && found { sm.append(r.seconds); smRSS.append(r.maxRSSKiB) }
            }
        }
        details.append(
            "4: spread (min–max of \(opts.reps)): ours \(spread(ours)), C \(spread(c))"
                + (sm.isEmpty ? "" : ", scanmem \(spread(sm))"))
        let cm = median(c), om = median(ours)
        let reach = Double(expected - base + 8) / Double(length)
        rows.append(
            Row(
                name: "4 search 8 bytes, --max 1 (CLI)", ours: "\(seconds(om)) \(gbps(expected - base, om))",
                baseline: "\(seconds(cm)) (C readv+memmem)", ratio: cm / om, target: ">= 0.75x", pass: cm / om >= 0.75))
        if sm.isEmpty {
            rows.append(
                Row(
                    name: "4 search vs scanmem bytearray (headline)", ours: seconds(om), baseline: "n/a (scanmem)",
                    ratio: nil, target: "-", pass: nil))
        } else {
            let smm = median(sm)
            rows.append(
                Row(
                    name: "4 search vs scanmem bytearray (headline)", ours: seconds(om),
                    baseline: "\(seconds(smm)) (scanmem)", ratio: smm / om, target: "-", pass: nil))
        }
        let peak = oursRSS.max()!
        let smPeak = smRSS.max()
        rows.append(
            Row(
                name: "5 peak memory, search \(length >> 20) MiB", ours: mib(peak),
                baseline: smPeak.map { "\(mib($0)) (scanmem)" } ?? "n/a (scanmem)",
                ratio: smPeak.map { Double($0) / Double(peak) }, target: "< 64 MiB", pass: peak < 64 * 1024))
        details.append(
            String(
                format:
                    "4: the needle is at %.0f %% of the buffer: search --max 1 and the C baseline stop there; scanmem always scans the whole region",
                reach * 100))
    }

    // MARK: 3. scattered reads

    /// Where `ProcessMaps.read` spends its time: reading the file (ProcFS.readAll, and a
    /// bare read(2) loop into a reused buffer for comparison), parsing the lines
    /// (MapsParser.parseMappings), and building the checked view (MemView(mappings:)).
    func parseBreakdown(pid: pid_t) -> String {
        let path = "/proc/\(pid)/maps"
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 8 << 20, alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0)
        defer { raw.deallocate() }
        var bare: [Double] = [], readAll: [Double] = [], parse: [Double] = [], view: [Double] = []
        for i in 0..<(4 * opts.reps + 1) {
            var t = now()
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            var len = 0
            while true {
                let n = read(fd, raw.baseAddress! + len, raw.count - len)
                if n <= 0 { break }
                len += n
            }
            close(fd)
            let tBare = now() - t
            t = now()
            let bytes: [UInt8]
            do { bytes = try ProcFS.readAll(path) } catch { die("ProcFS.readAll: \(error)") }
            let tRead = now() - t
            t = now()
            let mappings: [Mapping]
            do { mappings = try bytes.withUnsafeBytes { b throws(VmIoError) in try MapsParser.parseMappings(b) } } catch
            {
                die("MapsParser: \(error)")
            }
            let tParse = now() - t
            t = now()
            do { _ = try MemView(mappings: mappings) } catch { die("MemView: \(error)") }
            let tView = now() - t
            if i > 0 { bare.append(tBare); readAll.append(tRead); parse.append(tParse); view.append(tView) }
        }
        return "read(2) loop \(seconds(median(bare))), ProcFS.readAll \(seconds(median(readAll))), "
            + "MapsParser.parseMappings \(seconds(median(parse))), MemView(mappings:) \(seconds(median(view)))"
    }

    mutating func scatter(pid: pid_t) {
        note("4/4 maps parse + scattered reads")
        let cScatter = bin("bench-c-scatter")
        let inner = 5  // samples a C process (after one it drops) / a round in-process
        let slots = UnsafeMutableRawBufferPointer.allocate(
            byteCount: ProcessVMBackend.maxIovecs * 4096, alignment: 4096)
        slots.initializeMemory(as: UInt8.self, repeating: 0)  // pre-faulted, like the C side's
        defer { slots.deallocate() }
        let backend = ProcessVMBackend()
        var cFull: [Double] = [], cParse: [Double] = [], oFull: [Double] = [], oParse: [Double] = []
        var cFacts = "", oFacts = "", oParseFacts = ""
        var cSplitRead: [Double] = [], cSplitParse: [Double] = []
        var calls = 0

        func ours(parseOnly: Bool) -> Double {
            let t0 = now()
            let view: MemView
            do { view = try ProcessMaps.read(pid: pid) } catch { die("ProcessMaps.read: \(error)") }
            if parseOnly {
                let t = now() - t0
                oParseFacts = "mappings \(view.mappings.count)"
                return t
            }
            var pieces: [ProcessVMBackend.Piece] = []
            pieces.reserveCapacity(view.mappings.count)
            for m in view.mappings where m.permissions.read {
                let len = Int(min(4096, m.range.count))
                let at = (pieces.count % ProcessVMBackend.maxIovecs) * 4096
                pieces.append(
                    ProcessVMBackend.Piece(
                        address: m.start, destination: UnsafeMutableRawBufferPointer(rebasing: slots[at..<(at + len)])))
            }
            let results = backend.readScattered(pid: pid, pieces)
            let t = now() - t0
            let bytes = results.reduce(0) { $0 + $1.moved }
            let faults = results.count { $0.stop != nil }
            oFacts = "mappings \(view.mappings.count) pieces \(results.count) bytes \(bytes) faults \(faults)"
            return t
        }

        interleaved(4) { k in
            let counted = calls >= 4
            calls += 1
            switch k {
            case 0, 1:
                var args = [cScatter, String(pid), "--reps", String(inner + 1)]
                if k == 1 { args.insert("--parse-only", at: 2) }
                let r = runChecked(args, what: "bench-c-scatter")
                let s = Array(reportedSeconds(r).dropFirst())  // the first is a cold process
                if k == 1, counted {
                    for line in r.output.split(separator: "\n").dropFirst(3) where line.hasPrefix("split ") {
                        let f = line.split(separator: " ")
                        if f.count == 5, let rd = Double(f[2]), let ps = Double(f[4]) {
                            cSplitRead.append(rd); cSplitParse.append(ps)
                        }
                    }
                }
                if k == 0 {
                    let lines = r.output.split(separator: "\n")
                    cFacts = "\(lines.first ?? "") \(lines.dropFirst(2).first ?? "")"
                }
                if counted { if k == 0 { cFull += s } else { cParse += s } }
            default:
                _ = ours(parseOnly: k == 3)  // warm
                var s: [Double] = []
                for _ in 0..<inner { s.append(ours(parseOnly: k == 3)) }
                if counted { if k == 2 { oFull += s } else { oParse += s } }
            }
        }
        let cf = median(cFull), of = median(oFull), cp = median(cParse), op = median(oParse)
        rows.append(
            Row(
                name: "3 maps parse + 4 KiB from each of \(opts.maps)+ mappings", ours: seconds(of),
                baseline: "\(seconds(cf)) (C)", ratio: cf / of, target: ">= 0.80x (time <= 1.25x)",
                pass: of <= cf * 1.25))
        rows.append(
            Row(
                name: "3 maps parse alone", ours: seconds(op), baseline: "\(seconds(cp)) (C hand parser)",
                ratio: cp / op, target: ">= 0.83x (time <= 1.2x)", pass: op <= cp * 1.2))
        details.append("3: C:    \(cFacts)")
        details.append("3: ours: \(oFacts)")
        details.append(
            "3: C, maps parse alone: reading the file \(seconds(median(cSplitRead))), parsing \(seconds(median(cSplitParse)))"
        )
        details.append("3: ours, maps parse alone: \(oParseFacts); \(parseBreakdown(pid: pid))")
        details.append(
            "3: maps parse share: C \(String(format: "%.0f", cp / cf * 100)) %, ours \(String(format: "%.0f", op / of * 100)) % of the full measurement"
        )
    }
}

var bench = Bench(Options(Array(CommandLine.arguments.dropFirst())))
bench.runAll()
