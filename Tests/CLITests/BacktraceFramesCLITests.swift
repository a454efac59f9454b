// `vmio-ptrace backtrace` and `regs` on the unusual frames and the ways an unwind ends:
// a signal frame, a loop, an unwind error and code with no symbol nor module (the frames
// fixture); names taken from a separate debug file found by build id (`symbol_source`
// `libdw`), and `??` without it (a program built and stripped here); `regs --json`'s
// `rip_symbol` against the ELF symbol table as `readelf` reads it.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The frames fixture once all its threads are asleep where it put them.
private func launchFrames() throws -> FixtureProcess {
    let fixture = try Fixtures.launch(.frames)
    let asleep = waitUntil(timeout: 10) {
        let states = threadStates(fixture.pid)
        return states.count == 5 && states.values.allSatisfy { $0 == "S" }
    }
    if !asleep { Issue.record("the frames fixture's threads did not fall asleep: \(threadStates(fixture.pid))") }
    return fixture
}

/// `backtrace --json`'s threads by name.
private func threadsByName(_ result: RunResult) throws -> [String: [String: Any]] {
    let json = try #require(result.json, "not JSON: \(result)")
    let list = try #require(json["threads"] as? [[String: Any]], "\(json)")
    var out: [String: [String: Any]] = [:]
    for thread in list { out[thread["name"] as? String ?? "?"] = thread }
    return out
}

private func frames(_ thread: [String: Any]?) -> [[String: Any]] { thread?["frames"] as? [[String: Any]] ?? [] }

private func hexValue(_ any: Any?) -> UInt64? {
    guard let text = any as? String, text.hasPrefix("0x") else { return nil }
    return UInt64(text.dropFirst(2), radix: 16)
}

/// A symbol's value (st_value) in an ELF file, from `readelf` (binutils): the test's own
/// reading of the symbol tables, not the tool's.
private func symbolValue(_ name: String, in file: String) throws -> UInt64? {
    let result = try Tool.runProgram("/usr/bin/readelf", ["-W", "--syms", "--dyn-syms", file])
    try #require(result.exited(0), "readelf: \(result)")
    return symbolValues(readelfOutput: result.stdoutText)[name]?.first
}

/// Name (without `@VERSION`) → the values it has, from `readelf -W --syms` output.
func symbolValues(readelfOutput: String) -> [String: [UInt64]] {
    var out: [String: [UInt64]] = [:]
    for line in readelfOutput.split(separator: "\n") {
        // `   Num:    Value          Size Type    Bind   Vis      Ndx Name`
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 8, fields[0].hasSuffix(":"), let value = UInt64(fields[1], radix: 16), value != 0,
            fields[6] != "UND"
        else { continue }
        let name = String(fields[7].split(separator: "@").first ?? fields[7])
        out[name, default: []].append(value)
    }
    return out
}

@Suite struct BacktraceFramesCLITests {
    /// The handler's thread: read ← handler_blocked ← on_signal ← [the signal trampoline]
    /// ← pause, interrupted ← wait_for_signal ← in_handler. The trampoline is the signal frame.
    @Test func aSignalFrameIsMarked() throws {
        let fixture = try launchFrames()
        defer { fixture.terminate() }
        let result = try Tool.run("backtrace", fixture.pidArg, "--json")
        #expect(result.exited(0), "\(result)")
        let thread = try threadsByName(result)["in-handler"]
        let list = frames(thread)
        let names = list.map { $0["function"] as? String ?? "??" }
        let others = (try? threadsByName(result).keys.sorted()) ?? []
        let handler = try #require(names.firstIndex(of: "on_signal"), "\(names); threads: \(others)")
        try #require(list.count > handler + 3, "\(names)")
        #expect(names[handler - 1] == "handler_blocked" && names[handler + 3] == "wait_for_signal", "\(names)")
        // The frame the kernel pushed (the trampoline, in libc) and the one it interrupted.
        let trampoline = list[handler + 1], interrupted = list[handler + 2]
        #expect((trampoline["module"] as? String)?.hasSuffix("/libc.so.6") == true, "\(trampoline)")
        #expect(interrupted["function"] as? String == "pause", "\(names)")
        #expect(list.filter { $0["signal_frame"] as? Bool == true }.count == 1, "one signal frame: \(list)")
        #expect(trampoline["signal_frame"] as? Bool == true, "the trampoline: \(trampoline)")
        #expect(interrupted["signal_frame"] as? Bool == false, "the interrupted frame: \(interrupted)")
        let text = try Tool.run("backtrace", fixture.pidArg)
        #expect(text.lines.filter { $0.hasSuffix(" <signal frame>") }.count == 1, "\(text.lines)")
        #expect(isFreeRunning(fixture.pid))
    }

    /// Two frames whose unwind information name each other: the unwind stops at the first
    /// frame that repeats a pc and sp, keeps the frames before it, and says why.
    @Test func aLoopEndsTheUnwind() throws {
        let fixture = try launchFrames()
        defer { fixture.terminate() }
        let loopTid = try #require(fixture.threads.first { $0.name == "loop" }?.tid)
        let result = try Tool.run("backtrace", fixture.pidArg, "--thread", String(loopTid), "--json")
        #expect(result.exited(0), "\(result)")
        let thread = try #require(try threadsByName(result)["loop"], "\(result)")
        let list = frames(thread)
        #expect(list.map { $0["function"] as? String } == ["vmio_loop_frame", "vmio_loop_partner"], "\(list)")
        #expect(thread["end"] as? String == "loop")
        let first = try #require(list.first)
        let pc = try #require(hexValue(first["pc"])), sp = try #require(hexValue(first["sp"]))
        #expect(hexValue(list.last?["sp"]) == sp, "both frames at one sp")
        #expect(thread["end_detail"] as? String == "loop: pc \(hx(pc)) with sp \(hx(sp)) repeats", "\(thread)")
        let text = try Tool.run("backtrace", fixture.pidArg, "--thread", String(loopTid))
        #expect(text.exited(0), "\(text)")
        #expect(text.lines.last == "  -- loop: pc \(hx(pc)) with sp \(hx(sp)) repeats", "\(text.lines)")
        #expect(isFreeRunning(fixture.pid))
    }

    /// A frame whose unwind information names itself as caller: the unwinder steps to the same
    /// pc and sp, so the unwind ends as a loop, keeping the frame, and the command succeeds.
    @Test func aSelfCallerEndsAsALoop() throws {
        let fixture = try launchFrames()
        defer { fixture.terminate() }
        let result = try Tool.run("backtrace", fixture.pidArg, "--json")
        #expect(result.exited(0), "\(result)")
        let all = try threadsByName(result)
        let thread = try #require(all["bad-frame"], "\(all.keys)")
        let list = frames(thread)
        #expect(list.map { $0["function"] as? String } == ["vmio_bad_frame"])
        #expect(thread["end"] as? String == "loop")
        let pc = try #require(hexValue(list.first?["pc"])), sp = try #require(hexValue(list.first?["sp"]))
        #expect(thread["end_detail"] as? String == "loop: pc \(hx(pc)) with sp \(hx(sp)) repeats", "\(thread)")
        // The other threads are whole.
        #expect(all["frames-main"]?["end"] as? String == "end")
        #expect(isFreeRunning(fixture.pid))
    }

    /// Code in an anonymous mapping: no function, no module; `??` and `?` in text.
    @Test func codeWithoutSymbolNorModule() throws {
        let fixture = try launchFrames()
        defer { fixture.terminate() }
        let code = fixture.address("anon-code")
        let tid = try #require(fixture.threads.first { $0.name == "anon-code" }?.tid)
        let result = try Tool.run("backtrace", fixture.pidArg, "--thread", String(tid), "--json")
        #expect(result.exited(0), "\(result)")
        let list = frames(try threadsByName(result)["anon-code"])
        let top = try #require(list.first)
        let pc = try #require(hexValue(top["pc"]))
        #expect(code <= pc && pc < code + 4096, "\(top)")
        for key in ["function", "function_offset", "symbol_source", "module", "module_offset"] {
            #expect(top[key] is NSNull, "\(key) is null: \(top)")
        }
        #expect(list.contains { $0["function"] as? String == "anon_code_thread" }, "the thread goes on below it")
        let text = try Tool.run("backtrace", fixture.pidArg, "--thread", String(tid))
        // No name: the label is the mapping's start + the offset (an ADDR that resolves to pc).
        let mapping = try #require(procMapsLines(fixture.pid).first { $0.contains(pc) })
        let label = "\(hx(mapping.start))+\(hx(pc - mapping.start))"
        #expect(
            text.lines.dropFirst().first == "  #0  \(String(format: "0x%016lx", pc)) in ?? (\(label))", "\(text.lines)")
        #expect(isFreeRunning(fixture.pid))
    }

    /// `regs --json`: rip_symbol is `function+0xOFF` of the ELF symbol that holds rip (the
    /// loop thread sits at a known point of vmio_loop_frame), rip_module the file's path.
    @Test func regsNamesTheSymbolRipIsIn() throws {
        let fixture = try launchFrames()
        defer { fixture.terminate() }
        let tid = try #require(fixture.threads.first { $0.name == "loop" }?.tid)
        let result = try Tool.run("regs", fixture.pidArg, "--thread", String(tid), "--json")
        #expect(result.exited(0), "\(result)")
        let thread = try #require((result.json?["threads"] as? [[String: Any]])?.first, "\(result)")
        let rip = try #require(hexValue((thread["registers"] as? [String: Any])?["rip"]))
        let binary = Fixtures.path(of: .frames).resolvingSymlinksInPath().path
        let value = try #require(try symbolValue("vmio_loop_frame", in: binary))
        let base = try #require(procMapsLines(fixture.pid).first { $0.path == binary }?.start, "\(binary) mapped")
        #expect(thread["rip_module"] as? String == binary)
        let offset = rip - (base + value)
        #expect(offset > 0 && offset < 64, "rip \(hx(rip)) inside vmio_loop_frame at \(hx(base + value))")
        #expect(thread["rip_symbol"] as? String == "vmio_loop_frame+\(hx(offset))", "\(thread)")
        // An address in no symbol: null, and `??` in text.
        let anonTid = try #require(fixture.threads.first { $0.name == "anon-code" }?.tid)
        let anon = try Tool.run("regs", fixture.pidArg, "--thread", String(anonTid), "--json")
        let anonThread = try #require((anon.json?["threads"] as? [[String: Any]])?.first, "\(anon)")
        #expect(anonThread["rip_symbol"] is NSNull, "\(anonThread)")
        let text = try Tool.run("regs", fixture.pidArg, "--thread", String(anonTid))
        #expect(text.lines.dropFirst().first?.contains("  ?? (") == true, "\(text.lines)")
        // No module: null and `?`, as backtrace says of the same frame.
        #expect(anonThread["rip_module"] is NSNull, "\(anonThread)")
        #expect(text.lines.dropFirst().first?.hasSuffix("  ?? (?)") == true, "\(text.lines)")
        #expect(isFreeRunning(fixture.pid))
    }
}

/// A program built here, stripped, with its debug information in a separate file: its
/// static functions are `??` until that file is installed where the tool looks for it
/// (`/usr/lib/debug/.build-id/xx/yyyy.debug`), then named from it (`symbol_source: "libdw"`).
@Suite(.serialized) struct BuildIDDebugFileCLITests {
    @Test func namesComeFromTheDebugFileFoundByBuildID() throws {
        let cc = ["/usr/bin/cc", "/usr/bin/gcc"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let compiler = try #require(cc, "no C compiler (scripts/setup installs gcc-multilib)")
        let dir = TempDir()
        // A token of this run in the program, so its build id is its own (other runs of this
        // test may build the same source at the same time).
        let token = "\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let source = """
            #include <stdio.h>
            #include <unistd.h>
            static const char token[] = "\(token)";
            __attribute__((noinline)) static void quiet_inner(void) { char c; while (read(0, &c, 1) > 0) {} }
            __attribute__((noinline)) static void quiet_outer(void) { quiet_inner(); __asm__ volatile(""); }
            int main(void) { printf("%s\\nready\\n", token); fflush(stdout); quiet_outer(); return 0; }
            """
        // (Not `stripped.debug`: libdw, like gdb, also looks for FILE.debug beside FILE.)
        let program = dir.sub("stripped"), debug = dir.sub("separate-debug-info")
        try source.write(toFile: dir.sub("p.c"), atomically: true, encoding: .utf8)
        for (tool, arguments) in [
            (compiler, ["-O0", "-g", "-Wl,--build-id", "-o", program, dir.sub("p.c")]),
            ("/usr/bin/objcopy", ["--only-keep-debug", program, debug]),
            ("/usr/bin/strip", ["--strip-all", program]),
        ] {
            let step = try Tool.runProgram(tool, arguments)
            try #require(step.exited(0), "\(tool) \(arguments): \(step)")
        }
        let notes = try Tool.runProgram("/usr/bin/readelf", ["-n", program])
        let idLine = try #require(notes.lines.first { $0.contains("Build ID: ") }, "\(notes)")
        let id = String(try #require(idLine.split(separator: " ").last))
        try #require(id.count > 2)
        #expect(try Tool.runProgram("/usr/bin/readelf", ["-S", program]).stdoutText.contains(".symtab") == false)

        let target = try StartedProgram(program)
        defer { target.stop() }
        try #require(waitUntil { stateLetter(target.pid) == "S" }, "the program blocks in read(2)")

        // Stripped, no debug file: its frames are `??`, in its module.
        let bare = frames(try threadsByName(try Tool.run("backtrace", String(target.pid), "--json")).values.first)
        let own = bare.filter { ($0["module"] as? String) == program }
        #expect(own.count >= 3, "quiet_inner, quiet_outer, main at least: \(bare)")
        #expect(own.allSatisfy { $0["function"] is NSNull }, "\(own)")

        // The debug file installed for its build id: the same frames, named from it.
        let debugDir = "/usr/lib/debug/.build-id/\(id.prefix(2))"
        let madeDir = !FileManager.default.fileExists(atPath: debugDir)
        try FileManager.default.createDirectory(atPath: debugDir, withIntermediateDirectories: true)
        let installed = "\(debugDir)/\(id.dropFirst(2)).debug"
        try FileManager.default.copyItem(atPath: debug, toPath: installed)
        defer {
            unlink(installed)
            if madeDir { rmdir(debugDir) }
        }
        let named = frames(try threadsByName(try Tool.run("backtrace", String(target.pid), "--json")).values.first)
        let ownNamed = named.filter { ($0["module"] as? String) == program }
        let names = ownNamed.map { $0["function"] as? String ?? "??" }
        #expect(Array(names.prefix(3)) == ["quiet_inner", "quiet_outer", "main"], "\(names)")
        for frame in ownNamed.prefix(3) {
            #expect(frame["symbol_source"] as? String == "libdw", "\(frame)")
        }
        #expect(named.map { $0["pc"] as? String } == bare.map { $0["pc"] as? String }, "the same frames")
    }
}

/// A program started with pipes for stdin and stdout (stdin kept open so it blocks reading
/// it), its first line read; killed at `stop()`.
private final class StartedProgram {
    let process = Process()
    private let input = Pipe()
    init(_ path: String) throws {
        let output = Pipe()
        process.executableURL = URL(fileURLWithPath: path)
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        _ = output.fileHandleForReading.readData(ofLength: 1)  // it has started and printed
    }
    var pid: Int32 { process.processIdentifier }
    func stop() {
        try? input.fileHandleForWriting.close()
        if !waitUntil(timeout: 5, { !process.isRunning }) { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}
