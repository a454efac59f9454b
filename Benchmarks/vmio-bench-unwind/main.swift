// vmio-bench-unwind: how long the unwinder (libdw) takes to unwind a deep stack reading
// memory one PTRACE_PEEKDATA a word and through the tool's cache (whole pages through
// process_vm_readv, in a 16-page cache).
//
//   vmio-bench-unwind [--frames N] [--iterations K] [--pid PID --tid TID]
//
// Without --pid it starts `vmio-fixture-deep-stack deep N` (through VmioFixtures) and
// unwinds that process's main thread; it is the tracer, so nothing else waits on the
// fixture. Each figure is the median of K unwinds; "cold" makes a new unwinder for each
// unwind (nothing cached: the first backtrace of a process), "warm" reuses one (its ELF
// files and CFI are open; only stack reads remain).
// Frame names are not looked up (that reads files, the same work both ways).

import Glibc
import VmIO
import VmioFixtures
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

/// The started fixture (none with --pid); terminated on every way out.
var fixture: FixtureProcess?

@MainActor func startFixture(depth: Int) -> Int32 {
    do {
        let started = try Fixtures.launch(.deepStack, arguments: ["deep", String(depth)], readyTimeout: 60)
        fixture = started
        return started.pid
    } catch {
        die("\(error)")
    }
}

@MainActor func stopFixture() { fixture?.terminate() }

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
        "unwind of thread \(thread) of pid \(target): \(cached.depth) frames "
            + "(fixture recursion \(pid == nil ? String(frames) : "?")), median of \(iterations)"
    )
    print("  peekdata (one PTRACE_PEEKDATA a word): cold \(micros(peek.cold)), warm \(micros(peek.warm))")
    print("  cached (process_vm_readv, 16 pages):  cold \(micros(cached.cold)), warm \(micros(cached.warm))")
    if let s = cached.stats {
        print(
            "  cold unwind: \(s.wordReads) word reads (= PTRACE_PEEKDATA syscalls with peekdata) served by "
                + "\(s.pageReads) process_vm_readv calls, \(s.hits) cache hits, \(s.peeks) peeks"
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
