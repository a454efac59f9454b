// vmio-bench-threads: backtraces and registers of every thread of a many-threaded process,
// against gdb, in one run (issue 19: the tool must be at least 2x faster than gdb).
//
//   vmio-bench-threads [--threads N] [--reps K] [--no-gdb]
//
// Starts `vmio-fixture-threads N` (default 1,000 workers, each a few frames deep in
// pthread_cond_wait) through the fixture client (VmioFixtures), then runs, interleaved (round r starts with a
// different command, so none always goes first), one warm-up round and K counted rounds of:
//   vmio-ptrace backtrace PID              gdb -p PID -batch -ex 'thread apply all bt'
//   vmio-ptrace backtrace PID --snapshot
//   vmio-ptrace regs PID                   gdb -p PID -batch -ex 'thread apply all info registers'
// and prints the medians and the ratios gdb / vmio-ptrace. Each command's output is checked
// once (every thread is there) and otherwise discarded. Build with -c release
// (`swift build -c release --scratch-path .build-bench`) for figures worth quoting.

import Glibc
import VmioFixtures

func die(_ message: String) -> Never {
    var text = "vmio-bench-threads: \(message)\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}

var threads = 1000, reps = 5
var useGdb = true
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    switch arg {
    case "--no-gdb": useGdb = false
    case "--threads", "--reps":
        guard let value = args.popFirst().flatMap({ Int($0) }), value > 0 else { die("\(arg) needs a positive number") }
        if arg == "--threads" { threads = value } else { reps = value }
    default: die("unknown option \(arg) (usage: vmio-bench-threads [--threads N] [--reps K] [--no-gdb])")
    }
}

func onPath(_ name: String) -> String? {
    for dir in (getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin").split(separator: ":") {
        let candidate = "\(dir)/\(name)"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
}

/// Runs `argv` with stdin from /dev/null and stdout to `output` (or /dev/null); returns
/// the exit status and the wall-clock seconds.
func run(_ argv: [String], output: String? = nil) -> (status: Int32, seconds: Double) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var cargs = argv.map { strdup($0) } + [nil]
    defer { for arg in cargs { free(arg) } }
    var start = timespec(), end = timespec()
    clock_gettime(CLOCK_MONOTONIC, &start)
    var child: pid_t = 0
    guard posix_spawn(&child, argv[0], &actions, nil, &cargs, environ) == 0 else { die("cannot run \(argv[0])") }
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    clock_gettime(CLOCK_MONOTONIC, &end)
    let seconds = Double(end.tv_sec - start.tv_sec) + Double(end.tv_nsec - start.tv_nsec) / 1e9
    return ((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), seconds)
}

/// How many lines of `path` start with `prefix`.
func countLines(_ path: String, prefix: String) -> Int {
    guard let file = fopen(path, "r") else { return 0 }
    defer { fclose(file) }
    var count = 0
    var line: UnsafeMutablePointer<CChar>?
    var capacity = 0
    while getline(&line, &capacity, file) > 0 {
        if let line, strncmp(line, prefix, prefix.utf8.count) == 0 { count += 1 }
    }
    free(line)
    return count
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

/// `value` with `digits` decimals (no Foundation here).
func fixed(_ value: Double, _ digits: Int) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int((value * scale).rounded())
    let whole = String(scaled / Int(scale)), fraction = String(scaled % Int(scale))
    return digits == 0 ? whole : whole + "." + String(repeating: "0", count: digits - fraction.count) + fraction
}

func padded(_ text: String, _ width: Int) -> String {
    text + String(repeating: " ", count: max(0, width - text.count))
}

let cli = Fixtures.toolPath.path
guard access(cli, X_OK) == 0 else { die("\(cli) is missing; build first") }
let gdb = useGdb ? onPath("gdb") : nil
let fixture: FixtureProcess
do {
    fixture = try Fixtures.launch(.threads, arguments: [String(threads)], readyTimeout: 120)
} catch {
    die("\(error)")
}
defer { fixture.terminate() }
let pid = String(fixture.pid)

struct Command {
    let name: String
    let argv: [String]
    /// Each thread's output starts with this (to check every thread is there).
    let threadPrefix: String
}
var commands = [
    Command(name: "backtrace", argv: [cli, "backtrace", pid], threadPrefix: "thread "),
    Command(name: "backtrace --snapshot", argv: [cli, "backtrace", pid, "--snapshot"], threadPrefix: "thread "),
    Command(name: "regs", argv: [cli, "regs", pid], threadPrefix: "thread "),
]
if let gdb {
    let batch = [gdb, "-p", pid, "-batch", "-nx", "-ex", "set auto-load off", "-ex"]
    commands.append(Command(name: "gdb bt", argv: batch + ["thread apply all bt"], threadPrefix: "Thread "))
    commands.append(
        Command(name: "gdb info registers", argv: batch + ["thread apply all info registers"], threadPrefix: "Thread "))
}

var uts = utsname()
uname(&uts)
let kernel = withUnsafeBytes(of: uts.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
var load = [Double](repeating: 0, count: 3)
getloadavg(&load, 3)
print("vmio-bench-threads: vmio-fixture-threads \(threads) (pid \(pid), \(threads + 1) threads), kernel \(kernel)")
print("load \(load.map { fixed($0, 2) }.joined(separator: " ")); \(reps) rounds (medians), 1 warm-up round")

// The warm-up round also checks that every thread is in every command's output.
let check = "/tmp/vmio-bench-threads-\(getpid()).txt"
for command in commands {
    let (status, _) = run(command.argv, output: check)
    let seen = countLines(check, prefix: command.threadPrefix)
    if status != 0 || seen != threads + 1 {
        die("\(command.name) exited \(status) and showed \(seen) of \(threads + 1) threads (output in \(check))")
    }
}
unlink(check)

var samples = [[Double]](repeating: [], count: commands.count)
for round in 0..<reps {
    for k in commands.indices {
        let i = (round + k) % commands.count
        let (status, seconds) = run(commands[i].argv)
        if status != 0 { die("\(commands[i].name) exited \(status)") }
        samples[i].append(seconds)
    }
}

let medians = Dictionary(uniqueKeysWithValues: zip(commands.map(\.name), samples.map(median)))
for command in commands {
    let values = samples[commands.firstIndex { $0.name == command.name }!].sorted()
    print(
        "  \(padded(command.name, 22)) median \(fixed(medians[command.name]!, 3)) s"
            + "  (min \(fixed(values.first!, 3)), max \(fixed(values.last!, 3)))")
}
if gdb != nil {
    func row(_ ours: String, _ theirs: String) {
        let ratio = medians[theirs]! / medians[ours]!
        print(
            "  \(ours) vs \(theirs): \(fixed(ratio, 2))x faster (target >= 2x: \(ratio >= 2 ? "PASS" : "FAIL"))")
    }
    row("backtrace", "gdb bt")
    row("backtrace --snapshot", "gdb bt")
    row("regs", "gdb info registers")
} else {
    print("  (no gdb: no ratios)")
}
