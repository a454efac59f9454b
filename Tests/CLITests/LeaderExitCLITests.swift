// A process whose main thread has exited (pthread_exit) while another thread runs on: its
// main thread is a zombie with no memory, so through its pid the maps read empty and
// process_vm_readv fails. Every command reaches it through a live thread, says so once, and
// lets it go running. Before, every command called it "a zombie" (exit 4), and an attach
// failed on the zombie main thread, which PTRACE_SEIZE refuses with EPERM.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct LeaderExitCLITests {
    @Test func everyCommandReachesTheProcessThroughItsLiveThread() throws {
        let process = try Fixtures.launch(.leaderExit)
        defer { process.terminate() }
        let (pid, worker) = (String(process.pid), process.number("worker"))
        let marker = hx(process.address("marker"))
        #expect(procStatus(process.pid)["State"]?.hasPrefix("Z") == true, "the main thread has exited")
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = hx(holder.address("buf"))
        let scratch = NSTemporaryDirectory() + "vmio-leader-exit-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let commands: [[String]] = [
            ["maps", pid], ["read", pid, marker, "16"], ["read", pid, marker, "16", "--stop"],
            ["write", pid, marker, "--string", "VMIO"], ["search", pid, "--string", "MIO-LEADER"],
            ["dump", pid, "-o", scratch + ".dump"], ["core", pid, "-o", scratch + ".core"],
            ["copy", "\(pid):\(marker)", "\(holder.pid):\(buf)", "16"],
            ["copy", "\(holder.pid):\(buf)", "\(pid):\(marker)", "4"], ["backtrace", pid], ["regs", pid],
        ]
        let warning = "pid \(pid)'s main thread has exited; the process is reached through its thread \(worker)"
        for arguments in commands {
            let result = try Tool.run(arguments)
            #expect(result.exited(0), "\(arguments): \(result)")
            #expect(result.stderrLines.filter { $0.contains(warning) }.count == 1, "\(arguments): \(result)")
        }
        // The copy wrote the holder's first 4 bytes over "VMIO"; the rest is the marker's.
        let read = try Tool.run("read", pid, marker, "16", "--format", "raw")
        #expect(Array(read.stdout.dropFirst(4)) == Array("-LEADER-GONE".utf8), "\(read)")
        let threads = try Tool.run("backtrace", pid)
        #expect(
            threads.lines.filter { $0.hasPrefix("thread ") } == ["thread \(worker) (vmio-fixture-le):"], "\(threads)")
        // A session, in one attach, says so once too.
        let script = try ScriptFile([
            "stop", "write \(marker) --string VMIO",
            "expect (read \(marker) 16 --format str) == \"VMIO-LEADER-GONE\"", "cont",
        ])
        let session = try Tool.run("session", pid, script.path)
        #expect(session.exited(0), "\(session)")
        #expect(session.stderrLines == ["vmio-ptrace: warning: " + warning], "\(session)")
        // Let go running, traced by none, and still answering.
        let status = procStatus(Int32(worker))
        #expect(status["TracerPid"] == "0" && status["State"]?.hasPrefix("T") == false, "\(status)")
        #expect(try process.send("ping") == "pong")
    }

    @Test func doctorSaysHowTheProcessIsReached() throws {
        let process = try Fixtures.launch(.leaderExit)
        defer { process.terminate() }
        let doctor = try Tool.run("doctor", String(process.pid))
        #expect(doctor.exited(0), "\(doctor)")
        #expect(
            doctor.lines.contains {
                $0.hasPrefix("ok       target")
                    && $0.contains(
                        "main thread has exited; it is reached through its thread \(process.number("worker"))")
            }, "\(doctor)")
        // The files it names are the ones it read: the live thread's.
        let worker = process.number("worker")
        #expect(doctor.lines.contains { $0.hasPrefix("ok       maps") && $0.contains("/proc/\(worker)/maps reads") })
        #expect(doctor.lines.contains { $0.hasPrefix("ok       proc_mem ") && $0.contains("/proc/\(worker)/mem") })
        // Said once, on the target line: no warning beside it.
        #expect(doctor.stderrLines.isEmpty, "\(doctor)")
    }
}
