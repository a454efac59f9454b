// Backtraces checked frame by frame against two unwinders that share no code with the
// tool's choices: elfutils' eu-stack (pcs, names, whether the unwind ended cleanly) and
// gdb (pcs and stack pointers, through its Python API). The targets are fixtures whose
// code has CFI only in .debug_frame (C, and Go when Debian's golang-go is installed),
// C++ code with mangled names, and builds of the .debug_frame fixture with no CFI at all.
// The binary is the tracer, so the test process never waits on ptrace stops.

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// One frame of `backtrace --json`.
private struct OurFrame {
    var pc: UInt64
    var sp: UInt64
    var function: String?
    var mangled: String?
    var module: String?
    var label: String?
    var foundBy: String
    var reliable: Bool
    var signalFrame: Bool

    init?(_ object: [String: Any]) {
        guard let pc = (object["pc"] as? String).flatMap(parseHex),
            let sp = (object["sp"] as? String).flatMap(parseHex),
            let foundBy = object["found_by"] as? String, let reliable = object["reliable"] as? Bool
        else { return nil }
        self.pc = pc
        self.sp = sp
        function = object["function"] as? String
        mangled = object["function_mangled"] as? String
        module = object["module"] as? String
        label = object["label"] as? String
        self.foundBy = foundBy
        self.reliable = reliable
        signalFrame = object["signal_frame"] as? Bool ?? false
    }
}

/// One thread of `backtrace --json`.
private struct OurThread {
    var tid: Int32
    var frames: [OurFrame]
    var end: String
    var endDetail: String
}

private func parseHex(_ text: String) -> UInt64? {
    text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : nil
}

/// `vmio-ptrace backtrace PID --json` (and the arguments given), by tid.
private func ours(_ pid: Int32, _ extra: [String] = []) throws -> [Int32: OurThread] {
    let result = try Tool.run(["backtrace", String(pid), "--json"] + extra)
    #expect(result.exited(0), "\(result)")
    let json = try #require(result.json, "not JSON: \(result)")
    let list = try #require(json["threads"] as? [[String: Any]])
    var out: [Int32: OurThread] = [:]
    for t in list {
        guard let tid = t["tid"] as? Int, let frames = t["frames"] as? [[String: Any]], let end = t["end"] as? String
        else { continue }
        out[Int32(tid)] = OurThread(
            tid: Int32(tid), frames: frames.compactMap(OurFrame.init), end: end,
            endDetail: t["end_detail"] as? String ?? "")
    }
    return out
}

/// One thread as eu-stack shows it: its frames, and whether eu-stack reported an error
/// for it (the unwind did not reach the outermost frame cleanly).
private struct EuThread {
    var frames: [(pc: UInt64, name: String?)] = []
    var failed = false
}

private let euStackPath = ["/usr/bin/eu-stack", "/bin/eu-stack"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

/// `eu-stack -p PID` (`-r`: names not demangled), by tid.
private func euStack(_ pid: Int32, raw: Bool = false) throws -> [Int32: EuThread] {
    let path = try #require(euStackPath, "eu-stack (elfutils) is not installed; scripts/setup installs it")
    let result = try Tool.runProgram(path, ["-p", String(pid)] + (raw ? ["-r"] : []))
    #expect(result.exited(0) || result.exited(1), "\(result)")
    var threads: [Int32: EuThread] = [:]
    var current: Int32?
    for line in result.lines {
        if line.hasPrefix("TID ") {
            current = Int32(line.dropFirst(4).dropLast())
            if let current { threads[current] = EuThread() }
            continue
        }
        guard let tid = current, line.hasPrefix("#") else { continue }
        // `#3  0x000000000040a634 runtime.notetsleep` (names may hold spaces: C++ signatures).
        let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard fields.count >= 2, let pc = parseHex(String(fields[1])) else { continue }
        threads[tid]?.frames.append((pc, fields.count == 3 ? String(fields[2]) : nil))
    }
    // `eu-stack: dwfl_thread_getframes tid 1234 at 0x… in …: …`
    for line in result.stderrLines {
        guard let range = line.range(of: "tid ") else { continue }
        let digits = line[range.upperBound...].prefix { $0.isNumber }
        if let tid = Int32(digits) { threads[tid]?.failed = true }
    }
    return threads
}

/// Each thread's frames as gdb unwinds them (its own unwinder, prologue analysis and all):
/// pc and stack pointer of every real frame (not the inlined calls and tail calls gdb
/// rebuilds from DWARF, which are not on the stack), by tid.
private func gdbFrames(_ pid: Int32) throws -> [Int32: [(pc: UInt64, sp: UInt64)]] {
    let gdb = try #require(
        ["/usr/bin/gdb", "/bin/gdb"].first { FileManager.default.isExecutableFile(atPath: $0) }, "gdb is not installed")
    let script = FileManager.default.temporaryDirectory.appendingPathComponent("vmio-frames-\(UUID().uuidString).py")
    try """
    import gdb
    for t in gdb.selected_inferior().threads():
        t.switch()
        print("TID %d" % t.ptid[1])
        f = gdb.newest_frame()
        while f is not None:
            if f.type() not in (gdb.INLINE_FRAME, gdb.TAILCALL_FRAME) and f.pc() != 0:
                print("FRAME %x %x" % (f.pc(), int(f.read_register("rsp")) & 0xffffffffffffffff))
            try:
                f = f.older()
            except gdb.error:
                break
    """.write(to: script, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: script) }
    let result = try Tool.runProgram(
        gdb,
        [
            "-p", String(pid), "-batch", "-nx", "-ex", "set auto-load off", "-ex", "set backtrace past-main on",
            "-ex", "set backtrace past-entry on", "-x", script.path,
        ], timeout: 120)
    var out: [Int32: [(pc: UInt64, sp: UInt64)]] = [:]
    var current: Int32?
    for line in result.lines {
        if line.hasPrefix("TID ") {
            current = Int32(line.dropFirst(4))
        } else if line.hasPrefix("FRAME "), let tid = current {
            let fields = line.split(separator: " ")
            if fields.count == 3, let pc = UInt64(fields[1], radix: 16), let sp = UInt64(fields[2], radix: 16) {
                out[tid, default: []].append((pc, sp))
            }
        }
    }
    #expect(!out.isEmpty, "gdb printed no frames: \(result)")
    return out
}

/// Waits until every thread of the fixture is asleep (`S`), so its stacks hold still.
private func waitAsleep(_ fixture: FixtureProcess, threads: Int) {
    let asleep = waitUntil(timeout: 10) {
        let states = threadStates(fixture.pid)
        return states.count >= threads && states.values.allSatisfy { $0 == "S" }
    }
    if !asleep { Issue.record("threads of \(fixture.pid) not asleep: \(threadStates(fixture.pid))") }
}

/// Runs `compare` until it finds no difference (at most `attempts` times: a runtime thread
/// may wake between two unwinders' looks at it), recording the last differences.
private func agreeEventually(attempts: Int = 4, _ compare: () throws -> [String]) throws {
    var differences: [String] = []
    for _ in 0..<attempts {
        differences = try compare()
        if differences.isEmpty { return }
        usleep(200_000)
    }
    for d in differences { Issue.record(Comment(rawValue: d)) }
}

/// The differences between our frames and eu-stack's for every thread: pcs frame by frame,
/// names, and whether the unwind ended cleanly (`end` exactly when eu-stack saw no error).
private func differencesFromEuStack(_ pid: Int32, snapshot: Bool = true) throws -> [String] {
    let mine = try ours(pid, snapshot ? ["--snapshot"] : [])
    let theirs = try euStack(pid)
    var out: [String] = []
    if Set(mine.keys) != Set(theirs.keys) {
        out.append("threads: ours \(mine.keys.sorted()), eu-stack \(theirs.keys.sorted())")
    }
    for (tid, other) in theirs {
        guard let thread = mine[tid] else { continue }
        if thread.frames.map(\.pc) != other.frames.map(\.pc) {
            out.append(
                "thread \(tid) pcs: ours \(thread.frames.map { hx($0.pc) }), eu-stack \(other.frames.map { hx($0.pc) })"
            )
        }
        let names = thread.frames.map { $0.function }
        if names != other.frames.map(\.name) {
            out.append("thread \(tid) names: ours \(names), eu-stack \(other.frames.map(\.name))")
        }
        if (thread.end == "end") == other.failed {
            out.append(
                "thread \(tid): our end is \(thread.end) (\(thread.endDetail)); eu-stack failed: \(other.failed)")
        }
    }
    return out
}

/// The differences between our frames and gdb's: pcs and stack pointers, frame by frame.
private func differencesFromGdb(_ pid: Int32) throws -> [String] {
    let mine = try ours(pid, ["--snapshot"])
    let theirs = try gdbFrames(pid)
    var out: [String] = []
    for (tid, frames) in theirs {
        guard let thread = mine[tid] else {
            out.append("thread \(tid): not in our backtrace")
            continue
        }
        let a = thread.frames.map { "\(hx($0.pc))/\(hx($0.sp))" }, b = frames.map { "\(hx($0.pc))/\(hx($0.sp))" }
        if a != b { out.append("thread \(tid) pc/sp: ours \(a), gdb \(b)") }
    }
    return out
}

/// Builds fixtures/debug-frame/main.c with `cc` and the given flags into a temporary
/// directory (the test's own variants of the fixture).
private func buildDebugFrameVariant(_ name: String, flags: [String]) throws -> URL {
    let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/debug-frame/main.c")
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vmio-unwind-\(getpid())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let output = dir.appendingPathComponent(name)
    let result = try Tool.runProgram("/usr/bin/cc", flags + ["-pthread", source.path, "-o", output.path])
    try #require(result.exited(0), "cc failed: \(result)")
    return output
}

@Suite struct UnwindOracleCLITests {
    /// Code with CFI only in .debug_frame and no frame pointer: the frames, their stack
    /// pointers and their names agree with eu-stack and gdb, each frame above the fixture's
    /// own code was found through .debug_frame, and both threads end cleanly.
    @Test func debugFrameOnlyCodeAgreesWithEuStackAndGdb() throws {
        let fixture = try Fixtures.launch(.debugFrame)
        defer { fixture.terminate() }
        waitAsleep(fixture, threads: 2)
        try agreeEventually { try differencesFromEuStack(fixture.pid) }
        try agreeEventually { try differencesFromGdb(fixture.pid) }

        let all = try ours(fixture.pid)
        let main = try #require(all[fixture.pid])
        let names = main.frames.compactMap(\.function)
        let order = ["df_wait_for_commands", "df_inner", "df_middle", "df_outer", "main"]
        let positions = order.compactMap { names.firstIndex(of: $0) }
        #expect(positions.count == order.count && positions == positions.sorted(), "\(names)")
        #expect(main.end == "end" && names.last == "_start", "\(main.end) \(names)")
        for thread in all.values {
            #expect(thread.frames.first?.foundBy == "registers")
            for (callee, frame) in zip(thread.frames, thread.frames.dropFirst()) {
                let inFixture = callee.module?.hasSuffix("/vmio-fixture-debug-frame") == true
                let isPLT = callee.function == nil
                if inFixture && !isPLT {
                    #expect(frame.foundBy == "cfi-debug-frame", "caller of \(callee.function ?? "?"): \(frame.foundBy)")
                } else if callee.module?.hasSuffix("libc.so.6") == true {
                    #expect(frame.foundBy == "cfi-eh-frame", "caller of \(callee.function ?? "?"): \(frame.foundBy)")
                }
                #expect(frame.reliable)
            }
        }
        let worker = try #require(all.values.first { $0.tid != fixture.pid })
        #expect(worker.frames.compactMap(\.function).contains("df_worker_body"))
        #expect(worker.end == "end")

        // The main thread serving commands from a signal handler: the unwind goes through
        // the kernel's signal frame (glibc's __restore_rt) to the interrupted code and on.
        #expect(try fixture.send("signal") == "ok")
        waitAsleep(fixture, threads: 2)
        try agreeEventually { try differencesFromEuStack(fixture.pid) }
        try agreeEventually { try differencesFromGdb(fixture.pid) }
        let handled = try #require(try ours(fixture.pid)[fixture.pid])
        let trampoline = try #require(handled.frames.firstIndex { $0.signalFrame }, "\(handled.frames)")
        #expect(handled.frames[trampoline].function == "__restore_rt")
        #expect(handled.frames[trampoline - 1].function == "df_handler")
        #expect(handled.frames.filter(\.signalFrame).count == 1)
        #expect(handled.frames[(trampoline + 1)...].contains { $0.function == "df_outer" })
        #expect(handled.end == "end" && handled.frames.allSatisfy { $0.reliable })
    }

    /// The same code built with frame pointers and no CFI at all: the frames above it are
    /// found through the frame-pointer chain, agree with eu-stack, and are marked as such
    /// (JSON `found_by` and `reliable`, and on the text line).
    @Test func framePointerFramesAreMarked() throws {
        let binary = try buildDebugFrameVariant(
            "df-frame-pointer",
            flags: [
                "-O1", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables",
                "-fno-omit-frame-pointer",
            ])
        let fixture = try Fixtures.launch(.debugFrame, executable: binary)
        defer { fixture.terminate() }
        waitAsleep(fixture, threads: 2)
        try agreeEventually { try differencesFromEuStack(fixture.pid) }

        let main = try #require(try ours(fixture.pid)[fixture.pid])
        // df_command_loop is found through libc's CFI; its caller, the first of the fixture's
        // frames without CFI, through the frame pointer.
        let inner = try #require(
            main.frames.firstIndex { $0.function == "df_wait_for_commands" }, "\(main.frames.map(\.function))")
        let frame = main.frames[inner]
        #expect(frame.foundBy == "frame-pointer" && !frame.reliable, "\(frame)")
        // Everything above a guessed frame stands on it: unreliable too, whatever found it.
        #expect(main.frames[inner...].allSatisfy { !$0.reliable })
        #expect(main.frames[..<inner].allSatisfy { $0.reliable }, "\(main.frames.map(\.foundBy))")

        let text = try Tool.run("backtrace", fixture.pidArg, "--thread", fixture.pidArg)
        let line = try #require(text.lines.first { $0.contains(" in df_wait_for_commands+") }, "\(text)")
        #expect(line.hasSuffix(" <unverified: found by frame pointer>"), "\(line)")
        let above = try #require(text.lines.first { $0.contains(" in main+") }, "\(text)")
        #expect(above.contains("<unverified"), "\(above)")
    }

    /// No CFI and no frame pointer: the unwind cannot know the callers of the fixture's code,
    /// and says so instead of claiming the end of the stack.
    @Test func noCFIAndNoFramePointerIsNotTheEnd() throws {
        let binary = try buildDebugFrameVariant(
            "df-no-cfi",
            flags: ["-O1", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-fomit-frame-pointer"])
        let fixture = try Fixtures.launch(.debugFrame, executable: binary)
        defer { fixture.terminate() }
        waitAsleep(fixture, threads: 2)
        try agreeEventually { try differencesFromEuStack(fixture.pid) }
        let main = try #require(try ours(fixture.pid)[fixture.pid])
        let wait = try #require(main.frames.firstIndex { $0.function == "df_command_loop" }, "\(main.frames)")
        #expect(main.frames[..<(wait + 1)].allSatisfy { $0.reliable }, "libc's CFI found everything up to here")
        #expect(main.frames[(wait + 1)...].allSatisfy { !$0.reliable }, "\(main.frames.map(\.foundBy))")
        #expect(main.end == "error", "\(main.end): \(main.endDetail)")
        let text = try Tool.run("backtrace", fixture.pidArg, "--thread", fixture.pidArg)
        #expect(text.lines.last?.hasPrefix("  -- unwind error: ") == true, "\(text)")
    }

    /// C++ frames read as eu-stack and gdb show them (`vmio::fixture::Parker::park(long)`),
    /// demangled by the C++ runtime; --json keeps the mangled name beside.
    @Test func cxxNamesAreDemangled() throws {
        let fixture = try Fixtures.launch(.cxxNames)
        defer { fixture.terminate() }
        waitAsleep(fixture, threads: 1)
        try agreeEventually { try differencesFromEuStack(fixture.pid) }

        let main = try #require(try ours(fixture.pid)[fixture.pid])
        let raw = try #require(try euStack(fixture.pid, raw: true)[fixture.pid])
        #expect(main.frames.map { $0.mangled ?? $0.function } == raw.frames.map(\.name), "eu-stack -r: \(raw.frames)")
        let expected: [(String, String)] = [
            ("vmio::fixture::wait_for_commands()", "_ZN4vmio7fixture17wait_for_commandsEv"),
            ("vmio::fixture::Parker::park(long)", "_ZN4vmio7fixture6Parker4parkEl"),
            ("vmio::fixture::Box<int>::hold(int)", "_ZN4vmio7fixture3BoxIiE4holdEi"),
            ("(anonymous namespace)::serve(char const*)", "_ZN12_GLOBAL__N_15serveEPKc"),
        ]
        for (name, mangled) in expected {
            let frame = main.frames.first { $0.function == name }
            #expect(frame?.mangled == mangled, "\(name): \(main.frames.map { ($0.function, $0.mangled) })")
        }
        #expect(main.frames.first { $0.function == "main" }?.mangled == nil, "a C name has no mangled form")
        let text = try Tool.run("backtrace", fixture.pidArg)
        #expect(text.lines.contains { $0.contains(" in vmio::fixture::Parker::park(long)+0x") }, "\(text)")
    }

    /// A Go program (no .eh_frame): every thread's frames, names and stack pointers agree
    /// with eu-stack and gdb — the runtime's futexsleep, netpoll and outermost frames
    /// included — and `end` is claimed only where eu-stack also ended cleanly.
    @Test(
        .enabled(if: goTool != nil, "golang-go is not installed (scripts/setup installs it): Go backtraces not tested"))
    func goProgramAgreesWithEuStackAndGdb() throws {
        let go = try #require(goTool)
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("fixtures/go-stack/main.go")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vmio-go-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let binary = dir.appendingPathComponent("vmio-fixture-go-stack")
        let build = try Tool.runProgram(
            "/usr/bin/env",
            [
                "HOME=\(dir.path)", "GOCACHE=\(dir.path)/cache", "GOPATH=\(dir.path)/gopath", "GOFLAGS=",
                "GO111MODULE=off", go, "build", "-o", binary.path, source.path,
            ], timeout: 300)
        try #require(build.exited(0), "go build failed: \(build)")

        let fixture = try Fixtures.launch(.debugFrame, executable: binary)
        defer { fixture.terminate() }
        waitAsleep(fixture, threads: 3)
        try agreeEventually(attempts: 6) { try differencesFromEuStack(fixture.pid) }
        try agreeEventually(attempts: 6) { try differencesFromGdb(fixture.pid) }

        let all = try ours(fixture.pid, ["--snapshot"])
        let names = Set(all.values.flatMap { $0.frames.compactMap(\.function) })
        for expected in ["runtime.futexsleep", "main.main", "runtime.goexit.abi0"] {
            #expect(names.contains(expected), "\(expected) in \(names.sorted())")
        }
        for thread in all.values {
            #expect(thread.frames.dropFirst().allSatisfy { $0.foundBy == "cfi-debug-frame" && $0.reliable })
        }
    }

    /// One backtrace of many threads opens the maps and each ELF file once (strace counts
    /// the opens), however many threads there are.
    @Test(arguments: [false, true]) func eachFileIsOpenedOnce(snapshot: Bool) throws {
        let strace = try #require(
            ["/usr/bin/strace", "/bin/strace"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "strace is not installed; scripts/setup installs it")
        let fixture = try Fixtures.launch(.threads, arguments: ["40"])
        defer { fixture.terminate() }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("vmio-strace-\(getpid())-\(snapshot)")
        defer { try? FileManager.default.removeItem(at: log) }
        let result = try Tool.runProgram(
            strace,
            ["-f", "-e", "trace=open,openat", "-o", log.path, Tool.path, "backtrace", fixture.pidArg]
                + (snapshot ? ["--snapshot"] : []), timeout: 120)
        #expect(result.exited(0), "\(result)")
        #expect(result.lines.filter { $0.hasPrefix("thread ") }.count == 41)
        let opens = try String(contentsOf: log, encoding: .utf8).split(separator: "\n").filter {
            !$0.contains("ENOENT")
        }
        func count(_ fragment: String) -> Int { opens.filter { $0.contains(fragment) }.count }
        let pid = fixture.pid
        #expect(count("\"/proc/\(pid)/maps\"") <= 2, "the maps: once, and once more after a stop at most")
        // The target's files, opened through /proc/PID/root (the tool's own libc is the loader's).
        let files = opens.filter { $0.contains("\"/proc/\(pid)/root/") }
        #expect(files.filter { $0.contains("/libc.so.6\"") }.count == 1, "\(files)")
        #expect(files.filter { $0.contains("/vmio-fixture-threads\"") }.count == 1, "\(files)")
    }
}

/// The Go toolchain, if installed.
private let goTool: String? = ["/usr/bin/go", "/usr/lib/go/bin/go", "/usr/local/go/bin/go"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}
