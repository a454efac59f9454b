// `vmio-ptrace backtrace` and `regs` on the deep-stack fixture, `sym:` addresses on the
// holder, compared with the kernel's view (/proc) and with elfutils' eu-stack. The
// binary is the tracer here, so the test process never waits on ptrace stops.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A deep-stack fixture whose threads are all asleep: the main thread blocked reading
/// stdin at the bottom of its stack, the blocker in blocked_here.
private func launchDeepStack(depth: Int = 3) throws -> FixtureProcess {
    let fixture = try Fixtures.launch(.deepStack, arguments: depth > 0 ? ["deep", String(depth)] : [])
    // `ready` is printed just before the main thread blocks in read(2).
    let asleep = waitUntil(timeout: 5) {
        let states = threadStates(fixture.pid)
        return states.count == 2 && states.values.allSatisfy { $0 == "S" }
    }
    if !asleep { Issue.record("the deep-stack fixture's threads did not fall asleep: \(threadStates(fixture.pid))") }
    return fixture
}

/// The target runs freely again: no thread stopped, nobody tracing it.
private func expectLetGo(_ fixture: FixtureProcess, sourceLocation: SourceLocation = #_sourceLocation) {
    let free = waitUntil(timeout: 2) {
        isFreeRunning(fixture.pid) && threadStates(fixture.pid).values.allSatisfy { $0 != "t" && $0 != "T" }
            && threadTracers(fixture.pid).values.allSatisfy { $0 == "0" }
    }
    #expect(
        free, "left stopped or traced: states \(threadStates(fixture.pid)), tracers \(threadTracers(fixture.pid))",
        sourceLocation: sourceLocation)
}

/// One thread of `backtrace --json`.
private struct JSONThread {
    var tid: Int32
    var name: String
    var frames: [[String: Any]]
    var end: String
    var functions: [String] { frames.map { $0["function"] as? String ?? "??" } }
    var pcs: [UInt64] { frames.compactMap { ($0["pc"] as? String).flatMap(parseHex) } }

    init?(_ object: Any) {
        guard let o = object as? [String: Any], let tid = o["tid"] as? Int, let name = o["name"] as? String,
            let frames = o["frames"] as? [[String: Any]], let end = o["end"] as? String
        else { return nil }
        self.tid = Int32(tid)
        self.name = name
        self.frames = frames
        self.end = end
    }
}

private func parseHex(_ text: String) -> UInt64? {
    text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : nil
}

private func threads(_ result: RunResult) throws -> [JSONThread] {
    let json = try #require(result.json, "not JSON: \(result)")
    let list = try #require(json["threads"] as? [Any])
    return list.compactMap(JSONThread.init)
}

@Suite struct BacktraceCLITests {
    // MARK: backtrace

    @Test func bothThreadsWithTheirNamesAndFramesInOrder() throws {
        let fixture = try launchDeepStack(depth: 3)
        defer { fixture.terminate() }
        let result = try Tool.run("backtrace", fixture.pidArg, "--json")
        #expect(result.exited(0), "\(result)")
        let all = try threads(result)
        #expect(all.map(\.name) == ["deep-main", "blocker"], "\(all.map(\.name))")
        #expect(all.map(\.tid) == fixture.threads.map(\.tid))

        let main = try #require(all.first)
        let names = main.functions
        let order = ["wait_for_commands", "recurse", "level_three", "level_two", "level_one", "main"]
        let positions = order.map { names.firstIndex(of: $0) }
        #expect(positions.allSatisfy { $0 != nil }, "\(names)")
        let found = positions.compactMap { $0 }
        #expect(found == found.sorted(), "innermost first: \(names)")
        #expect(names.filter { $0 == "recurse" }.count == 4, "recurse(3) … recurse(0): \(names)")
        #expect(main.end == "end")
        #expect(names.last == "_start")

        // Module and offset agree with the maps: pc − module_offset is the module's first mapping.
        let exeFrame = try #require(main.frames.first { $0["function"] as? String == "level_three" })
        let module = try #require(exeFrame["module"] as? String)
        #expect(module.hasSuffix("/vmio-fixture-deep-stack"))
        let pc = try #require((exeFrame["pc"] as? String).flatMap(parseHex))
        let offset = try #require((exeFrame["module_offset"] as? String).flatMap(parseHex))
        #expect(procMapsLines(fixture.pid).first { $0.path == module }?.start == pc - offset)
        #expect(exeFrame["symbol_source"] as? String == "libdw")
        #expect(
            (exeFrame["function_offset"] as? String).flatMap(parseHex) ?? 0 > 0, "a return address is past the call")

        let blocker = try #require(all.last)
        #expect(blocker.functions.contains("blocked_here"), "\(blocker.functions)")
        #expect(blocker.functions.contains("blocker"))
        expectLetGo(fixture)
        #expect(try fixture.send("ping") == "pong")
    }

    @Test func textOutput() throws {
        let fixture = try launchDeepStack(depth: 1)
        defer { fixture.terminate() }
        let result = try Tool.run("backtrace", fixture.pidArg)
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        let lines = result.lines
        #expect(lines.first == "thread \(fixture.pid) (deep-main):")
        #expect(lines.contains { $0.hasPrefix("thread ") && $0.hasSuffix(" (blocker):") })
        let level = try #require(lines.first { $0.contains(" in level_three+0x") })
        // `  #N  0x<16 hex digits> in level_three+0xOFF (vmio-fixture-deep-stack+0xOFF)`
        #expect(
            level.range(
                of: #"^  #\d+ +0x[0-9a-f]{16} in level_three\+0x[0-9a-f]+ \(vmio-fixture-deep-stack\+0x[0-9a-f]+\)$"#,
                options: .regularExpression) != nil, "\(level)")
        #expect(lines.contains(""), "a blank line between threads")
        expectLetGo(fixture)
    }

    @Test func oneThreadAndUnknownThreads() throws {
        let fixture = try launchDeepStack()
        defer { fixture.terminate() }
        let blockerTid = try #require(fixture.threads.last?.tid)
        let one = try Tool.run("backtrace", fixture.pidArg, "--thread", String(blockerTid), "--json")
        #expect(one.exited(0), "\(one)")
        let only = try threads(one)
        #expect(only.map(\.tid) == [blockerTid] && only.first?.name == "blocker")
        #expect(only.first?.functions.contains("blocked_here") == true)

        let missing = try Tool.run("backtrace", fixture.pidArg, "--thread", "1")
        #expect(missing.exited(1), "\(missing)")
        let tids = fixture.threads.map { String($0.tid) }.joined(separator: " ")
        #expect(missing.stderr.contains("has no thread 1 (its 2 threads: \(tids))"), "\(missing.stderr)")
        let regsMissing = try Tool.run("regs", fixture.pidArg, "--thread", "1")
        #expect(regsMissing.exited(1), "\(regsMissing)")
        expectLetGo(fixture)
    }

    /// A process of many threads: the error says how many and shows a few, not all of them.
    @Test func unknownThreadOfManyThreads() throws {
        let fixture = try Fixtures.launch(.threads, arguments: ["40"])
        defer { fixture.terminate() }
        let tids = fixture.threads.map(\.tid).sorted()
        for command in ["backtrace", "regs"] {
            let missing = try Tool.run(command, fixture.pidArg, "--thread", "1")
            #expect(missing.exited(1), "\(missing)")
            let head = tids.prefix(5).map(String.init).joined(separator: " ")
            let want = "pid \(fixture.pid) has no thread 1 (its 41 threads: \(head) … \(tids.last!))"
            #expect(missing.stderr.contains(want), "\(missing.stderr)")
            #expect(!missing.stderr.contains(String(tids[20])), "not every thread id")
        }
    }

    @Test func snapshotStopsEveryThreadAndAgrees() throws {
        let fixture = try launchDeepStack(depth: 5)
        defer { fixture.terminate() }
        let one = try threads(try Tool.run("backtrace", fixture.pidArg, "--json"))
        let snap = try Tool.run("backtrace", fixture.pidArg, "--snapshot", "--json")
        #expect(snap.exited(0), "\(snap)")
        #expect(snap.json?["snapshot"] as? Bool == true)
        let both = try threads(snap)
        #expect(both.map(\.name) == ["deep-main", "blocker"])
        #expect(both.first?.pcs == one.first?.pcs, "an asleep thread has the same stack either way")
        #expect(both.last?.functions == one.last?.functions)
        expectLetGo(fixture)
    }

    @Test func depthLimitStopsCleanly() throws {
        let fixture = try launchDeepStack(depth: 50)
        defer { fixture.terminate() }
        let result = try Tool.run("backtrace", fixture.pidArg, "--depth", "5", "--json")
        #expect(result.exited(0), "\(result)")
        let all = try threads(result)
        #expect(all.map(\.name) == ["deep-main", "blocker"], "\(all.map(\.name))")
        for thread in all {
            // The blocker's stack is deeper than 5 frames too (start_thread … blocked_here … futex).
            #expect(thread.frames.count == 5 && thread.end == "depth-limit", "\(thread.name): \(thread.functions)")
        }
        let text = try Tool.run("backtrace", fixture.pidArg, "--depth", "5")
        #expect(text.lines.contains("  -- depth limit 5 reached (--depth N shows more)"), "\(text)")
        let zero = try Tool.run("backtrace", fixture.pidArg, "--depth", "0")
        #expect(zero.exited(64), "\(zero)")
        expectLetGo(fixture)
    }

    /// 200 frames of recursion: within the default depth of 256, and the PTRACE_PEEKDATA
    /// reader finds exactly the frames the cached reader finds.
    @Test func deepRecursionBothMemoryReaders() throws {
        let fixture = try launchDeepStack(depth: 200)
        defer { fixture.terminate() }
        let cached = try Tool.run("backtrace", fixture.pidArg, "--thread", fixture.pidArg, "--json")
        let peek = try Tool.run(
            "backtrace", fixture.pidArg, "--thread", fixture.pidArg, "--memory", "peekdata", "--json")
        #expect(cached.exited(0) && peek.exited(0), "\(cached) \(peek)")
        let a = try #require(try threads(cached).first), b = try #require(try threads(peek).first)
        #expect(a.functions.filter { $0 == "recurse" }.count == 201)
        #expect(a.end == "end" && a.functions.last == "_start")
        #expect(a.pcs == b.pcs && a.functions == b.functions)
        #expect(cached.json?["memory"] as? String == "cached" && peek.json?["memory"] as? String == "peekdata")
        expectLetGo(fixture)
    }

    /// elfutils' eu-stack finds the same frames for the main thread: the same pcs, and names
    /// that are the same function (equal after dropping `@VERSION`, or aliases of one address).
    @Test func agreesWithEuStack() throws {
        let euStack = try #require(
            ["/usr/bin/eu-stack", "/bin/eu-stack"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "eu-stack (elfutils) is not installed; scripts/setup installs it")
        let fixture = try launchDeepStack(depth: 4)
        defer { fixture.terminate() }
        let ours = try #require(try threads(try Tool.run("backtrace", fixture.pidArg, "--json")).first)
        expectLetGo(fixture)

        let theirs = try Tool.runProgram(euStack, ["-p", fixture.pidArg])
        #expect(theirs.exited(0), "\(theirs)")
        // `TID 1234:` then `#0  0x00007f… name` lines, until the next `TID` line.
        var frames: [(pc: UInt64, name: String?)] = []
        var inMain = false
        for line in theirs.lines {
            if line.hasPrefix("TID ") { inMain = line == "TID \(fixture.pid):"; continue }
            guard inMain, line.hasPrefix("#") else { continue }
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let pc = parseHex(String(fields[1])) else { continue }
            frames.append((pc, fields.count >= 3 ? String(fields[2]) : nil))
        }
        #expect(frames.count == ours.frames.count, "eu-stack: \(frames), ours: \(ours.functions)")
        #expect(frames.map(\.pc) == ours.pcs)
        // Names that differ must be aliases: one address in the module's symbol tables, as
        // readelf (binutils) reads them, not as the tool does.
        var compared = 0
        for (i, (frame, name)) in zip(frames, ours.functions).enumerated() {
            let other = try #require(frame.name, "eu-stack names frame \(i): \(theirs.stdoutText)")
            let plain = String(other.split(separator: "@").first ?? Substring(other))
            compared += 1
            if other == name || plain == name { continue }
            let module = try #require(ours.frames[i]["module"] as? String, "frame \(i) has a module")
            let listing = try Tool.runProgram("/usr/bin/readelf", ["-W", "--syms", "--dyn-syms", module])
            let values = symbolValues(readelfOutput: listing.stdoutText)
            let a = Set(values[name] ?? []), b = Set(values[plain] ?? [])
            #expect(!a.isEmpty && !a.isDisjoint(with: b), "frame \(i): ours \(name), eu-stack \(other) in \(module)")
        }
        #expect(compared == ours.frames.count, "every frame compared")
        #expect(ours.functions.contains("level_three"))
        expectLetGo(fixture)
    }

    /// The fixture kills itself 100 ms after it sees a tracer on its main thread, which the
    /// tool is then unwinding (100 000 frames: over a second in a debug build, half of that in
    /// release): the command ends with exit 4 and says why.
    @Test func targetThatExitsDuringTheUnwind() throws {
        for json in [false, true] {
            let fixture = try launchDeepStack(depth: 100_000)
            defer { fixture.terminate() }
            #expect(try fixture.send("exit-when-traced 100") == "ok")
            var args = ["backtrace", fixture.pidArg, "--depth", "200000"]
            if json { args.append("--json") }
            let result = try Tool.run(args)
            #expect(result.exited(4), "\(result)")
            #expect(result.stderr.contains("pid \(fixture.pid) exited during the backtrace"), "\(result.stderr)")
            if json {
                #expect(result.json?["status"] as? Int == 4, "\(result)")
                #expect((result.json?["error"] as? String)?.contains("exited during the backtrace") == true)
            }
            #expect(fixture.waitForExit(timeout: 5))
        }
    }

    @Test func selfAndMissingProcesses() throws {
        let me = try Tool.run("backtrace", "self")
        #expect(me.exited(1), "\(me)")
        #expect(me.stderr.contains("cannot trace its own threads"))
        let holder = try Fixtures.launch(.holder)
        let pid = holder.pidArg
        holder.terminate()
        let gone = try Tool.run("backtrace", pid)
        #expect(gone.exited(4), "\(gone)")
        let regsGone = try Tool.run("regs", pid)
        #expect(regsGone.exited(4), "\(regsGone)")
    }

    // MARK: regs

    /// The registers in the README's order: "rip, rsp, rbp, rax…r15, eflags, cs, ss, ds, es,
    /// fs, gs, fs_base, gs_base, orig_rax" (written out here, not taken from the code).
    static let documentedRegisters =
        ["rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi"] + (8...15).map { "r\($0)" }
        + ["eflags", "cs", "ss", "ds", "es", "fs", "gs", "fs_base", "gs_base", "orig_rax"]

    @Test func registersOfBothThreads() throws {
        let fixture = try launchDeepStack()
        defer { fixture.terminate() }
        let result = try Tool.run("regs", fixture.pidArg, "--json")
        #expect(result.exited(0), "\(result)")
        let json = try #require(result.json)
        #expect(json["pid"] as? Int == Int(fixture.pid))
        let list = try #require(json["threads"] as? [[String: Any]])
        #expect(list.compactMap { $0["name"] as? String } == ["deep-main", "blocker"])
        let maps = procMapsLines(fixture.pid)
        let keys = Self.documentedRegisters
        for thread in list {
            let registers = try #require(thread["registers"] as? [String: Any])
            #expect(Set(registers.keys) == Set(keys))
            func value(_ name: String) -> UInt64? { (registers[name] as? String).flatMap(parseHex) }
            let rip = try #require(value("rip")), rsp = try #require(value("rsp"))
            #expect(maps.first { $0.contains(rip) }?.perms == "r-xp", "rip \(hx(rip))")
            let stack = maps.first { $0.contains(rsp) }
            if thread["name"] as? String == "deep-main" {
                #expect(stack?.path == "[stack]", "rsp \(hx(rsp)) in \(String(describing: stack))")
                #expect(value("orig_rax") == 0, "blocked in read(2)")
            } else {
                #expect(stack != nil && stack?.path != "[stack]", "a thread's stack is its own mapping")
                #expect(value("orig_rax") == 202, "blocked in futex(2)")
            }
            #expect((thread["rip_module"] as? String)?.hasSuffix("libc.so.6") == true)
            #expect(value("cs") == 0x33 && value("ss") == 0x2b, "64-bit user segments")
            #expect(value("fs_base") != 0, "TLS")
        }
        // The JSON keys come in the documented order.
        let text = result.stdoutText
        let positions = keys.compactMap { text.range(of: "\"\($0)\":")?.lowerBound }
        #expect(positions.count == keys.count && positions == positions.sorted())
        expectLetGo(fixture)
    }

    @Test func registersAsText() throws {
        let fixture = try launchDeepStack()
        defer { fixture.terminate() }
        let result = try Tool.run("regs", fixture.pidArg, "--thread", fixture.pidArg)
        #expect(result.exited(0), "\(result)")
        let lines = result.lines
        #expect(lines.first == "thread \(fixture.pid) (deep-main):")
        #expect(lines.count == 1 + Self.documentedRegisters.count, "\(lines)")
        let names = lines.dropFirst().map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(names == Self.documentedRegisters)
        #expect(
            lines[1].range(of: #"^  rip +0x[0-9a-f]{16}  \S+ \(.*libc\.so\.6\)$"#, options: .regularExpression) != nil,
            "\(lines[1])")
        expectLetGo(fixture)
    }

    // MARK: sym: addresses

    @Test func readThroughSymbols() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let plain = try Tool.run("read", holder.pidArg, "sym:counter", "8", "--format", "u64")
        #expect(plain.exited(0), "\(plain)")
        #expect(plain.lines == ["12648430"])
        let qualified = try Tool.run("read", holder.pidArg, "sym:vmio-fixture-holder:counter", "8", "--format", "u64")
        #expect(qualified.exited(0) && qualified.lines == ["12648430"], "\(qualified)")
        let code = try Tool.run("read", holder.pidArg, "sym:vmio_fixture_answer", "4", "--json")
        #expect(code.json?["address"] as? String == hx(holder.address("code")), "\(code)")

        let missing = try Tool.run("read", holder.pidArg, "sym:no_such_symbol", "8")
        #expect(missing.exited(1), "\(missing)")
        #expect(missing.stderr.contains("unknown symbol 'no_such_symbol'"), "\(missing.stderr)")
        #expect(missing.stdout.isEmpty)
        let noFile = try Tool.run("read", holder.pidArg, "sym:libnothere.so:counter", "8")
        #expect(noFile.exited(1) && noFile.stderr.contains("unknown symbol"), "\(noFile)")

        // Writes take sym: too; the holder sees the change.
        let write = try Tool.run("write", holder.pidArg, "sym:counter", "--u64", "7")
        #expect(write.exited(0), "\(write)")
        #expect(try holder.send("counter") == "7")
    }

    // MARK: the memory-reader benchmark

    /// Prints the figures of `vmio-bench-unwind` (the unwinder's PTRACE_PEEKDATA reader
    /// against the cached process_vm_readv one, on a 200-frame stack).
    @Test func unwindBenchmarkFigures() throws {
        let bench = Fixtures.buildDirectory.appendingPathComponent("vmio-bench-unwind").path
        try #require(FileManager.default.isExecutableFile(atPath: bench), "build vmio-bench-unwind first")
        let result = try Tool.runProgram(bench, ["--frames", "200", "--iterations", "10"], timeout: 120)
        print(result.stdoutText, terminator: "")
        #expect(result.exited(0), "\(result)")  // it exits 1 if the two readers disagree on the frames
        // Counts, not times (those are for the benchmark to print): the whole deep stack was
        // unwound, and the cache served the unwinder's word reads with a few page reads.
        let text = result.stdoutText
        let frames = try #require(
            text.firstMatch(of: /: (\d+) frames/).flatMap { Int($0.1) }, "no frame count: \(text)")
        #expect(frames > 200, "200 levels of recursion and the frames around them: \(frames)")
        let reads = try #require(
            text.firstMatch(of: /(\d+) word reads .* served by (\d+) process_vm_readv calls/), "no counts: \(text)")
        let words = try #require(Int(reads.1)), pages = try #require(Int(reads.2))
        #expect(pages > 0 && words > 100 * pages, "\(words) word reads served by \(pages) page reads")
        #expect(text.firstMatch(of: /speed-up: cold [0-9.]+x, warm [0-9.]+x/) != nil, "\(text)")
    }
}
