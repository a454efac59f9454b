// A process whose main thread has exited while another runs on (fixture leader-exit): the
// library reaches it through the live thread, and an attach skips the zombie main thread,
// which PTRACE_SEIZE refuses with EPERM as it refuses a traced one.

import Testing
import VmIO
import VmioFixtures
import VmioTestSupport

@testable import VmioPtrace

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct LeaderExitTests {
    @Test func theProcessIsReachedThroughItsLiveThreadAndTheExitedOneIsSkipped() throws {
        let process = try Fixtures.launch(.leaderExit)
        defer { process.terminate() }
        let worker = Int32(process.number("worker"))
        // The exited main thread is refused with EPERM: gone, not traced by someone else.
        #expect(try Tracer.seize(pid: process.pid, tid: process.pid) == false)
        #expect(try Target.reachableID(of: process.pid) == worker)
        #expect(try Target.reachableID(of: worker) == worker)

        let target = try Target(pid: process.pid)
        #expect(target.pid == worker)
        try target.stop()
        #expect(target.stoppedThreads == [worker])
        var bytes = [UInt8](repeating: 0, count: 16)
        _ = try bytes.withUnsafeMutableBytes {
            try target.read(try AddressRange(start: process.address("marker"), count: 16), into: $0)
        }
        #expect(bytes == Array("VMIO-LEADER-GONE".utf8))
        target.resume()
        #expect(procStatus(worker)["TracerPid"] == "0")
        #expect(try process.send("ping") == "pong")
    }

    @Test func theLiveThreadIsWaitedForUntilTheProcessEnds() throws {
        let process = try Fixtures.launch(.leaderExit)
        defer { process.terminate() }
        let worker = Int32(process.number("worker"))
        // `pidfd_open` refuses a thread other than the main one (ENOENT) unless asked for a
        // thread's own pidfd: without one, `monitor` polled such a process in a busy loop.
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try Sys.waitForExit(worker, within: .milliseconds(300)) == false)
        #expect(clock.now - start >= .milliseconds(250), "it waited")
        kill(process.pid, SIGKILL)
        #expect(try Sys.waitForExit(worker, within: .seconds(10)) == true)
    }
}
