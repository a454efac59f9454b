// The read ladder with provenance: process_vm_readv first; when a seccomp filter on the
// tool itself (vmio-fixture-seccomp-deny) refuses it as a whole, pread on /proc/PID/mem,
// then PTRACE_PEEKDATA while the target is stopped. Every result says which mechanism
// moved each range and which failed at each hole; strict by default, --best-effort on
// request.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Runs the tool under the seccomp filter of vmio-fixture-seccomp-deny.
func runDenied(_ filter: [String] = [], _ arguments: [String]) throws -> RunResult {
    let wrapper = Fixtures.buildDirectory.appendingPathComponent("vmio-fixture-seccomp-deny").path
    return try Tool.runProgram(wrapper, filter + [Tool.path] + arguments)
}

/// The `ranges` of a transfer's JSON as (address, length, mechanism).
func movedRanges(_ json: [String: Any]) -> [(String, Int, String)] {
    (json["ranges"] as? [[String: Any]] ?? []).map {
        ($0["address"] as? String ?? "", $0["length"] as? Int ?? -1, $0["mechanism"] as? String ?? "")
    }
}

@Suite struct LadderCLITests {
    let box: HolderBox
    init() throws { box = try HolderBox() }

    @Test func processVMReadvFirst() throws {
        let json = try #require(try Tool.run("read", box.pid, hx(box.buf), "4096", "--json").json)
        #expect(json["mechanism"] as? String == "process_vm_readv")
        let ranges = movedRanges(json)
        #expect(
            ranges.count == 1 && ranges[0].0 == hx(box.buf) && ranges[0].1 == 4096 && ranges[0].2 == "process_vm_readv")
    }

    @Test(arguments: ["EPERM", "ENOSYS"])
    func refusedAsAWholeFallsBackToProcMem(errno name: String) throws {
        // 4 KiB: larger than any small read the ladder may send to pread first, so it is
        // process_vm_readv's refusal that brings pread in (processVMReadvFirst: same read, no filter).
        let result = try runDenied(["--errno", name], ["read", box.pid, hx(box.buf), "4096", "--json"])
        #expect(result.exited(0), "\(result)")
        let json = try #require(result.json)
        #expect(json["data"] as? String == hexOf(try box.holder.get(box.buf, 4096)))
        #expect(json["mechanism"] as? String == "pread")
        let ranges = movedRanges(json)
        #expect(
            ranges.count == 1 && ranges.first?.0 == hx(box.buf) && ranges.first?.2 == "pread" && ranges.first?.1 == 4096
        )
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        // Every output form, typed values and a large streamed read included.
        let value = try runDenied(["--errno", name], ["read", box.pid, hx(box.buf + 0x200), "8", "--format", "u64"])
        #expect(value.exited(0) && value.lines == ["1234605616436508552"], "\(value)")
        let raw = try runDenied(["--errno", name], ["read", box.pid, hx(box.buf), "64K", "--format", "raw"])
        #expect(raw.exited(0), "\(raw.stderr)")
        var want: [UInt8] = []
        for offset in stride(from: 0, to: 65536, by: 16384) {
            want += try box.holder.get(box.buf + UInt64(offset), 16384)
        }
        #expect(raw.stdout == want)
    }

    @Test func aFaultThroughProcMemIsStillExact() throws {
        // `edge` is one readable page with unmapped pages after it: through pread the read
        // stops at the same byte, and the hole names pread's mapping-level refusal.
        let edge = box.holder.address("edge")
        let strict = try runDenied([], ["read", box.pid, hx(edge + 4000), "200", "--json"])
        #expect(strict.exited(2), "\(strict)")
        let json = try #require(strict.json)
        #expect(json["moved"] as? Int == 96)
        let stop = try #require(json["stop"] as? [String: Any])
        #expect(stop["fault_address"] as? String == hx(edge + 4096))
        #expect(stop["mechanism"] as? String == "maps")
        #expect(movedRanges(json).map(\.2) == ["pread"])
        #expect(
            strict.stderr.contains("partial read: 96 of 200 bytes moved; first faulting address \(hx(edge + 4096))"),
            "\(strict.stderr)")

        // The guard page is mapped (---p). /proc/PID/mem could force its way through it;
        // the ladder reads only what the target could, so pread stops there with EFAULT.
        let guardPage = box.holder.address("guard")
        let skip = try runDenied([], ["read", box.pid, hx(guardPage - 16), "4128", "--json", "--skip-faults"])
        #expect(skip.exited(2), "\(skip)")
        let holes = try #require(skip.json?["holes"] as? [[String: Any]])
        #expect(holes.count == 1)
        #expect(holes.first?["address"] as? String == hx(guardPage))
        #expect(holes.first?["length"] as? Int == 4096)
        #expect(holes.first?["mechanism"] as? String == "pread")
        #expect(holes.first?["errno"] as? Int == Int(EFAULT))
        #expect(movedRanges(try #require(skip.json)).map(\.2) == ["pread", "pread"])
        // Without the filter the same hole is process_vm_readv's, with EFAULT.
        let plain = try #require(
            try Tool.run("read", box.pid, hx(guardPage - 16), "4128", "--json", "--skip-faults").json)
        let plainHole = try #require((plain["holes"] as? [[String: Any]])?.first)
        #expect(plainHole["mechanism"] as? String == "process_vm_readv" && plainHole["errno"] as? Int == Int(EFAULT))
        #expect(movedRanges(plain).map(\.1) == [16, 16])
    }

    @Test func peekdataIsTheLastRungAndOnlyWhileStopped() throws {
        // pread of /proc/PID/mem refused too: without --stop nothing is left, and the error
        // names the seccomp check and its fix.
        let refused = try runDenied(["--deny-pread"], ["read", box.pid, hx(box.buf + 0x100), "16"])
        #expect(refused.exited(3), "\(refused)")
        #expect(refused.stderr.contains("seccomp: this tool runs under a seccomp filter"), "\(refused.stderr)")
        #expect(refused.stderr.contains("fix: read with --stop"), "\(refused.stderr)")
        // With --stop, PTRACE_PEEKDATA moves it, word by word (unaligned ends included).
        let result = try runDenied(["--deny-pread"], ["read", box.pid, hx(box.buf + 0xfd), "22", "--stop", "--json"])
        #expect(result.exited(0), "\(result)")
        let json = try #require(result.json)
        #expect(json["mechanism"] as? String == "peekdata")
        #expect(json["data"] as? String == hexOf(try box.holder.get(box.buf + 0xfd, 22)))
        #expect(isFreeRunning(box.holder.pid))
        // The doctor under the same filter says so.
        let doctor = try runDenied(["--deny-pread"], ["doctor", box.pid, "--for", "read", "--json"])
        #expect(doctor.exited(3), "\(doctor)")
        #expect((doctor.json?["fix"] as? String)?.hasPrefix("read with --stop") == true, "\(doctor)")
    }

    @Test func theDoctorUnderTheFilterSeesItAndReadsStillWork() throws {
        let doctor = try runDenied([], ["doctor", box.pid, "--for", "read", "--json"])
        #expect(doctor.exited(0), "\(doctor)")
        let json = try #require(doctor.json)
        let checks = doctorChecks(json)
        #expect(checks["seccomp"]?["status"] as? String == "problem")
        #expect((checks["seccomp"]?["blocks"] as? [Any])?.isEmpty == true)
        #expect((checks["process_vm_readv"]?["detail"] as? String)?.contains("refused (EPERM") == true, "\(checks)")
        #expect(checks["proc_mem"]?["status"] as? String == "ok")
    }

    @Test func writesFallBackThroughProcMemToo() throws {
        let at = box.buf + 0x4000
        let result = try runDenied([], ["write", box.pid, hx(at), "--hex", "0102030405060708", "--verify"])
        #expect(result.exited(0), "\(result)")
        #expect(try box.holder.get(at, 8) == [1, 2, 3, 4, 5, 6, 7, 8])
        // A copy (of 4 KiB: more than a small read the ladder may send to pread first): read
        // through pread, written through pwrite.
        let original = try box.holder.get(box.buf, 4096)
        let copy = try runDenied(
            [], ["copy", "\(box.pid):\(hx(box.buf))", "\(box.pid):\(hx(at + 0x1000))", "4096", "--json"])
        #expect(copy.exited(0), "\(copy)")
        #expect(copy.json?["mechanism"] as? String == "pread")
        #expect(try box.holder.get(at + 0x1000, 4096) == original)
        // Never into a mapping the target cannot write, without --force.
        let ro = try runDenied([], ["write", box.pid, hx(box.holder.address("ro")), "--hex", "00"])
        #expect(ro.exited(3), "\(ro)")
        #expect(try box.holder.get(box.holder.address("ro"), 1) == [0x5a])
    }

    // MARK: strict and best effort

    @Test func strictByDefaultBestEffortOnRequest() throws {
        let edge = box.holder.address("edge")
        // Strict: the hole is a partial copy, exit 2.
        let strict = try Tool.run("read", box.pid, hx(edge), "8192", "--format", "u64", "--skip-faults", "--json")
        #expect(strict.exited(2), "\(strict)")
        // Best effort: zeros in the hole, the hole listed, exit 0.
        let best = try Tool.run("read", box.pid, hx(edge), "8192", "--format", "u64", "--best-effort", "--json")
        #expect(best.exited(0), "\(best)")
        let json = try #require(best.json)
        let values = try #require(json["values"] as? [NSNumber])
        #expect(values.count == 1024)
        #expect(values[0..<512].allSatisfy { $0.uint64Value == 0xabab_abab_abab_abab })
        #expect(values[512...].allSatisfy { $0.uint64Value == 0 })
        #expect(json["moved"] as? Int == 4096 && json["complete"] as? Bool == false)
        let hole = try #require((json["holes"] as? [[String: Any]])?.first)
        #expect(hole["address"] as? String == hx(edge + 4096) && hole["length"] as? Int == 4096)
        #expect(hole["mechanism"] as? String == "maps" && hole["errno"] as? Int == Int(EFAULT))
        #expect(
            best.stderr.contains(
                "best effort: 4096 of 8192 bytes moved; 1 hole skipped (4096 bytes), filled with zeros"),
            "\(best.stderr)")

        // Raw and hex dumps are filled too.
        let raw = try Tool.run("read", box.pid, hx(edge + 4000), "200", "--format", "raw", "--best-effort")
        #expect(raw.exited(0))
        #expect(raw.stdout == [UInt8](repeating: 0xab, count: 96) + [UInt8](repeating: 0, count: 104))
        let hex = try Tool.run("read", box.pid, hx(edge + 4080), "32", "--best-effort")
        #expect(hex.exited(0))
        #expect(
            hex.lines.count == 2 && hex.lines[1].contains(": 0000 0000 0000 0000 0000 0000 0000 0000"), "\(hex.lines)")
        // A read that cannot start is not made good by --best-effort.
        let nowhere = try Tool.run("read", box.pid, hx(edge + 8192), "16", "--best-effort")
        #expect(nowhere.exited(1), "\(nowhere)")
    }

    @Test func bestEffortCopyWritesZerosAndDumpExitsZero() throws {
        let edge = box.holder.address("edge")
        let dst = box.buf + 0x6000
        let copy = try Tool.run(
            "copy", "\(box.pid):\(hx(edge + 4000))", "\(box.pid):\(hx(dst))", "200", "--best-effort", "--json")
        #expect(copy.exited(0), "\(copy)")
        #expect(try box.holder.get(dst, 200) == [UInt8](repeating: 0xab, count: 96) + [UInt8](repeating: 0, count: 104))
        #expect(copy.json?["moved"] as? Int == 96)
        let skip = try Tool.run(
            "copy", "\(box.pid):\(hx(edge + 4000))", "\(box.pid):\(hx(dst))", "200", "--skip-faults")
        #expect(skip.exited(2))

        let dir = TempPath("best-effort-dump")
        defer { _ = try? FileManager.default.removeItem(atPath: dir.path) }
        let region = "[vvar]"  // kernel pages process_vm_readv cannot read: one hole
        let strict = try Tool.run("dump", box.pid, "--region", region, "-o", dir.path)
        #expect(strict.exited(2), "\(strict)")
        let best = try Tool.run(
            "dump", box.pid, "--region", region, "-o", dir.path, "--force", "--best-effort", "--json")
        #expect(best.exited(0), "\(best)")
        #expect(best.json?["complete"] as? Bool == false)
        #expect((best.json?["holes"] as? [Any])?.count == 1)
    }
}
