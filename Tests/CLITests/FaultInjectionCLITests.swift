// Fault injection with real processes: the target unmaps (unmapper), exits (exiter
// `exit-after`), execs (execer `exec-after`) or is SIGKILLed while a read, write, copy,
// dump, search or session is under way. Whatever happens the tool exits with the
// documented status for what happened (0 if it finished first, 2 for a fault, 4 when the
// target is gone), reports exactly what moved, leaves `-o` files and dump directories
// complete or absent (no `.part` files), and never leaves a surviving target stopped.

import Foundation
import Testing
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Helpers

/// Word i of `data` is `first + i`; nil if every whole word is right, else the first bad index.
private func firstBadWord(_ data: [UInt8], first: UInt64 = 0) -> Int? {
    data.withUnsafeBytes { raw -> Int? in
        for i in 0..<(raw.count / 8)
        where raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != first + UInt64(i) {
            return i
        }
        return nil
    }
}

/// The `.part` files in `directory` (temporary files the tool must not leave behind).
private func partFiles(in directory: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".part") }
}

/// A fresh empty directory for one test's output files (removed at deinit).
private final class TempDirectory {
    let path: String
    init(_ name: String) {
        path = NSTemporaryDirectory() + "vmio-fault-\(getpid())-\(UInt64.random(in: 0...UInt64.max))-\(name)"
        mkdir(path, 0o755)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
    var entries: [String] { ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() }
}

/// The process is gone (or a zombie waiting to be reaped).
private func isGone(_ pid: Int32) -> Bool {
    guard let state = procStatus(pid)["State"] else { return true }
    return state.hasPrefix("Z") || state.hasPrefix("X")
}

/// The execer has exec'ed (`exec-after`): its command name is `sleep` now.
private func hasExeced(_ pid: Int32) -> Bool { (readProcFile("/proc/\(pid)/comm") ?? "").hasPrefix("sleep") }

/// A target that is still alive is not left stopped by the tool, nor traced.
private func expectNotLeftStopped(_ pid: Int32, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let ok = waitUntil(timeout: 5) { isGone(pid) || isFreeRunning(pid) }
    #expect(
        ok,
        "\(context): pid \(pid) left \(procStatus(pid)["State"] ?? "?"), TracerPid \(procStatus(pid)["TracerPid"] ?? "?"), threads \(threadStates(pid))",
        sourceLocation: sourceLocation)
}

/// "N of M bytes moved" and the fault address ("first faulting address 0x…" or "page fault at 0x…").
private struct Reported {
    var moved: UInt64
    var requested: UInt64
    var faultAddress: UInt64?

    init?(_ text: String) {
        if let line = PartialLine(text) {
            moved = line.moved
            requested = line.requested
            faultAddress = line.faultAddress
        } else {
            guard let range = text.range(of: #"(\d+) of (\d+) bytes moved"#, options: .regularExpression) else {
                return nil
            }
            let parts = text[range].split(separator: " ")
            moved = UInt64(parts[0])!
            requested = UInt64(parts[2])!
        }
        if faultAddress == nil, let r = text.range(of: #"page fault at 0x[0-9a-f]+"#, options: .regularExpression) {
            faultAddress = UInt64(text[r].split(separator: " ").last!.dropFirst(2), radix: 16)
        }
    }
}

/// What the injected event is.
enum FaultEvent: String, Sendable, CustomStringConvertible {
    /// The target calls `_exit(0)` (exiter `exit-after`).
    case exit
    /// The target execs `/bin/sleep 30` (execer `exec-after`): same pid, new memory.
    case exec
    /// SIGKILL from outside (works on a stopped target too).
    case kill

    var description: String { rawValue }

    var fixture: FixtureKind { self == .exec ? .execer : .exiter }

    /// Arms the event `ms` milliseconds from now.
    func arm(_ target: FixtureProcess, afterMs ms: Int) throws {
        switch self {
        case .exit: #expect(try target.send("exit-after \(ms)") == "ok")
        case .exec: #expect(try target.send("exec-after \(ms)") == "ok")
        case .kill:
            let pid = target.pid
            Thread {
                usleep(UInt32(ms) * 1000)
                Glibc.kill(pid, SIGKILL)
            }.start()
        }
    }

    /// The statuses an operation cut short by this event may end with (besides 0, finished
    /// first): 2 for a fault, 4 for a target gone. Also 4 for an exec: while a non-leader
    /// thread execs, the old leader is exiting and process_vm_readv/writev answer ESRCH, so
    /// the tool reports the target gone although the pid lives on as the new program.
    var cutShort: Set<Int32> { [2, 4] }
}

/// When to arm the event, as fractions of the time the operation takes on its own (measured
/// once a test, and again by every attempt that finished before the event: the machine's
/// load changes): tried in turn until the event lands while the operation is under way.
private let delayFractions = [0.5, 0.3, 0.7, 0.15, 0.85, 0.5, 0.4, 0.6]

/// Counts how the attempts went, for the record (printed at the end of each test).
private struct Tally: CustomStringConvertible {
    var finishedFirst = 0, cutShort = 0, before = 0
    /// Runs during which the event landed (the target was gone or had exec'ed when the
    /// tool exited), whether or not the operation was cut short.
    var during = 0
    var description: String {
        "\(cutShort) cut short, \(finishedFirst) finished before the event, \(before) with the event before the operation, \(during) with the event during the operation"
    }
}

/// Sends SIGSTOP to `pid` and waits until none of its threads runs; false if it does not stop.
private func holdStopped(_ pid: Int32) -> Bool {
    kill(pid, SIGSTOP)
    return waitUntil(timeout: 10) { threadStates(pid).values.allSatisfy { $0 == "T" || $0 == "Z" || $0 == "X" } }
}

/// Appends to `bytes` what can be read from the non-blocking `fd` now.
private func readAvailable(_ fd: Int32, into bytes: inout [UInt8]) {
    var chunk = [UInt8](repeating: 0, count: 1 << 14)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n > 0 {
            bytes.append(contentsOf: chunk[0..<n])
        } else if n < 0 && errno == EINTR {
            continue
        } else {
            return  // EAGAIN: nothing more for now; EIO or 0: the other end is closed
        }
    }
}

/// What a terminal shows says the tool is inside its search, short of the end: its last
/// output is a progress line (`\r ESC[K search: DONE of TOTAL …`; README.md "Dump, restore,
/// search"), not yet erased (the tool erases it as the search returns), whose DONE is not its
/// TOTAL.
private func isInsideTheSearch(_ terminal: [UInt8]) -> Bool {
    let text = String(decoding: terminal, as: UTF8.self)
    guard let last = text.range(of: "\r\u{1b}[K", options: .backwards) else { return false }
    let line = text[last.upperBound...]
    guard line.hasPrefix("search: "), let of = line.range(of: " of ") else { return false }
    let done = line[line.index(line.startIndex, offsetBy: 8)..<of.lowerBound]
    return !done.isEmpty && !line[of.upperBound...].hasPrefix(done + "  ")  // TOTAL, then two spaces
}

/// The exit status of a run that did not crash, hang or die of a signal.
private func plainStatus(_ result: RunResult, _ context: String, sourceLocation: SourceLocation = #_sourceLocation)
    -> Int32?
{
    #expect(!result.signaled && !result.timedOut, "\(context): \(result)", sourceLocation: sourceLocation)
    return result.signaled || result.timedOut ? nil : result.status
}

// MARK: - Target exits, execs or is killed during the operation

extension HeavyOrTimed {
    @Suite(.serialized) struct FaultInjectionCLITests {
        static let mib = 256
        static var size: UInt64 { UInt64(mib) << 20 }

        /// Runs the operation `arguments(target)` against fresh fixtures of `event`'s kind,
        /// arming `event` part-way through, until the event lands during the operation (a few
        /// tries; one is required). The delays adapt to the machine's load: the operation is timed once on its
        /// own, and the event is armed at `fractions` of a window that each attempt narrows (an
        /// event before the operation began raises its start; an operation that finished first
        /// says how long it takes now). `check` gets the fixture, the result and its status;
        /// `reset` removes what a finished run left.
        private func inject(
            _ event: FaultEvent, _ name: String, fixtureArguments: [String] = [String(mib)],
            fractions: [Double] = delayFractions,
            arguments: (FixtureProcess) -> [String], reset: () -> Void = {},
            cutShortWhen: (RunResult) -> Bool = { _ in false },
            check: (FixtureProcess, RunResult, Int32) throws -> Void
        ) throws -> Tally {
            var tally = Tally()
            // The window (seconds from the tool's start) in which the operation is under way.
            var low: TimeInterval = 0
            var high: TimeInterval
            do {
                // On a fixture of its own, so the timed run leaves nothing behind in the target.
                let alone = try Fixtures.launch(event.fixture, arguments: fixtureArguments)
                defer { alone.terminate() }
                let started = Date()
                let result = try Tool.run(arguments(alone), timeout: 120)
                #expect(result.exited(0), "\(name) on its own: \(result)")
                high = Date().timeIntervalSince(started)
                reset()
            }
            // Each fraction twice at most: a loaded machine moves the window under the first
            // round (the loop ends at the first cut).
            for (attempt, fraction) in (fractions + fractions).enumerated() {
                if low >= high * 0.9 { low = 0 }  // the load changed: start the window over
                let target = try Fixtures.launch(event.fixture, arguments: fixtureArguments)
                defer { target.terminate() }
                let delaySeconds = low + fraction * (high - low)
                let delay = Int(delaySeconds * 1000)
                let began = Date()
                let running = try Running(Tool.path, arguments(target))
                try event.arm(target, afterMs: delay)
                let result = running.finish(timeout: 120)
                let took = Date().timeIntervalSince(began)
                // Looked at as soon as the tool has exited: did the event land by then?
                let landed = event == .exec ? hasExeced(target.pid) : isGone(target.pid)
                let context =
                    "\(name), \(event), attempt \(attempt) (\(delay) ms; window \(Int(low * 1000))-\(Int(high * 1000)) ms)"
                guard let status = plainStatus(result, context) else { continue }
                // The event came before the operation began: the target was already gone (4: no
                // such process, or a zombie not reaped yet, refused only when the target is
                // opened) or its memory already replaced (1, the address is in no mapping). Try
                // again, later.
                if (status == 4 && (result.stderr.contains("no such process") || result.stderr.contains("is a zombie")))
                    || (status == 1
                        && (result.stderr.contains("is in no mapping") || result.stderr.contains("no readable mapping")))
                {
                    tally.before += 1
                    low = delaySeconds
                    // The tool got to its operation only after `took`, past the window's end: the
                    // machine is slower now (the tool's start is CPU work that a loaded machine
                    // stretches, the event a timer that it does not), so the window moves out.
                    if took >= high { high = took * 1.25 }
                    reset()
                    continue
                }
                #expect(status == 0 || event.cutShort.contains(status), "\(context): \(result)")
                let cut = status != 0 || cutShortWhen(result)
                if cut { tally.cutShort += 1 } else { tally.finishedFirst += 1 }
                if landed { tally.during += 1 }
                // Finished before the event: this run says how long the operation takes now.
                if !cut && !landed { high = took }
                try check(target, result, status)
                if event != .exec {
                    // The exiter does exit (or is killed) in any case.
                    #expect(target.waitForExit(timeout: 10), "\(context): the target is gone")
                } else {
                    // The exec was armed for `delay` after the tool's start: a tool that
                    // finished first leaves it that much later still to come.
                    let execDue = max(0, delaySeconds - took)
                    #expect(
                        waitUntil(timeout: execDue + 10) { hasExeced(target.pid) },
                        "\(context): the execer did exec")
                    expectNotLeftStopped(target.pid, context)
                }
                reset()
                if cut { break }
            }
            print("fault injection: \(name) under \(event): \(tally)")
            #expect(tally.cutShort > 0, "\(name) under \(event): the event never cut the operation short (\(tally))")
            return tally
        }

        // MARK: read

        @Test(arguments: [FaultEvent.exit, .exec, .kill])
        func readToFileIsCompleteOrAbsent(event: FaultEvent) throws {
            let dir = TempDirectory("read-o")
            let out = dir.file("out.bin")
            _ = try inject(
                event, "read -o",
                arguments: { t in
                    ["read", t.pidArg, hx(t.address("buf")), String(Self.size), "--format", "raw", "-o", out, "--json"]
                },
                reset: {
                    unlink(out); unlink(out + ".partial")
                }
            ) { target, result, status in
                #expect(partFiles(in: dir.path).isEmpty, "no .part left: \(dir.entries)")
                if status == 0 {
                    let file = try #require(FileManager.default.contents(atPath: out))
                    #expect(UInt64(file.count) == Self.size)
                    #expect(firstBadWord(Array(file)) == nil)
                } else {
                    #expect(
                        !FileManager.default.fileExists(atPath: out), "a read cut short leaves no file: \(dir.entries)")
                    let json = try #require(result.json, "\(result)")
                    let moved = try #require((json["moved"] as? NSNumber)?.uint64Value, "\(json)")
                    #expect(moved < Self.size)
                    // What did move is kept beside it, as FILE.partial (named on the error line):
                    // exactly those bytes.
                    if moved > 0 {
                        let partial = try #require(
                            FileManager.default.contents(atPath: out + ".partial"),
                            "\(moved) bytes moved, so FILE.partial holds them: \(dir.entries)")
                        #expect(UInt64(partial.count) == moved, "FILE.partial holds exactly what moved")
                        #expect(firstBadWord(Array(partial)) == nil, "word i == i in FILE.partial")
                        #expect(result.stderr.contains(out + ".partial"), "\(result.stderr)")
                    }
                    let line = try #require(Reported(result.stderr), "\(result.stderr)")
                    #expect(line.moved == moved && line.requested == Self.size)
                    if status == 2 {
                        // A fault (not a target gone): its address is always reported, in both forms.
                        let fault = try #require(line.faultAddress, "exit 2 names the fault address: \(result.stderr)")
                        #expect(fault == target.address("buf") + moved, "fault address == start + moved")
                        let stop = try #require(json["stop"] as? [String: Any], "\(json)")
                        #expect(stop["fault_address"] as? String == hx(fault), "\(json)")
                    }
                }
            }
        }

        @Test(arguments: [FaultEvent.exit, .exec, .kill])
        func rawReadToStdoutHoldsExactlyWhatMoved(event: FaultEvent) throws {
            _ = try inject(
                event, "read raw",
                arguments: { t in
                    ["read", t.pidArg, hx(t.address("buf")), String(Self.size), "--format", "raw"]
                }
            ) { target, result, status in
                if status == 0 {
                    #expect(UInt64(result.stdout.count) == Self.size)
                } else {
                    let line = try #require(Reported(result.stderr), "\(result.stderr)")
                    #expect(line.requested == Self.size && line.moved < Self.size)
                    #expect(UInt64(result.stdout.count) == line.moved, "stdout holds exactly the bytes that moved")
                    if status == 2 {
                        let fault = try #require(line.faultAddress, "\(result.stderr)")
                        #expect(fault == target.address("buf") + line.moved, "fault address == start + moved")
                        #expect(fault % 4096 == 0, "page-exact")
                    }
                }
                #expect(firstBadWord(result.stdout) == nil, "word i == i for every word that landed")
            }
        }

        // MARK: write

        /// A 256 MiB write is one process_vm_writev call, during which the kernel holds the
        /// target's memory: a target that exits, execs or is killed during the call still gets
        /// every byte (exit 0; after an exec, into the memory it left). Only an event between
        /// the maps and the call cuts it short (exit 2 or 4, with a true count). The event is
        /// armed as soon as the first word has landed (seen by the test through /proc/PID/mem),
        /// so it comes while the call is under way; one such attempt is required.
        @Test(arguments: [FaultEvent.exit, .exec, .kill])
        func bigWriteReportsWhatMoved(event: FaultEvent) throws {
            // A payload the fixtures never hold: word i == i + 1.
            let payload = TempPath("payload.bin")
            let words = (0..<(Self.size / 8)).map { $0 + 1 }
            _ = FileManager.default.createFile(atPath: payload.path, contents: words.withUnsafeBytes { Data($0) })
            var tally = Tally()
            for attempt in 0..<4 {
                let target = try Fixtures.launch(event.fixture, arguments: [String(Self.mib)])
                defer { target.terminate() }
                let buf = target.address("buf")
                let running = try Running(
                    Tool.path, ["write", target.pidArg, hx(buf), "--file", payload.path, "--json"])
                // Word 0 turns from 0 to 1 when the write begins.
                let begun = waitUntil(timeout: 60) {
                    readProcMem(target.pid, buf, 8) == [1, 0, 0, 0, 0, 0, 0, 0] || !running.isRunning
                }
                try event.arm(target, afterMs: 0)
                let result = running.finish(timeout: 120)
                let landed = event == .exec ? hasExeced(target.pid) : isGone(target.pid)
                let context = "write --file, \(event), attempt \(attempt)"
                guard begun, let status = plainStatus(result, context) else { continue }
                #expect(status == 0 || event.cutShort.contains(status), "\(context): \(result)")
                if status == 0 {
                    let json = try #require(result.json, "\(context): \(result)")
                    #expect((json["written"] as? NSNumber)?.uint64Value == Self.size, "\(context): \(json)")
                    tally.finishedFirst += 1
                } else {
                    tally.cutShort += 1
                    let line = try #require(Reported(result.stderr), "\(context): \(result.stderr)")
                    #expect(line.requested == Self.size && line.moved < Self.size)
                    if status == 2 {
                        let fault = try #require(line.faultAddress, "exit 2 names the fault address: \(result.stderr)")
                        #expect(fault == buf + line.moved, "fault address == start + written")
                    }
                }
                if landed {
                    tally.during += 1
                    break
                }
            }
            print("fault injection: write --file under \(event): \(tally)")
            #expect(tally.during > 0, "write under \(event): the event never landed during the write (\(tally))")
        }

        // MARK: copy

        @Test(arguments: [FaultEvent.exit, .exec, .kill])
        func copyFromAVanishingSource(event: FaultEvent) throws {
            let destination = try Fixtures.launch(.exiter, arguments: [String(Self.mib)])
            defer { destination.terminate() }
            let to = destination.address("buf")
            let length = Self.size - 8
            _ = try inject(
                event, "copy (source)",
                arguments: { t in
                    [
                        "copy", "\(t.pid):\(hx(t.address("buf")))", "\(destination.pid):\(hx(to + 8))", String(length),
                        "--json",
                    ]
                }
            ) { target, result, status in
                let json = try #require(result.json, "\(result)")
                let moved = try #require((json["moved"] as? NSNumber)?.uint64Value, "\(json)")
                if status == 0 {
                    #expect(moved == length)
                } else {
                    #expect(moved < length)
                    let stop = try #require(json["stop"] as? [String: Any], "\(json)")
                    #expect(stop["side"] as? String == "source", "\(json)")
                    if status == 2 {
                        let fault = try #require(stop["fault_address"] as? String, "exit 2 names the fault: \(json)")
                        #expect(fault == hx(target.address("buf") + moved), "fault address == start + moved")
                    }
                }
                // What landed in the destination is the source's words, shifted by one; the word
                // after it is untouched.
                let check = min(moved, 1 << 20) & ~7
                if check > 0 {
                    let r = try Tool.run(
                        "read", destination.pidArg, hx(to + 8 + moved - check), String(check), "--format", "raw")
                    #expect(firstBadWord(r.stdout, first: (moved - check) / 8) == nil, "the last MiB that landed")
                }
                expectNotLeftStopped(destination.pid, "copy destination")
            }
            #expect(try destination.send("ping") == "pong")
        }

        @Test(arguments: [FaultEvent.exit, .kill])
        func copyToAVanishingDestination(event: FaultEvent) throws {
            let source = try Fixtures.launch(.exiter, arguments: [String(Self.mib)])
            defer { source.terminate() }
            _ = try inject(
                event, "copy (destination)",
                arguments: { t in
                    [
                        "copy", "\(source.pid):\(hx(source.address("buf")))", "\(t.pid):\(hx(t.address("buf")))",
                        String(Self.size), "--json",
                    ]
                }
            ) { target, result, status in
                let json = try #require(result.json, "\(result)")
                let moved = try #require((json["moved"] as? NSNumber)?.uint64Value, "\(json)")
                if status == 0 {
                    #expect(moved == Self.size)
                } else {
                    #expect(moved < Self.size)
                    let stop = try #require(json["stop"] as? [String: Any], "\(json)")
                    #expect(stop["side"] as? String == "destination", "\(json)")
                    if status == 2 {
                        let fault = try #require(stop["fault_address"] as? String, "exit 2 names the fault: \(json)")
                        #expect(fault == hx(target.address("buf") + moved), "fault address == destination + moved")
                    }
                }
            }
            #expect(try source.send("ping") == "pong")
            expectNotLeftStopped(source.pid, "copy source")
        }

        // MARK: dump

        @Test(arguments: [FaultEvent.exit, .exec, .kill])
        func dumpIsCompleteOrAbsent(event: FaultEvent) throws {
            let parent = TempDirectory("dump")
            var n = 0
            _ = try inject(
                event, "dump",
                arguments: { t in
                    n += 1
                    let start = t.address("buf")
                    return [
                        "dump", t.pidArg, "--region", "\(hx(start))-\(hx(start + Self.size))", "-o",
                        parent.file("d\(n)"),
                        "--json",
                    ]
                }
            ) { _, result, status in
                let dir = parent.file("d\(n)")
                #expect(partFiles(in: dir).isEmpty, "no .part left: \(partFiles(in: dir))")
                let manifestPath = dir + "/manifest.json"
                if FileManager.default.fileExists(atPath: manifestPath) {
                    // A manifest: the dump ran to its end (holes and all); every file it lists is whole.
                    #expect(status == 0 || status == 2, "\(result)")
                    let manifest = try DumpManifestFile(dir)  // plain JSON, not the library's types
                    for region in manifest.regions {
                        #expect(fileSize(dir + "/" + region.file) == region.count, "\(region.file) is whole")
                        let holes = region.holes.reduce(0) { $0 + $1.length }
                        #expect(region.bytesSaved + holes == region.count, "saved + holes == the region")
                    }
                    #expect(manifest.complete == (status == 0), "\(result)")
                } else {
                    // No manifest: the dump was cut short; it says so and exits 2 or 4.
                    #expect(status != 0, "a dump that exits 0 has its manifest: \(result)")
                }
            }
        }

        // MARK: search

        @Test(arguments: [FaultEvent.exit, .exec, .kill])
        func searchReportsWhatItScanned(event: FaultEvent) throws {
            _ = try inject(
                event, "search",
                arguments: { t in
                    let start = t.address("buf")
                    // A value the buffer never holds (word i == i < 2^27): every byte is scanned.
                    return [
                        "search", t.pidArg, "--u64", "0xfedcba9876543210", "--region",
                        "\(hx(start))-\(hx(start + Self.size))", "--json",
                    ]
                }, cutShortWhen: { ($0.json?["unreadable"] as? NSNumber)?.uint64Value ?? 0 > 0 }
            ) { _, result, status in
                if status == 0 {
                    // Memory that vanished (exec) is skipped as unreadable: still every byte accounted for.
                    let json = try #require(result.json, "\(result)")
                    let scanned = (json["scanned"] as? NSNumber)?.uint64Value ?? 0
                    let unreadable = (json["unreadable"] as? NSNumber)?.uint64Value ?? 0
                    #expect((json["hits"] as? [Any])?.isEmpty == true)
                    #expect(scanned + unreadable == Self.size, "scanned + unreadable == the region: \(json)")
                } else {
                    // A target gone part-way is not a finished search.
                    #expect(status == 4 && result.stderr.contains("target gone"), "\(result)")
                }
            }
        }

        // MARK: session

        @Test(arguments: [FaultEvent.exit, .exec, .kill])
        func sessionCutShort(event: FaultEvent) throws {
            let script = TempPath("fault.vmio")
            _ = try inject(
                event, "session",
                arguments: { t in
                    let start = t.address("buf")
                    let text =
                        [
                            "search --u64 0xfedcba9876543210 --region \(hx(start))-\(hx(start + Self.size))",
                            "echo finished",
                        ].joined(separator: "\n") + "\n"
                    try? text.write(toFile: script.path, atomically: true, encoding: .utf8)
                    return ["session", t.pidArg, script.path]
                }, cutShortWhen: { $0.stderr.contains("unreadable bytes skipped") }
            ) { _, result, status in
                if status == 0 {
                    #expect(result.lines.last == "finished", "\(result)")
                } else {
                    #expect(!result.lines.contains("finished"), "the session stops at the failed command: \(result)")
                    #expect(status == 4 && result.stderr.contains("target gone"), "\(result)")
                    #expect(result.stderr.contains("line "), "the failure names its line: \(result.stderr)")
                }
            }
        }

        // MARK: --stop: the target is killed while stopped, or survives and runs on

        /// `search --stop` is covered by ``searchKilledWhileStopped()``, which kills its target
        /// inside the search for certain (a sanitized tool starts so slowly, and searches so
        /// fast, that no delay measured from its start lands there).
        @Test(arguments: ["read", "dump", "session"])
        func killedWhileStopped(operation: String) throws {
            let dir = TempDirectory("stop-\(operation)")
            let script = TempPath("stop.vmio")
            _ = try inject(
                .kill, "\(operation) --stop",
                arguments: { t in
                    let start = t.address("buf"), region = "\(hx(start))-\(hx(start + Self.size))"
                    switch operation {
                    case "read":
                        return [
                            "read", t.pidArg, hx(start), String(Self.size), "--format", "raw", "-o", dir.file("r.bin"),
                            "--force", "--stop",
                        ]
                    case "dump":
                        return ["dump", t.pidArg, "--region", region, "-o", dir.file("d"), "--force", "--stop"]
                    default:
                        try? "stop\nsearch --u64 0xfedcba9876543210 --region \(region)\ncont\necho finished\n"
                            .write(toFile: script.path, atomically: true, encoding: .utf8)
                        return ["session", t.pidArg, script.path]
                    }
                },
                reset: {
                    unlink(dir.file("r.bin")); unlink(dir.file("r.bin.partial"))
                }
            ) { target, result, status in
                if status != 0 { #expect(status == 4 || status == 2, "\(result)") }
                #expect(partFiles(in: dir.path).isEmpty && partFiles(in: dir.file("d")).isEmpty, "no .part left")
                if operation == "read" && status != 0 {
                    #expect(!FileManager.default.fileExists(atPath: dir.file("r.bin")))
                }
            }
        }

        /// `search --stop` whose target is SIGKILLed while the search is under way, whatever the
        /// machine's load or the tool's speed: the tool's standard error is a terminal, so it
        /// draws its progress line (from 100 ms into the search on), and the tool is stepped —
        /// held in SIGSTOP, let run a millisecond at a time. A look while it is held that finds a
        /// progress line not yet erased finds it inside the search, before its last chunk: the
        /// target is killed there, and its memory is gone, before the tool runs on. The search
        /// then says the target is gone (exit 4). An attempt whose search ended between two looks
        /// is tried again; one must land.
        @Test func searchKilledWhileStopped() throws {
            var landed = false
            for attempt in 0..<4 where !landed {
                let target = try Fixtures.launch(.exiter, arguments: [String(Self.mib)])
                defer { target.terminate() }
                let start = target.address("buf")
                let (master, slave) = try openPseudoTerminal()
                defer { close(master) }
                _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)
                let running = try Running(
                    Tool.path,
                    [
                        "search", target.pidArg, "--u64", "0xfedcba9876543210", "--region",
                        "\(hx(start))-\(hx(start + Self.size))", "--stop",
                    ],
                    stderrFD: slave)
                close(slave)
                var terminal: [UInt8] = []
                let deadline = Date(timeIntervalSinceNow: 300)
                while running.isRunning && Date() < deadline {
                    try #require(holdStopped(running.pid), "the tool stops on SIGSTOP: \(threadStates(running.pid))")
                    usleep(10_000)  // the progress line's clock runs on while the tool is held
                    readAvailable(master, into: &terminal)
                    if isInsideTheSearch(terminal) {
                        kill(target.pid, SIGKILL)
                        try #require(waitUntil(timeout: 30) { isGone(target.pid) }, "the target dies")
                        landed = true
                    }
                    kill(running.pid, SIGCONT)
                    if landed { break }
                    usleep(1_000)
                }
                let result = running.finish(timeout: 120)
                readAvailable(master, into: &terminal)
                let text = String(decoding: terminal, as: UTF8.self)
                let context = "attempt \(attempt): \(result); terminal: \(text.suffix(400).debugDescription)"
                print("fault injection: search --stop, attempt \(attempt): \(landed ? "killed inside" : "ended first")")
                if landed {
                    #expect(result.exited(4), "\(context)")
                    #expect(text.contains("target gone"), "\(context)")
                    #expect(target.waitForExit(timeout: 10), "\(context)")
                } else {
                    // The search ended between two looks: it ran to its end, and let the target go.
                    #expect(result.exited(0) && text.contains("0 hits in \(Self.size) bytes"), "\(context)")
                    expectNotLeftStopped(target.pid, context)
                }
            }
            #expect(landed, "no look found the tool inside its search")
        }

        @Test(arguments: ["read", "restore", "copy", "dump", "search", "session"])
        func stoppedOperationsLeaveAStillLiveTargetRunning(operation: String) throws {
            let target = try Fixtures.launch(.exiter, arguments: ["64"])
            defer { target.terminate() }
            let start = target.address("buf"), size: UInt64 = 64 << 20
            let dir = TempDirectory("live-\(operation)")
            let script = TempPath("live.vmio")
            let region = "\(hx(start))-\(hx(start + size))"
            let arguments: [String]
            switch operation {
            case "read":
                arguments = [
                    "read", target.pidArg, hx(start), String(size), "--format", "raw", "-o", dir.file("r.bin"),
                    "--stop",
                ]
            case "restore":
                // The writing operation that stops the target (`write` has no --stop).
                let lastPage = "\(hx(start + size - 4096))-\(hx(start + size))"
                let dumped = try Tool.run("dump", target.pidArg, "--region", lastPage, "-o", dir.file("w"))
                try #require(dumped.exited(0), "\(dumped)")
                arguments = ["restore", target.pidArg, dir.file("w"), "--stop", "--verify"]
            case "copy":
                arguments = [
                    "copy", "\(target.pid):\(hx(start))", "\(target.pid):\(hx(start + size / 2))", String(size / 2),
                    "--stop",
                ]
            case "dump": arguments = ["dump", target.pidArg, "--region", region, "-o", dir.file("d"), "--stop"]
            case "search":
                arguments = ["search", target.pidArg, "--u64", "0xfedcba9876543210", "--region", region, "--stop"]
            default:
                try "stop\nsearch --u64 0xfedcba9876543210 --region \(region)\n".write(
                    toFile: script.path, atomically: true, encoding: .utf8)
                arguments = ["session", target.pidArg, script.path]  // ends stopped: the tool must resume it
            }
            let result = try Tool.run(arguments, timeout: 60)
            #expect(result.exited(0), "\(result)")
            expectNotLeftStopped(target.pid, operation)
            #expect(partFiles(in: dir.path).isEmpty && partFiles(in: dir.file("d")).isEmpty)
            #expect(try target.send("ping") == "pong")
        }
    }
}

// MARK: - The unmapper: memory that vanishes and comes back under every operation

@Suite(.serialized) struct UnmapperFaultInjectionCLITests {
    static let attempts = 12

    /// `region`'s second half flips between unmapped and mapped every 200 µs.
    private func withUnmapper(_ body: (FixtureProcess, UInt64, UInt64) throws -> Void) throws {
        let unmapper = try Fixtures.launch(.unmapper)
        defer { unmapper.terminate() }
        try body(unmapper, unmapper.address("region"), unmapper.number("region"))
        #expect(try unmapper.send("ping") == "pong")
        expectNotLeftStopped(unmapper.pid, "unmapper")
    }

    /// A partial transfer is page-exact, never short of the first half, and its fault
    /// address is `start + moved`.
    private func expectPageExact(
        _ moved: UInt64, fault: String?, start: UInt64, _ context: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(moved % 4096 == 0, "\(context): page-exact: \(moved)", sourceLocation: sourceLocation)
        #expect(moved >= 131_072, "\(context): the first half never faults: \(moved)", sourceLocation: sourceLocation)
        #expect(
            fault == hx(start + moved), "\(context): fault address \(fault ?? "nil") == start + moved",
            sourceLocation: sourceLocation)
    }

    @Test(arguments: [false, true])
    func readToFile(stop: Bool) throws {
        try withUnmapper { unmapper, region, size in
            let dir = TempDirectory("unmapper-read")
            var tally = Tally()
            for attempt in 0..<Self.attempts {
                let out = dir.file("r\(attempt).bin")
                let result = try Tool.run(
                    ["read", unmapper.pidArg, hx(region), String(size), "--format", "raw", "-o", out, "--json"]
                        + (stop ? ["--stop"] : []))
                let context = "read\(stop ? " --stop" : "") attempt \(attempt)"
                #expect(result.exited(0) || result.exited(2), "\(context): \(result)")
                let json = try #require(result.json, "\(context): \(result)")
                let moved = try #require((json["moved"] as? NSNumber)?.uint64Value)
                #expect(partFiles(in: dir.path).isEmpty, "\(context): \(dir.entries)")
                if result.exited(0) {
                    tally.finishedFirst += 1
                    #expect(moved == size)
                    let file = try #require(FileManager.default.contents(atPath: out), "\(context): the file is there")
                    #expect(file.count == Int(size))
                    #expect(file.prefix(131_072).allSatisfy { $0 == 0x11 })
                } else {
                    tally.cutShort += 1
                    let stopInfo = try #require(json["stop"] as? [String: Any])
                    expectPageExact(moved, fault: stopInfo["fault_address"] as? String, start: region, context)
                    #expect(!FileManager.default.fileExists(atPath: out), "\(context): a read cut short leaves no file")
                }
                expectNotLeftStopped(unmapper.pid, context)
            }
            print("fault injection: read\(stop ? " --stop" : "") of the unmapper: \(tally)")
        }
    }

    /// The first half of the unmapper's region as the test reads it (through /proc/PID/mem).
    private func firstHalf(_ unmapper: FixtureProcess, _ region: UInt64) -> [UInt8]? {
        readProcMem(unmapper.pid, region, 131_072)
    }

    @Test func write() throws {
        try withUnmapper { unmapper, region, size in
            let payload = TempPath("unmapper-payload.bin")
            var before: UInt8 = 0x11  // what the first half holds before this attempt
            var landed = 0
            for attempt in 0..<Self.attempts {
                // A byte of its own for each attempt, so what is read back tells the attempts apart.
                let byte = UInt8(0x30 + attempt)
                _ = FileManager.default.createFile(
                    atPath: payload.path, contents: Data(repeating: byte, count: Int(size)))
                let result = try Tool.run("write", unmapper.pidArg, hx(region), "--file", payload.path, "--json")
                let context = "write attempt \(attempt)"
                #expect(result.exited(0) || result.exited(2) || result.exited(1), "\(context): \(result)")
                if result.exited(0) || result.exited(2) {
                    landed += 1
                    if result.exited(0) {
                        #expect((result.json?["written"] as? NSNumber)?.uint64Value == size, "\(context): \(result)")
                    } else {
                        let line = try #require(Reported(result.stderr), "\(context): \(result.stderr)")
                        #expect(line.requested == size)
                        expectPageExact(line.moved, fault: line.faultAddress.map(hx), start: region, context)
                    }
                    // The first half never faults: it holds the new bytes.
                    #expect(firstHalf(unmapper, region) == Array(repeating: byte, count: 131_072), "\(context)")
                    before = byte
                } else {
                    // Refused before anything moved: the second half was unmapped when the maps were read.
                    #expect(result.stderr.contains("\(hx(region + 131_072)) is in no mapping"), "\(context): \(result)")
                    #expect(
                        firstHalf(unmapper, region) == Array(repeating: before, count: 131_072),
                        "\(context): nothing written")
                }
            }
            #expect(landed > 0, "every write was refused: the writing path was never exercised")
        }
    }

    @Test(arguments: ["source", "destination"])
    func copy(side: String) throws {
        try withUnmapper { unmapper, region, size in
            let other = try Fixtures.launch(.exiter, arguments: ["4"])
            defer { other.terminate() }
            let buf = other.address("buf")
            // The exiter's first 128 KiB: word i == i.
            let words = (0..<UInt64(131_072 / 8)).flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) }
            var copied = 0
            for attempt in 0..<Self.attempts {
                // The destination's first half gets a byte of this attempt's first, so what is read
                // back afterwards tells a copy that landed from one that did not.
                let byte = UInt8(0x40 + attempt)
                let destination = side == "source" ? (other.pid, buf) : (unmapper.pid, region)
                try #require(writeProcMem(destination.0, destination.1, Array(repeating: byte, count: 131_072)))
                let (from, to) =
                    side == "source"
                    ? ("\(unmapper.pid):\(hx(region))", "\(other.pid):\(hx(buf))")
                    : ("\(other.pid):\(hx(buf))", "\(unmapper.pid):\(hx(region))")
                let result = try Tool.run("copy", from, to, String(size), "--json")
                let context = "copy (\(side)) attempt \(attempt)"
                if side == "destination" && result.exited(1) {
                    // The destination's maps, read while its second half was unmapped, do not
                    // cover the range: refused up front, nothing written (as for `write`).
                    #expect(result.stderr.contains("\(hx(region + 131_072)) is in no mapping"), "\(context): \(result)")
                    #expect(
                        firstHalf(unmapper, region) == Array(repeating: byte, count: 131_072),
                        "\(context): nothing written")
                    continue
                }
                copied += 1
                #expect(result.exited(0) || result.exited(2), "\(context): \(result)")
                let json = try #require(result.json, "\(context): \(result)")
                let moved = try #require((json["moved"] as? NSNumber)?.uint64Value)
                if result.exited(0) {
                    #expect(moved == size)
                } else {
                    let stop = try #require(json["stop"] as? [String: Any])
                    #expect(stop["side"] as? String == side, "\(context): \(json)")
                    expectPageExact(moved, fault: stop["fault_address"] as? String, start: region, context)
                }
                // The first half always lands: the unmapper's 0x11, or the exiter's words.
                let landed = readProcMem(destination.0, destination.1, 131_072)
                #expect(
                    landed == (side == "source" ? Array(repeating: 0x11, count: 131_072) : words),
                    "\(context): the first half landed")
            }
            #expect(copied > 0, "every copy was refused: the copying path was never exercised")
        }
    }

    @Test(arguments: [false, true])
    func dump(stop: Bool) throws {
        try withUnmapper { unmapper, region, size in
            let parent = TempDirectory("unmapper-dump")
            for attempt in 0..<Self.attempts {
                let dir = parent.file("d\(attempt)")
                let result = try Tool.run(
                    ["dump", unmapper.pidArg, "--region", "\(hx(region))-\(hx(region + size))", "-o", dir, "--json"]
                        + (stop ? ["--stop"] : []))
                let context = "dump\(stop ? " --stop" : "") attempt \(attempt)"
                // 1: the selection matched nothing readable (maps read while unmapped: the
                // region is then a single 128 KiB mapping, still selected) — not expected.
                #expect(result.exited(0) || result.exited(2), "\(context): \(result)")
                #expect(partFiles(in: dir).isEmpty, "\(context)")
                try #require(
                    FileManager.default.fileExists(atPath: dir + "/manifest.json"),
                    "\(context): holes are listed, the dump is whole")
                let manifest = try DumpManifestFile(dir)  // plain JSON, not the library's types
                var saved: UInt64 = 0, holes: UInt64 = 0
                for r in manifest.regions {
                    saved += r.bytesSaved
                    holes += r.holes.reduce(0) { $0 + $1.length }
                    for h in r.holes {
                        #expect(h.length % 4096 == 0 && h.address % 4096 == 0, "\(context): page-exact holes")
                    }
                    #expect(fileSize(dir + "/" + r.file) == r.count, "\(context): \(r.file) is whole")
                }
                #expect(saved >= 131_072, "\(context): the first half is always saved")
                #expect(manifest.complete == (holes == 0))
                #expect(result.exited(0) == manifest.complete, "\(context): \(result)")
            }
            expectNotLeftStopped(unmapper.pid, "dump")
        }
    }

    @Test func searchAndSession() throws {
        try withUnmapper { unmapper, region, size in
            let script = TempPath("unmapper.vmio")
            try [
                "stop",
                "expect (read \(hx(region)) 16) == x\"\(String(repeating: "11", count: 16))\"",
                "expect (read \(hx(region + 131_056)) 16) == x\"\(String(repeating: "11", count: 16))\"",
                "cont",
                "search --hex \"11 11 11 11\" --region \(hx(region))-\(hx(region + size)) --max 1",
                "read \(hx(region)) \(size)",
                "echo finished",
            ].joined(separator: "\n").write(toFile: script.path, atomically: true, encoding: .utf8)
            for attempt in 0..<Self.attempts {
                let context = "attempt \(attempt)"
                let search = try Tool.run(
                    "search", unmapper.pidArg, "--hex", "22 22 22 22", "--region",
                    "\(hx(region))-\(hx(region + size))", "--max", "1", "--json")
                // Half the range is always mapped: the search always runs (exit 0), and a hit
                // can only be in the second half.
                #expect(search.exited(0), "search \(context): \(search)")
                let json = try #require(search.json, "search \(context): \(search)")
                let hits = try #require(json["hits"] as? [[String: Any]], "\(json)")
                #expect(hits.count <= 1, "--max 1: \(hits)")
                for hit in hits {
                    let address = try #require(u64(hit["address"]), "\(hit)")
                    #expect(address >= region + 131_072 && address <= region + size - 4, "\(context): \(hit)")
                }
                if hits.isEmpty {
                    // The whole range, or its first half when the maps were read while the
                    // second half was unmapped (then it is in no mapping: not selected).
                    let accounted = u64(json["scanned"]).map { $0 + (u64(json["unreadable"]) ?? 0) }
                    #expect(accounted == size || accounted == size / 2, "no hit: every byte accounted for: \(json)")
                }
                let session = try Tool.run("session", unmapper.pidArg, script.path)
                #expect(session.exited(0) || session.exited(2), "session \(context): \(session)")
                if session.exited(2) {
                    let line = try #require(Reported(session.stderr), "\(context): \(session.stderr)")
                    #expect(line.requested == size)
                    expectPageExact(line.moved, fault: line.faultAddress.map(hx), start: region, context)
                    #expect(!session.lines.contains("finished"))
                } else {
                    #expect(session.lines.last == "finished", "\(session)")
                }
                expectNotLeftStopped(unmapper.pid, "session \(context)")
            }
        }
    }
}
