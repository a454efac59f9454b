// The run-state guarantee: the state a target had before the attach (running, or
// job-stopped by `kill -STOP`) is what it has afterwards, on a normal end and when the
// tool dies of SIGINT; and bounded waits: a thread that will not stop (a parent blocked
// in vfork, in D, while its child sleeps) is named with its state, reads go on without
// stopping, and whatever needs the stop fails with every thread let go.
//
// No test here waits for a deadline to pass: the vfork child sleeps for minutes and is
// killed when the test wants its parent back, and sessions are driven line by line.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The state letter of `pid` (`R`, `S`, `T`, `t`, `D`…), or "" when it is gone.
func stateLetter(_ pid: Int32) -> String { String(procStatus(pid)["State"]?.prefix(1) ?? "") }

/// A script file for `session` (RunState tests), removed at deinit.
private final class StateScript {
    let path: TempPath
    init(_ text: String) throws {
        path = TempPath("script.vmio")
        try text.write(toFile: path.path, atomically: true, encoding: .utf8)
    }
}

@Suite(.serialized) struct RunStateCLITests {
    /// Runs `session PID` on a script that stops the target and then sleeps, waits until the
    /// tool holds every thread, sends `signal` to the tool, and returns what it did.
    private func sessionKilled(holding pid: Int32, by signal: Int32) throws -> RunResult {
        let script = try StateScript("stop\nsleep 30s\n")
        let running = try Running(Tool.path, ["session", String(pid), script.path.path])
        let held = waitUntil(timeout: 10) {
            procStatus(pid)["TracerPid"] == String(running.pid) && stateLetter(pid) == "t"
        }
        #expect(held, "target state \(procStatus(pid)["State"] ?? "?")")
        kill(running.pid, signal)
        return running.finish(timeout: 20)
    }

    @Test func aRunningTargetRunsAgainAfterSIGINT() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let result = try sessionKilled(holding: holder.pid, by: SIGINT)
        #expect(result.signaled && result.status == SIGINT, "\(result)")
        #expect(waitUntil { isFreeRunning(holder.pid) }, "\(procStatus(holder.pid))")
        #expect(try holder.send("ping") == "pong")
    }

    @Test func aJobStoppedTargetStaysStoppedAfterSIGINT() throws {
        let holder = try Fixtures.launch(.holder)
        defer {
            kill(holder.pid, SIGCONT)
            holder.terminate()
        }
        kill(holder.pid, SIGSTOP)
        try #require(waitUntil { stateLetter(holder.pid) == "T" })
        let result = try sessionKilled(holding: holder.pid, by: SIGINT)
        #expect(result.signaled && result.status == SIGINT, "\(result)")
        #expect(waitUntil { procStatus(holder.pid)["TracerPid"] == "0" })
        // Still stopped, as before: it does not answer until SIGCONT.
        usleep(200_000)
        #expect(stateLetter(holder.pid) == "T", "\(procStatus(holder.pid))")
        try holder.write("ping")
        #expect(throws: FixtureError.self) { try holder.readLine(timeout: 0.3) }
        kill(holder.pid, SIGCONT)
        #expect(try holder.readLine() == "pong")
        #expect(isFreeRunning(holder.pid))
    }

    @Test func aJobStoppedTargetStaysStoppedAfterEveryCommand() throws {
        let holder = try Fixtures.launch(.holder)
        defer {
            kill(holder.pid, SIGCONT)
            holder.terminate()
        }
        kill(holder.pid, SIGSTOP)
        try #require(waitUntil { stateLetter(holder.pid) == "T" })
        let buf = holder.address("buf")
        let dir = TempPath("dump")
        defer { _ = try? FileManager.default.removeItem(atPath: dir.path) }
        let commands: [[String]] = [
            ["read", holder.pidArg, hx(buf + 0x100), "16", "--stop"],
            ["copy", "\(holder.pid):\(hx(buf))", "\(holder.pid):\(hx(buf + 0x8000))", "64", "--stop"],
            ["search", holder.pidArg, "--string", "VMIO-MARKER-0001", "--stop"],
            ["dump", holder.pidArg, "--region", "\(hx(buf))-\(hx(buf + 0x1000))", "-o", dir.path, "--stop"],
            ["restore", holder.pidArg, dir.path, "--stop"],
            ["regs", holder.pidArg],
        ]
        for command in commands {
            let result = try Tool.run(command)
            #expect(result.exited(0), "\(command): \(result)")
            #expect(!result.stderr.contains("could not be restored"), "\(command): \(result.stderr)")
            #expect(procStatus(holder.pid)["TracerPid"] == "0")
            #expect(stateLetter(holder.pid) == "T", "\(command): \(procStatus(holder.pid))")
        }
        let script = try StateScript("stop\nread \(hx(buf + 0x100)) 16\ncont\nstop\ncont\n")
        #expect(try Tool.run("session", holder.pidArg, script.path.path).exited(0))
        #expect(stateLetter(holder.pid) == "T")
        kill(holder.pid, SIGCONT)
        #expect(try holder.send("ping") == "pong")
    }

    @Test func aRunningTargetRunsAfterEveryCommand() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        for command in [
            ["read", holder.pidArg, hx(buf), "16", "--stop"], ["regs", holder.pidArg],
            ["search", holder.pidArg, "--string", "VMIO-MARKER-0001", "--stop"],
        ] {
            let result = try Tool.run(command)
            #expect(result.exited(0), "\(command): \(result)")
            #expect(isFreeRunning(holder.pid), "\(command): \(procStatus(holder.pid))")
        }
        #expect(try holder.send("ping") == "pong")
    }

    @Test func aStateThatCannotBeRestoredIsSaid() throws {
        // The target runs; while the session holds it, someone sends it SIGSTOP. When the
        // session lets it go it is job-stopped (rightly: the signal was for it), and the
        // tool says it could not be brought back to running. Driven line by line, so the
        // signal surely comes while the target is held.
        let holder = try Fixtures.launch(.holder)
        defer {
            kill(holder.pid, SIGCONT)
            holder.terminate()
        }
        let session = try Conversation(Tool.path, ["session", holder.pidArg, "-", "--json"])
        try session.send("stop")
        #expect(session.nextObject(timeout: 30)?["ok"] as? Bool == true)
        #expect(procStatus(holder.pid)["TracerPid"] == String(session.process.processIdentifier))
        kill(holder.pid, SIGSTOP)
        try session.send("cont")
        #expect(session.nextObject(timeout: 30)?["ok"] as? Bool == true)
        session.closeInput()
        #expect((session.nextObject(timeout: 30)?["summary"] as? [String: Any])?["status"] as? Int == 0)
        #expect(session.waitExit() == 0)
        #expect(
            session.stderr.contains(
                "vmio-ptrace: warning: pid \(holder.pid) was running (S (sleeping)) before the attach but is job-stopped (T (stopped)) now; it could not be restored"
            ), "\(session.stderr)")
        #expect(stateLetter(holder.pid) == "T")
    }

    // MARK: bounded waits

    /// Puts the states fixture's main thread into D: it vforks, and the child sleeps `ms`
    /// (long: a test kills the child, whose pid this returns, when it wants the parent back).
    private func blockInVfork(_ states: FixtureProcess, ms: Int = 120_000) throws -> Int32 {
        let reply = try states.send("vfork \(ms)")
        let child = try #require(Int32(reply.split(separator: " ").last ?? ""), "\(reply)")
        try #require(waitUntil { stateLetter(states.pid) == "D" }, "\(procStatus(states.pid))")
        return child
    }

    @Test func aThreadInUninterruptibleSleepTimesOutAndIsNamed() throws {
        let states = try Fixtures.launch(.states)
        defer { states.terminate() }
        // A dump to restore (read-only pages: a restore would write nothing even if it ran).
        let dir = TempPath("vdso-dump")
        defer { _ = try? FileManager.default.removeItem(atPath: dir.path) }
        #expect(try Tool.run("dump", states.pidArg, "--region", "[vdso]", "-o", dir.path).exited(0))
        let child = try blockInVfork(states)
        defer { kill(child, SIGKILL) }
        let started = Date()

        // A read does not need the stop: it goes on, with one warning line.
        let read = try Tool.run("read", states.pidArg, "[stack]", "16", "--stop", "--attach-timeout", "0.5", "--json")
        #expect(read.exited(0), "\(read)")
        #expect(read.json?["moved"] as? Int == 16)
        #expect(
            read.stderr
                == "vmio-ptrace: warning: thread \(states.pid) of pid \(states.pid) did not stop within the attach timeout (state D (disk sleep)); reading without stopping\n",
            "\(read.stderr)")
        let search = try Tool.run(
            "search", states.pidArg, "--string", "no such bytes here", "--region", "[stack]", "--stop",
            "--attach-timeout", "0.5")
        #expect(search.exited(0), "\(search)")
        #expect(
            search.stderr.contains(
                "did not stop within the attach timeout (state D (disk sleep)); reading without stopping"),
            "\(search.stderr)")
        // A dump too: the whole dump, not stopped, and its manifest says so.
        let stack = try #require(procMapsLines(states.pid).first { $0.path == "[stack]" })
        let dumped = try Tool.run(
            "dump", states.pidArg, "--region", "[stack]", "--stop", "--attach-timeout", "0.5", "-o", dir.path + "-s",
            "--json")
        defer { _ = try? FileManager.default.removeItem(atPath: dir.path + "-s") }
        #expect(dumped.exited(0), "\(dumped)")
        #expect(
            dumped.stderrLines == [
                "vmio-ptrace: warning: thread \(states.pid) of pid \(states.pid) did not stop within the attach timeout (state D (disk sleep)); reading without stopping"
            ], "\(dumped.stderr)")
        #expect(dumped.json?["stopped"] as? Bool == false && dumped.json?["complete"] as? Bool == true, "\(dumped)")
        let manifest = try DumpManifestFile(dir.path + "-s")
        #expect(!manifest.stopped && manifest.complete)
        #expect(manifest.regions.map(\.start) == [stack.start] && manifest.regions.map(\.end) == [stack.end])

        // What needs the stop fails cleanly (status 1), naming the thread and its state.
        for command in [
            ["regs", states.pidArg, "--attach-timeout", "0.5"],
            ["backtrace", states.pidArg, "--attach-timeout", "0.5"],
            ["backtrace", states.pidArg, "--snapshot", "--attach-timeout", "0.5"],
            ["restore", states.pidArg, dir.path, "--stop", "--attach-timeout", "0.5"],
            ["copy", "\(states.pid):[stack]", "\(states.pid):[stack]", "8", "--stop", "--attach-timeout", "0.5"],
        ] {
            let result = try Tool.run(command)
            #expect(result.exited(1), "\(command): \(result)")
            #expect(
                result.stderr.contains(
                    "thread \(states.pid) of pid \(states.pid) did not stop in time (state D (disk sleep)); every thread was let go as it was"
                ), "\(command): \(result.stderr)")
        }
        let stopScript = try StateScript("stop\n")
        let session = try Tool.run("session", states.pidArg, "--attach-timeout", "0.3", stopScript.path.path)
        #expect(session.exited(1), "\(session)")
        #expect(session.stderr.contains("did not stop in time (state D (disk sleep))"), "\(session.stderr)")
        // Nine bounded waits of at most half a second: far less than the two minutes the
        // vfork child would sleep (a wait that ignored the timeout would hang until then).
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed < 60, "each wait is bounded by --attach-timeout: \(elapsed) s")
        #expect(stateLetter(states.pid) == "D", "the child was still there throughout")

        // Nobody holds it, and once the child leaves it runs on — not stopped by a late trap.
        #expect(procStatus(states.pid)["TracerPid"] == "0")
        kill(child, SIGKILL)
        #expect(try states.readLine(timeout: 10) == "vfork done")
        #expect(waitUntil { isFreeRunning(states.pid) }, "\(procStatus(states.pid))")
        #expect(try states.send("ping") == "pong")
    }

    @Test func aThreadThatStopsLateIsLetGoWhileTheToolRunsOn() throws {
        // The attach times out (the parent is in D); then the vfork child is killed, so the
        // parent's pending stop lands while the tool still runs. `cont` lets it go then,
        // long before the tool exits. Driven line by line: no timing involved.
        let states = try Fixtures.launch(.states)
        defer { states.terminate() }
        let child = try blockInVfork(states)
        defer { kill(child, SIGKILL) }
        let session = try Conversation(
            Tool.path, ["session", states.pidArg, "-", "--json", "--keep-going", "--attach-timeout", "0.2"])
        let tool = String(session.process.processIdentifier)
        try session.send("stop")
        let failed = try #require(session.nextObject(timeout: 30), "no answer to stop")
        #expect(failed["ok"] as? Bool == false && failed["status"] as? Int == 1, "\(failed)")
        #expect((failed["error"] as? String)?.contains("did not stop in time (state D (disk sleep))") == true)
        // The late stop: the child leaves, and the parent traps into a ptrace stop of the tool …
        kill(child, SIGKILL)
        #expect(
            waitUntil(timeout: 10) { procStatus(states.pid)["TracerPid"] == tool && stateLetter(states.pid) == "t" },
            "\(procStatus(states.pid))")
        // … and is let go at `cont`, while the tool runs on.
        try session.send("cont")
        #expect(session.nextObject(timeout: 30)?["ok"] as? Bool == true)
        #expect(waitUntil(timeout: 10) { isFreeRunning(states.pid) }, "\(procStatus(states.pid))")
        #expect(session.isRunning)
        #expect(try states.readLine(timeout: 10) == "vfork done")
        session.closeInput()
        #expect((session.nextObject(timeout: 30)?["summary"] as? [String: Any])?["status"] as? Int == 1)
        #expect(session.waitExit() == 1)  // the failed `stop`, with --keep-going

        // A parent whose vfork child leaves while the tool waits for its stop simply stops in time.
        let second = try blockInVfork(states)
        defer { kill(second, SIGKILL) }
        let late = try Running(Tool.path, ["read", states.pidArg, "[stack]", "8", "--stop", "--attach-timeout", "60"])
        // Attached (seized), waiting for the stop that the D state holds back …
        #expect(
            waitUntil(timeout: 20) { procStatus(states.pid)["TracerPid"] == String(late.pid) },
            "\(procStatus(states.pid))")
        #expect(stateLetter(states.pid) == "D" && late.isRunning)
        kill(second, SIGKILL)  // … which comes once the child leaves.
        let result = late.finish(timeout: 60)
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        #expect(try states.readLine(timeout: 10) == "vfork done")
        #expect(waitUntil { isFreeRunning(states.pid) })
    }

    @Test func attachTimeoutIsValidated() throws {
        let zero = try Tool.run("read", "self", "[stack]", "8", "--attach-timeout", "0")
        #expect(zero.exited(64), "\(zero)")
        #expect(zero.stderr.contains("--attach-timeout"))
        for command in ["read", "copy", "dump", "restore", "search", "session", "run", "regs", "backtrace"] {
            let help = try Tool.run(command, "--help")
            #expect(help.stdoutText.contains("--attach-timeout"), "\(command)")
        }
    }
}
