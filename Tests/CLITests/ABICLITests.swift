// The target's own ABI: a 32-bit process (fixtures/holder32, built here with `cc -m32`,
// which SwiftPM cannot do) is read and written as 32-bit: `ptr` is 4 bytes and prints 8 hex
// digits, word dumps group by 4, symbols resolve, and maps/doctor report ELF32.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The package's root, from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// fixtures/holder32 built with `cc -m32` next to the other fixtures (as
/// `vmio-fixture-holder32` in the build directory), once a test run.
enum Holder32 {
    static let build: Result<URL, BuildFailure> = {
        let binary = Fixtures.buildDirectory.appendingPathComponent("vmio-fixture-holder32")
        // Built under a temporary name and renamed, so a concurrent run never sees half a file.
        let partial = binary.path + ".\(getpid()).part"
        let source = packageRoot.appendingPathComponent("fixtures/holder32/main.c").path
        guard
            let result = try? Tool.runProgram(
                "/usr/bin/cc", ["-m32", "-O0", "-g", "-o", partial, source], timeout: 120)
        else {
            return .failure(BuildFailure(message: "cannot run /usr/bin/cc"))
        }
        guard result.exited(0), rename(partial, binary.path) == 0 else {
            unlink(partial)
            return .failure(
                BuildFailure(message: "cc -m32 failed (install gcc-multilib: scripts/setup): \(result.stderr)"))
        }
        return .success(binary)
    }()

    struct BuildFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    static func launch() throws -> FixtureProcess {
        try Fixtures.launch(.holder, executable: try build.get())
    }
}

/// `0x` and exactly `digits` lowercase hex digits.
func padded(_ value: UInt64, _ digits: Int) -> String {
    let hex = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - hex.count)) + hex
}

@Suite struct ABICLITests {
    @Test func a32BitTargetIsReadAs32Bit() throws {
        let holder = try Holder32.launch()
        defer { holder.terminate() }
        let buf = holder.address("buf"), ptr = holder.address("ptr")
        #expect(buf < 1 << 32 && ptr == buf + 0x20)

        // ptr: 4 bytes, 8 hex digits.
        let one = try Tool.run("read", holder.pidArg, hx(ptr), "4", "--format", "ptr")
        #expect(one.exited(0), "\(one)")
        #expect(one.lines == [padded(buf + 0x100, 8)])
        let two = try Tool.run("read", holder.pidArg, hx(ptr), "8", "--format", "ptr")
        #expect(two.lines == ["\(hx(ptr)): \(padded(buf + 0x100, 8))", "\(hx(ptr + 4)): 0xdeadbeef"], "\(two)")
        let json = try #require(try Tool.run("read", holder.pidArg, hx(ptr), "4", "--format", "ptr", "--json").json)
        #expect(json["values"] as? [String] == [padded(buf + 0x100, 8)])
        let odd = try Tool.run("read", holder.pidArg, hx(ptr), "6", "--format", "ptr")
        #expect(odd.exited(1))
        #expect(odd.stderr.contains("not a multiple of the 4-byte ptr values"), "\(odd.stderr)")

        // Fixed-width values are what they are, whatever the pointer width.
        #expect(try Tool.run("read", holder.pidArg, hx(buf + 0x10), "4", "--format", "u32").lines == ["3735928559"])
        #expect(
            try Tool.run("read", holder.pidArg, hx(buf + 0x18), "8", "--format", "u64").lines == ["1234605616436508552"]
        )
        let marker = try Tool.run("read", holder.pidArg, hx(buf + 0x100), "32", "--format", "str")
        #expect(marker.lines == ["VMIO-HOLDER32"])

        // A word dump groups by the target's 4-byte words.
        let words = try Tool.run("read", holder.pidArg, hx(buf + 0x10), "16", "--words")
        #expect(words.exited(0))
        let ptrDigits = String(padded(buf + 0x100, 8).dropFirst(2))
        let first = try #require(words.lines.first)
        #expect(first.contains(": deadbeef ") && first.contains(" 55667788 11223344  "), "\(first)")
        let second = try Tool.run("read", holder.pidArg, hx(buf + 0x18), "16", "--words")
        #expect(second.lines.first?.contains(": 55667788 11223344 \(ptrDigits) deadbeef  ") == true, "\(second.lines)")
    }

    @Test func a32BitTargetIsWrittenAs32Bit() throws {
        let holder = try Holder32.launch()
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let w32 = try Tool.run("write", holder.pidArg, hx(buf + 0x40), "--u32", "0x01020304", "--verify")
        #expect(w32.exited(0), "\(w32)")
        #expect(try holder.get(buf + 0x40, 4) == [4, 3, 2, 1])
        let w64 = try Tool.run("write", holder.pidArg, hx(buf + 0x48), "--u64", "0x8877665544332211", "--verify")
        #expect(w64.exited(0), "\(w64)")
        #expect(try holder.get(buf + 0x48, 8) == [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88])
        #expect(
            try Tool.run("read", holder.pidArg, hx(buf + 0x48), "8", "--format", "u64").lines == [
                "\(UInt64(0x8877_6655_4433_2211))"
            ])
        #expect(
            try Tool.run("read", holder.pidArg, hx(buf + 0x48), "8", "--format", "ptr").lines
                == ["\(hx(buf + 0x48)): 0x44332211", "\(hx(buf + 0x4c)): 0x88776655"])
        // Nothing around them moved.
        #expect(try holder.get(buf + 0x3c, 4) == (0x3c..<0x40).map(holderPattern))
        #expect(try holder.get(buf + 0x50, 4) == (0x50..<0x54).map(holderPattern))
    }

    @Test func theABIIsReportedAndSymbolsResolve() throws {
        let holder = try Holder32.launch()
        defer { holder.terminate() }
        let maps = try #require(try Tool.run("maps", holder.pidArg, "--json").json)
        let abi = try #require(maps["abi"] as? [String: Any])
        #expect(abi["pointer_width"] as? Int == 4 && abi["class"] as? String == "ELF32")
        #expect(abi["machine"] as? String == "i386" && abi["byte_order"] as? String == "little")
        #expect(abi["source"] as? String == "elf-header")
        let doctor = try #require(try Tool.run("doctor", holder.pidArg, "--json").json)
        #expect((doctorChecks(doctor)["abi"]?["detail"] as? String)?.hasPrefix("ELF32 little-endian i386") == true)
        // The 32-bit executable's symbol table.
        let counter = try Tool.run("read", holder.pidArg, "sym:counter", "4", "--format", "u32")
        #expect(counter.exited(0), "\(counter)")
        #expect(counter.lines == ["12648430"])
        #expect(
            try Tool.run("read", holder.pidArg, "sym:counter", "4", "--format", "u32", "--json").json?["address"]
                as? String
                == hx(holder.address("counter")))
    }

    @Test func a64BitTargetKeeps64BitPointers() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let maps = try #require(try Tool.run("maps", holder.pidArg, "--json").json)
        #expect((maps["abi"] as? [String: Any])?["pointer_width"] as? Int == 8)
        #expect((maps["abi"] as? [String: Any])?["machine"] as? String == "x86_64")
        #expect(
            try Tool.run("read", holder.pidArg, hx(buf + 0x200), "8", "--format", "ptr").lines == ["0x1122334455667788"]
        )
        let words = try Tool.run("read", holder.pidArg, hx(buf + 0x200), "16", "--words")
        #expect(words.lines.first?.contains(": 1122334455667788 400c000000000000  ") == true, "\(words.lines)")
    }
}
