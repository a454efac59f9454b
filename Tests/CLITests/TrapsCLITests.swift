// watch and break (issue 13): exact hit counts on three threads created after the traps were
// set, pcs at the right symbol, values in order, arguments, signals passed through, a fork's
// child left running, exec, the target's exit; and nothing left behind on any exit path
// (SIGINT, SIGTERM: text as in the file, DR7 zero on every thread, read back by a fresh attach),
// and a SIGKILLed tool's leftovers found and repaired by doctor.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct TrapsCLITests {
    /// Starts `vmio-ptrace ARGS` (PID replaced by the fixture's pid) and waits until it says
    /// on standard error that every trap is set and the target runs.
    func start(_ fixture: FixtureProcess, _ arguments: [String]) throws -> Running {
        let tool = try Running(Fixtures.toolPath.path, arguments.map { $0 == "PID" ? fixture.pidArg : $0 })
        let armed = waitUntil(timeout: 20) { tool.peekStderr().contains("; the target runs") }
        #expect(armed, "the tool did not say it set its traps: \(tool.peekStderr())")
        return tool
    }

    /// Every hit line of --json output (the last object is the end).
    func events(_ result: RunResult) -> [[String: Any]] {
        result.lines.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// Nothing is left in the target (``expectNothingLeftIn(_:code:)``).
    func expectNothingLeft(_ fixture: FixtureProcess, code address: UInt64) throws {
        try expectNothingLeftIn(fixture, code: address)
    }

    @Test func watchSeesEveryWriteOfThreeNewThreadsInOrder() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let tool = try start(fixture, ["watch", "PID", "sym:watched", "8", "--count", "300", "--json"])
        // The three threads start after the watch is set: it follows them.
        #expect(try fixture.send("threads 100", timeout: 60) == "done 300")
        let result = tool.finish()
        #expect(result.exited(0), "\(result)")
        let objects = events(result)
        let hits = objects.filter { $0["event"] as? String == "watchpoint" }
        #expect(hits.count == 300)
        #expect(hits.map { $0["old"] as? Int } == (0..<300).map { $0 })
        #expect(hits.map { $0["new"] as? Int } == (1...300).map { $0 })
        #expect(hits.allSatisfy { ($0["function"] as? String)?.hasPrefix("vmio_trap_bump+") == true })
        let tids = Set(hits.compactMap { $0["tid"] as? Int })
        #expect(tids.count == 3 && !tids.contains(Int(fixture.pid)), "\(tids)")
        let end = try #require(objects.last)
        #expect(end["event"] as? String == "end" && end["reason"] as? String == "count", "\(end)")
        #expect(end["verified"] as? Bool == true && (end["threads_cleared"] as? Int ?? 0) >= 1, "\(end)")
        try expectNothingLeft(fixture, code: fixture.address("bump"))
        #expect(try fixture.send("watched") == "watched 300")
    }

    @Test func watchTextLineAndTooLongARange() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let tool = try start(fixture, ["watch", "PID", "sym:watched", "--count", "2", "--format", "x64"])
        #expect(try fixture.send("threads 1", timeout: 60) == "done 3")
        let result = tool.finish()
        #expect(result.exited(0), "\(result)")
        #expect(result.lines.count == 2, "\(result)")
        #expect(result.lines.first?.contains("vmio_trap_bump+0x") == true, "\(result)")
        #expect(result.lines.first?.contains("(vmio-fixture-traps+0x") == true, "\(result)")
        #expect(result.lines.first?.hasSuffix("0x0000000000000000 → 0x0000000000000001") == true, "\(result)")
        #expect(result.stderr.contains("2 hits") && result.stderr.contains("DR7 zero"), "\(result)")
        // 32 bytes one byte past an 8-byte boundary need seven registers: refused, nothing left.
        let refused = try Tool.run("watch", fixture.pidArg, hx(fixture.address("watched") + 1), "32")
        #expect(refused.exited(1), "\(refused)")
        #expect(refused.stderr.contains("need 7 debug registers"), "\(refused)")
        let tooLong = try Tool.run("watch", fixture.pidArg, "sym:watched", "33")
        #expect(tooLong.exited(64), "\(tooLong)")
        // A typed format whose values do not divide LEN is refused, not shown as hex unasked.
        for (length, format) in [("4", "f64"), ("3", "u16"), ("6", "ptr")] {
            let misfit = try Tool.run("watch", fixture.pidArg, "sym:watched", length, "--format", format)
            #expect(misfit.exited(64) && misfit.stderr.contains("is not a multiple of"), "\(misfit)")
        }
        try expectNothingLeft(fixture, code: fixture.address("bump"))
    }

    @Test(arguments: [false, true]) func breakLogsEveryCallWithItsArguments(hardware: Bool) throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let tool = try start(
            fixture,
            ["break", "PID", "sym:vmio_trap_tick", "--count", "300", "--json"] + (hardware ? ["--hardware"] : []))
        #expect(try fixture.send("threads 100", timeout: 60) == "done 300")
        let result = tool.finish()
        #expect(result.exited(0), "\(result)")
        let hits = events(result).filter { $0["event"] as? String == "breakpoint" }
        #expect(hits.count == 300)
        #expect(hits.allSatisfy { $0["pc"] as? String == hx(fixture.address("tick")) })
        #expect(hits.allSatisfy { $0["function"] as? String == "vmio_trap_tick" })
        // Each thread k calls tick(k, 1…100), in order.
        for k in 1...3 {
            let mine = hits.filter { ($0["arguments"] as? [String: String])?["rdi"] == hx(UInt64(k)) }
            #expect(mine.map { ($0["arguments"] as? [String: String])?["rsi"] } == (1...100).map { hx(UInt64($0)) })
        }
        try expectNothingLeft(fixture, code: fixture.address("tick"))
        #expect(try fixture.send("tick") == "ticked 7007")
    }

    /// A breakpoint on a function whose first instruction the session carries out itself (a
    /// push, endbr64, a nop) or steps over (mov): every call is seen with its argument, and every
    /// result is what the function computes untraced (the fixture checks them).
    @Test func breakOnEveryKindOfFirstInstructionKeepsTheResultsExact() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let entries = ["r12", "rbp", "rsp", "endbr", "xchg", "nop", "mov"].map { "sym:vmio_trap_entry_" + $0 }
        let tool = try start(fixture, ["break", "PID"] + entries + ["--count", "\(7 * 40)", "--json"])
        #expect(try fixture.send("entries 40", timeout: 60) == "entries 40 wrong 0")
        let result = tool.finish()
        #expect(result.exited(0), "\(result)")
        let hits = events(result).filter { $0["event"] as? String == "breakpoint" }
        #expect(hits.count == 7 * 40, "\(result)")
        for entry in entries {
            let mine = hits.filter { "sym:" + ($0["function"] as? String ?? "") == entry }
            let arguments = mine.map { ($0["arguments"] as? [String: String])?["rdi"] }
            #expect(arguments == (1...40).map { hx(UInt64($0)) }, "\(entry)")
        }
        #expect(try fixture.send("entries 40") == "entries 40 wrong 0")
        try expectNothingLeft(fixture, code: fixture.address("tick"))
    }

    @Test func breakInAForkingTargetLeavesTheChildRunning() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let tool = try start(fixture, ["break", "PID", "sym:vmio_trap_tick", "--count", "1", "--json"])
        // The child runs tick three times in its copy of the text: without our int3 bytes.
        #expect(try fixture.send("fork", timeout: 30) == "child exited 0")
        #expect(try fixture.send("tick", timeout: 30) == "ticked 7007")
        let result = tool.finish()
        #expect(result.exited(0), "\(result)")
        let hits = events(result).filter { $0["event"] as? String == "breakpoint" }
        #expect(hits.count == 1 && hits.first?["tid"] as? Int == Int(fixture.pid), "\(result)")
        try expectNothingLeft(fixture, code: fixture.address("tick"))
    }

    /// The program's own SIGTRAPs (`raise`, an `int3` of its own) right after each hit of a
    /// debug register: delivered to it, none taken for a hit (the kernel leaves DR6 as the hit
    /// set it until the next debug exception). One watch holds the registers alone; two
    /// hardware breakpoints share them (DR6 then says whose hit).
    @Test(arguments: [
        (["watch", "PID", "sym:watched", "--count", "10", "--json"], ["vmio_trap_bump+"]),
        (
            ["break", "PID", "sym:vmio_trap_bump", "sym:vmio_trap_tick", "--hardware", "--count", "20", "--json"],
            ["vmio_trap_bump", "vmio_trap_tick"]
        ),
    ])
    func theTargetsOwnSIGTRAPsAfterAHitAreDelivered(command: [String], functions: [String]) throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let tool = try start(fixture, command)
        #expect(try fixture.send("own-traps 10", timeout: 60) == "own-traps 10 got 20")
        let result = tool.finish()
        #expect(result.exited(0), "\(result)")
        let hits = events(result).filter { $0["event"] as? String != "end" }
        let expected = (0..<(functions.count * 10)).map { functions[$0 % functions.count] }
        #expect(hits.count == expected.count, "\(result)")
        for (hit, function) in zip(hits, expected) {
            #expect((hit["function"] as? String)?.hasPrefix(function) == true, "\(hit)")
            #expect(hit["tid"] as? Int == Int(fixture.pid), "\(hit)")
        }
        if command[0] == "watch" { #expect(hits.map { $0["new"] as? Int } == (1...10).map { $0 }) }
        try expectNothingLeft(fixture, code: fixture.address("tick"))
    }

    @Test(arguments: [["watch", "PID", "sym:watched"], ["break", "PID", "sym:vmio_trap_tick"]])
    func signalsToTheTargetAreDeliveredAndAFatalSignalCleansUp(command: [String]) throws {
        for signal in [SIGINT, SIGTERM] {
            let fixture = try Fixtures.launch(.traps)
            defer { fixture.terminate() }
            #expect(try fixture.send("spin") == "spinning")
            let tool = try start(fixture, command)
            #expect(waitUntil(timeout: 20) { (tool.peekStdout().count) > 0 }, "no hit came")
            // One at a time: a second SIGUSR1 sent before the first is taken merges with it.
            for n in 1...5 {
                kill(fixture.pid, SIGUSR1)
                #expect(waitUntil(timeout: 20) { (try? fixture.send("usr1")) == "usr1 \(n)" })
            }
            kill(tool.pid, signal)
            let result = tool.finish()
            #expect(result.signaled && result.status == signal, "\(result)")
            #expect(result.stderr.contains("received; left nothing behind"), "\(result)")
            try expectNothingLeft(fixture, code: fixture.address(command[0] == "watch" ? "bump" : "tick"))
            #expect(try fixture.send("unspin", timeout: 30) == "unspun")
        }
    }

    /// A reader that goes away (`break … | head -1`): the tool cleans up, says so, and dies of
    /// SIGPIPE, as on SIGINT, in text and in JSON alike.
    @Test(arguments: [
        ["watch", "PID", "sym:watched"], ["break", "PID", "sym:vmio_trap_tick"],
        ["watch", "PID", "sym:watched", "--json"], ["break", "PID", "sym:vmio_trap_tick", "--json"],
    ])
    func aClosedPipeCleansUpAndDiesOfSIGPIPE(command: [String]) throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        #expect(try fixture.send("spin") == "spinning")
        let pipe = Pipe()
        let tool = try Running(
            Fixtures.toolPath.path, command.map { $0 == "PID" ? fixture.pidArg : $0 }, stdout: pipe.fileHandleForWriting
        )
        try? pipe.fileHandleForWriting.close()
        #expect(waitUntil(timeout: 20) { tool.peekStderr().contains("; the target runs") }, "\(tool.peekStderr())")
        try pipe.fileHandleForReading.close()
        let result = tool.finish()
        #expect(result.signaled && result.status == SIGPIPE, "\(result)")
        #expect(result.stderr.contains("SIGPIPE received; left nothing behind"), "\(result)")
        #expect(!result.stderr.contains("cannot write"), "\(result)")
        try expectNothingLeft(fixture, code: fixture.address(command[0] == "watch" ? "bump" : "tick"))
        #expect(try fixture.send("unspin", timeout: 30) == "unspun")
    }

    /// What no trap can be set on is refused before any is set, with one line and exit 1: an
    /// address past user space (the kernel's limit for a debug register, 0x7ffffffff000, and
    /// near 2^64, where ADDR + LEN would overflow), a hardware breakpoint in no mapping or not in
    /// code (as a software one), a watch in no mapping, a second breakpoint at one address.
    @Test(arguments: [
        (["watch", "PID", "0xffffffffffffffff", "8"], "is not a user-space address"),
        (["watch", "PID", "0xffffffffffffffff", "1"], "is not a user-space address"),
        (["watch", "PID", "0xfffffffffffffff8", "8"], "is not a user-space address"),
        (["watch", "PID", "0x7ffffffff000", "1"], "is not a user-space address"),
        (["watch", "PID", "0x7fffffffeff8", "16"], "is not a user-space address"),
        (["break", "PID", "0x7ffffffff000", "--hardware"], "is not a user-space address"),
        (["break", "PID", "0xffffffffffffffff", "--hardware"], "is not a user-space address"),
        (["break", "PID", "0x1000", "--hardware"], "is in no mapping of pid"),
        (["break", "PID", "sym:watched", "--hardware"], "is not in code"),
        (["watch", "PID", "0x1000", "8"], "is in no mapping of pid"),
        (["break", "PID", "sym:vmio_trap_tick", "sym:vmio_trap_tick", "--hardware"], "there is a breakpoint at"),
        (["break", "PID", "sym:vmio_trap_tick", "--hardware", "sym:vmio_trap_tick"], "there is a breakpoint at"),
    ])
    func whatNoTrapCanBeSetOnIsRefused(command: [String], message: String) throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let result = try Tool.run(command.map { $0 == "PID" ? fixture.pidArg : $0 } + ["--timeout", "5"])
        #expect(result.exited(1), "\(result)")
        let errors = result.stderrLines.filter { $0.hasPrefix("vmio-ptrace: ") }
        #expect(errors.count == 1 && errors[0].contains(message), "\(result)")
        try expectNothingLeft(fixture, code: fixture.address("tick"))
    }

    /// Two threads write the watched variable back to back, so one of them has a hit waiting
    /// whenever the tool looks (the kernel's peek names the first tracee with news every time):
    /// a SIGUSR1 sent to either of them alone is still delivered, each in turn, and a SIGTERM
    /// to the tool still leaves nothing behind.
    @Test func aSignalToAThreadThatHitsWithoutAPauseIsDelivered() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let hot = try fixture.send("hot").split(separator: " ").compactMap { Int32($0) }
        try #require(hot.count == 2)
        let tool = try Running(
            Fixtures.toolPath.path, ["watch", fixture.pidArg, "sym:watched"],
            stdout: FileHandle(forWritingAtPath: "/dev/null"))
        #expect(waitUntil(timeout: 20) { tool.peekStderr().contains("; the target runs") }, "\(tool.peekStderr())")
        usleep(200_000)  // hits under way
        for n in 1...3 {
            #expect(try fixture.send("usr1-hot \(n % 2)") == "sent")
            // The count may lag the kill by a moment (a thread at a hit takes it when let go).
            #expect(waitUntil(timeout: 20) { (try? fixture.send("usr1")) == "usr1 \(n)" }, "signal \(n)")
        }
        kill(tool.pid, SIGTERM)
        let result = tool.finish()
        #expect(result.signaled && result.status == SIGTERM, "\(result)")
        #expect(result.stderr.contains("received; left nothing behind"), "\(result)")
        try expectNothingLeft(fixture, code: fixture.address("bump"))
        #expect(try fixture.send("unspin", timeout: 30) == "unspun")
    }

    @Test func execEndsTheBreakpointsAndTheTargetsExitEndsTheWatch() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let tool = try start(fixture, ["break", "PID", "sym:vmio_trap_tick"])
        try fixture.write("exec")
        let result = tool.finish()
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.contains("ran exec: every trap ended"), "\(result)")
        #expect(waitUntil { isFreeRunning(fixture.pid) })
        let other = try Fixtures.launch(.traps)
        defer { other.terminate() }
        let watch = try start(other, ["watch", "PID", "sym:watched"])
        try other.write("quit")
        let ended = watch.finish()
        #expect(ended.exited(4), "\(ended)")
        #expect(ended.stderr.contains("exited with status 0"), "\(ended)")
    }

    @Test(arguments: ["watch", "break"]) func doctorRepairsWhatAKilledToolLeft(verb: String) throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let tool = try start(fixture, [verb, "PID", verb == "watch" ? "sym:watched" : "sym:vmio_trap_tick"])
        kill(tool.pid, SIGKILL)
        _ = tool.finish()
        #expect(waitUntil { procStatus(fixture.pid)["TracerPid"] == "0" })
        let found = try Tool.run("doctor", fixture.pidArg, "--json")
        #expect(found.exited(1), "\(found)")
        // The one fix is the repair, not "nothing to fix".
        let fix = "vmio-ptrace doctor \(fixture.pid) --repair"
        #expect(found.json?["ok"] as? Bool == false, "\(found)")
        #expect((found.json?["fix"] as? String)?.hasPrefix(fix) == true, "\(found)")
        let text = try Tool.run("doctor", fixture.pidArg)
        #expect(text.exited(1), "\(text)")
        #expect(text.lines.last?.hasPrefix("fix: " + fix) == true, "\(text)")
        #expect(!text.stdoutText.contains("nothing to fix"), "\(text)")
        let leftovers = try #require(found.json?["leftovers"] as? [String: Any], "\(found)")
        if verb == "watch" {
            let threads = leftovers["threads"] as? [[String: Any]] ?? []
            #expect(threads.map { $0["tid"] as? Int } == [Int(fixture.pid)], "\(found)")
        } else {
            let text = leftovers["text"] as? [[String: Any]] ?? []
            #expect(text.count == 1 && text.first?["address"] as? String == hx(fixture.address("tick")), "\(found)")
            #expect(text.first?["found"] as? String == "cc", "\(found)")
        }
        let repaired = try Tool.run("doctor", fixture.pidArg, "--repair")
        #expect(repaired.exited(0), "\(repaired)")
        #expect(repaired.lines.contains { $0.hasPrefix("repaired: ") }, "\(repaired)")
        try expectNothingLeft(fixture, code: fixture.address(verb == "watch" ? "bump" : "tick"))
        // It lives on through what would have killed it with SIGTRAP.
        #expect(try fixture.send("threads 5", timeout: 30) == "done 15")
        #expect(try fixture.send("tick") == "ticked 7007")
    }

    @Test(arguments: ["vfork", "vfork exec"])
    func aVforkChildRunsThroughTheBreakpointsInTheTextItShares(command: String) throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let tool = try start(fixture, ["break", "PID", "sym:vmio_trap_tick", "--count", "1", "--json"])
        // The child calls tick three times in the parent's own text: it must not die of our int3.
        #expect(try fixture.send(command, timeout: 30) == "child exited 0")
        // The bytes are back once it exited or exec'd: the parent's next call is counted.
        #expect(try fixture.send("tick", timeout: 30) == "ticked 7007")
        let result = tool.finish()
        #expect(result.exited(0), "\(result)")
        let hits = events(result).filter { $0["event"] as? String == "breakpoint" }
        #expect(hits.count == 1 && hits.first?["tid"] as? Int == Int(fixture.pid), "\(result)")
        #expect((hits.first?["arguments"] as? [String: String])?["rdi"] == hx(7), "\(result)")
        try expectNothingLeft(fixture, code: fixture.address("tick"))
        #expect(try fixture.send(command, timeout: 30) == "child exited 0")
    }

    @Test(arguments: [["watch", "PID", "sym:watched"], ["break", "PID", "sym:vmio_trap_tick"]])
    func aJobControlStopDuringTheWatchIsKeptAndSIGCONTGoesOn(command: [String]) throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        #expect(try fixture.send("spin") == "spinning")
        let tool = try start(fixture, command + ["--json"])
        func hits() -> Int { tool.peekStdout().filter { $0 == UInt8(ascii: "\n") }.count }
        func jobStopped() -> Bool {
            let states = threadStates(fixture.pid)
            return !states.isEmpty && states.values.allSatisfy { $0 == "t" || $0 == "T" }
        }
        #expect(waitUntil(timeout: 20) { hits() > 5 }, "no hit came")
        for _ in 0..<2 {
            kill(fixture.pid, SIGSTOP)
            // Stopped as job control stops it (every thread), and no hit comes while it is.
            #expect(waitUntil(timeout: 20) { jobStopped() }, "\(threadStates(fixture.pid))")
            usleep(100_000)
            let stoppedAt = hits()
            usleep(300_000)
            #expect(hits() == stoppedAt && jobStopped(), "\(threadStates(fixture.pid))")
            kill(fixture.pid, SIGCONT)
            #expect(waitUntil(timeout: 20) { hits() > stoppedAt + 5 }, "hits did not go on after SIGCONT")
        }
        // Stopped by the user when the tool ends: untraced, nothing left, and still stopped.
        kill(fixture.pid, SIGSTOP)
        #expect(waitUntil(timeout: 20) { jobStopped() }, "\(threadStates(fixture.pid))")
        kill(tool.pid, SIGTERM)
        let result = tool.finish()
        #expect(result.signaled && result.status == SIGTERM, "\(result)")
        #expect(result.stderr.contains("left nothing behind"), "\(result)")
        #expect(!result.stderr.contains("could not be restored"), "\(result)")
        #expect(waitUntil { threadTracers(fixture.pid).values.allSatisfy { $0 == "0" } }, "\(procStatus(fixture.pid))")
        #expect(
            waitUntil {
                procStatus(fixture.pid)["State"]?.hasPrefix("T") == true
                    && threadStates(fixture.pid).values.allSatisfy { $0 == "T" }
            }, "\(procStatus(fixture.pid)) \(threadStates(fixture.pid))")
        kill(fixture.pid, SIGCONT)
        try expectNothingLeft(fixture, code: fixture.address(command[0] == "watch" ? "bump" : "tick"))
        #expect(try fixture.send("unspin", timeout: 30) == "unspun")
    }
}

/// Nothing is left in the target: its code at `address` is the file's byte, every thread's
/// DR7 reads 0 (a fresh attach: `doctor --json`), it runs free.
func expectNothingLeftIn(_ fixture: FixtureProcess, code address: UInt64) throws {
    try #require(
        fixture.isRunning,
        "the fixture ended: \(fixture.terminationStatus.map(String.init) ?? "?") \(fixture.stderrOutput)")
    #expect(waitUntil { isFreeRunning(fixture.pid) }, "\(procStatus(fixture.pid))")
    #expect(try codeByte(fixture.pid, address) == fileByte(fixture.pid, address))
    let doctor = try Tool.run("doctor", fixture.pidArg, "--json")
    #expect(doctor.exited(0), "\(doctor)")
    let leftovers = try #require(doctor.json?["leftovers"] as? [String: Any], "\(doctor)")
    #expect((leftovers["text"] as? [Any])?.isEmpty == true, "\(doctor)")
    #expect((leftovers["threads"] as? [Any])?.isEmpty == true, "\(doctor)")
}

/// The byte at `address` of `pid`'s memory (through /proc/PID/mem).
func codeByte(_ pid: Int32, _ address: UInt64) throws -> UInt8 {
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/\(pid)/mem"))
    defer { try? handle.close() }
    try handle.seek(toOffset: address)
    return try #require(try handle.read(upToCount: 1)?.first)
}

/// The byte of the mapped file behind `address` of `pid` (its maps line's path and offset).
func fileByte(_ pid: Int32, _ address: UInt64) throws -> UInt8 {
    let maps = try #require(readProcFile("/proc/\(pid)/maps"))
    for line in maps.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        let bounds = fields[0].split(separator: "-").compactMap { UInt64($0, radix: 16) }
        guard bounds.count == 2, address >= bounds[0], address < bounds[1], fields.count >= 6 else { continue }
        let offset = try #require(UInt64(fields[2], radix: 16))
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: String(fields[5])))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset + address - bounds[0])
        return try #require(try handle.read(upToCount: 1)?.first)
    }
    throw HolderError(reply: "no mapping holds \(hx(address))")
}
