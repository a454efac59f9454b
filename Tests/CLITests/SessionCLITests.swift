// `vmio-ptrace session` and `vmio-ptrace run` end to end on holder fixtures: find,
// read, patch and copy a marker between two processes; failures that name their
// line and carry their exit status; --keep-going; a syntax error running nothing;
// stop/cont leaving the target running; a JSON-lines conversation over pipes;
// `run` with and without --detach; and every script under Examples/.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Helpers

/// A script in a temporary file (removed at deinit).
final class ScriptFile {
    let temp = TempPath("session.vmio")
    var path: String { temp.path }
    init(_ lines: [String]) throws {
        try (lines.joined(separator: "\n") + "\n").write(toFile: temp.path, atomically: true, encoding: .utf8)
    }
}

/// The Examples/ folder of the package.
private let examplesDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Examples")

/// The pid in `started PROGRAM as pid N` on `run`'s standard error.
private func startedPid(_ stderr: String) -> Int32? {
    guard let r = stderr.range(of: #"as pid [0-9]+"#, options: .regularExpression) else { return nil }
    return Int32(stderr[r].split(separator: " ").last!)
}

/// The process `pid` no longer exists (killed and reaped).
private func isGone(_ pid: Int32) -> Bool { procStatus(pid).isEmpty }

/// The holder's `buf` contents at `offset`, as it started.
private func initialBuf(_ offset: Int, _ count: Int) -> [UInt8] { (offset..<offset + count).map(holderPattern) }

@Suite struct SessionCLITests {
    // MARK: The issue's round trip

    @Test func searchReadWriteExpectAndCopyToASecondHolder() throws {
        let a = try Fixtures.launch(.holder), b = try Fixtures.launch(.holder)
        let aBuf = a.address("buf"), bBuf = b.address("buf")
        let destination = "\(b.pid):\(hx(bBuf + 0x8000))"
        let script = try ScriptFile([
            "# the marker is in a's anonymous memory (its text is also in the read-only code)",
            #"let m = search --string "VMIO-MARKER-0001" --region anon"#,
            "expect $m == \(hx(aBuf + 0x100))",
            "read $m 16",
            #"expect (read $m 16 --format str) == "VMIO-MARKER-0001""#,
            #"write $m --string "VMIO-MARKER-0042" --verify"#,
            #"expect (read $m 16 --format str) == "VMIO-MARKER-0042""#,
            #"expect (read $m 16) == x"564d494f2d4d41524b45522d30303432""#,
            "copy $m \(destination) 16",
            #"expect (read \#(destination) 16 --format str) == "VMIO-MARKER-0042""#,
            "echo marker at $m",
        ])
        let result = try Tool.run("session", a.pidArg, script.path)
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        #expect(
            result.lines == [
                String(hx(aBuf + 0x100).dropFirst(2)) + ": 564d 494f 2d4d 4152 4b45 522d 3030 3031  VMIO-MARKER-0001",
                "wrote 16 bytes at \(hx(aBuf + 0x100)) (verified)",
                "copied 16 bytes from \(a.pid):\(hx(aBuf + 0x100)) to \(destination)",
                "marker at \(hx(aBuf + 0x100))",
            ])
        // Both holders see the new marker from the inside; the bytes around are untouched.
        #expect(try a.get(aBuf + 0x100, 16) == Array("VMIO-MARKER-0042".utf8))
        #expect(try b.get(bBuf + 0x8000, 16) == Array("VMIO-MARKER-0042".utf8))
        #expect(try b.get(bBuf + 0x7ff0, 16) == initialBuf(0x7ff0, 16))
        #expect(try b.get(bBuf + 0x8010, 16) == initialBuf(0x8010, 16))
        #expect(try b.get(bBuf + 0x100, 16) == Array("VMIO-MARKER-0001".utf8))
        #expect(isFreeRunning(a.pid) && isFreeRunning(b.pid))
    }

    // MARK: Failures

    @Test func aFailingExpectExits1NamingItsLine() throws {
        let h = try Fixtures.launch(.holder)
        let buf = h.address("buf")
        let script = try ScriptFile([
            "let v = read \(hx(buf + 0x200)) 8 --format u64",
            "expect $v == 0x1122334455667788",
            "  expect $v + 1 == 0x1122334455667788",
            #"write \#(hx(buf + 0x5000)) --string "not reached""#,
        ])
        let result = try Tool.run("session", h.pidArg, script.path)
        #expect(result.exited(1), "\(result)")
        #expect(
            result.stderrLines == [
                "vmio-ptrace: line 3:3: expectation failed: 0x1122334455667789 == 0x1122334455667788"
            ])
        #expect(result.stdout.isEmpty)
        #expect(try h.get(buf + 0x5000, 11) == initialBuf(0x5000, 11))
        #expect(isFreeRunning(h.pid))
    }

    @Test func backtraceAndRegsRunInASession() throws {
        let f = try Fixtures.launch(.deepStack)
        defer { f.terminate() }
        // The main thread blocks in read(2): the kernel says where (/proc/PID/syscall ends with
        // the user sp and pc), and a stop there leaves rip at that pc.
        try #require(waitUntil { threadStates(f.pid)[f.pid] == "S" }, "\(threadStates(f.pid))")
        let syscall = try #require(readProcFile("/proc/\(f.pid)/syscall"))
        let pc = try #require(
            syscall.split(separator: " ").last.flatMap {
                UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst(2), radix: 16)
            }, "\(syscall)")
        let script = try ScriptFile([
            "regs",
            "let pc = regs",
            "expect $pc == \(hx(pc))",
            "backtrace --snapshot --depth 64",
            "let frames = backtrace --depth 64",
            "expect $frames >= 4",
        ])
        let result = try Tool.run("session", String(f.pid), script.path)
        #expect(result.exited(0), "\(result)")
        // Every thread's registers and stack, with the known chain on the main thread.
        let out = result.stdoutText
        #expect(out.contains("rip"))
        // Each frame of the chain comes after the one before it, in the first (snapshot) backtrace.
        var from = out.startIndex
        for function in ["in level_three", "in level_two", "in level_one", "in main"] {
            let found = out.range(of: function, range: from..<out.endIndex)
            #expect(found != nil, "\(function) missing or out of order: \(out)")
            from = found?.upperBound ?? from
        }
        #expect(out.contains("blocked_here"))
        #expect(isFreeRunning(f.pid))
    }

    @Test func aFaultingStepExits2NamingItsLine() throws {
        let h = try Fixtures.launch(.holder)
        let guardPage = h.address("guard"), buf = h.address("buf")
        let script = try ScriptFile([
            "echo before",
            "read \(hx(guardPage)) 16",
            #"write \#(hx(buf + 0x5000)) --string "not reached""#,
            "echo after",
        ])
        let result = try Tool.run("session", h.pidArg, script.path)
        #expect(result.exited(2), "\(result)")
        #expect(result.lines == ["before"])
        #expect(
            result.stderrLines == [
                "vmio-ptrace: line 2:1: partial read: 0 of 16 bytes moved; first faulting address \(hx(guardPage))"
            ])
        #expect(try h.get(buf + 0x5000, 11) == initialBuf(0x5000, 11))

        // With --json the failing line carries the partial result and the error.
        let json = try Tool.run("session", h.pidArg, script.path, "--json")
        #expect(json.exited(2), "\(json)")
        let objects = json.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == 3, "\(json.lines)")
        #expect(objects[1]["line"] as? Int == 2 && objects[1]["verb"] as? String == "read")
        #expect(objects[1]["ok"] as? Bool == false && objects[1]["status"] as? Int == 2)
        let partial = try #require(objects[1]["result"] as? [String: Any])
        #expect(partial["moved"] as? Int == 0 && partial["complete"] as? Bool == false)
        #expect((partial["stop"] as? [String: Any])?["fault_address"] as? String == hx(guardPage))
        let summary = try #require(objects[2]["summary"] as? [String: Any])
        #expect(summary["status"] as? Int == 2 && summary["commands"] as? Int == 2)
    }

    @Test func keepGoingRunsEveryLineAndListsEveryFailure() throws {
        let h = try Fixtures.launch(.holder)
        let guardPage = h.address("guard"), buf = h.address("buf"), edge = h.address("edge")
        let script = try ScriptFile([
            "echo one",
            "expect (read \(hx(buf + 0x310)) 4 --format i32) == 5",
            "read \(hx(guardPage)) 16",
            #"write \#(hx(buf + 0x5000)) --string "still written""#,
            "read \(hx(edge + 4090)) 16",
            "echo six",
        ])
        let result = try Tool.run("session", h.pidArg, script.path, "--keep-going")
        // The status is that of the first failure: the expectation's 1.
        #expect(result.exited(1), "\(result)")
        #expect(result.lines.first == "one" && result.lines.last == "six")
        #expect(result.lines.contains("wrote 13 bytes at \(hx(buf + 0x5000))"))
        #expect(try h.get(buf + 0x5000, 13) == Array("still written".utf8))
        let failures = [
            "line 2:1: expectation failed: -5 == 5",
            "line 3:1: partial read: 0 of 16 bytes moved; first faulting address \(hx(guardPage))",
            "line 5:1: partial read: 6 of 16 bytes moved; first faulting address \(hx(edge + 4096))",
        ]
        #expect(
            result.stderrLines == failures.map { "vmio-ptrace: " + $0 }
                + ["vmio-ptrace: 3 of 6 commands failed:"] + failures.map { "  " + $0 })
        #expect(isFreeRunning(h.pid))
    }

    @Test func aSyntaxErrorAnywhereRunsNothing() throws {
        let h = try Fixtures.launch(.holder)
        let buf = h.address("buf")
        let script = try ScriptFile([
            #"write \#(hx(buf + 0x6000)) --string "SHOULD-NOT-LAND" --verify"#,
            "stop",
            "echo fine so far",
            "cont",
            "expect (read \(hx(buf)) 8 --format u64 == 1",
            "echo never",
        ])
        let result = try Tool.run("session", h.pidArg, script.path)
        #expect(result.exited(1), "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines == ["vmio-ptrace: line 5:8: unbalanced '('"])
        #expect(try h.get(buf + 0x6000, 15) == initialBuf(0x6000, 15))
        #expect(isFreeRunning(h.pid))
        // Also with --keep-going: nothing runs.
        let keepGoing = try Tool.run("session", h.pidArg, script.path, "--keep-going")
        #expect(keepGoing.exited(1), "\(keepGoing)")
        #expect(keepGoing.stdout.isEmpty)
        #expect(try h.get(buf + 0x6000, 15) == initialBuf(0x6000, 15))
    }

    // MARK: stop / cont

    @Test func stopAndContLeaveTheTargetRunning() throws {
        let h = try Fixtures.launch(.holder)
        let buf = h.address("buf"), guardPage = h.address("guard")
        // Held stopped while the session sleeps, then let go.
        let held = try ScriptFile([
            "stop",
            "sleep 1500ms",
            "expect (read \(hx(buf + 0x200)) 8 --format u64) == 0x1122334455667788",
            "cont",
            "stop",
            "write \(hx(buf + 0x7000)) --u32 7 --verify",
        ])
        let running = try Running(Tool.path, ["session", h.pidArg, held.path])
        #expect(
            waitUntil(timeout: 5) { procStatus(h.pid)["State"]?.hasPrefix("t") == true },
            "the holder was never seen stopped: \(procStatus(h.pid))")
        #expect(procStatus(h.pid)["TracerPid"] != "0")
        let result = running.finish()
        #expect(result.exited(0), "\(result)")
        #expect(
            result.lines == [
                "stopped 1 thread of pid \(h.pid)", "pid \(h.pid) runs on",
                "stopped 1 thread of pid \(h.pid)", "wrote 4 bytes at \(hx(buf + 0x7000)) (verified)",
            ])
        #expect(isFreeRunning(h.pid), "\(procStatus(h.pid))")
        #expect(threadTracers(h.pid).values.allSatisfy { $0 == "0" })
        #expect(try h.get(buf + 0x7000, 4) == [7, 0, 0, 0])

        // A session that fails while the target is stopped still lets it go.
        for (lines, status) in [(["stop", "expect 1 == 2"], Int32(1)), (["stop", "read \(hx(guardPage)) 8"], 2)] {
            let script = try ScriptFile(lines)
            let failed = try Tool.run("session", h.pidArg, script.path)
            #expect(failed.exited(status), "\(failed)")
            #expect(failed.stderr.contains("line 2:1:"), "\(failed.stderr)")
            #expect(isFreeRunning(h.pid), "\(lines): \(procStatus(h.pid))")
        }
        #expect(try h.send("ping") == "pong")
    }

    /// `cont` lets every thread of a multi-threaded target go at once, while the session
    /// runs on (no thread left stopped until the tool exits and the kernel lets it go).
    @Test func contLetsEveryThreadGoWhileTheSessionRuns() throws {
        let threads = try Fixtures.launch(.threads)
        defer { threads.terminate() }
        let session = try Conversation(Tool.path, ["session", threads.pidArg, "-", "--json"])
        let tool = String(session.process.processIdentifier)
        try session.send("stop")
        #expect(session.nextObject(timeout: 30)?["ok"] as? Bool == true)
        #expect(threadStates(threads.pid).values.allSatisfy { $0 == "t" }, "\(threadStates(threads.pid))")
        #expect(threadTracers(threads.pid).values.allSatisfy { $0 == tool }, "\(threadTracers(threads.pid))")
        try session.send("cont")
        #expect(session.nextObject(timeout: 30)?["ok"] as? Bool == true)
        #expect(waitUntil { isFreeRunning(threads.pid) }, "\(threadStates(threads.pid)) \(threadTracers(threads.pid))")
        #expect(session.isRunning)
        #expect(try threads.send("spawn").hasSuffix(" worker-4"), "every thread runs: a new one can start")
        session.closeInput()
        #expect(session.waitExit() == 0)
    }

    // MARK: JSON lines over pipes

    @Test func jsonLinesConversationOverAPipe() throws {
        let h = try Fixtures.launch(.holder)
        let buf = h.address("buf")
        let session = try Conversation(Tool.path, ["session", h.pidArg, "-", "--json"])

        // Each answer arrives while standard input is still open: the session reads a
        // line, answers a line, flushes, and waits for the next.
        try session.send(#"let m = search --string "VMIO-MARKER-0001" --region anon"#)
        let first = try #require(session.nextObject(), "no answer to the first line")
        #expect(first["line"] as? Int == 1 && first["verb"] as? String == "let" && first["ok"] as? Bool == true)
        #expect(first["status"] as? Int == 0)
        let assigned = try #require(first["result"] as? [String: Any])
        #expect(assigned["name"] as? String == "m")
        #expect(assigned["value"] as? String == hx(buf + 0x100), "an address is a 0x… string: \(assigned)")
        #expect(session.isRunning)

        try session.send("read $m 16 --format str")
        let second = try #require(session.nextObject())
        #expect(second["line"] as? Int == 2 && second["verb"] as? String == "read" && second["ok"] as? Bool == true)
        let read = try #require(second["result"] as? [String: Any])
        #expect(read["string"] as? String == "VMIO-MARKER-0001")
        #expect(read["address"] as? String == hx(buf + 0x100) && read["moved"] as? Int == 16)

        // Comments and blank lines answer nothing, but count as lines.
        try session.send("# a comment")
        try session.send("")
        try session.send("write $m+0x1000 --u32 0xfeedface --verify")
        let third = try #require(session.nextObject())
        #expect(third["line"] as? Int == 5 && third["verb"] as? String == "write" && third["ok"] as? Bool == true)
        #expect((third["result"] as? [String: Any])?["verified"] as? Bool == true)
        #expect(try h.get(buf + 0x1100, 4) == [0xce, 0xfa, 0xed, 0xfe])

        try session.send("expect (read $m+0x1000 4 --format u32) == 0xfeedface")
        let fourth = try #require(session.nextObject())
        #expect(fourth["verb"] as? String == "expect" && fourth["ok"] as? Bool == true)
        #expect((fourth["result"] as? [String: Any])?["holds"] as? Bool == true)

        try session.send("echo done with $m")
        let fifth = try #require(session.nextObject())
        #expect((fifth["result"] as? [String: Any])?["text"] as? String == "done with \(hx(buf + 0x100))")
        #expect(session.isRunning)

        // End of input ends the session with its summary.
        session.closeInput()
        let summary = try #require(session.nextObject()?["summary"] as? [String: Any])
        #expect(summary["commands"] as? Int == 5)
        #expect(summary["status"] as? Int == 0)
        #expect((summary["failures"] as? [Any])?.isEmpty == true)
        #expect(session.remainingLines().isEmpty)
        #expect(session.waitExit() == 0)
        #expect(isFreeRunning(h.pid))
    }

    @Test func jsonConversationEndsAtAFailureWithoutWaitingForInput() throws {
        let h = try Fixtures.launch(.holder)
        let session = try Conversation(Tool.path, ["session", h.pidArg, "-", "--json"])
        try session.send("stop")
        #expect(session.nextObject()?["ok"] as? Bool == true)
        try session.send("expect 1 == 2")
        let failed = try #require(session.nextObject())
        #expect(failed["line"] as? Int == 2 && failed["ok"] as? Bool == false && failed["status"] as? Int == 1)
        #expect(failed["error"] as? String == "expectation failed: 1 == 2")
        // Standard input is still open, yet the session is over.
        let summary = try #require(session.nextObject()?["summary"] as? [String: Any])
        #expect(summary["status"] as? Int == 1)
        let failures = try #require(summary["failures"] as? [[String: Any]])
        #expect(failures.count == 1 && failures[0]["line"] as? Int == 2)
        #expect(session.waitExit() == 1)
        #expect(isFreeRunning(h.pid), "\(procStatus(h.pid))")

        // A line that does not parse is answered as "parse", with its line:column.
        let second = try Conversation(Tool.path, ["session", h.pidArg, "-", "--json", "--keep-going"])
        try second.send("read 0x10")
        let bad = try #require(second.nextObject())
        #expect(bad["line"] as? Int == 1 && bad["verb"] as? String == "parse" && bad["ok"] as? Bool == false)
        #expect(bad["error"] as? String == "line 1:10: read needs LEN")
        try second.send("echo still here")
        #expect((second.nextObject()?["result"] as? [String: Any])?["text"] as? String == "still here")
        second.closeInput()
        #expect((second.nextObject()?["summary"] as? [String: Any])?["status"] as? Int == 1)
        #expect(second.waitExit() == 1)
    }

    // MARK: dump and restore in a session

    /// `dump`, then a change, then `restore` in one session: the change is undone, and the
    /// memory is the dump's again (read back by the test through /proc/PID/mem).
    @Test func dumpChangeAndRestoreInOneSession() throws {
        let h = try Fixtures.launch(.holder)
        let buf = h.address("buf")
        let dir = TempDir()
        let original = try h.get(buf, 65536)
        let range = "\(hx(buf))-\(hx(buf + 65536))"
        let counterPage = h.address("counter") & ~0xfff
        let script = try ScriptFile([
            "stop",
            "dump --region \(range) --region \(hx(counterPage))-\(hx(counterPage + 0x1000)) -o \(dir.sub("d"))",
            #"write \#(hx(buf + 0x100)) --string "CHANGED-MARKER!!""#,
            "write sym:counter --u64 7",
            #"expect (read \#(hx(buf + 0x100)) 16 --format str) == "CHANGED-MARKER!!""#,
            "restore \(dir.sub("d")) --verify",
            #"expect (read \#(hx(buf + 0x100)) 16 --format str) == "VMIO-MARKER-0001""#,
            "cont",
        ])
        let result = try Tool.run("session", h.pidArg, script.path)
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        let manifest = try DumpManifestFile(dir.sub("d"))
        #expect(manifest.complete && manifest.stopped, "\(manifest.raw)")
        let bufRegion = try #require(manifest.region(containing: buf))
        #expect(bufRegion.start == buf && bufRegion.end == buf + 65536)
        #expect(manifest.data(bufRegion, in: dir.sub("d")) == original)
        #expect(readProcMem(h.pid, buf, 65536) == original, "buf is the dump's again")
        #expect(try h.send("counter") == "12648430", "the counter too")
        #expect(isFreeRunning(h.pid))
    }

    // MARK: run

    @Test func runStartsTheProgramStoppedAndKillsItAtTheEnd() throws {
        let holder = Fixtures.path(of: .holder).path
        let script = try ScriptFile([
            "cont",
            "sleep 300ms",
            "stop",
            #"let m = search --string "VMIO-MARKER-0001" --region anon"#,
            #"expect (read $m 16 --format str) == "VMIO-MARKER-0001""#,
            "expect (read $m+0x100 8 --format u64) == 0x1122334455667788",
            "echo marker at $m",
        ])
        // The program inherits the tool's standard input; keep it open, or the holder
        // would exit at end of file before the script looks at it.
        let run = try Conversation(Tool.path, ["run", "--script", script.path, "--", holder])
        let status = run.waitExit()
        let stderr = run.stderr
        let stdout = run.remainingLines()
        #expect(status == 0, "stderr: \(stderr); stdout: \(stdout)")
        let pid = try #require(startedPid(stderr), "\(stderr)")
        #expect(stderr.contains("started \(holder) as pid \(pid), stopped at its first instruction"))
        // The holder printed its facts on the tool's standard output once it ran.
        #expect(stdout.contains("pid \(pid)") && stdout.contains("ready"), "\(stdout)")
        let bufLine = try #require(stdout.first { $0.hasPrefix("buf ") })
        let buf = try #require(UInt64(bufLine.split(separator: " ")[1].dropFirst(2), radix: 16))
        #expect(stdout.contains("marker at \(hx(buf + 0x100))"), "\(stdout)")
        #expect(waitUntil { isGone(pid) }, "the program still exists: \(procStatus(pid))")
    }

    /// SIGINT or SIGTERM to `run` kills the program it started, held at its first instruction
    /// or running, as the end of the script would; with `--detach` it is let go to run on.
    @Test(arguments: [
        (SIGINT, ["sleep 30s"], false), (SIGTERM, ["cont", "sleep 30s"], false),
        (SIGTERM, ["cont", "sleep 30s"], true),
    ])
    func aFatalSignalToRunKillsTheProgramUnlessDetached(signal: Int32, lines: [String], detach: Bool) throws {
        let script = try ScriptFile(lines)
        let tool = try Running(
            Tool.path, ["run", "--script", script.path] + (detach ? ["--detach"] : []) + ["--", "/bin/sleep", "300"])
        #expect(waitUntil(timeout: 20) { startedPid(tool.peekStderr()) != nil }, "\(tool.peekStderr())")
        let pid = try #require(startedPid(tool.peekStderr()))
        defer { kill(pid, SIGKILL) }
        if lines.first == "cont" {
            #expect(waitUntil(timeout: 20) { procStatus(pid)["State"]?.hasPrefix("S") == true }, "\(procStatus(pid))")
        }
        kill(tool.pid, signal)
        let result = tool.finish()
        #expect(result.signaled && result.status == signal, "\(result)")
        // Killed: gone, or a zombie until whoever adopted it reaps it.
        let killed = { isGone(pid) || procStatus(pid)["State"]?.hasPrefix("Z") == true }
        if detach {
            #expect(waitUntil { procStatus(pid)["TracerPid"] == "0" }, "\(procStatus(pid))")
            #expect(!killed() && procStatus(pid)["State"]?.hasPrefix("S") == true, "\(procStatus(pid))")
        } else {
            #expect(waitUntil(timeout: 10) { killed() }, "the program runs on: \(procStatus(pid))")
        }
    }

    /// `stop` in a session of this tool's own process is refused with the reason (ptrace
    /// cannot stop the caller's own threads), and `doctor self --for stop` says the same.
    @Test func stoppingItselfIsRefusedWithTheReason() throws {
        let script = try ScriptFile(["stop"])
        let session = try Tool.run("session", "self", script.path)
        #expect(session.exited(3), "\(session)")
        #expect(session.stderr.contains("this tool's own process"), "\(session)")
        #expect(!session.stderr.contains("LSM"), "\(session)")
        let doctor = try Tool.run("doctor", "self", "--for", "stop")
        #expect(doctor.exited(3), "\(doctor)")
        #expect(doctor.lines.contains { $0.hasPrefix("problem  target") && $0.contains("this tool's own process") })
        #expect(doctor.lines.last?.hasPrefix("fix: give another pid") == true, "\(doctor)")
        #expect(try Tool.run("doctor", "self", "--for", "read").exited(0), "reading itself needs no stop")
    }

    /// A program killed while `run` holds it stopped (still at its first instruction): its
    /// end, killed by SIGKILL, is reported before the next line, and `cont` then finds it gone.
    @Test func aProgramKilledWhileHeldIsReportedBeforeTheNextLine() throws {
        let script = try ScriptFile(["sleep 2s", "echo after", "cont"])
        let tool = try Running(Tool.path, ["run", "--script", script.path, "--json", "--", "/bin/sleep", "300"])
        #expect(waitUntil(timeout: 20) { !tool.peekStdout().isEmpty }, "\(tool.peekStderr())")
        let started = String(decoding: tool.peekStdout(), as: UTF8.self)
        let pidText = try #require(started.range(of: #""pid":[0-9]+"#, options: .regularExpression))
        let pid = try #require(Int32(started[pidText].dropFirst(6)))
        #expect(waitUntil(timeout: 20) { procStatus(pid)["State"]?.hasPrefix("t") == true }, "\(procStatus(pid))")
        kill(pid, SIGKILL)
        let result = tool.finish(timeout: 30)
        let lines = result.lines
        let exit = try #require(lines.firstIndex { $0.contains(#""event":"exit""#) }, "\(result)")
        let echo = try #require(lines.firstIndex { $0.contains(#""verb":"echo""#) }, "\(result)")
        #expect(exit < echo, "the end is reported before the next line: \(result)")
        #expect(lines[exit].contains(#""signal":"SIGKILL""#), "\(lines[exit])")
        #expect(!lines.contains { $0.contains(#""running":true"#) }, "cont does not say it runs: \(result)")
    }

    /// In --json every address is a "0x…" string: a scan's `--nth` candidate in `let`, and
    /// an address on either side of `expect`.
    @Test func addressesInJSONAreHexStrings() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let state = TempPath("json-addresses.scan")
        let script = try ScriptFile([
            "scan --u8 0x41 -o \(state.path) --region \(hx(buf))-\(hx(buf + 4096))",
            "let a = (scan --state \(state.path) --nth 1)", "expect $a >= \(hx(buf))", "expect 1 == 1",
        ])
        let result = try Tool.run("session", holder.pidArg, script.path, "--json")
        #expect(result.exited(0), "\(result)")
        let objects = jsonLines(result)
        let assigned = try #require(objects.first { ($0["result"] as? [String: Any])?["name"] as? String == "a" })
        let value = (assigned["result"] as? [String: Any])?["value"] as? String
        #expect(value?.hasPrefix("0x") == true, "\(assigned)")
        let expects = objects.compactMap { $0["verb"] as? String == "expect" ? $0["result"] as? [String: Any] : nil }
        #expect((expects.first?["left"] as? String)?.hasPrefix("0x") == true, "\(expects)")
        #expect(
            expects.first?["right"] is NSNumber && u64(expects.first?["right"]) == buf,
            "a number as written: \(expects)")
        #expect(expects.last?["left"] as? Int == 1, "a plain integer stays a number: \(expects)")
    }

    /// A script file that is not UTF-8 text names its first such line, as a broken line is named.
    @Test func aScriptThatIsNotUTF8NamesTheLine() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let script = TempPath("latin1.vmio")
        try Data("echo ok\n".utf8 + [0x6c, 0x65, 0x74, 0x20, 0x78, 0x20, 0x3d, 0x20, 0xff, 0xfe, 0x0a]).write(
            to: URL(fileURLWithPath: script.path))
        let result = try Tool.run("session", holder.pidArg, script.path)
        #expect(result.exited(1), "\(result)")
        #expect(result.stderrLines == ["vmio-ptrace: script \(script.path), line 2: not UTF-8 text"], "\(result)")
        #expect(result.stdout.isEmpty, "nothing ran: \(result)")
    }

    /// A name looked up after the program has ended (`[heap]`, a file, `sym:`) is a target
    /// gone, exit 4, as a plain address is.
    @Test func aNameInAProgramThatHasEndedIsTargetGone() throws {
        for address in ["[heap]", "0x1000", "sym:main"] {
            let script = try ScriptFile(["cont --wait", "read \(address) 8"])
            let result = try Tool.run(["run", "--script", script.path, "--", "/bin/true"])
            #expect(result.exited(4), "\(address): \(result)")
            #expect(
                result.stderr.contains("vmio-ptrace: line 2:") && result.stderr.contains("no such process"),
                "\(address): \(result)")
        }
    }

    /// `run --keep-going`: a failing line does not end the session; every failure is listed
    /// at the end, the status is the first failure's, and the program is still killed.
    @Test func runKeepGoingRunsEveryLine() throws {
        let holder = Fixtures.path(of: .holder).path
        let script = try ScriptFile([
            "cont",
            "sleep 300ms",
            "stop",
            "expect 1 == 2",
            "read 0x10 8",
            #"let m = search --string "VMIO-MARKER-0001" --region anon"#,
            "echo still here at $m",
        ])
        let run = try Conversation(Tool.path, ["run", "--keep-going", "--script", script.path, "--", holder])
        let status = run.waitExit()
        let stderr = run.stderr
        let stdout = run.remainingLines()
        #expect(status == 1, "stderr: \(stderr); stdout: \(stdout)")
        #expect(stdout.contains { $0.hasPrefix("still here at 0x") }, "\(stdout)")
        let failures = ["line 4:1: expectation failed: 1 == 2", "line 5:1: address 0x10 is in no mapping"]
        #expect(stderr.contains("2 of 7 commands failed:"), "\(stderr)")
        for failure in failures {
            #expect(stderr.contains("  " + failure), "\(failure) listed at the end: \(stderr)")
        }
        let pid = try #require(startedPid(stderr), "\(stderr)")
        #expect(waitUntil { isGone(pid) }, "the program still exists: \(procStatus(pid))")
        // Without --keep-going the same script ends at line 4.
        let strict = try Conversation(Tool.path, ["run", "--script", script.path, "--", holder])
        #expect(strict.waitExit() == 1)
        #expect(!strict.remainingLines().contains { $0.hasPrefix("still here") })
        let strictPid = try #require(startedPid(strict.stderr))
        #expect(waitUntil { isGone(strictPid) })
    }

    @Test func runWithoutAScriptTakesTheSessionOnStandardInput() throws {
        let run = try Conversation(Tool.path, ["run", "--json", "--", "/bin/sleep", "30"])
        // The started pid first (issue 12, bug 15), before any command.
        let started = try #require(run.nextObject())
        #expect(started["event"] as? String == "started" && started["command"] as? [String] == ["/bin/sleep", "30"])
        try run.send("maps")
        let maps = try #require(run.nextObject())
        #expect(maps["verb"] as? String == "maps" && maps["ok"] as? Bool == true)
        let mappings = try #require((maps["result"] as? [String: Any])?["mappings"] as? [[String: Any]])
        #expect(mappings.contains { ($0["path"] as? String)?.hasSuffix("sleep") == true })
        let pid = try #require((maps["result"] as? [String: Any])?["pid"] as? Int)
        #expect(started["pid"] as? Int == pid)
        // Stopped at its first instruction, traced by the tool.
        #expect(procStatus(Int32(pid))["State"]?.hasPrefix("t") == true)
        try run.send("cont")
        #expect(run.nextObject()?["ok"] as? Bool == true)
        run.closeInput()
        #expect((run.nextObject()?["summary"] as? [String: Any])?["status"] as? Int == 0)
        #expect(run.waitExit() == 0)
        #expect(waitUntil { isGone(Int32(pid)) })
    }

    /// With --detach the program runs on after the session. (Not a holder: a fixture
    /// dies with the process that started it, here the tool, through PR_SET_PDEATHSIG.)
    @Test func runWithDetachLeavesTheProgramRunning() throws {
        let script = try ScriptFile(["maps", "cont", "stop", #"expect (read sleep 4) == x"7f454c46""#])
        let run = try Conversation(
            Tool.path, ["run", "--detach", "--json", "--script", script.path, "--", "/bin/sleep", "30"])
        // The program keeps the tool's standard output open after the tool exits, so
        // take its pid from the first line (the started event) rather than waiting for end of file.
        let started = try #require(run.nextObject(), "no answer from run")
        let pid = Int32(try #require(started["pid"] as? Int, "\(started)"))
        let maps = try #require(run.nextObject(), "no answer from run")
        #expect((maps["result"] as? [String: Any])?["pid"] as? Int == Int(pid))
        defer {
            kill(pid, SIGKILL)
            waitUntil { isGone(pid) || procStatus(pid)["State"]?.hasPrefix("Z") == true }
        }
        // Foundation notices the tool's exit only once every copy of its pipes is closed,
        // and the program holds some: watch the tool become a zombie in /proc instead.
        let tool = run.process.processIdentifier
        #expect(
            waitUntil(timeout: 20) { procStatus(tool)["State"].map { $0.hasPrefix("Z") } ?? true },
            "the tool did not finish: \(procStatus(tool))")
        #expect(procStatus(pid)["Name"] == "sleep")
        #expect(isFreeRunning(pid), "\(procStatus(pid))")
        #expect(threadTracers(pid).values.allSatisfy { $0 == "0" })
        kill(pid, SIGKILL)
        #expect(run.waitExit() == 0)
    }

    // MARK: Examples/

    @Test func examplesRunAgainstAHolder() throws {
        let examples = try FileManager.default.contentsOfDirectory(atPath: examplesDirectory.path)
            .filter { $0.hasSuffix(".vmio") }.sorted()
        #expect(
            examples == ["check-values.vmio", "find-and-patch.vmio", "launch-and-inspect.vmio", "stop-copy-cont.vmio"])

        // check-values reads only; each script gets a fresh holder, as the README says.
        do {
            let h = try Fixtures.launch(.holder)
            let result = try Tool.run(
                "session", h.pidArg, examplesDirectory.appendingPathComponent("check-values.vmio").path)
            #expect(result.exited(0), "\(result)")
            #expect(result.lines == ["buf at \(hx(h.address("buf"))), counter = 0xc0ffee"])
            #expect(result.stderr.isEmpty)
            #expect(try h.get(h.address("buf") + 0x100, 16) == Array("VMIO-MARKER-0001".utf8))
            #expect(try h.get(h.address("buf") + 0x8000, 16) == initialBuf(0x8000, 16))
        }
        do {
            let h = try Fixtures.launch(.holder)
            let buf = h.address("buf")
            let result = try Tool.run(
                "session", h.pidArg, examplesDirectory.appendingPathComponent("find-and-patch.vmio").path)
            #expect(result.exited(0), "\(result)")
            #expect(
                result.lines == [
                    "marker found at \(hx(buf + 0x100))",
                    "wrote 16 bytes at \(hx(buf + 0x100)) (verified)",
                    "wrote 8 bytes at \(hx(buf + 0x200)) (verified)",
                    "patched \(hx(buf + 0x100))",
                ])
            #expect(try h.get(buf + 0x100, 16) == Array("VMIO-MARKER-0042".utf8))
            #expect(try h.get(buf + 0x200, 8) == [0x89, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        }
        do {
            let h = try Fixtures.launch(.holder)
            let buf = h.address("buf")
            let result = try Tool.run(
                "session", h.pidArg, examplesDirectory.appendingPathComponent("stop-copy-cont.vmio").path)
            #expect(result.exited(0), "\(result)")
            #expect(
                result.lines == [
                    "stopped 1 thread of pid \(h.pid)",
                    "copied 16 bytes from \(h.pid):\(hx(buf + 0x100)) to \(h.pid):\(hx(buf + 0x8000))",
                    "copied 32 bytes from \(h.pid):\(hx(buf + 0x200)) to \(h.pid):\(hx(buf + 0x8010))",
                    "pid \(h.pid) runs on",
                    "copied to \(hx(buf + 0x8000))",
                ])
            #expect(try h.get(buf + 0x8000, 0x30) == (try h.get(buf + 0x100, 16)) + (try h.get(buf + 0x200, 0x20)))
            #expect(isFreeRunning(h.pid))
        }
        do {
            let holder = Fixtures.path(of: .holder).path
            let run = try Conversation(
                Tool.path,
                [
                    "run", "--script", examplesDirectory.appendingPathComponent("launch-and-inspect.vmio").path, "--",
                    holder,
                ])
            let status = run.waitExit()
            let stderr = run.stderr, stdout = run.remainingLines()
            #expect(status == 0, "stderr: \(stderr); stdout: \(stdout)")
            #expect(stdout.contains { $0.hasPrefix("the program set up its marker at 0x") }, "\(stdout)")
            let pid = try #require(startedPid(stderr))
            #expect(waitUntil { isGone(pid) })
        }
    }
}
