// vmio-bench-unwind: how long the unwinder (libdw) takes to unwind a deep stack reading
// memory one PTRACE_PEEKDATA a word and through the tool's cache (whole pages through
// process_vm_readv, in a 16-page cache).
//
//   vmio-bench-unwind [--frames N] [--iterations K] [--pid PID --tid TID]
//
// Without --pid it starts `vmio-fixture-deep-stack deep N` (from its own directory) and
// unwinds that process's main thread; it is the tracer, so nothing else waits on the
// fixture. Each figure is the median of K unwinds; "cold" makes a new unwinder for each
// unwind (nothing cached: the first backtrace of a process), "warm" reuses one (its ELF
// files and CFI are open; only stack reads remain).
// Frame names are not looked up (that reads files, the same work both ways).

import Glibc
import VmIO
import VmioPtrace

func die(_ message: String) -> Never {
    var text = "vmio-bench-unwind: \(message)\n"
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}

var frames = 200, iterations = 30
var pid: Int32?, tid: Int32?
var args = CommandLine.arguments.dropFirst()
while let arg = args.popFirst() {
    guard let value = args.popFirst() else { die("\(arg) needs a value") }
    switch arg {
    case "--frames": frames = Int(value) ?? 0
    case "--iterations": iterations = Int(value) ?? 0
    case "--pid": pid = Int32(value)
    case "--tid": tid = Int32(value)
    default: die("unknown option \(arg)")
    }
}
guard frames > 0, iterations > 0 else { die("--frames and --iterations must be positive") }

/// The started fixture: its pid and the write end of its stdin (closing it ends it).
var fixture: (pid: Int32, stdin: Int32)?

@MainActor func startFixture(depth: Int) -> Int32 {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { die("readlink /proc/self/exe failed") }
    let dir = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        .split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
    let path = dir + "/vmio-fixture-deep-stack"
    var inPipe: [Int32] = [0, 0], outPipe: [Int32] = [0, 0]
    guard pipe(&inPipe) == 0, pipe(&outPipe) == 0 else { die("pipe failed") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_addclose(&actions, inPipe[1])
    posix_spawn_file_actions_addclose(&actions, outPipe[0])
    let argv = [path, "deep", String(depth)]
    var cargs = argv.map { strdup($0) } + [nil]
    var child: pid_t = 0
    let rc = posix_spawn(&child, path, &actions, nil, &cargs, environ)
    for arg in cargs { free(arg) }
    guard rc == 0 else { die("cannot start \(path): \(String(cString: strerror(rc)))") }
    close(inPipe[0])
    close(outPipe[1])
    // Read up to `ready`.
    var text = ""
    var byte: UInt8 = 0
    while !text.hasSuffix("ready\n") {
        guard read(outPipe[0], &byte, 1) == 1 else { die("the fixture exited before ready: \(text)") }
        text.append(Character(UnicodeScalar(byte)))
    }
    close(outPipe[0])
    fixture = (child, inPipe[1])
    return child
}

@MainActor func stopFixture() {
    guard let fixture else { return }
    close(fixture.stdin)  // EOF: the fixture exits 0
    var status: Int32 = 0
    for _ in 0..<200 {
        if waitpid(fixture.pid, &status, WNOHANG) == fixture.pid { return }
        usleep(10_000)
    }
    kill(fixture.pid, SIGKILL)
    waitpid(fixture.pid, &status, 0)
}

let target = pid ?? startFixture(depth: frames)
let thread = tid ?? target
let clock = ContinuousClock()

func median(_ values: [Duration]) -> Duration { values.sorted()[values.count / 2] }
func micros(_ d: Duration) -> String {
    let us = Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
    return us >= 1000 ? String(format: "%.2f ms", us / 1000) : String(format: "%.1f µs", us)
}

struct Measure {
    var cold: Duration
    var warm: Duration
    var depth: Int
    var stats: PageCache.Stats?
}

@MainActor func measure(_ access: UnwindMemoryAccess) throws -> Measure {
    var cold: [Duration] = [], warm: [Duration] = []
    var depth = 0
    var stats: PageCache.Stats?
    for _ in 0..<iterations {
        let unwinder = try Unwinder(pid: target, access: access)
        var result: (frames: [StackFrame], end: UnwindEnd)?
        cold.append(
            try clock.measure {
                result = try unwinder.unwind(tid: thread, maxDepth: 100_000, names: false)
            })
        depth = result!.frames.count
        if stats == nil { stats = unwinder.cache?.stats }
        unwinder.cache?.resetStats()
        warm.append(
            try clock.measure {
                result = try unwinder.unwind(tid: thread, maxDepth: 100_000, names: false)
            })
    }
    return Measure(cold: median(cold), warm: median(warm), depth: depth, stats: stats)
}

do {
    let tracer = try Tracer(pid: target, threads: [thread])
    defer { tracer.detach() }
    // One of each first, so neither pays for first-touch work in this process.
    _ = try measure(.peekdata)
    let peek = try measure(.peekdata)
    let cached = try measure(.cached)
    tracer.detach()
    print(
        "unwind of thread \(thread) of pid \(target): \(cached.depth) frames (fixture recursion \(pid == nil ? String(frames) : "?")), median of \(iterations)"
    )
    print("  peekdata (one PTRACE_PEEKDATA a word): cold \(micros(peek.cold)), warm \(micros(peek.warm))")
    print("  cached (process_vm_readv, 16 pages):  cold \(micros(cached.cold)), warm \(micros(cached.warm))")
    if let s = cached.stats {
        print(
            "  cold unwind: \(s.wordReads) word reads (= PTRACE_PEEKDATA syscalls with peekdata) served by \(s.pageReads) process_vm_readv calls, \(s.hits) cache hits, \(s.peeks) peeks"
        )
    }
    let ratio = { (a: Duration, b: Duration) -> String in
        String(
            format: "%.1fx",
            (Double(a.components.attoseconds) / 1e18 + Double(a.components.seconds))
                / max(1e-12, Double(b.components.attoseconds) / 1e18 + Double(b.components.seconds)))
    }
    print("  speed-up: cold \(ratio(peek.cold, cached.cold)), warm \(ratio(peek.warm, cached.warm))")
    if peek.depth != cached.depth { die("the two unwinds disagree: \(peek.depth) against \(cached.depth) frames") }
} catch {
    stopFixture()
    die("\(error)")
}
stopFixture()
