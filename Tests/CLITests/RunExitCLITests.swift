// Issue 12, bug 15: `run` reports how the program it started ended — its exit status or
// the signal that killed it — as an event, once, whatever the session was doing; `cont
// --wait` lets the program run until it ends; with --json the started pid comes first.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct RunExitCLITests {
    @Test func contWaitReportsTheExitStatus() throws {
        let script = try SessionScript(["cont --wait", "echo after"])
        let result = try Tool.run("run", "--script", script.path, "--", "/bin/sh", "-c", "exit 7")
        #expect(result.exited(0), "\(result)")
        let pid = try #require(runStartedPid(result.stderr), "\(result)")
        #expect(result.lines == ["pid \(pid) exited with status 7", "after"], "\(result)")
        #expect(!result.stderr.contains("no such process"), "\(result)")
    }

    @Test func contWaitReportsTheKillingSignal() throws {
        let script = try SessionScript(["cont --wait"])
        let result = try Tool.run("run", "--script", script.path, "--", "/bin/sh", "-c", "kill -SEGV $$")
        #expect(result.exited(0), "\(result)")
        let pid = try #require(runStartedPid(result.stderr), "\(result)")
        #expect(result.lines == ["pid \(pid) was killed by SIGSEGV"], "\(result)")
    }

    @Test func jsonPrintsTheStartedPidFirstAndTheExitAsAnEvent() throws {
        let script = try SessionScript(["cont --wait"])
        let result = try Tool.run("run", "--json", "--script", script.path, "--", "/bin/sh", "-c", "exit 7")
        #expect(result.exited(0), "\(result)")
        let objects = jsonLines(result)
        #expect(objects.count == result.lines.count, "every line is a JSON object: \(result)")
        let started = try #require(objects.first)
        #expect(started["event"] as? String == "started", "\(result)")
        let pid = try #require(started["pid"] as? Int, "\(result)")
        #expect(started["command"] as? [String] == ["/bin/sh", "-c", "exit 7"])
        let exits = objects.filter { $0["event"] as? String == "exit" }
        #expect(exits.count == 1, "one exit event: \(result)")
        #expect(exits.first?["pid"] as? Int == pid && exits.first?["status"] as? Int == 7, "\(result)")
        #expect(exits.first?["signal"] is NSNull, "\(result)")
        let cont = try #require(objects.first { $0["verb"] as? String == "cont" }, "\(result)")
        #expect(cont["ok"] as? Bool == true)
        #expect((objects.last?["summary"] as? [String: Any])?["status"] as? Int == 0, "\(result)")

        let killed = try Tool.run("run", "--json", "--script", script.path, "--", "/bin/sh", "-c", "kill -KILL $$")
        let event = try #require(jsonLines(killed).first { $0["event"] as? String == "exit" }, "\(killed)")
        #expect(event["signal"] as? String == "SIGKILL" && event["status"] is NSNull, "\(killed)")
    }

    /// A broken line in the script starts nothing: the parse errors and the summary, no
    /// "started" event, bad input's exit status.
    @Test func aBrokenScriptStartsNothing() throws {
        let script = try SessionScript(["echo fine", "frob", "read"])
        let result = try Tool.run("run", "--json", "--script", script.path, "--", "/bin/sh", "-c", "exit 7")
        #expect(result.exited(1), "\(result)")
        let objects = jsonLines(result)
        #expect(objects.count == 3 && objects.count == result.lines.count, "\(result)")
        #expect(!objects.contains { $0["event"] != nil }, "nothing started: \(result)")
        #expect(objects.prefix(2).map { $0["line"] as? Int } == [2, 3], "\(result)")
        #expect(objects.prefix(2).allSatisfy { $0["verb"] as? String == "parse" && $0["ok"] as? Bool == false })
        let summary = try #require(objects.last?["summary"] as? [String: Any], "\(result)")
        #expect(summary["commands"] as? Int == 0 && summary["status"] as? Int == 1, "\(result)")
        #expect((summary["failures"] as? [Any])?.count == 2, "\(result)")

        let plain = try Tool.run("run", "--script", script.path, "--", "/bin/sh", "-c", "exit 7")
        #expect(plain.exited(1), "\(plain)")
        #expect(plain.stdout.isEmpty && runStartedPid(plain.stderr) == nil, "\(plain)")
        #expect(plain.stderrLines.count == 2 && plain.stderr.contains("vmio-ptrace: line 2:1: unknown command 'frob'"))
    }

    /// The program exits while the session does something else: the exit is reported
    /// before the next command, and the command that finds it gone says so.
    @Test func anExitBetweenCommandsIsReported() throws {
        let script = try SessionScript(["cont", "sleep 500ms", "regs"])
        let result = try Tool.run("run", "--script", script.path, "--", "/bin/sh", "-c", "exit 7")
        #expect(result.exited(4), "\(result)")
        let pid = try #require(runStartedPid(result.stderr), "\(result)")
        #expect(result.lines.contains("pid \(pid) exited with status 7"), "\(result)")
        #expect(result.stderr.contains("line 3:1"), "the failure names its line: \(result)")
    }

    /// A program that is still running at the end of the session is killed, as before;
    /// the kill is not reported as the program's own exit.
    @Test func aProgramKilledAtTheEndIsNotAnExitEvent() throws {
        let script = try SessionScript(["cont"])
        let result = try Tool.run("run", "--json", "--script", script.path, "--", "/bin/sleep", "30")
        #expect(result.exited(0), "\(result)")
        #expect(!jsonLines(result).contains { $0["event"] as? String == "exit" }, "\(result)")
        let pid = try #require(jsonLines(result).first?["pid"] as? Int)
        #expect(waitUntil { procStatus(Int32(pid)).isEmpty })
    }

    /// In a session on a process that is not the tool's child, `cont --wait` waits until it
    /// is gone; its exit status belongs to its parent, so only the exit is reported.
    @Test func contWaitInASessionWaitsForTheProcessToEnd() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let script = try SessionScript(["echo waiting", "cont --wait"])
        let running = try Conversation(Tool.path, ["session", holder.pidArg, script.path])
        // The session has its target once it answers (a loaded machine starts the tool slowly).
        #expect(running.nextLine(timeout: 30) == "waiting")
        usleep(300_000)
        #expect(running.isRunning, "cont --wait returned while the holder runs")
        try holder.write("quit")
        #expect(running.waitExit(timeout: 20) == 0, "\(running.stderr)")
        #expect(running.remainingLines() == ["pid \(holder.pid) exited"], "\(running.stderr)")
    }
}
