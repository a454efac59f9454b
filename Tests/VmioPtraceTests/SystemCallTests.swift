// The system-call names `regs` shows next to orig_rax: the generated tables against
// well-known numbers and, when the headers are installed, against the headers themselves
// (so a stale generated file shows up). A live thread's orig_rax is named in
// Tests/CLITests/FeaturesCLITests.swift, where another process is the tracer.

import Foundation
import Testing
import VmIO
import VmioPtrace

@Suite struct SystemCallTests {
    static let x86_64 = TargetABI(pointerWidth: 8, byteOrder: .little, machine: 62, source: .elfHeader)
    static let i386 = TargetABI(pointerWidth: 4, byteOrder: .little, machine: 3, source: .elfHeader)
    static let aarch64 = TargetABI(pointerWidth: 8, byteOrder: .little, machine: 183, source: .elfHeader)

    @Test func wellKnownX86_64Numbers() {
        #expect(SystemCall.name(0, abi: Self.x86_64) == "read")
        #expect(SystemCall.name(1, abi: Self.x86_64) == "write")
        #expect(SystemCall.name(0xe6, abi: Self.x86_64) == "clock_nanosleep")
        #expect(SystemCall.name(202, abi: Self.x86_64) == "futex")
        #expect(SystemCall.name(232, abi: Self.x86_64) == "epoll_wait")
        #expect(SystemCall.name(61, abi: Self.x86_64) == "wait4")
        #expect(SystemCall.name(7, abi: .host) == "poll", "the host is x86-64 here")
    }

    @Test func i386AndX32NumbersUseTheirOwnTables() {
        #expect(SystemCall.name(3, abi: Self.i386) == "read")
        #expect(SystemCall.name(267, abi: Self.i386) == "clock_nanosleep")
        #expect(SystemCall.name(240, abi: Self.i386) == "futex")
        #expect(SystemCall.name(0x4000_0000 + 230, abi: Self.x86_64) == "clock_nanosleep")
        #expect(SystemCall.name(0x4000_0000 + 512, abi: Self.x86_64) == "rt_sigaction", "an x32-only number")
    }

    @Test func noNameOutsideASystemCallOrTheTables() {
        #expect(SystemCall.name(UInt64.max, abi: Self.x86_64) == nil, "orig_rax -1: in no system call")
        #expect(SystemCall.name(UInt64.max, abi: Self.i386) == nil)
        #expect(SystemCall.name(400, abi: Self.x86_64) == nil, "a gap of the x86-64 table (335…423)")
        #expect(SystemCall.name(100_000, abi: Self.x86_64) == nil)
        #expect(SystemCall.name(0, abi: Self.aarch64) == nil, "no table for another machine")
    }

    /// Every `#define __NR_NAME N` of the installed header names N in the generated table,
    /// and the table has no name the header lacks.
    @Test(arguments: [("unistd_64.h", 62, 0 as UInt64), ("unistd_32.h", 3, 0), ("unistd_x32.h", 62, 0x4000_0000)])
    func generatedTableMatchesTheInstalledHeader(header: String, machine: Int, bit: UInt64) throws {
        let path = "/usr/include/x86_64-linux-gnu/asm/" + header
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }  // headers not installed
        let abi = machine == 3 ? Self.i386 : Self.x86_64
        var expected: [UInt64: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("#define __NR_") {
            let words = line.split(separator: " ", maxSplits: 2)
            guard words.count == 3 else { continue }
            // `N`, or `(__X32_SYSCALL_BIT + N)` in the x32 header.
            let value = words[2].split(separator: " ").last?.filter { $0 != ")" } ?? ""
            guard let number = UInt64(value) else { continue }
            expected[number] = String(words[1].dropFirst(5))
        }
        #expect(expected.count > 300, "parsed \(expected.count) definitions of \(path)")
        for (number, name) in expected {
            #expect(SystemCall.name(number | bit, abi: abi) == name, "\(header): \(number)")
        }
        let highest = try #require(expected.keys.max())
        for number in 0...highest + 8 where expected[number] == nil {
            #expect(SystemCall.name(number | bit, abi: abi) == nil, "\(header): \(number) is unused")
        }
    }
}
