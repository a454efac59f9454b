// `vmio-ptrace write`: every source of bytes, --verify, --json, and --force on code and
// read-only pages; what the target sees afterwards is asked of the holder itself.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct WriteCLITests {
    let holder: FixtureProcess
    let buf: UInt64
    init() throws {
        holder = try Fixtures.launch(.holder)
        buf = holder.address("buf")
    }

    private var pid: String { holder.pidArg }

    /// Writes, expects exit 0 and the "wrote N bytes" line, and returns the holder's view.
    @discardableResult
    private func write(at offset: UInt64, _ source: [String], count: Int, verified: Bool = false) throws -> [UInt8] {
        let address = buf + offset
        let result = try Tool.run(["write", pid, hx(address)] + source)
        #expect(result.exited(0), "\(source): \(result)")
        let bytes = count == 1 ? "byte" : "bytes"
        #expect(
            result.lines == ["wrote \(count) \(bytes) at \(hx(address))\(verified ? " (verified)" : "")"], "\(result)")
        #expect(result.stderr.isEmpty)
        return try holder.get(address, count)
    }

    @Test func hexSourceInEveryNotation() throws {
        #expect(try write(at: 0x400, ["--hex", "deadbeef"], count: 4) == [0xde, 0xad, 0xbe, 0xef])
        #expect(try write(at: 0x400, ["--hex", "de ad be ef 01"], count: 5) == [0xde, 0xad, 0xbe, 0xef, 0x01])
        #expect(try write(at: 0x400, ["--hex", "0x0102"], count: 2) == [0x01, 0x02])
        #expect(try write(at: 0x400, ["--hex", "ca:fe"], count: 2) == [0xca, 0xfe])
        // The byte after the written ones is untouched.
        #expect(try holder.get(buf + 0x400, 6) == [0xca, 0xfe, 0xbe, 0xef, 0x01, holderPattern(0x405)])
    }

    @Test func stringSourceWithAndWithoutNul() throws {
        #expect(try write(at: 0x300, ["--string", "HELLO"], count: 5) == Array("HELLO".utf8))
        // Without --nul the old ", vmio" survives after it.
        let str = try Tool.run("read", pid, hx(buf + 0x300), "32", "--format", "str")
        #expect(str.lines == ["HELLO, vmio"])
        #expect(try write(at: 0x300, ["--string", "bye", "--nul"], count: 4) == Array("bye".utf8) + [0])
        #expect(try Tool.run("read", pid, hx(buf + 0x300), "32", "--format", "str").lines == ["bye"])
        // UTF-8 is written as its bytes.
        #expect(try write(at: 0x500, ["--string", "é€"], count: 5) == Array("é€".utf8))
    }

    @Test func fileSource() throws {
        let file = TempPath("payload.bin")
        let payload = (0..<3000).map { UInt8(($0 * 7 + 3) & 0xff) }
        #expect(FileManager.default.createFile(atPath: file.path, contents: Data(payload)))
        let address = buf + 0x1001  // unaligned, spanning pages
        let result = try Tool.run("write", pid, hx(address), "--file", file.path, "--verify")
        #expect(result.exited(0), "\(result)")
        #expect(result.lines == ["wrote 3000 bytes at \(hx(address)) (verified)"])
        #expect(try holder.get(address, 3000) == payload)
        #expect(try holder.get(address - 1, 1) == [holderPattern(0x1000)])
        #expect(try holder.get(address + 3000, 1) == [holderPattern(0x1001 + 3000)])
    }

    @Test(arguments: [
        ("--u8", "0xfe", [0xfe] as [UInt8]),
        ("--u16", "0xbeef", [0xef, 0xbe]),
        ("--u32", "305419896", [0x78, 0x56, 0x34, 0x12]),
        ("--u64", "0x0102030405060708", [8, 7, 6, 5, 4, 3, 2, 1]),
        ("--i8", "-1", [0xff]),
        ("--i16", "-2", [0xfe, 0xff]),
        ("--i32", "-5", [0xfb, 0xff, 0xff, 0xff]),
        ("--i64", "-9223372036854775808", [0, 0, 0, 0, 0, 0, 0, 0x80]),
        ("--f32", "2.1875", [0, 0, 0x0c, 0x40]),
        ("--f64", "3.5", [0, 0, 0, 0, 0, 0, 0x0c, 0x40]),
    ])
    func typedValue(option: String, value: String, bytes: [UInt8]) throws {
        // `--i32=-5`: the joined form, since a separate "-5" reads as an option to the parser.
        let source = value.hasPrefix("-") ? ["\(option)=\(value)"] : [option, value]
        #expect(try write(at: 0x600, source + ["--verify"], count: bytes.count, verified: true) == bytes)
        // Read back through the tool as the same type.
        let format = String(option.dropFirst(2))
        let back = try Tool.run("read", pid, hx(buf + 0x600), String(bytes.count), "--format", format)
        let want =
            format.hasPrefix("u") && value.hasPrefix("0x") ? String(UInt64(value.dropFirst(2), radix: 16)!) : value
        #expect(back.lines == [want], "\(back)")
    }

    @Test func negativeValueAsSeparateArgument() throws {
        // `--i32 -5` (two arguments) is how people type it.
        for (option, value, bytes) in [
            ("--i32", "-5", [0xfb, 0xff, 0xff, 0xff] as [UInt8]), ("--i8", "-128", [0x80]),
            ("--i64", "-1", [UInt8](repeating: 0xff, count: 8)),
            ("--f64", "-2.5", [0, 0, 0, 0, 0, 0, 0x04, 0xc0]),
        ] {
            let result = try Tool.run("write", pid, hx(buf + 0x600), option, value)
            #expect(result.exited(0), "\(option) \(value): \(result)")
            #expect(try holder.get(buf + 0x600, bytes.count) == bytes, "\(option) \(value)")
        }
    }

    @Test func jsonShape() throws {
        let result = try Tool.run("write", pid, hx(buf + 0x700), "--hex", "0011", "--verify", "--json")
        #expect(result.exited(0))
        let json = try #require(result.json, "\(result)")
        #expect(json["pid"] as? Int == Int(holder.pid))
        #expect(json["address"] as? String == hx(buf + 0x700))
        #expect(json["requested"] as? Int == 2 && json["written"] as? Int == 2)
        #expect(json["verified"] as? Bool == true)
        #expect(json["mismatch"] is NSNull)
        let plain = try #require(try Tool.run("write", pid, hx(buf + 0x700), "--hex", "22", "--json").json)
        #expect(plain["verified"] as? Bool == false)
        #expect(try holder.get(buf + 0x700, 2) == [0x22, 0x11])
    }

    @Test func writeThroughARegionExpression() throws {
        let heap = try #require(procMapsLines(holder.pid).first { $0.path == "[heap]" })
        let result = try Tool.run("write", pid, "[heap]+0x20", "--hex", "a1a2a3a4", "--verify")
        #expect(result.exited(0), "\(result)")
        #expect(try holder.get(heap.start + 0x20, 4) == [0xa1, 0xa2, 0xa3, 0xa4])
    }

    @Test func codeIsRefusedWithoutForceAndPatchedWithIt() throws {
        let code = holder.address("code")
        let before = try holder.get(code, 16)
        #expect(try holder.send("answer") == "42")
        let refused = try Tool.run("write", pid, hx(code), "--hex", "b8 07 00 00 00 c3")
        #expect(refused.exited(3), "\(refused)")
        #expect(refused.stderrLines.count == 1)
        #expect(refused.stderr.contains("r-xp") && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty)
        #expect(try holder.get(code, 16) == before, "nothing changed")
        #expect(try holder.send("answer") == "42")

        let forced = try Tool.run("write", pid, hx(code), "--hex", "b8 07 00 00 00 c3", "--force", "--verify")
        #expect(forced.exited(0), "\(forced)")
        #expect(forced.lines == ["wrote 6 bytes at \(hx(code)) (verified)"])
        #expect(try holder.get(code, 6) == [0xb8, 0x07, 0x00, 0x00, 0x00, 0xc3])
        #expect(try holder.get(code + 6, 10) == Array(before[6...]))
        #expect(try holder.send("answer") == "7")
        // The mapping is still r-xp: the patch went through a private copy, not a permission change.
        #expect(procMapsLines(holder.pid).first { $0.contains(code) }?.perms == "r-xp")
    }

    @Test func readOnlyPageIsRefusedWithoutForce() throws {
        let ro = holder.address("ro")
        let refused = try Tool.run("write", pid, hx(ro + 8), "--u32", "7")
        #expect(refused.exited(3), "\(refused)")
        #expect(refused.stderrLines.count == 1 && refused.stderr.contains("r--p"))
        #expect(try holder.get(ro, 16) == [UInt8](repeating: 0x5a, count: 16))
        let forced = try Tool.run("write", pid, hx(ro + 8), "--u32", "7", "--force", "--verify")
        #expect(forced.exited(0), "\(forced)")
        #expect(try holder.get(ro + 8, 4) == [7, 0, 0, 0])
        #expect(try holder.get(ro + 12, 4) == [0x5a, 0x5a, 0x5a, 0x5a])
    }

    @Test func writeSpanningIntoAHoleIsRefusedWhole() throws {
        let edge = holder.address("edge")
        let result = try Tool.run("write", pid, hx(edge + 4090), "--hex", "00112233445566778899")
        #expect(result.exited(1), "\(result)")
        #expect(result.stderrLines.count == 1)
        #expect(result.stderr.contains(hx(edge + 4096)), "names the first address outside: \(result.stderr)")
        #expect(try holder.get(edge + 4090, 6) == [UInt8](repeating: 0xab, count: 6), "nothing written")
    }

    @Test func writeSpanningTheGuardPageIsRefused() throws {
        let guardPage = holder.address("guard")
        let before = try holder.get(guardPage - 4, 4)
        let result = try Tool.run("write", pid, hx(guardPage - 4), "--hex", "0102030405060708")
        #expect(result.exited(3), "\(result)")
        #expect(result.stderr.contains("---p"))
        #expect(try holder.get(guardPage - 4, 4) == before, "no prefix written either")
    }

    @Test func counterInData() throws {
        let counter = holder.address("counter")
        #expect(try holder.send("counter") == "12648430")
        let result = try Tool.run("write", pid, hx(counter), "--u64", "99", "--verify")
        #expect(result.exited(0), "\(result)")
        #expect(try holder.send("counter") == "99")
    }

    @Test func emptyStringWritesNothing() throws {
        let result = try Tool.run("write", pid, hx(buf + 0x300), "--string", "", "--json")
        #expect(result.exited(0), "\(result)")
        #expect(result.json?["requested"] as? Int == 0 && result.json?["written"] as? Int == 0)
        #expect(try Tool.run("read", pid, hx(buf + 0x300), "32", "--format", "str").lines == ["hello, vmio"])
    }

    @Test func forcedWriteIntoTheGuardPageAndItsVerify() throws {
        // /proc/PID/mem writes with FOLL_FORCE, which reaches a PROT_NONE page too.
        let guardPage = holder.address("guard")
        let forced = try Tool.run("write", pid, hx(guardPage + 8), "--hex", "a1b2", "--force")
        #expect(forced.exited(0), "\(forced)")
        #expect(procMem(holder.pid, guardPage + 8, 2) == [0xa1, 0xb2])
        // With --verify the write lands the same and is read back the way it went (through
        // /proc/PID/mem, which reaches the ---p page too, where process_vm_readv would fault):
        // verified, exit 0.
        let verified = try Tool.run("write", pid, hx(guardPage + 8), "--hex", "c3d4", "--force", "--verify", "--json")
        #expect(procMem(holder.pid, guardPage + 8, 2) == [0xc3, 0xd4], "the write itself landed")
        #expect(verified.exited(0), "\(verified)")
        #expect(verified.json?["verified"] as? Bool == true && verified.json?["mismatch"] is NSNull, "\(verified)")
    }

    /// A word the target keeps rewriting (the holder's `scribble`): the written bytes do not
    /// read back, and --verify says so with exit 2 and the first address that differs.
    @Test func verifyMismatchExits2NamingTheAddress() throws {
        let scribbler = try Fixtures.launch(.holder)
        defer { scribbler.terminate() }
        let word = scribbler.address("buf") + 0x400
        #expect(try scribbler.send("scribble") == "ok")
        var mismatches = 0, attempts = 0
        // The scribbling thread must run between the write and its read-back: usually at once,
        // but on a loaded machine it may wait for a CPU, so a few attempts are allowed.
        while mismatches < 2 && attempts < 40 {
            attempts += 1
            let result = try Tool.run(
                "write", scribbler.pidArg, hx(word), "--u64", "0x1111111111111111", "--verify", "--json")
            let json = try #require(result.json, "\(result)")
            if result.exited(0) {
                #expect(json["verified"] as? Bool == true && json["mismatch"] is NSNull, "\(result)")
                continue
            }
            #expect(result.exited(2), "\(result)")
            mismatches += 1
            #expect(json["written"] as? Int == 8 && json["verified"] as? Bool == false, "\(json)")
            let at = try #require(u64(json["mismatch"]), "\(json)")
            #expect(word <= at && at < word + 8, "the first differing byte is in the word: \(json)")
            #expect(
                result.stderrLines.contains("vmio-ptrace: verify failed: the byte at \(hx(at)) reads back differently"),
                "\(result.stderr)")
        }
        print("verify mismatch (write): \(mismatches) mismatches in \(attempts) attempts")
        #expect(mismatches > 0, "no write into the scribbled word ever failed its verify (\(attempts) attempts)")
    }
}

/// `count` bytes at `address` of `pid`, read with pread on /proc/PID/mem (root may read any
/// mapping that way, PROT_NONE included).
private func procMem(_ pid: Int32, _ address: UInt64, _ count: Int) -> [UInt8]? {
    let fd = open("/proc/\(pid)/mem", O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out = [UInt8](repeating: 0, count: count)
    let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(Int64(bitPattern: address))) }
    return n == count ? out : nil
}
