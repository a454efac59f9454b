// A target in another pid namespace (started under `unshare --pid --fork --mount-proc`):
// the tool takes the host pid, shows the namespace pid (NSpid), and reads the target's ELF
// files through /proc/PID/root — here the executable exists only in the target's own mount
// namespace (a tmpfs mounted there), so symbols resolve only that way.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The children of `pid` (`/proc/PID/task/PID/children`).
func childrenOf(_ pid: Int32) -> [Int32] {
    (readProcFile("/proc/\(pid)/task/\(pid)/children") ?? "").split(separator: " ").compactMap { Int32($0) }
}

@Suite struct NamespaceCLITests {
    /// A holder that is pid 1 of a new pid namespace, run from a tmpfs that only its own
    /// mount namespace sees. Returns the fixture (its pid is unshare's), the holder's host
    /// pid, and the path the holder runs from.
    private func launchContained() throws -> (FixtureProcess, Int32, String) {
        let hidden = NSTemporaryDirectory() + "vmio-ns-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: hidden, withIntermediateDirectories: true)
        let script = "mount -t tmpfs vmio-ns \"$0\" && cp \"$1\" \"$0/holder\" && exec \"$0/holder\""
        let fixture = try Fixtures.launch(
            .holder, arguments: [],
            wrapper: ["/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "/bin/sh", "-c", script, hidden])
        var host: Int32 = 0
        _ = waitUntil {
            host = childrenOf(fixture.pid).first ?? 0; return host != 0
        }
        #expect(host != 0, "no child of unshare (pid \(fixture.pid))")
        return (fixture, host, hidden + "/holder")
    }

    @Test func aContainedTargetIsReadByItsHostPid() throws {
        let (holder, host, path) = try launchContained()
        defer {
            holder.terminate()
            rmdir((path as NSString).deletingLastPathComponent)
        }
        #expect(holder.number("pid") == 1, "the holder is pid 1 of its namespace: \(holder.factLines)")
        #expect(!FileManager.default.fileExists(atPath: path), "the executable is visible only inside")
        let buf = holder.address("buf")

        let read = try Tool.run("read", String(host), hx(buf + 0x100), "16", "--format", "raw")
        #expect(read.exited(0), "\(read)")
        #expect(read.stdout.elementsEqual("VMIO-MARKER-0001".utf8))
        #expect(try Tool.run("read", String(host), hx(buf), "16", "--stop").exited(0))
        #expect(isFreeRunning(host))

        let maps = try #require(try Tool.run("maps", String(host), "--json").json)
        #expect(maps["nspid"] as? [Int] == [Int(host), 1])
        #expect((maps["mappings"] as? [[String: Any]])?.contains { $0["path"] as? String == path } == true)

        let doctor = try Tool.run("doctor", String(host), "--json")
        #expect(doctor.exited(0), "\(doctor)")
        let json = try #require(doctor.json)
        #expect(json["nspid"] as? [Int] == [Int(host), 1])
        let namespace = try #require(doctorChecks(json)["namespace"]?["detail"] as? String)
        #expect(
            namespace
                == "pid \(host) is pid 1 in its own pid namespace (NSpid \(host) 1); its files are read through /proc/\(host)/root",
            "\(namespace)")
        #expect((doctorChecks(json)["abi"]?["detail"] as? String)?.hasPrefix("ELF64 little-endian x86_64") == true)
    }

    @Test func symbolsResolveThroughProcRoot() throws {
        let (holder, host, path) = try launchContained()
        defer {
            holder.terminate()
            rmdir((path as NSString).deletingLastPathComponent)
        }
        let counter = try Tool.run("read", String(host), "sym:counter", "8", "--format", "u64", "--json")
        #expect(counter.exited(0), "\(counter)")
        #expect(counter.json?["address"] as? String == hx(holder.address("counter")))
        #expect((counter.json?["values"] as? [NSNumber])?.first?.uint64Value == 0xC0FFEE)
        #expect(try holder.send("counter") == "12648430")
        // Written through the symbol too, and seen by the holder.
        let write = try Tool.run("write", String(host), "sym:counter", "--u64", "7", "--verify")
        #expect(write.exited(0), "\(write)")
        #expect(try holder.send("counter") == "7")
    }
}
