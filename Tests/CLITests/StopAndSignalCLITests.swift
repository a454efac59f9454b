// --stop: the target is held stopped only while the tool works, and let go on every exit
// path (normal end, SIGINT/SIGTERM/SIGHUP/SIGQUIT, SIGPIPE, SIGKILL); a target another tracer holds is
// refused with the tracer's pid and name; an unprivileged tool is refused with the reason.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct StopAndSignalCLITests {
    @Test func readWithStopLetsTheHolderGo() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        for _ in 0..<5 {
            let result = try Tool.run("read", holder.pidArg, hx(buf + 0x100), "16", "--format", "raw", "--stop")
            #expect(result.exited(0), "\(result)")
            #expect(result.stdout.elementsEqual("VMIO-MARKER-0001".utf8))
            let status = procStatus(holder.pid)
            #expect(status["TracerPid"] == "0")
            #expect(
                status["State"].map { !$0.hasPrefix("t") && !$0.hasPrefix("T") } == true, "\(status["State"] ?? "")")
            #expect(try holder.send("ping") == "pong")
        }
        // A write and a copy with --stop leave it running too.
        let copy = try Tool.run("copy", "\(holder.pid):\(hx(buf))", "\(holder.pid):\(hx(buf + 0x8000))", "64", "--stop")
        #expect(copy.exited(0), "\(copy)")
        #expect(isFreeRunning(holder.pid))
        #expect(try holder.get(buf + 0x8000, 64) == (0..<64).map(holderPattern))
    }

    @Test func readWithStopOnAChurningThreadedProcess() throws {
        let threads = try Fixtures.launch(.threads, arguments: ["6"])
        defer { threads.terminate() }
        #expect(threads.threads.count == 7)
        #expect(try threads.send("churn") == "ok")
        for attempt in 0..<15 {
            let result = try Tool.run("read", threads.pidArg, "[stack]", "64", "--json", "--stop")
            #expect(result.exited(0), "attempt \(attempt): \(result)")
            #expect(result.json?["moved"] as? Int == 64, "attempt \(attempt): \(result)")
            // Every thread (including short-lived churners caught mid-attach) runs again.
            let tracers = threadTracers(threads.pid)
            #expect(!tracers.isEmpty)
            #expect(tracers.values.allSatisfy { $0 == "0" }, "attempt \(attempt): \(tracers)")
            let states = threadStates(threads.pid)
            #expect(!states.values.contains("t"), "attempt \(attempt): \(states)")
        }
        // Proof that --stop does stop the churning process (a read needs no stop, so its bytes
        // prove nothing): a read that blocks writing its output holds every thread, seen
        // stopped and traced by the tool, churners included; then it finishes and lets go.
        // A worker's stack (the mapping holding the stack pointer it blocks with, from
        // /proc/PID/task/TID/syscall): it stays mapped, unlike a churner's.
        let workerTid = try #require(threads.threads.first { $0.name == "worker-1" }?.tid)
        let syscall = try #require(readProcFile("/proc/\(threads.pid)/task/\(workerTid)/syscall"))
        let fields = syscall.split(separator: " ")
        let sp = try #require(
            fields.count >= 2 ? UInt64(fields[fields.count - 2].dropFirst(2), radix: 16) : nil, "\(syscall)")
        let worker = try #require(procMapsLines(threads.pid).first { $0.contains(sp) }, "worker-1's stack")
        let length = min(worker.end - worker.start, 4 << 20)
        for attempt in 0..<3 {
            let pipe = Pipe()
            let running = try Running(
                Tool.path, ["read", threads.pidArg, hx(worker.start), String(length), "--format", "raw", "--stop"],
                stdout: pipe.fileHandleForWriting)
            try? pipe.fileHandleForWriting.close()
            let tool = String(running.pid)
            let held = waitUntil(timeout: 20) {
                let states = threadStates(threads.pid), tracers = threadTracers(threads.pid)
                return !states.isEmpty && states.values.allSatisfy { $0 == "t" }
                    && tracers.values.allSatisfy { $0 == tool }
            }
            #expect(
                held,
                "attempt \(attempt): not every thread held: \(threadStates(threads.pid)) \(threadTracers(threads.pid))")
            let drained = DrainThread(fd: pipe.fileHandleForReading.fileDescriptor)
            let result = running.finish(timeout: 60)
            #expect(result.exited(0), "attempt \(attempt): \(result)")
            #expect(UInt64(drained.result(timeout: 10).count) == length)
            #expect(waitUntil { isFreeRunning(threads.pid) }, "attempt \(attempt): \(threadStates(threads.pid))")
        }
        #expect(try threads.send("ping") == "pong")
        let spawned = try threads.send("spawn")
        #expect(spawned.hasPrefix("thread ") && spawned.hasSuffix(" worker-7"), "\(spawned)")
    }

    /// Starts a `read --stop` of a 64 MiB exiter whose output goes into a pipe nobody reads,
    /// so the tool blocks in write(2) while it holds the target stopped. Returns once every
    /// thread of the target is in a tracing stop, traced by the tool.
    private func blockedStoppedRead(_ exiter: FixtureProcess) throws -> (Running, Pipe) {
        let pipe = Pipe()
        let running = try Running(
            Tool.path, ["read", exiter.pidArg, hx(exiter.address("buf")), "64M", "--format", "raw", "--stop"],
            stdout: pipe.fileHandleForWriting)
        try? pipe.fileHandleForWriting.close()
        let stopped = waitUntil(timeout: 10) {
            let status = procStatus(exiter.pid)
            return status["TracerPid"] == String(running.pid) && status["State"]?.hasPrefix("t") == true
        }
        #expect(stopped, "target: \(procStatus(exiter.pid)["State"] ?? "?")")
        // Held while blocked: give it a moment and look again, thread by thread.
        usleep(100_000)
        #expect(running.isRunning)
        #expect(threadStates(exiter.pid).values.allSatisfy { $0 == "t" }, "\(threadStates(exiter.pid))")
        #expect(threadTracers(exiter.pid).values.allSatisfy { $0 == String(running.pid) })
        return (running, pipe)
    }

    @Test(arguments: [SIGINT, SIGTERM, SIGHUP, SIGQUIT])
    func aSignalToTheToolLetsTheTargetGo(signal: Int32) throws {
        let exiter = try Fixtures.launch(.exiter, arguments: ["64"])
        defer { exiter.terminate() }
        let (running, pipe) = try blockedStoppedRead(exiter)
        defer { try? pipe.fileHandleForReading.close() }
        #expect(kill(running.pid, signal) == 0)
        let result = running.finish(timeout: 10)
        #expect(result.signaled && result.status == signal, "the tool dies of the signal: \(result)")
        #expect(waitUntil(timeout: 5) { isFreeRunning(exiter.pid) }, "\(procStatus(exiter.pid))")
        #expect(procStatus(exiter.pid)["TracerPid"] == "0")
        #expect(!threadStates(exiter.pid).values.contains("t"))
        #expect(try exiter.send("ping") == "pong")
    }

    /// `read -o` and `scan -o` interrupted while they write: their temporary file (the
    /// output's `.NAME.PID.part`) is removed by the signal handlers, as a dump's files are;
    /// nothing is left, not even the name asked for.
    @Test(arguments: [(SIGINT, "read"), (SIGTERM, "read"), (SIGINT, "scan"), (SIGHUP, "scan")])
    func anInterruptedOutputFileIsRemoved(signal: Int32, verb: String) throws {
        let exiter = try Fixtures.launch(.exiter, arguments: ["1024"])
        defer { exiter.terminate() }
        let dir = TempDir()
        let buf = exiter.address("buf"), size = exiter.number("buf")
        let arguments =
            verb == "read"
            ? ["read", exiter.pidArg, hx(buf), String(size), "--format", "raw", "-o", dir.sub("out")]
            : [
                "scan", exiter.pidArg, "--snapshot", "u64", "-o", dir.sub("out"), "--region",
                "\(hx(buf))-\(hx(buf + size))",
            ]
        let tool = try Running(Tool.path, arguments)
        // Under way: the temporary file has begun to grow.
        let underWay = waitUntil(timeout: 60) {
            dir.entries().contains { $0.hasSuffix(".part") && (fileSize(dir.sub($0)) ?? 0) > 0 }
        }
        kill(tool.pid, signal)
        let result = tool.finish(timeout: 60)
        try #require(underWay, "the output never began to grow: \(dir.entries()), \(result)")
        try #require(!result.exited(0), "the \(verb) finished before the signal: nothing interrupted")
        #expect(result.signaled && result.status == signal, "\(result)")
        #expect(dir.entries().isEmpty, "left behind: \(dir.entries())")
        #expect(waitUntil { isFreeRunning(exiter.pid) }, "\(procStatus(exiter.pid))")
    }

    @Test func sigkillOfTheToolLetsTheTargetGo() throws {
        let exiter = try Fixtures.launch(.exiter, arguments: ["64"])
        defer { exiter.terminate() }
        let (running, pipe) = try blockedStoppedRead(exiter)
        defer { try? pipe.fileHandleForReading.close() }
        #expect(kill(running.pid, SIGKILL) == 0)
        let result = running.finish(timeout: 10)
        #expect(result.signaled && result.status == SIGKILL)
        #expect(waitUntil(timeout: 5) { isFreeRunning(exiter.pid) }, "\(procStatus(exiter.pid))")
        #expect(try exiter.send("ping") == "pong")
    }

    @Test func closingTheReadersPipeEndsTheToolAndLetsTheTargetGo() throws {
        // `vmio-ptrace read … --stop | head -c 100`: the reader goes away, the next write
        // raises SIGPIPE.
        let exiter = try Fixtures.launch(.exiter, arguments: ["64"])
        defer { exiter.terminate() }
        let (running, pipe) = try blockedStoppedRead(exiter)
        try pipe.fileHandleForReading.close()
        let result = running.finish(timeout: 10)
        #expect(result.signaled && result.status == SIGPIPE, "\(result)")
        #expect(waitUntil(timeout: 5) { isFreeRunning(exiter.pid) }, "\(procStatus(exiter.pid))")
        #expect(try exiter.send("ping") == "pong")
    }

    @Test func signalsBlockedByTheParentStillLetTheTargetGo() throws {
        // A tool started from a thread that blocks SIGINT/SIGTERM/SIGHUP (any libdispatch
        // worker thread does: e.g. Foundation's Process called from Swift concurrency) inherits
        // the mask. Its handlers only run because it unblocks them.
        let exiter = try Fixtures.launch(.exiter, arguments: ["64"])
        defer { exiter.terminate() }
        let pipe = Pipe()
        defer { try? pipe.fileHandleForReading.close() }
        let running = try Running(
            Tool.path, ["read", exiter.pidArg, hx(exiter.address("buf")), "64M", "--format", "raw", "--stop"],
            stdout: pipe.fileHandleForWriting, blocking: [SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        try? pipe.fileHandleForWriting.close()
        #expect(waitUntil(timeout: 10) { procStatus(exiter.pid)["TracerPid"] == String(running.pid) })
        #expect(kill(running.pid, SIGTERM) == 0)
        let ended = waitUntil(timeout: 5) { !running.isRunning }
        #expect(ended, "the tool ends on SIGTERM even though it started with SIGTERM blocked")
        if !ended { kill(running.pid, SIGKILL) }
        let result = running.finish(timeout: 10)
        #expect(result.signaled && result.status == SIGTERM, "\(result)")
        #expect(waitUntil(timeout: 5) { isFreeRunning(exiter.pid) }, "\(procStatus(exiter.pid))")
        #expect(try exiter.send("ping") == "pong")
    }

    @Test func aTargetHeldByAnotherTracer() throws {
        let strace = "/usr/bin/strace"
        try #require(
            FileManager.default.isExecutableFile(atPath: strace), "strace is needed (apt-get install -y strace)")
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let tracer = try Running(strace, ["-f", "-p", holder.pidArg, "-o", "/dev/null"])
        defer {
            kill(tracer.pid, SIGTERM)
            _ = tracer.finish(timeout: 10)
        }
        try #require(
            waitUntil(timeout: 10) { procStatus(holder.pid)["TracerPid"] == String(tracer.pid) },
            "strace attached: \(procStatus(holder.pid)["TracerPid"] ?? "?")")

        let refused = try Tool.run("read", holder.pidArg, hx(buf), "16", "--stop")
        #expect(refused.exited(3), "\(refused)")
        #expect(refused.stderrLines.count == 1)
        #expect(refused.stderr.contains("pid \(tracer.pid)"), "names the tracer pid: \(refused.stderr)")
        #expect(refused.stderr.contains("strace"), "names the tracer: \(refused.stderr)")
        #expect(refused.stdout.isEmpty)
        let copy = try Tool.run("copy", "\(holder.pid):\(hx(buf))", "\(holder.pid):\(hx(buf + 0x8000))", "16", "--stop")
        #expect(copy.exited(3), "\(copy)")
        #expect(try holder.get(buf + 0x8000, 16) == (0x8000..<0x8010).map(holderPattern), "nothing copied")

        // Without --stop, process_vm_readv needs no attach: it still works.
        let plain = try Tool.run("read", holder.pidArg, hx(buf + 0x100), "16", "--format", "raw")
        #expect(plain.exited(0), "\(plain)")
        #expect(plain.stdout.elementsEqual("VMIO-MARKER-0001".utf8))
        #expect(procStatus(holder.pid)["TracerPid"] == String(tracer.pid), "strace still holds it")

        kill(tracer.pid, SIGTERM)
        _ = tracer.finish(timeout: 10)
        #expect(waitUntil(timeout: 5) { procStatus(holder.pid)["TracerPid"] == "0" })
        let after = try Tool.run("read", holder.pidArg, hx(buf + 0x100), "16", "--format", "raw", "--stop")
        #expect(after.exited(0), "\(after)")
        #expect(try holder.send("ping") == "pong")
    }

    @Test func anUnprivilegedToolIsRefusedWithTheReason() throws {
        let setpriv = "/usr/bin/setpriv"
        try #require(FileManager.default.isExecutableFile(atPath: setpriv))
        try #require(getuid() == 0, "needs root to drop to uid 65534")
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", Tool.path]
        // The tool itself is reachable by uid 65534.
        let version = try Tool.runProgram(drop[0], Array(drop.dropFirst()) + ["--version"])
        try #require(version.exited(0), "the tool must be executable by uid 65534: \(version)")

        for arguments in [
            ["read", holder.pidArg, hx(buf), "16"], ["read", holder.pidArg, hx(buf), "16", "--stop"],
            ["maps", holder.pidArg], ["write", holder.pidArg, hx(buf), "--hex", "00"],
            ["copy", "\(holder.pid):\(hx(buf))", "\(holder.pid):\(hx(buf + 16))", "16"],
        ] {
            let result = try Tool.runProgram(drop[0], Array(drop.dropFirst()) + arguments)
            #expect(result.exited(3), "\(arguments): \(result)")
            #expect(result.stderrLines.count == 1, "\(result.stderr)")
            // Why: not privileged (no CAP_SYS_PTRACE, another uid), with both uids named.
            #expect(
                result.stderr.contains("not privileged") || result.stderr.contains("without CAP_SYS_PTRACE"),
                "\(result.stderr)")
            #expect(result.stderr.contains("uid 65534") && result.stderr.contains("uid 0"), "\(result.stderr)")
        }
        #expect(try holder.get(buf, 32) == (0..<32).map(holderPattern), "nothing changed")
        #expect(isFreeRunning(holder.pid))
    }
}
