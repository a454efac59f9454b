// ELF cores of live fixtures (`Target.writeCore`, and `vmio-ptrace core`), opened by the tools
// that read cores: gdb (threads, backtraces, bytes, globals, registers), eu-stack (backtraces)
// and eu-readelf (the notes, the program headers).

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A fresh directory for cores, removed by the caller.
private func coreDirectory() throws -> URL {
    try temporaryDirectory("vmio-core")
}

/// Writes a core of `pid` at `path` through the library, as `vmio-ptrace core` does.
@discardableResult
private func writeCore(_ pid: Int32, _ path: String, _ options: CoreOptions = CoreOptions()) throws -> CoreReport {
    let target = try Target(pid: pid)
    return try target.writeCore(to: path, options: options)
}

/// `gdb -batch` on `program` and `core` with `commands`; its standard output.
private func gdb(_ program: String, _ core: String, _ commands: [String]) throws -> String {
    var arguments = ["-nx", "-batch", "-iex", "set debuginfod enabled off", "-iex", "set auto-load no"]
    for command in commands { arguments += ["-ex", command] }
    let result = try Tool.runProgram("/usr/bin/gdb", arguments + [program, core], timeout: 120)
    #expect(result.exited(0), "gdb: \(result)")
    return result.stdoutText
}

/// The `0x…` values gdb prints after the colon of each `x/…x` line.
private func gdbWords(_ text: String) -> [UInt64] {
    text.split(separator: "\n").filter { $0.hasPrefix("0x") && $0.contains(":") }.flatMap { line in
        line.split(separator: ":", maxSplits: 1)[1].split(whereSeparator: { $0 == " " || $0 == "\t" })
            .compactMap { $0.hasPrefix("0x") ? UInt64($0.dropFirst(2), radix: 16) : nil }
    }
}

/// The function names of each thread's frames in gdb's `thread apply all bt`, by thread
/// (gdb's `Thread N (LWP TID)` headings), innermost first.
private func gdbBacktraces(_ text: String) -> [Int32: [String]] {
    var out: [Int32: [String]] = [:]
    var current: Int32?
    for line in text.split(separator: "\n") {
        if line.hasPrefix("Thread "), let lwp = line.range(of: "(LWP ") {
            current = Int32(line[lwp.upperBound...].prefix(while: \.isNumber))
            if let current { out[current] = [] }
        } else if line.hasPrefix("#"), let current {
            // `#3  0x… in level_three () at …` or `#0  level_three () at …`
            let words = line.split(separator: " ")
            let name =
                words.firstIndex(of: "in").map { words.index(after: $0) }.map { String(words[$0]) }
                ?? (words.count > 1 ? String(words[1]) : "?")
            out[current, default: []].append(name)
        }
    }
    return out
}

/// The bytes `holder` sees at `address` (its `get`).
private func holderBytes(_ holder: FixtureProcess, _ address: UInt64, _ count: Int) throws -> [UInt8] {
    let reply = try holder.send("get \(hx(address)) \(count)")
    var out: [UInt8] = []
    var index = reply.startIndex
    while reply.distance(from: index, to: reply.endIndex) >= 2 {
        let next = reply.index(index, offsetBy: 2)
        out.append(UInt8(reply[index..<next], radix: 16) ?? 0)
        index = next
    }
    return out
}

/// Little-endian 8-byte words.
private func words(_ bytes: [UInt8]) -> [UInt64] {
    stride(from: 0, to: bytes.count - 7, by: 8).map { i in
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[i + $1]) << (8 * UInt64($1)) }
    }
}

/// The target runs freely again: no thread stopped, nobody tracing it.
private func expectRunning(_ pid: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
    let free = waitUntil(timeout: 2) {
        threadStates(pid).values.allSatisfy { $0 != "t" && $0 != "T" }
            && threadTracers(pid).values.allSatisfy { $0 == "0" }
    }
    #expect(free, "left stopped or traced: \(threadStates(pid)) \(threadTracers(pid))", sourceLocation: sourceLocation)
}

/// The segment of `report` that holds `address`.
private func segment(_ report: CoreReport, _ address: UInt64) -> CoreSegment? {
    report.segments.first { $0.mapping.range.contains(address) }
}

@Suite(.serialized) struct CoreCLITests {
    init() { settleSignals() }

    @Test func holderCoreShowsTheLiveBytesAndGlobalsInGDB() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("holder.core").path
        let report = try writeCore(holder.pid, path)
        expectRunning(holder.pid)
        #expect(report.stopped)
        #expect(report.threads == [holder.pid])
        #expect(report.format.is64Bit)
        let buf = holder.address("buf"), counter = holder.address("counter")
        let text = try gdb(
            Fixtures.path(of: .holder).path, path,
            ["x/8gx \(hx(buf + 0x200))", "x/2gx \(hx(buf + 0x100))", "p/x counter", "info threads"])
        let live = words(try holderBytes(holder, buf + 0x200, 64)) + words(try holderBytes(holder, buf + 0x100, 16))
        #expect(gdbWords(text) == live, "\(text)")
        #expect(text.contains("= 0xc0ffee"), "\(text)")
        #expect(text.contains("LWP \(holder.pid)"), "\(text)")
        #expect(counter != 0)
        #expect(try holder.send("ping") == "pong")
    }

    @Test func deepStackUnwindsToMainInGDBAndEuStackAsTheLiveBacktrace() throws {
        let fixture = try Fixtures.launch(.deepStack, arguments: ["deep", "3"])
        defer { fixture.terminate() }
        #expect(waitUntil(timeout: 5) { threadStates(fixture.pid).values.allSatisfy { $0 == "S" } })
        let own: Set = ["wait_for_commands", "recurse", "level_three", "level_two", "level_one", "main"]
        let live = try Tool.run("backtrace", fixture.pidArg, "--json")
        #expect(live.exited(0), "\(live)")
        let liveThreads = try #require(live.json?["threads"] as? [[String: Any]])
        let liveMain = try #require(liveThreads.first { $0["tid"] as? Int == Int(fixture.pid) })
        let liveNames = (liveMain["frames"] as? [[String: Any]] ?? []).compactMap { $0["function"] as? String }
            .filter(own.contains)
        #expect(liveNames.count == 9, "\(liveNames)")

        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("deep.core").path
        let report = try writeCore(fixture.pid, path)
        #expect(Set(report.threads) == Set(fixture.threads.map(\.tid)))
        #expect(report.threads.first == fixture.pid)
        expectRunning(fixture.pid)

        let program = Fixtures.path(of: .deepStack).path
        let text = try gdb(program, path, ["info threads", "thread apply all bt"])
        let traces = gdbBacktraces(text)
        #expect(Set(traces.keys) == Set(fixture.threads.map(\.tid)), "\(text)")
        #expect(traces[fixture.pid]?.filter(own.contains) == liveNames, "\(text)")
        let blocker = try #require(fixture.threads.first { $0.name == "blocker" })
        #expect(traces[blocker.tid]?.contains("blocked_here") == true, "\(text)")

        let stack = try Tool.runProgram("/usr/bin/eu-stack", ["--core", path, "-e", program], timeout: 60)
        #expect(stack.exited(0), "\(stack)")
        // `#3  0x000055…  level_three`: the names of the main thread's frames.
        var euNames: [Int32: [String]] = [:]
        var tid: Int32 = 0
        for line in stack.lines {
            if line.hasPrefix("TID ") { tid = Int32(line.dropFirst(4).prefix(while: \.isNumber)) ?? 0 }
            if line.hasPrefix("#") { euNames[tid, default: []].append(String(line.split(separator: " ").last ?? "")) }
        }
        #expect(euNames[fixture.pid]?.filter(own.contains) == liveNames, "\(stack.stdoutText)")
        #expect(euNames[blocker.tid]?.contains("blocked_here") == true, "\(stack.stdoutText)")
    }

    @Test func notesHoldEveryThreadTheAuxvAndTheMappedFiles() throws {
        let fixture = try Fixtures.launch(.threads)
        defer { fixture.terminate() }
        #expect(waitUntil(timeout: 5) { threadStates(fixture.pid).values.allSatisfy { $0 == "S" } })
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("threads.core").path
        try writeCore(fixture.pid, path)
        let notes = try Tool.runProgram("/usr/bin/eu-readelf", ["-n", path])
        #expect(notes.exited(0), "\(notes)")
        let text = notes.stdoutText
        // `  CORE                 336  PRSTATUS`: the notes by owner and type.
        func count(_ owner: String, _ type: String) -> Int {
            notes.lines.filter { $0.hasPrefix("  \(owner) ") && $0.hasSuffix("  \(type)") }.count
        }
        #expect(count("CORE", "PRSTATUS") == fixture.threads.count, "\(text)")
        #expect(count("CORE", "FPREGSET") == fixture.threads.count, "\(text)")
        #expect(count("LINUX", "X86_XSTATE") == fixture.threads.count, "\(text)")
        #expect(count("CORE", "PRPSINFO") == 1)
        #expect(count("CORE", "AUXV") == 1)
        #expect(count("CORE", "FILE") == 1)
        for thread in fixture.threads { #expect(text.contains("pid: \(thread.tid), ppid: "), "\(thread)") }
        // The state from before the attach (asleep), not the tracing stop the core was taken in.
        #expect(text.contains("sname: S,"), "\(text)")
        #expect(text.contains("fname: main-thread\n"), "\(text)")

        // The auxiliary vector, entry by entry, as /proc/PID/auxv holds it.
        let auxv = try #require(readProcBytes("/proc/\(fixture.pid)/auxv"))
        let pairs = stride(from: 0, to: auxv.count - 15, by: 16).map {
            (words(Array(auxv[$0..<$0 + 8]))[0], words(Array(auxv[$0 + 8..<$0 + 16]))[0])
        }
        let pagesz = try #require(pairs.first { $0.0 == 6 })
        let entry = try #require(pairs.first { $0.0 == 9 })
        #expect(text.contains("PAGESZ: \(pagesz.1)"), "\(text)")
        #expect(text.contains("ENTRY: \(hx(entry.1))"), "\(text)")

        // NT_FILE: one line a file mapping, as the maps list them.
        let files = procMapsLines(fixture.pid).filter { $0.path.hasPrefix("/") }
        #expect(!files.isEmpty)
        for line in files {
            let start = String(line.start, radix: 16), end = String(line.end, radix: 16)
            #expect(
                text.split(separator: "\n").contains { $0.contains("\(start)-\(end)") && $0.hasSuffix(line.path) },
                "\(start)-\(end) \(line.path) in \(text)")
        }
    }

    @Test func coredumpFilterDecidesWhatEachMappingCarries() throws {
        let fixture = try Fixtures.launch(.coreMaps, arguments: ["4"])
        defer { fixture.terminate() }
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fileShared = fixture.address("file_shared"), anonShared = fixture.address("anon_shared")
        let anonPrivate = fixture.address("anon_private"), dontDump = fixture.address("dont_dump")
        #expect(readProcFile("/proc/\(fixture.pid)/coredump_filter")?.hasPrefix("00000033") == true)

        let path = dir.appendingPathComponent("default.core").path
        let report = try writeCore(fixture.pid, path)
        #expect(report.filter == .kernelDefault)
        #expect(segment(report, fileShared)?.content == .empty(.filter))
        #expect(segment(report, anonShared)?.content == .whole)
        #expect(segment(report, anonPrivate)?.content == .whole)
        #expect(segment(report, dontDump)?.content == .empty(.dontDump))
        #expect(report.segments.first { $0.mapping.path == "[vvar]" }.map { $0.fileSize == 0 } ?? true)
        // The program's text is in the file: only its first page (the ELF header) is carried.
        let program = Fixtures.path(of: .coreMaps).path
        let text = report.segments.first { $0.mapping.path == program && $0.mapping.offset == 0 }
        #expect(text?.content == .firstPage, "\(report.segments.map { ($0.mapping.path, $0.content) })")
        let shown = try gdb(
            program, path, ["x/2gx \(hx(anonShared))", "x/2gx \(hx(anonPrivate))", "p/x core_counter"])
        #expect(
            gdbWords(shown) == [
                0xa5a5_a5a5_a5a5_a5a5, 0xa5a5_a5a5_a5a5_a5a5, 0x7777_7777_7777_7777, 0x7777_7777_7777_7777,
            ])
        #expect(shown.contains("= 0xc0de0001"), "\(shown)")

        // --filter 0x3b adds file-backed shared mappings; MADV_DONTDUMP still wins.
        let wider = dir.appendingPathComponent("wider.core").path
        let all = try writeCore(fixture.pid, wider, CoreOptions(filter: CoredumpFilter(rawValue: 0x3b)))
        #expect(segment(all, fileShared)?.content == .whole)
        #expect(segment(all, dontDump)?.content == .empty(.dontDump))
        #expect(gdbWords(try gdb(program, wider, ["x/1gx \(hx(fileShared))"])) == [0xf5f5_f5f5_f5f5_f5f5])
        // Neither anonymous kind: only what the filter keeps.
        let none = try writeCore(fixture.pid, dir.appendingPathComponent("none.core").path, CoreOptions(filter: []))
        #expect(segment(none, anonPrivate)?.content == .empty(.filter))
        #expect(segment(none, anonShared)?.content == .empty(.filter))
        expectRunning(fixture.pid)
    }

    @Test func sparseCoreTakesLessDiskAndReadsTheSame() throws {
        let fixture = try Fixtures.launch(.coreMaps, arguments: ["64"])
        defer { fixture.terminate() }
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let dense = dir.appendingPathComponent("dense.core").path
        let sparse = dir.appendingPathComponent("sparse.core").path
        let a = try writeCore(fixture.pid, dense)
        let b = try writeCore(fixture.pid, sparse, CoreOptions(sparse: true))
        #expect(a.fileSize == b.fileSize)
        #expect(a.fileSize > 64 << 20)
        #expect(b.diskBytes < a.fileSize / 4, "sparse: \(b.diskBytes) of \(b.fileSize)")
        #expect(a.diskBytes > 64 << 20, "dense: \(a.diskBytes)")
        // The zeros' bytes are the same in both files: written zeros, or holes that read as zeros.
        let zerosSegment = try #require(segment(b, fixture.address("zeros")))
        #expect(zerosSegment.fileSize == 64 << 20)
        func contents(_ path: String) throws -> Data {
            let handle = try #require(FileHandle(forReadingAtPath: path))
            defer { try? handle.close() }
            try handle.seek(toOffset: zerosSegment.fileOffset)
            return handle.readData(ofLength: Int(zerosSegment.fileSize))
        }
        #expect(try contents(dense) == contents(sparse))
        let zeros = fixture.address("zeros")
        let shown = try gdb(Fixtures.path(of: .coreMaps).path, sparse, ["x/4gx \(hx(zeros))"])
        #expect(gdbWords(shown) == [0x524f_432d_4f49_4d56, 0x0053_4f52_455a_2d45, 0, 0], "\(shown)")
    }

    /// A core on a tmpfs, its pages made ahead of the writes: the random fixture's buffer is in
    /// it byte for byte as in memory, and the truncated mapping's unreadable pages read as
    /// zeros (their pages may have been made ahead).
    @Test func aCoreOnATmpfsHoldsTheMemory() throws {
        let random = try Fixtures.launch(.random, arguments: ["8"])
        defer { random.terminate() }
        let truncated = try Fixtures.launch(.truncated)
        defer { truncated.terminate() }
        let base = "/dev/shm/vmio-core-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { for name in ["random", "truncated"] { unlink("\(base).\(name)") } }
        func bytes(_ path: String, _ segment: CoreSegment, count: Int) throws -> Data {
            let handle = try #require(FileHandle(forReadingAtPath: path))
            defer { try? handle.close() }
            try handle.seek(toOffset: segment.fileOffset)
            return handle.readData(ofLength: count)
        }

        let buf = random.address("buf")
        let report = try writeCore(random.pid, base + ".random")
        let inCore = try #require(segment(report, buf))
        let count = 8 << 20
        #expect(inCore.mapping.start == buf && inCore.fileSize >= UInt64(count))
        let memory = try #require(procMemory(random.pid, at: buf, count: count))
        #expect(try bytes(base + ".random", inCore, count: count) == memory)

        let map = truncated.address("map")
        let holed = try writeCore(
            truncated.pid, base + ".truncated", CoreOptions(filter: CoredumpFilter(rawValue: 0x37)))
        let mapped = try #require(segment(holed, map))
        let data = try bytes(base + ".truncated", mapped, count: 16384)
        #expect(data.prefix(4096).allSatisfy { $0 == 0x5c })
        #expect(data.count == 16384 && data.dropFirst(4096).allSatisfy { $0 == 0 })
        #expect(holed.holes.contains { $0.address == map + 4096 })
    }

    @Test func unreadablePagesAreListedHoles() throws {
        let fixture = try Fixtures.launch(.truncated)
        defer { fixture.terminate() }
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let map = fixture.address("map")
        // Bit 2: private file mappings whole, so the pages past the file's end are read.
        let report = try writeCore(
            fixture.pid, dir.appendingPathComponent("t.core").path, CoreOptions(filter: CoredumpFilter(rawValue: 0x37)))
        #expect(segment(report, map)?.content == .whole)
        let hole = try #require(report.holes.first { $0.address == map + 4096 }, "\(report.holes)")
        #expect(hole.length == 12288)
        #expect(hole.errno != nil)
        #expect(!report.isComplete)
    }

    @Test func existingFileIsReplacedOnlyWhenAsked() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("core").path
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: TargetError.file(path: path, .exists)) { try writeCore(holder.pid, path) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old")
        try writeCore(holder.pid, path, CoreOptions(replace: true))
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0 > 65536)
        expectRunning(holder.pid)
    }

    @Test func noStopCoreStillHasEveryThreadsRegisters() throws {
        let fixture = try Fixtures.launch(.deepStack, arguments: ["deep", "1"])
        defer { fixture.terminate() }
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("nostop.core").path
        // Without a stop the stack is read after the registers, so the main thread must already
        // be blocked in its read, not between `ready` and the read with its frames below rsp
        // changing (the CI's ThreadSanitizer run once caught it there: no level_one in gdb).
        #expect(
            waitUntil(timeout: 10) {
                (0..<3).allSatisfy { _ in
                    usleep(10_000)
                    return stateLetter(fixture.pid) == "S"
                }
            })
        let report = try writeCore(fixture.pid, path, CoreOptions(stop: false))
        #expect(!report.stopped)
        #expect(Set(report.threads) == Set(fixture.threads.map(\.tid)))
        expectRunning(fixture.pid)
        let traces = gdbBacktraces(try gdb(Fixtures.path(of: .deepStack).path, path, ["thread apply all bt"]))
        #expect(traces[fixture.pid]?.contains("level_one") == true, "\(traces)")
    }

    @Test func thirtyTwoBitCoreOpensInGDBWithItsRegisters() throws {
        let holder = try Holder32.launch()
        defer { holder.terminate() }
        #expect(waitUntil(timeout: 5) { threadStates(holder.pid).values.allSatisfy { $0 == "S" } })
        let regs = try Tool.run("regs", holder.pidArg, "--json")
        #expect(regs.exited(0), "\(regs)")
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("h32.core").path
        let report = try writeCore(holder.pid, path)
        #expect(!report.format.is64Bit)
        let header = try #require(FileHandle(forReadingAtPath: path)?.readData(ofLength: 20))
        #expect(header[4] == 1, "ELFCLASS32")
        #expect(header[18] == 3, "EM_386")
        let program = try Holder32.build.get().path
        let buf = holder.address("buf")
        let text = try gdb(program, path, ["info registers eip esp", "p/x counter", "x/1wx \(hx(buf + 0x10))", "bt"])
        #expect(text.contains("= 0xc0ffee"), "\(text)")
        #expect(text.contains("0xdeadbeef"), "\(text)")
        #expect(text.contains(" main "), "\(text)")
        // The registers gdb reads from the core are the live ones (the thread sleeps in read(2)).
        let live = try #require(regs.json)
        let registers = try #require(
            (live["threads"] as? [[String: Any]])?.first?["registers"] as? [String: Any] ?? live["registers"]
                as? [String: Any], "\(regs.stdoutText)")
        for (ours, theirs) in [("rip", "eip"), ("rsp", "esp")] {
            let value = try #require((registers[ours] as? String).flatMap { UInt64($0.dropFirst(2), radix: 16) })
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(theirs) }, "\(text)")
            #expect(line.contains(hx(value)), "\(theirs): \(line) vs \(hx(value))")
        }
        expectRunning(holder.pid)
    }
}

/// The whole of a binary /proc file.
private func readProcBytes(_ path: String) -> [UInt8]? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    return [UInt8](handle.readDataToEndOfFile())
}

/// Ignores SIGPIPE before the library installs its detach handlers (see ToolRunner.swift).
private func settleSignals() {
    _ = signal(SIGPIPE, SIG_IGN)
    _ = try? Tracer(pid: Int32.max)
    _ = signal(SIGPIPE, SIG_IGN)
}

/// `vmio-ptrace core`: its output, JSON, exit statuses and file handling.
@Suite(.serialized) struct CoreCommandCLITests {
    @Test func writesACoreAndSaysWhatItHolds() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("h.core").path
        let result = try Tool.run("core", holder.pidArg, "-o", path, "--json")
        #expect(result.exited(0), "\(result)")
        let json = try #require(result.json, "\(result)")
        #expect(json["pid"] as? Int == Int(holder.pid))
        #expect(json["output"] as? String == path)
        #expect(json["class"] as? String == "ELF64" && json["machine"] as? String == "x86_64")
        #expect(json["threads"] as? [Int] == [Int(holder.pid)])
        #expect(json["complete"] as? Bool == true && json["stopped"] as? Bool == true)
        #expect(json["filter"] as? String == "0x33")
        #expect((json["holes"] as? [Any])?.isEmpty == true)
        let size = try #require(json["file_size"] as? Int)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == size)
        expectRunning(holder.pid)
        let buf = holder.address("buf")
        let shown = try gdb(Fixtures.path(of: .holder).path, path, ["x/2gx \(hx(buf + 0x200))"])
        #expect(gdbWords(shown) == words(try holderBytes(holder, buf + 0x200, 16)))

        // An existing file is kept (exit 1) unless --force; the text names what was written.
        let again = try Tool.run("core", holder.pidArg, "-o", path)
        #expect(again.exited(1), "\(again)")
        #expect(again.stderr.contains("exists; pass --force"), "\(again.stderr)")
        let forced = try Tool.run("core", holder.pidArg, "-o", path, "--force", "--sparse")
        #expect(forced.exited(0), "\(forced)")
        #expect(forced.lines.first?.hasPrefix("wrote \(path): 1 thread, ") == true, "\(forced)")
        #expect(forced.stderr.isEmpty, "\(forced.stderr)")
    }

    @Test func aSymlinkAtTheNameIsReplacedNeverFollowed() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let victim = dir.appendingPathComponent("victim").path
        try Data("keep".utf8).write(to: URL(fileURLWithPath: victim))
        let link = dir.appendingPathComponent("link.core").path
        #expect(symlink(victim, link) == 0)
        let result = try Tool.run("core", holder.pidArg, "-o", link, "--force")
        #expect(result.exited(0), "\(result)")
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep")
        #expect(try FileManager.default.attributesOfItem(atPath: link)[.type] as? FileAttributeType == .typeRegular)
    }

    @Test func holesAreListedAndExitTwoWithTheCoreKept() throws {
        let fixture = try Fixtures.launch(.truncated)
        defer { fixture.terminate() }
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.core").path
        let result = try Tool.run("core", fixture.pidArg, "-o", path, "--filter", "0x37", "--json")
        #expect(result.exited(2), "\(result)")
        let json = try #require(result.json, "\(result)")
        let holes = try #require(json["holes"] as? [[String: Any]])
        let map = fixture.address("map")
        #expect(holes.contains { $0["address"] as? String == hx(map + 4096) && $0["length"] as? Int == 12288 })
        #expect(holes.allSatisfy { $0["errno"] is Int && $0["mechanism"] is String }, "\(holes)")
        #expect(json["complete"] as? Bool == false)
        #expect(FileManager.default.fileExists(atPath: path))
        expectRunning(fixture.pid)
    }

    @Test func badFilterIsAUsageErrorAndAGoneTargetIsFour() throws {
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("x.core").path
        let bad = try Tool.run("core", "self", "-o", path, "--filter", "0x200")
        #expect(bad.exited(64), "\(bad)")
        let own = try Tool.run("core", "self", "-o", path)
        #expect(own.exited(1), "\(own)")
        #expect(own.stderr.contains("cannot trace its own threads"), "\(own)")
        let gone = try Tool.run("core", String(Int32.max - 7), "-o", path)
        #expect(gone.exited(4), "\(gone)")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func sessionVerbWritesTheSameCore() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.core").path
        let script = dir.appendingPathComponent("s.vmio").path
        try Data("core -o \(path) --sparse\ncore -o \(path)\n".utf8).write(to: URL(fileURLWithPath: script))
        let result = try Tool.run("session", holder.pidArg, script, "--json", "--keep-going")
        let objects = jsonLines(result)
        #expect(objects.count == 3, "\(result)")
        let first = objects.first?["result"] as? [String: Any]
        #expect(first?["sparse"] as? Bool == true, "\(result)")
        #expect(first?["threads"] as? [Int] == [Int(holder.pid)], "\(result)")
        #expect(result.exited(1), "\(result)")
        // The second line finds the file there: refused without --force, as on the command line.
        #expect(objects.dropFirst().first?["status"] as? Int == 1, "\(result)")
        let buf = holder.address("buf")
        let shown = try gdb(Fixtures.path(of: .holder).path, path, ["x/2gx \(hx(buf + 0x200))"])
        #expect(gdbWords(shown) == words(try holderBytes(holder, buf + 0x200, 16)))
        expectRunning(holder.pid)
    }

    @Test func idsAreTheTargetsOwnPidNamespaces() throws {
        let fixture = try Fixtures.launch(
            .holder, wrapper: ["/usr/bin/unshare", "--pid", "--fork", "--mount-proc"])
        defer { fixture.terminate() }
        var host: Int32 = 0
        _ = waitUntil {
            host = childrenOf(fixture.pid).first ?? 0
            return host != 0
        }
        #expect(fixture.number("pid") == 1)
        let dir = try coreDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("ns.core").path
        let result = try Tool.run("core", String(host), "-o", path, "--json")
        #expect(result.exited(0), "\(result)")
        #expect(result.json?["threads"] as? [Int] == [1], "\(result)")
        let notes = try Tool.runProgram("/usr/bin/eu-readelf", ["-n", path])
        // As the kernel writes them: pid 1, and a parent outside the namespace is 0.
        #expect(notes.stdoutText.contains("pid: 1, ppid: 0, "), "\(notes.stdoutText.prefix(2000))")
        #expect(isFreeRunning(host))
    }
}

/// Whether `pid` has released its memory: gone, or a zombie (its mm is torn down before).
private func isDeadOrZombie(_ pid: Int32) -> Bool {
    guard let stat = readProcFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return true }
    return stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
}

/// Runs `vmio-ptrace core PID -o PATH` and kills `pid` (and waits until its memory is gone)
/// once the core's temporary `.part` file in `directory` holds 8 MiB: the core has reached the
/// exiter's 1 GiB buffer. Polled from this thread (a pool thread started the poll too late in
/// a crowded CI run, after the core was whole), with the tool held in SIGSTOP at each look, so
/// that it cannot finish between a look and the kill however loaded the machine is.
private func coreKilledOnceWriting(_ pid: Int32, _ path: String, directory: String) throws -> RunResult {
    let tool = try Running(Tool.path, ["core", String(pid), "-o", path])
    let deadline = Date(timeIntervalSinceNow: 120)
    while Date() < deadline {
        kill(tool.pid, SIGSTOP)
        let parts = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
            $0.hasSuffix(".part")
        }
        if parts.contains(where: { (fileSize(directory + "/" + $0) ?? 0) >= 8 << 20 }) { break }
        kill(tool.pid, SIGCONT)
        usleep(2_000)
    }
    kill(pid, SIGKILL)
    _ = waitUntil(timeout: 30) { isDeadOrZombie(pid) }
    kill(tool.pid, SIGCONT)
    return tool.finish(timeout: 120)
}

/// The library's core of `pid` at `path`, with `pid` killed (and its memory gone) from the
/// progress report once 8 MiB are written: deterministic, whatever the load.
private func writeCoreKillingMidway(_ pid: Int32, _ path: String) throws {
    let target = try Target(pid: pid)
    var killed = false
    _ = try target.writeCore(to: path) { done, _ in
        guard !killed, done >= 8 << 20 else { return }
        killed = true
        kill(pid, SIGKILL)
        _ = waitUntil(timeout: 30) { isDeadOrZombie(pid) }
    }
}

extension HeavyOrTimed {
    /// Cores of a 1 GiB target killed while its core is written.
    @Suite(.serialized) struct CoreLargeTests {
        init() { settleSignals() }

        @Test func targetKilledDuringTheCoreLeavesNoFile() throws {
            let fixture = try Fixtures.launch(.exiter, arguments: ["1024"])
            defer { fixture.terminate() }
            let dir = try coreDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = dir.appendingPathComponent("gone.core").path
            let pid = fixture.pid
            do {
                try writeCoreKillingMidway(pid, path)
                Issue.record("the core of a target killed during it was written")
            } catch let error as TargetError {
                #expect(error.kind == .targetGone, "\(error)")
            }
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect((try FileManager.default.contentsOfDirectory(atPath: dir.path)).isEmpty)
        }

        @Test func targetKilledDuringTheCoreExitsFourAndLeavesNoFile() throws {
            let fixture = try Fixtures.launch(.exiter, arguments: ["1024"])
            defer { fixture.terminate() }
            let dir = try coreDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let path = dir.appendingPathComponent("gone.core").path
            let pid = fixture.pid
            let result = try coreKilledOnceWriting(pid, path, directory: dir.path)
            #expect(result.exited(4), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: path))
            #expect((try FileManager.default.contentsOfDirectory(atPath: dir.path)).isEmpty)
        }
    }
}
