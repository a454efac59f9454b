// What every command says about a target that is not a live user process (issue 12): a kernel
// thread (bug 7: exit 3, "kernel thread", from every command), a zombie (bug 8: exit 4, named as
// a zombie with its unreaping parent), a target whose maps the kernel refuses (bug 9: the `maps`
// check is blamed, and `doctor` finds it), and a target that exits during `read` (bug 2: exit 4,
// target gone, as dump and search say).

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A kernel thread (PF_KTHREAD in its stat flags), e.g. kthreadd; nil when none is visible.
private func kernelThread() -> Int32? {
    for pid in Int32(2)...Int32(400) {
        guard let stat = readProcFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        if fields.count > 6, let flags = UInt64(fields[6]), flags & 0x0020_0000 != 0 { return pid }
    }
    return nil
}

@Suite(.serialized) struct TargetStateCLITests {
    /// Every command that takes a pid, with the rest of its arguments.
    private func commands(_ pid: String, holder: FixtureProcess) -> [[String]] {
        let buf = hx(holder.address("buf"))
        return [
            ["maps", pid], ["read", pid, "0x1000", "16"], ["read", pid, "[stack]", "8", "--stop"],
            ["write", pid, "0x1000", "--hex", "00"], ["search", pid, "--hex", "de ad"],
            ["dump", pid, "-o", NSTemporaryDirectory() + "vmio-state-\(getpid())"],
            ["core", pid, "-o", NSTemporaryDirectory() + "vmio-state-\(getpid()).core"],
            ["copy", "\(pid):0x1000", "\(holder.pid):\(buf)", "16"],
            ["copy", "\(holder.pid):\(buf)", "\(pid):0x1000", "16"],
            ["backtrace", pid], ["regs", pid],
        ]
    }

    @Test func aKernelThreadIsNamedByEveryCommand() throws {
        let kthread = try #require(kernelThread(), "no kernel thread is visible here")
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        for arguments in commands(String(kthread), holder: holder) {
            let result = try Tool.run(arguments)
            #expect(result.exited(3), "\(arguments): \(result)")
            #expect(result.stderr.contains("is a kernel thread: it has no user memory"), "\(arguments): \(result)")
        }
        let doctor = try Tool.run("doctor", String(kthread))
        #expect(doctor.exited(3), "\(doctor)")
        #expect(doctor.lines.contains { $0.hasPrefix("problem  target") && $0.contains("is a kernel thread") })
    }

    @Test func aZombieIsNamedWithItsParentByEveryCommand() throws {
        let states = try Fixtures.launch(.states)
        defer { states.terminate() }
        let reply = try states.send("zombie")
        let zombie = try #require(Int32(reply.split(separator: " ").last ?? ""), "\(reply)")
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        for arguments in commands(String(zombie), holder: holder) {
            let result = try Tool.run(arguments)
            #expect(result.exited(4), "\(arguments): \(result)")
            #expect(
                result.stderr.contains("pid \(zombie) (vmio-fixture-st) is a zombie")
                    && result.stderr.contains("its parent pid \(states.pid) (vmio-fixture-st) has not reaped it"),
                "\(arguments): \(result)")
        }
    }

    @Test func refusedMapsBlameTheMapsCheck() throws {
        // The tool in a user namespace of its own (root there, not outside): the kernel refuses it
        // a target that is not dumpable, though it is "root" with CAP_SYS_PTRACE in its namespace.
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else {
            print("note: skipped, no /usr/bin/unshare")
            return
        }
        let states = try Fixtures.launch(.states)
        defer { states.terminate() }
        #expect(try states.send("undumpable") == "ok")
        let inNamespace = ["--user", "--map-root-user", Tool.path]
        let maps = try Tool.runProgram("/usr/bin/unshare", inNamespace + ["maps", states.pidArg])
        try #require(!maps.exited(0), "the namespace did not refuse here: \(maps)")
        #expect(maps.exited(3), "\(maps)")
        #expect(maps.stderr.contains("permission denied to read the maps of pid \(states.pid): maps: "), "\(maps)")
        #expect(!maps.stderr.contains("proc_mem_write"), "\(maps)")
        let doctor = try Tool.runProgram("/usr/bin/unshare", inNamespace + ["doctor", states.pidArg, "--json"])
        #expect(doctor.exited(3), "\(doctor)")
        let checks = doctorChecks(try #require(doctor.json, "\(doctor)"))
        #expect(checks["maps"]?["status"] as? String == "problem", "\(checks)")
        #expect(checks["process_vm_readv"]?["status"] as? String == "skipped", "\(checks)")
        #expect(checks["proc_mem"]?["status"] as? String == "skipped", "\(checks)")
        #expect(try states.send("ping") == "pong")
    }

    @Test func aTargetThatFreesItsMemoryAndExitsDuringReadIsGone() throws {
        // A program that frees its memory as it exits (munmap, then exit): the read faults at an
        // address that was mapped, and the target is gone moments later. Exit 4, not a fault.
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            print("note: skipped, no /usr/bin/python3")
            return
        }
        let program = """
            import ctypes, sys, time
            b = bytearray(1 << 30)
            for i in range(0, len(b), 4096): b[i] = 1
            print(hex(ctypes.addressof((ctypes.c_char * len(b)).from_buffer(b))), len(b), flush=True)
            sys.stdin.readline()
            del b
            time.sleep(0.2)
            """
        var cut = false
        for delay in [0.4, 0.2, 0.6, 0.1, 0.8, 1.2, 1.6] where !cut {
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            python.arguments = ["-c", program]
            let input = Pipe(), output = Pipe()
            python.standardInput = input
            python.standardOutput = output
            try python.run()
            defer { python.terminate() }
            var bytes = Data()
            while !bytes.contains(UInt8(ascii: "\n")) {
                let more = output.fileHandleForReading.availableData
                if more.isEmpty { break }
                bytes += more
            }
            let line = String(decoding: bytes, as: UTF8.self)
            let words = line.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            try #require(words.count == 2, "\(line)")
            let out = NSTemporaryDirectory() + "vmio-exitread-\(getpid())"
            defer {
                unlink(out)
                unlink(out + ".partial")
            }
            let read = try Running(
                Tool.path, ["read", String(python.processIdentifier), words[0], words[1], "--format", "raw", "-o", out])
            usleep(UInt32(delay * 1_000_000))
            input.fileHandleForWriting.write("\n".data(using: .utf8)!)
            let result = read.finish(timeout: 60)
            if result.exited(0) { continue }  // it finished first
            // It opened the target only after the memory was freed (a loaded machine starts the
            // tool slowly): no read was cut; try another delay.
            if result.stderr.contains("is in no mapping") { continue }
            cut = true
            #expect(result.exited(4), "\(result)")
            #expect(result.stderr.contains("target gone"), "\(result)")
            #expect(!result.stderr.contains("first faulting address"), "\(result)")
        }
        #expect(cut, "the exit never landed during the read")
    }
}
