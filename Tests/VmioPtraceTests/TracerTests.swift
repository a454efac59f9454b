// Tracer on real processes: attach stops every thread, detach (explicit or from deinit)
// lets them all run, and a process another tracer holds is refused naming that tracer.
//
// ptrace stops are reported through waitpid to the tracer. Here the test process is both the
// fixture's parent (Foundation's Process) and its tracer; checked: Foundation waits for its
// child only once the child's end of an internal socket closes (at exit), so it never takes
// a ptrace stop away from the Tracer (100 attach/detach rounds on a Fixtures.launch child,
// no timeout).

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Starts `path` with stdin/stdout/stderr on /dev/null, an empty signal mask and default
/// actions. (Foundation's Process would hand it the blocked mask of this libdispatch thread:
/// strace started that way ignores the SIGTERM that should make it detach.)
private func spawnClean(_ path: String, _ arguments: [String]) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for fd: Int32 in [0, 1, 2] {
        posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
    }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t(), all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, path, &actions, &attributes, &argv, environ)
    guard rc == 0 else { throw POSIXError(.init(rawValue: rc) ?? .EIO) }
    return pid
}

/// SIGTERM, then waits (bounded) for the child to be reaped; SIGKILL if it lingers.
private func stopChild(_ pid: pid_t) {
    kill(pid, SIGTERM)
    var status: Int32 = 0
    for _ in 0..<1000 {
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid || r < 0 { return }
        usleep(5_000)
    }
    kill(pid, SIGKILL)
    waitpid(pid, &status, 0)
}

/// Ignores SIGPIPE, then has the library install its one-time detach handlers (a Tracer of a
/// pid that cannot exist installs them, then fails). Its SIGPIPE handler re-raises with the
/// default action, which would kill the test process on any write to a closed pipe; the
/// library leaves an ignored signal alone, and the handlers are installed once per process.
func settleSignalHandlers() {
    _ = signal(SIGPIPE, SIG_IGN)
    _ = try? Tracer(pid: Int32.max)
    _ = signal(SIGPIPE, SIG_IGN)  // in case this library version replaces it anyway
}

/// The calling thread's id, from the /proc/thread-self link ("PID/task/TID").
private func currentTID() -> Int32 {
    let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
    return target.split(separator: "/").last.flatMap { Int32($0) } ?? getpid()
}

/// The stat state letter of each thread of `pid`.
private func states(_ pid: Int32) -> [Int32: String] {
    var out: [Int32: String] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
        guard let tid = Int32(name), let stat = readProcFile("/proc/\(pid)/task/\(tid)/stat"),
            let close = stat.lastIndex(of: ")")
        else { continue }
        out[tid] = stat[stat.index(close, offsetBy: 2)...].split(separator: " ").first.map(String.init)
    }
    return out
}

/// The TracerPid of each thread of `pid`.
private func tracers(_ pid: Int32) -> [Int32: String] {
    var out: [Int32: String] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? [] {
        guard let tid = Int32(name), let text = readProcFile("/proc/\(pid)/task/\(tid)/status") else { continue }
        for line in text.split(separator: "\n") where line.hasPrefix("TracerPid:") {
            out[tid] = line.dropFirst(10).trimmingCharacters(in: .whitespaces)
        }
    }
    return out
}

private func eventually(timeout: TimeInterval = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while !condition() {
        if Date() >= deadline { return false }
        usleep(5_000)
    }
    return true
}

/// Every thread runs (sleeping or running, not stopped) and nobody traces any of them.
private func allFree(_ pid: Int32) -> Bool {
    let s = states(pid), t = tracers(pid)
    return !s.isEmpty && s.values.allSatisfy { $0 == "S" || $0 == "R" } && t.values.allSatisfy { $0 == "0" }
}

@Suite(.serialized) struct TracerTests {
    init() { settleSignalHandlers() }

    @Test func attachStopsEveryThreadAndDetachLetsThemRun() throws {
        let fixture = try Fixtures.launch(.threads, arguments: ["5"])
        defer { fixture.terminate() }
        let expected = Set(fixture.threads.map(\.tid))
        #expect(expected.count == 6)
        #expect(eventually { allFree(fixture.pid) })

        let tracer = try Tracer(pid: fixture.pid)
        #expect(Set(tracer.threads) == expected)
        let held = states(fixture.pid)
        #expect(Set(held.keys) == expected)
        #expect(held.values.allSatisfy { $0 == "t" }, "\(held)")
        // TracerPid names the tracing *thread* (ptrace ties a tracee to a thread), which is
        // this one: the test runs on a worker thread, so not getpid().
        #expect(
            tracers(fixture.pid).values.allSatisfy { $0 == String(currentTID()) },
            "\(tracers(fixture.pid)) vs \(currentTID())")
        #expect(procStatus(fixture.pid)["State"]?.hasPrefix("t") == true)

        tracer.detach()
        #expect(tracer.threads.isEmpty)
        #expect(eventually { allFree(fixture.pid) }, "\(states(fixture.pid)) \(tracers(fixture.pid))")
        #expect(try fixture.send("ping") == "pong")
        tracer.detach()  // idempotent
        #expect(allFree(fixture.pid))
    }

    @Test func deinitDetaches() throws {
        let fixture = try Fixtures.launch(.threads, arguments: ["3"])
        defer { fixture.terminate() }
        do {
            let tracer = try Tracer(pid: fixture.pid)
            #expect(tracer.threads.count == 4)
            #expect(states(fixture.pid).values.allSatisfy { $0 == "t" })
            withExtendedLifetime(tracer) {}
        }
        #expect(eventually { allFree(fixture.pid) }, "\(states(fixture.pid)) \(tracers(fixture.pid))")
        #expect(try fixture.send("ping") == "pong")
        #expect(try fixture.send("spawn").hasSuffix("worker-4"))
    }

    @Test func attachCatchesThreadsCreatedDuringIt() throws {
        let fixture = try Fixtures.launch(.threads, arguments: ["4"])
        defer { fixture.terminate() }
        #expect(try fixture.send("churn") == "ok")
        for attempt in 0..<10 {
            let tracer = try Tracer(pid: fixture.pid)
            // Every thread that exists now is held (a held thread cannot create another).
            let now = states(fixture.pid)
            let live = now.filter { $0.value != "Z" && $0.value != "X" }
            #expect(live.values.allSatisfy { $0 == "t" }, "attempt \(attempt): \(now)")
            #expect(Set(live.keys).isSubset(of: Set(tracer.threads)), "attempt \(attempt)")
            tracer.detach()
            #expect(
                eventually {
                    states(fixture.pid).values.allSatisfy { $0 != "t" }
                        && tracers(fixture.pid).values.allSatisfy { $0 == "0" }
                },
                "attempt \(attempt): \(states(fixture.pid))")
        }
        #expect(try fixture.send("ping") == "pong")
    }

    @Test func targetStopAndResume() throws {
        let fixture = try Fixtures.launch(.holder)
        defer { fixture.terminate() }
        let target = try Target(pid: fixture.pid)
        try target.stop()
        #expect(target.isStopped)
        #expect(target.stoppedThreads == [fixture.pid])
        #expect(procStatus(fixture.pid)["State"]?.hasPrefix("t") == true)
        // Reads work while it is held.
        let buf = fixture.address("buf")
        var marker: [UInt8] = []
        let report = try target.stream(try AddressRange(start: buf + 0x100, count: 16), skipFaults: false) { _, chunk in
            marker += chunk
            return true
        }
        #expect(report.isComplete && marker.elementsEqual("VMIO-MARKER-0001".utf8))
        try target.stop()  // idempotent
        target.resume()
        #expect(!target.isStopped)
        #expect(eventually { allFree(fixture.pid) })
        #expect(try fixture.send("ping") == "pong")
        target.resume()  // idempotent
    }

    @Test func anAlreadyTracedProcessIsRefusedNamingTheTracer() throws {
        let strace = "/usr/bin/strace"
        try #require(
            FileManager.default.isExecutableFile(atPath: strace), "strace is needed (apt-get install -y strace)")
        let fixture = try Fixtures.launch(.holder)
        defer { fixture.terminate() }
        let stracePid = try spawnClean(strace, ["-p", String(fixture.pid), "-o", "/dev/null"])
        var straceRunning = true
        defer { if straceRunning { stopChild(stracePid) } }
        try #require(eventually(timeout: 10) { procStatus(fixture.pid)["TracerPid"] == String(stracePid) })

        #expect(throws: TargetError.alreadyTraced(pid: fixture.pid, tracerPid: stracePid, tracerName: "strace")) {
            _ = try Tracer(pid: fixture.pid)
        }
        let target = try Target(pid: fixture.pid)
        #expect(throws: TargetError.alreadyTraced(pid: fixture.pid, tracerPid: stracePid, tracerName: "strace")) {
            try target.stop()
        }
        #expect(!target.isStopped)
        #expect(procStatus(fixture.pid)["TracerPid"] == String(stracePid), "strace still holds it")

        stopChild(stracePid)
        straceRunning = false
        #expect(eventually { procStatus(fixture.pid)["TracerPid"] == "0" })
        let now = try Tracer(pid: fixture.pid)
        #expect(now.threads == [fixture.pid])
        now.detach()
        #expect(eventually { allFree(fixture.pid) })
        #expect(try fixture.send("ping") == "pong")
    }

    @Test func aSecondTracerInThisProcessNamesThisProcess() throws {
        let fixture = try Fixtures.launch(.holder)
        defer { fixture.terminate() }
        let first = try Tracer(pid: fixture.pid)
        defer { first.detach() }
        do {
            _ = try Tracer(pid: fixture.pid)
            Issue.record("a second Tracer of a process this one holds succeeded")
        } catch TargetError.alreadyTraced(let pid, let tracerPid, let tracerName) {
            #expect(pid == fixture.pid)
            // TracerPid in /proc is the tracing *thread*; off the main thread that is not getpid(),
            // and the error must still name this process, not one of its threads.
            #expect(tracerPid == getpid(), "\(tracerPid) (\(tracerName)) vs pid \(getpid())")
        }
        first.detach()
        #expect(eventually { allFree(fixture.pid) })
    }

    @Test func aMissingProcessIsNoSuchProcess() throws {
        #expect(throws: TargetError.noSuchProcess(pid: 999_999)) { _ = try Tracer(pid: 999_999) }
    }
}
