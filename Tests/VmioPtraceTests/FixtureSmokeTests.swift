// Smoke tests of the fixture processes and of VmioTestSupport itself: each
// fixture starts, prints its facts, answers, and is gone after terminate().

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct FixtureSmokeTests {
    /// Terminates `fixture` and checks that nothing is left running.
    private func finish(_ fixture: FixtureProcess) {
        fixture.terminate()
        fixture.terminate()  // idempotent
        #expect(!fixture.isRunning)
        #expect(kill(fixture.pid, 0) == -1 && errno == ESRCH, "pid \(fixture.pid) still exists")
    }

    private func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    @Test(arguments: FixtureKind.allCases)
    func launchesAndAnswersPing(kind: FixtureKind) throws {
        let arguments = [.exiter, .execer, .random].contains(kind) ? ["8"] : []  // keep these small here
        let fixture = try Fixtures.launch(kind, arguments: arguments)
        #expect(fixture.kind == kind)
        #expect(fixture.number("pid") == UInt64(fixture.pid))
        #expect(fixture.isRunning)
        #expect(try fixture.send("ping") == "pong")
        #expect(try fixture.send("no-such-command") == "error unknown command")
        #expect(procStatus(fixture.pid)["TracerPid"] == "0")
        // Right after replying it may still be running; it soon blocks reading stdin. (The
        // main thread of leader-exit has exited: its worker thread reads.)
        let reader = kind == .leaderExit ? Int32(fixture.number("worker")) : fixture.pid
        var state = ""
        for _ in 0..<200 {
            state = procStatus(reader)["State"] ?? ""
            if state.hasPrefix("S") { break }
            usleep(5_000)
        }
        #expect(state.hasPrefix("S"), "State: \(state)")
        finish(fixture)
        #expect(fixture.terminationStatus == 0, "exits 0 on stdin EOF")
    }

    @Test func holderFactsValuesAndMaps() throws {
        let holder = try Fixtures.launch(.holder)
        defer { finish(holder) }
        let buf = holder.address("buf"), edge = holder.address("edge")
        let guardPage = holder.address("guard"), ro = holder.address("ro")
        let code = holder.address("code"), counter = holder.address("counter")
        #expect(holder.number("buf") == 65536)
        #expect(holder.number("edge") == 4096 && holder.number("guard") == 4096 && holder.number("ro") == 4096)
        #expect(
            holder.factLines.map { $0.split(separator: " ")[0] } == [
                "pid", "buf", "edge", "guard", "ro", "code", "counter",
            ])

        // Contents, read back by the holder itself.
        func get(_ address: UInt64, _ length: Int) throws -> String {
            try holder.send("get 0x\(String(address, radix: 16)) \(length)")
        }
        #expect(try get(buf + 0x100, 16) == hex(Array("VMIO-MARKER-0001".utf8)))
        #expect(try get(buf, 4) == "078a0d90")  // (i*131 + 7) & 0xff
        #expect(try get(buf + 0x200, 8) == "8877665544332211")
        #expect(
            try get(buf + 0x208, 8) == hex(withUnsafeBytes(of: (3.5 as Double).bitPattern.littleEndian, Array.init)))
        #expect(try get(buf + 0x300, 12) == hex(Array("hello, vmio\0".utf8)))
        #expect(try get(buf + 0x310, 4) == "fbffffff")
        #expect(try get(buf + 0x318, 2) == "efbe")
        #expect(try get(buf, 0) == "")
        #expect(try get(buf, 65536).count == 131072)
        #expect(try get(edge, 4) == "abababab")
        #expect(try get(ro, 4) == "5a5a5a5a")
        #expect(try get(guardPage, 1).hasPrefix("error"))
        #expect(try get(edge + 4096, 1).hasPrefix("error"))
        #expect(try holder.send("answer") == "42")
        #expect(try holder.send("counter") == "\(0xC0FFEE)")
        #expect(code % 16 == 0)

        // Layout in /proc/PID/maps.
        let maps = procMapsLines(holder.pid)
        func line(_ address: UInt64) -> ProcMapsLine? { maps.first { $0.contains(address) } }
        #expect(line(guardPage)?.perms == "---p")
        #expect(line(guardPage)?.start == guardPage && line(guardPage)?.end == guardPage + 4096)
        #expect(line(ro)?.perms == "r--p")
        #expect(line(edge)?.perms == "rw-p")
        #expect(line(edge + 4096) == nil, "the page after edge must be unmapped")
        #expect(line(buf)?.perms == "rw-p")
        #expect(line(code)?.perms == "r-xp")
        #expect(line(counter)?.perms == "rw-p")

        #expect(try holder.send("unmap-buf") == "ok")
        #expect(procMapsLines(holder.pid).first { $0.contains(buf + 0x100) } == nil)
        #expect(try holder.send("ping") == "pong")
    }

    @Test func manyMapsHasTenThousandMappings() throws {
        let fixture = try Fixtures.launch(.manyMaps, arguments: ["10000"])
        defer { finish(fixture) }
        #expect(fixture.number("count") == 10000)
        #expect(fixture.number("stride") == 8192)
        let base = fixture.address("base")
        let maps = procMapsLines(fixture.pid)
        #expect(maps.count >= 10000)
        let ours = maps.filter { $0.start >= base && $0.end <= base + 10000 * 8192 }
        #expect(ours.count == 10000)
        #expect(ours.allSatisfy { $0.end - $0.start == 4096 && $0.perms == "rw-p" })
        #expect(try fixture.send("ping") == "pong")
    }

    @Test func threadsAreNamedAndSpawn() throws {
        let fixture = try Fixtures.launch(.threads, arguments: ["3"])
        defer { finish(fixture) }
        let threads = fixture.threads
        #expect(threads.map(\.name) == ["main-thread", "worker-1", "worker-2", "worker-3"])
        #expect(threads.first?.tid == fixture.pid)
        for thread in threads {
            let comm = readProcFile("/proc/\(fixture.pid)/task/\(thread.tid)/comm")
            #expect(comm == thread.name + "\n")
        }
        #expect(try fixture.send("spawn").hasSuffix(" worker-4"))
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(fixture.pid)/task")
        #expect(tasks.count == 5)
        #expect(try fixture.send("churn") == "ok")
        #expect(try fixture.send("ping") == "pong")
    }

    @Test func unmapperAndExiter() throws {
        let unmapper = try Fixtures.launch(.unmapper)
        defer { finish(unmapper) }
        #expect(unmapper.number("region") == 262144)
        #expect(unmapper.address("region") % 4096 == 0)

        let exiter = try Fixtures.launch(.exiter, arguments: ["4"])
        defer { finish(exiter) }
        #expect(exiter.number("buf") == 4 << 20)
        #expect(try exiter.send("exit-after 100") == "ok")
        #expect(try exiter.send("ping") == "pong")
        #expect(exiter.waitForExit(timeout: 5))
        #expect(throws: FixtureError.self) { try exiter.send("ping") }
    }

    /// A fixture sets `PR_SET_PDEATHSIG`, which fires when the *thread* that started it ends.
    /// A test's thread is a libdispatch worker, which ends after a few idle seconds: a fixture
    /// started there was killed while its test still used it (a long, starved test).
    @Test func aFixtureOutlivesTheThreadThatLaunchedIt() throws {
        nonisolated(unsafe) var launched: Result<FixtureProcess, any Error>?
        nonisolated(unsafe) var launcher = ""
        let done = DispatchSemaphore(value: 0)
        Thread {
            // "PID/task/TID" of this thread.
            launcher = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
            launched = Result { try Fixtures.launch(.holder) }
            done.signal()
        }.start()
        done.wait()
        let holder = try launched!.get()
        defer { holder.terminate() }
        try #require(launcher.contains("/task/"), "\(launcher)")
        let deadline = ContinuousClock.now + .seconds(10)
        while readProcFile("/proc/\(launcher)/stat") != nil, ContinuousClock.now < deadline {
            usleep(10_000)
        }
        #expect(readProcFile("/proc/\(launcher)/stat") == nil, "the launching thread has ended")
        usleep(100_000)  // the death signal, if any, is sent as the thread exits
        #expect(try holder.send("ping") == "pong")
    }

    @Test func buildDirectoryHoldsTheFixtures() {
        for kind in FixtureKind.allCases {
            #expect(FileManager.default.isExecutableFile(atPath: Fixtures.path(of: kind).path))
        }
        #expect(Fixtures.toolPath.lastPathComponent == "vmio-ptrace")
    }
}
