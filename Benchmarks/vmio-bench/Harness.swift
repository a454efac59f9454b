// The harness: clocks, statistics, output lines, and the child processes every figure is
// taken from (through bench-spawn), interleaved so that load falls on every side alike.

import Foundation
import Glibc
import VmioFixtures

// MARK: - Clocks and statistics

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

/// "min–max" of samples, for the spread behind a median.
func spread(_ xs: [Double]) -> String { "\(seconds(xs.min()!))–\(seconds(xs.max()!))" }

/// The CPU time (user + system) this process has used, for in-process figures.
func cpuNow() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

/// The repetitions of one side of a comparison: wall-clock and CPU time (user + system, which
/// load from other processes moves far less) and peak memory, one entry a counted run.
struct Samples {
    var wall: [Double] = []
    var cpu: [Double] = []
    var maxRSSKiB: [Int] = []

    init() {}

    init(_ runs: [ChildResult]) {
        wall = runs.map(\.seconds)
        cpu = runs.map(\.cpu)
        maxRSSKiB = runs.map(\.maxRSSKiB)
    }

    mutating func append(wall: Double, cpu: Double) {
        self.wall.append(wall)
        self.cpu.append(cpu)
    }

    var isEmpty: Bool { wall.isEmpty }
    var wallMedian: Double { median(wall) }
    var cpuMedian: Double { median(cpu) }

    /// "0.300 s (0.281 s–0.352 s), cpu 0.250 s": the median, its min–max, the median CPU time.
    var figure: String { "\(seconds(wallMedian)) (\(spread(wall))), cpu \(seconds(cpuMedian))" }
}
/// The load average (1, 5, 15 minutes) from /proc/loadavg.
func loadAverage() -> String {
    var loads = [Double](repeating: 0, count: 3)
    getloadavg(&loads, 3)
    return loads.map { String(format: "%.2f", $0) }.joined(separator: " ")
}

// MARK: - Output

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

// MARK: - Files and programs

/// The directory holding this executable (and, after `swift build`, the fixtures,
/// the C baselines and `vmio-ptrace`).
let buildDirectory = Fixtures.buildDirectory.path

/// A program built next to this one; stops the benchmark when it is missing.
func built(_ name: String) -> String {
    let path = "\(buildDirectory)/\(name)"
    guard access(path, X_OK) == 0 else { die("\(path) is missing; build first (scripts/bench does)") }
    return path
}

/// `name` on PATH, or nil.
func onPath(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if access(p, X_OK) == 0 { return p }
    }
    return nil
}

/// Starts a fixture through the fixture client (its 1 GiB of random bytes take a while).
func startFixture(_ kind: FixtureKind, _ arguments: [String]) -> FixtureProcess {
    do { return try Fixtures.launch(kind, arguments: arguments, readyTimeout: 300) } catch { die("\(error)") }
}

/// Removes a file or directory a run wrote and flushes the page cache's dirty pages, so the
/// next run does not wait for this one's write-back.
func removeAndSync(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
    sync()
}

/// Touches `bytes` of fresh memory, then frees it, so that the run that follows finds free
/// pages the guest has just used. This VM gives pages that stay free for a moment back to
/// its host (virtio-balloon free page reporting), and the first touch of such a page costs a
/// host fault: a run writing 1 GiB could meet all of them or none, by chance (README.md,
/// "Why the tmpfs rows swing so far here"). Done before every side alike, outside its time.
func touchAndFree(_ bytes: Int) {
    guard let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
        memory != MAP_FAILED
    else { return }
    _ = madvise(memory, bytes, MADV_NOHUGEPAGE)
    if madvise(memory, bytes, MADV_POPULATE_WRITE) != 0 { memset(memory, 1, bytes) }
    munmap(memory, bytes)
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

/// Writes `text` to a new file at `path`; stops the benchmark when it cannot.
func writeFile(_ path: String, _ text: String) {
    guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else { die("cannot write \(path)") }
}

/// A fresh directory under `parent` for one item's files; the caller removes it.
func workDirectory(_ parent: String, _ name: String) -> String {
    let path = (parent as NSString).appendingPathComponent("vmio-bench-\(name)-\(getpid())")
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

// MARK: - Child processes

struct ChildResult {
    var seconds: Double
    /// The child's user + system time, from wait4.
    var cpu: Double
    /// `ru_maxrss` from wait4: the child's peak resident set, in KiB.
    var maxRSSKiB: Int
    /// Exit status, or 128 + signal.
    var status: Int32
    /// stdout and stderr together.
    var output: String
}

/// pipe(2) with both ends close-on-exec (posix_spawn's dup2 clears it on the child's copy).
func makePipe() -> (read: Int32, write: Int32) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { die("pipe: \(String(cString: strerror(errno)))") }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return (fds[0], fds[1])
}

/// posix_spawn with stdin on /dev/null and stdout and stderr on `output`.
func spawn(_ argv: [String], output: Int32) -> pid_t {
    let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
    defer { close(devnull) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, devnull, 0)
    posix_spawn_file_actions_adddup2(&actions, output, 1)
    posix_spawn_file_actions_adddup2(&actions, output, 2)
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
    let (r, w) = makePipe()
    let pid = spawn([built("bench-spawn")] + argv, output: w)
    close(w)
    let output = String(decoding: readToEnd(r), as: UTF8.self)
    close(r)
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // The last line is bench-spawn's: "bench-spawn: status N seconds S maxrss_kib K cpu C".
    var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
    while lines.last == "" { lines.removeLast() }
    guard let last = lines.last, last.hasPrefix("bench-spawn: status ") else {
        die("bench-spawn did not report on \(argv.joined(separator: " ")):\n\(output)")
    }
    let f = last.split(separator: " ")
    guard f.count == 9, let code = Int32(f[2]), let secs = Double(f[4]), let rss = Int(f[6]), let cpu = Double(f[8])
    else {
        die("cannot read bench-spawn's report: \(last)")
    }
    return ChildResult(
        seconds: secs, cpu: cpu, maxRSSKiB: rss, status: code,
        output: lines.dropLast().joined(separator: "\n") + "\n")
}

/// Runs a command that must succeed.
func runChecked(_ argv: [String], what: String) -> ChildResult {
    let r = run(argv)
    guard r.status == 0 else { die("\(what) failed (status \(r.status)): \(argv.joined(separator: " "))\n\(r.output)") }
    return r
}

// MARK: - Interleaving

extension Bench {
    /// One warm-up round, then `opts.reps` rounds; round r runs the sides starting at
    /// index r (rotating), so no side always runs first. `body(side, counted)`.
    func interleaved(_ sides: Int, _ body: (_ side: Int, _ counted: Bool) -> Void) {
        for round in 0...opts.reps {
            for k in 0..<sides { body((round + k) % sides, round > 0) }
        }
    }

    /// Runs each side once a round, interleaved; a side returns its run, or nil when the
    /// run does not count (it failed, and said why). The counted runs of each side. With
    /// `touching`, ``touchAndFree(_:)`` of that many bytes before each run.
    func compare(_ sides: [(_ counted: Bool) -> ChildResult?], touching: Int? = nil) -> [Samples] {
        var results = [[ChildResult]](repeating: [], count: sides.count)
        interleaved(sides.count) { k, counted in
            if let touching { touchAndFree(touching) }
            if let result = sides[k](counted), counted { results[k].append(result) }
        }
        return results.map(Samples.init)
    }
}
