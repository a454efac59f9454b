// Breakpoints and watchpoints in sessions (issue 13): break, watch, delete, wait, step and
// finish with $hit.field on the traps fixture — exact events, values and arguments, the
// return of finish, threads created after the watch — and nothing left behind on every path
// (the end of the script, a failed expectation, the target's exit, SIGINT/SIGTERM during a
// wait): TracerPid 0, the code as in the file, DR7 zero on every thread.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct TrapSessionScriptCLITests {
    /// Starts `vmio-ptrace session PID SCRIPT` (`PID` in the lines replaced by the fixture's
    /// pid) and waits until the script says `armed` (its traps are set).
    func session(_ fixture: FixtureProcess, _ lines: [String], json: Bool = false) throws -> (Running, TempPath) {
        let script = TempPath("traps.vmio")
        let text = lines.map { $0.replacingOccurrences(of: "PID", with: fixture.pidArg) }.joined(separator: "\n")
        try (text + "\n").write(toFile: script.path, atomically: true, encoding: .utf8)
        let tool = try Running(
            Fixtures.toolPath.path, ["session", fixture.pidArg, script.path] + (json ? ["--json"] : []))
        let armed = waitUntil(timeout: 20) {
            let out = String(decoding: tool.peekStdout(), as: UTF8.self)
            return out.contains("armed") || out.contains("ready")
        }
        #expect(armed, "the session did not set its traps: \(tool.peekStderr())")
        return (tool, script)
    }

    @Test func breakWaitHitFieldsFinishStepAndDelete() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let (tool, _) = try session(
            fixture,
            [
                "let b = break sym:vmio_trap_tick",
                "let w = watch sym:watched 8",
                "echo armed",
                "# loop 3: bump, tick(0, 1), bump, tick(0, 2), bump, tick(0, 3) on the main thread",
                "let hit = wait --timeout 20",
                #"expect $hit.kind == "watchpoint""#,
                "expect $hit.id == $w",
                "expect $hit.address == sym:watched",
                "expect $hit.old == 0",
                "expect $hit.value == 1",
                "expect $hit.tid == PID",
                "let hit = wait --timeout 20",
                #"expect $hit.kind == "breakpoint""#,
                "expect $hit.id == $b",
                "expect $hit.pc == sym:vmio_trap_tick",
                "expect $hit.rdi == 0",
                "expect $hit.rsi == 1",
                "echo hit $hit.pc rsi $hit.rsi",
                "let ret = read $hit.rsp 8 --format u64",
                "let r = regs",
                "expect $r == sym:vmio_trap_tick",
                "expect $r.rsi == 1",
                "let f = finish",
                #"expect $f.kind == "finish""#,
                "expect $f.pc == $ret",
                "expect $f.rax == 1",
                "delete $w",
                "let hit = wait --timeout 20",
                #"expect $hit.kind == "breakpoint""#,
                "expect $hit.rsi == 2",
                "let s = step",
                #"expect $s.kind == "step""#,
                "expect $s.pc > sym:vmio_trap_tick",
                "delete $b",
                "let hit = wait --timeout 1",
                #"expect $hit.kind == "timeout""#,
            ])
        try fixture.write("loop 3")
        let result = tool.finish()
        #expect(result.exited(0), "\(result)")
        #expect(result.lines.contains("hit \(hx(fixture.address("tick"))) rsi 1"), "\(result)")
        #expect(result.stderr.contains("breakpoints and watchpoints removed: left nothing behind"), "\(result)")
        #expect(try fixture.readLine(timeout: 30).hasPrefix("looped 3 "))
        try expectNothingLeftIn(fixture, code: fixture.address("tick"))
        #expect(try fixture.send("watched") == "watched 3")
    }

    @Test func watchFollowsThreadsMadeAfterItAndSeesTheValuesInOrder() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        var lines = ["watch sym:watched", "echo armed"]
        for k in 1...6 {
            lines += [
                "let hit = wait --timeout 20", #"expect $hit.kind == "watchpoint""#, "expect $hit.tid != PID",
                "expect $hit.old == \(k - 1)", "expect $hit.value == \(k)",
                "expect (read sym:watched 8 --format u64) == \(k)",
            ]
        }
        // The script ends with every thread held at the sixth write: the end lets them go.
        let (tool, _) = try session(fixture, lines, json: true)
        try fixture.write("threads 2")
        let result = tool.finish()
        #expect(result.exited(0), "\(result)")
        let objects = result.lines.compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
        let events = objects.compactMap { ($0["result"] as? [String: Any])?["value"] as? [String: Any] }
        #expect(events.map { $0["value"] as? Int } == (1...6).map { $0 }, "\(result)")
        #expect(Set(events.compactMap { $0["tid"] as? Int }).count >= 2, "\(result)")
        #expect(try fixture.readLine(timeout: 30) == "done 6")
        try expectNothingLeftIn(fixture, code: fixture.address("bump"))
    }

    @Test func aFailedExpectationAndTheTargetsExitLeaveNothingBehind() throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let (tool, _) = try session(
            fixture,
            [
                "break sym:vmio_trap_tick", "watch sym:watched", "echo armed", "let hit = wait --timeout 20",
                "expect $hit.rsi == 99", "echo not reached",
            ])
        try fixture.write("loop 2")
        let result = tool.finish()
        #expect(result.exited(1), "\(result)")
        #expect(result.stderr.contains("expectation failed"), "\(result)")
        #expect(!result.stdoutText.contains("not reached"), "\(result)")
        #expect(try fixture.readLine(timeout: 30).hasPrefix("looped 2 "))
        try expectNothingLeftIn(fixture, code: fixture.address("tick"))

        // The target exits during a wait: the event says so, and the session ends cleanly.
        let (ending, _) = try session(
            fixture,
            [
                "break sym:vmio_trap_tick", "echo armed", "let e = wait --timeout 20", #"expect $e.kind == "exit""#,
                "expect $e.status == 0",
            ])
        try fixture.write("quit")
        let ended = ending.finish()
        #expect(ended.exited(0), "\(ended)")
    }

    @Test(arguments: [SIGINT, SIGTERM]) func aFatalSignalDuringAWaitRemovesEveryTrap(signal: Int32) throws {
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        // A hit first, then a wait that nothing ends but the signal (the fixture is idle).
        let (tool, _) = try session(
            fixture,
            [
                "break sym:vmio_trap_tick", "watch sym:watched", "echo ready", "let hit = wait --timeout 20",
                "echo armed $hit.kind", "let hit = wait", "echo not reached",
            ], json: true)
        try fixture.write("tick")
        #expect(waitUntil(timeout: 20) { String(decoding: tool.peekStdout(), as: UTF8.self).contains("armed") })
        usleep(200_000)  // into the second wait
        kill(tool.pid, signal)
        let result = tool.finish()
        #expect(result.signaled && result.status == signal, "\(result)")
        #expect(result.stderr.contains("received: the session ends"), "\(result)")
        #expect(result.stderr.contains("left nothing behind"), "\(result)")
        #expect(!result.stdoutText.contains("not reached"), "\(result)")
        #expect(result.stdoutText.contains("armed breakpoint"), "\(result)")
        try expectNothingLeftIn(fixture, code: fixture.address("tick"))
        #expect(try fixture.readLine(timeout: 30) == "ticked 7007")
        #expect(try fixture.send("tick", timeout: 30) == "ticked 7007")
    }

    @Test(arguments: [SIGTERM, SIGINT]) func aFatalSignalWhileTheSessionAwaitsItsNextLineRemovesEveryTrap(
        signal: Int32
    ) throws {
        // The bug: with traps set, the handler only records the signal; the session blocked in
        // reading its next line from standard input (Swift's readLine retried the EINTR) and
        // ended only when another line came, the traps in the target meanwhile.
        let fixture = try Fixtures.launch(.traps)
        defer { fixture.terminate() }
        let session = try Conversation(Tool.path, ["session", fixture.pidArg, "-"])
        try session.send("break sym:vmio_trap_tick")
        try session.send("watch sym:watched")
        try session.send("echo armed")
        #expect(waitUntil(timeout: 20) { session.nextLine(timeout: 1) == "armed" }, "\(session.stderr)")
        usleep(200_000)  // into the read of the next line
        kill(session.process.processIdentifier, signal)
        #expect(waitUntil(timeout: 10) { !session.process.isRunning }, "the session went on reading")
        session.closeInput()
        _ = session.waitExit(timeout: 10)
        #expect(session.process.terminationReason == .uncaughtSignal, "\(session.stderr)")
        #expect(session.process.terminationStatus == signal, "\(session.stderr)")
        let stderr = session.stderr
        #expect(stderr.contains("received: the session ends"), "\(stderr)")
        #expect(stderr.contains("left nothing behind"), "\(stderr)")
        try expectNothingLeftIn(fixture, code: fixture.address("tick"))
        #expect(try fixture.send("tick", timeout: 30) == "ticked 7007")
    }

    /// A script in a temporary file, `PID` replaced by the fixture's pid.
    func script(_ fixture: FixtureProcess, _ lines: [String]) throws -> TempPath {
        let script = TempPath("wait.vmio")
        let text = lines.map { $0.replacingOccurrences(of: "PID", with: fixture.pidArg) }.joined(separator: "\n")
        try (text + "\n").write(toFile: script.path, atomically: true, encoding: .utf8)
        return script
    }

    @Test(arguments: [false, true]) func aWaitWithNoTrapOnAHolderTimesOutAndTheSessionEnds(stdin: Bool) throws {
        // The bug: read from standard input, the session spun at full CPU after the wait and never
        // ended (the line reader took the wait's stale EINTR for an interrupted read).
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = hx(holder.address("buf"))
        let lines = ["let e = wait --timeout 0.1", "echo got $e.kind", "read \(buf) 4"]
        let result: RunResult
        if stdin {
            let text = lines.joined(separator: "\\n").replacingOccurrences(of: "$", with: "\\$")
            result = try Tool.runProgram(
                "/bin/sh", ["-c", "printf \"\(text)\\n\" | \(Fixtures.toolPath.path) session \(holder.pidArg)"],
                timeout: 30)
        } else {
            let script = try script(holder, lines)
            result = try Tool.run(["session", holder.pidArg, script.path], timeout: 30)
        }
        #expect(result.exited(0), "\(result)")
        #expect(result.lines.first == "got timeout", "\(result)")
        #expect(result.lines.count == 2, "\(result)")
        #expect(waitUntil { isFreeRunning(holder.pid) }, "\(procStatus(holder.pid))")
        #expect(try holder.get(holder.address("buf"), 4) == (0..<4).map(holderPattern))
    }

    @Test(arguments: [SIGTERM, SIGINT]) func aFatalSignalEndsAWaitWithNoTrap(signal: Int32) throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let script = try script(holder, ["echo ready", "let e = wait --timeout 30", "echo not reached"])
        let tool = try Running(Fixtures.toolPath.path, ["session", holder.pidArg, script.path])
        #expect(waitUntil(timeout: 20) { String(decoding: tool.peekStdout(), as: UTF8.self).contains("ready") })
        usleep(300_000)  // into the wait
        kill(tool.pid, signal)
        let result = tool.finish(timeout: 20)
        #expect(result.signaled && result.status == signal, "\(result)")
        #expect(!result.stdoutText.contains("not reached"), "\(result)")
        #expect(result.stderr.contains("received: the session ends"), "\(result)")
        #expect(waitUntil { isFreeRunning(holder.pid) }, "\(procStatus(holder.pid))")
        #expect(try holder.get(holder.address("buf"), 4) == (0..<4).map(holderPattern))
    }

    @Test func trapVerbsRefuseWhatTheyCannotDo() throws {
        let fixture = try Fixtures.launch(.traps), other = try Fixtures.launch(.traps)
        defer {
            fixture.terminate()
            other.terminate()
        }
        let cases: [(String, String)] = [
            ("step", "step needs a breakpoint or watchpoint"),
            ("delete 1", "delete needs a breakpoint or watchpoint"),
            ("break \(other.pid):\(hx(other.address("tick")))", "set in the session's own process"),
            ("watch sym:watched 33", "LEN must be 1 to 32"),
        ]
        for (line, message) in cases {
            let script = TempPath("refused.vmio")
            try (line + "\n").write(toFile: script.path, atomically: true, encoding: .utf8)
            let result = try Tool.run("session", fixture.pidArg, script.path)
            #expect(result.exited(1) || result.exited(64), "\(line): \(result)")
            #expect(result.stderr.contains(message), "\(line): \(result)")
            try expectNothingLeftIn(fixture, code: fixture.address("tick"))
        }
        let script = TempPath("fields.vmio")
        try "break sym:vmio_trap_tick\nlet e = wait --timeout 0.2\necho $e.nothing\n".write(
            toFile: script.path, atomically: true, encoding: .utf8)
        let result = try Tool.run("session", fixture.pidArg, script.path)
        #expect(result.exited(1), "\(result)")
        #expect(result.stderr.contains("no field nothing here (it has kind, id, tid"), "\(result)")
        try expectNothingLeftIn(fixture, code: fixture.address("tick"))
    }
}
