// Bad input: each case gets its documented exit status, one line on stderr naming what was
// wrong, nothing on stdout, and the target is left exactly as it was.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

@Suite struct BadInputCLITests {
    let holder: FixtureProcess
    let buf: UInt64
    /// The holder's first 4 KiB of buf, checked unchanged after each case.
    let before: [UInt8]

    init() throws {
        holder = try Fixtures.launch(.holder)
        buf = holder.address("buf")
        before = try holder.get(buf, 4096)
    }

    /// A bad-input case: what to run (`PID`/`BUF` are substituted), the exit status, and a
    /// piece of text stderr must contain.
    struct Case: CustomTestStringConvertible, Sendable {
        let arguments: [String]
        let status: Int32
        let mentions: String
        var testDescription: String { arguments.joined(separator: " ") + " → \(status)" }
        init(_ arguments: [String], _ status: Int32, _ mentions: String) {
            self.arguments = arguments
            self.status = status
            self.mentions = mentions
        }
    }

    static let runTimeCases: [Case] = [
        Case(["read", "999999", "BUF", "16"], 4, "no such process: 999999"),
        Case(["write", "999999", "BUF", "--hex", "00"], 4, "no such process"),
        Case(["maps", "999999"], 4, "no such process"),
        Case(["copy", "999999:BUF", "PID:BUF", "16"], 4, "no such process: 999999"),
        Case(["copy", "PID:BUF", "999999:BUF", "16"], 4, "no such process: 999999"),
        Case(["read", "PID", "0xffffffffffffff00", "0x200"], 1, "overflow"),
        Case(["write", "PID", "0xffffffffffffffff", "--hex", "0011"], 1, "overflow"),
        Case(["copy", "PID:BUF", "PID:0xffffffffffffff00", "0x200"], 1, "overflow"),
        Case(["read", "PID", "0x10", "16"], 1, "0x10 is in no mapping"),
        Case(["write", "PID", "0x10", "--hex", "00"], 1, "0x10 is in no mapping"),
        Case(["copy", "PID:0x10", "PID:BUF", "16"], 1, "0x10 is in no mapping"),
        Case(["copy", "PID:BUF", "PID:0x10", "16"], 1, "0x10 is in no mapping"),
        Case(["read", "PID", "[nosuch]", "16"], 1, "[nosuch]"),
        Case(["read", "PID", "[nosuch]+0x10", "16"], 1, "[nosuch]"),
        Case(["read", "PID", "no-such-file.so+0x10", "16"], 1, "no-such-file.so"),
        Case(["write", "PID", "[nosuch]", "--hex", "00"], 1, "[nosuch]"),
        // Malformed values are usage errors, 64, below (issue 12, bug 13).
        Case(["read", "PID", "BUF", "7", "--format", "u32"], 1, "not a multiple"),
        Case(["read", "PID", "BUF", "12", "--format", "f64"], 1, "not a multiple"),
        Case(["read", "PID", "BUF", "3", "--format", "i16"], 1, "not a multiple"),
        Case(["write", "PID", "BUF", "--file", "/nonexistent/vmio-payload"], 1, "/nonexistent/vmio-payload"),
        Case(["read", "PID", "BUF", "16", "-o", "/nonexistent/dir/out.bin"], 1, "/nonexistent/dir/out.bin"),
    ]

    static let commandLineCases: [Case] = [
        Case(["read", "abc", "BUF", "16"], 64, "abc"),
        Case(["read", "0", "BUF", "16"], 64, "'0'"),
        Case(["maps", "abc"], 64, "abc"),
        Case(["read", "PID", "BUF", "12Q"], 64, "12Q"),
        Case(["read", "PID", "BUF", "16", "--format", "u128"], 64, "u128"),
        Case(["read", "PID", "12abc", "16"], 64, "12abc"),
        Case(["read", "PID", "BUF"], 64, "length"),
        Case(["write", "PID", "BUF"], 64, "exactly one of"),
        Case(["write", "PID", "BUF", "--hex", "00", "--string", "a"], 64, "exactly one of"),
        Case(["write", "PID", "BUF", "--u8", "1", "--u16", "2"], 64, "exactly one of"),
        Case(["write", "PID", "BUF", "--hex", "00", "--nul"], 64, "--nul"),
        Case(["write", "PID", "BUF", "--hex", "zz"], 64, "'zz' is not a hex byte"),
        Case(["write", "PID", "BUF", "--hex", "abc"], 64, "odd number of hex digits"),
        Case(["write", "PID", "BUF", "--hex", ""], 64, "no hex digits"),
        Case(["write", "PID", "BUF", "--u8", "256"], 64, "'256' is not a valid u8 value"),
        Case(["write", "PID", "BUF", "--i8=-129"], 64, "'-129' is not a valid i8 value"),
        Case(["write", "PID", "BUF", "--u16", "0x10000"], 64, "u16"),
        Case(["write", "PID", "BUF", "--u64", "0x10000000000000000"], 64, "u64"),
        Case(["write", "PID", "BUF", "--f64", "pi"], 64, "f64"),
        Case(["search", "PID", "--u32", "-1"], 64, "'-1' is not a valid u32 value"),
        Case(["search", "PID", "--hex", "de", "--region", "perm:q"], 64, "perm:q"),
        // A negative pid is named as the pid (issue 12, bug 6), not the word after it.
        Case(["read", "-5", "0x1000", "8"], 64, "The value '-5' is invalid for '<pid>'"),
        Case(["copy", "PIDBUF", "PID:BUF", "16"], 64, "PIDBUF"),
        Case(["copy", "abc:BUF", "PID:BUF", "16"], 64, "abc:"),
        Case(["frobnicate", "PID"], 64, "frobnicate"),
    ]

    private func substitute(_ arguments: [String]) -> [String] {
        arguments.map {
            $0.replacingOccurrences(of: "PIDBUF", with: "\(holder.pid)\(hx(buf))")
                .replacingOccurrences(of: "PID", with: holder.pidArg)
                .replacingOccurrences(of: "BUF", with: hx(buf))
        }
    }

    private func checkUnchanged() throws {
        #expect(try holder.get(buf, 4096) == before, "the target is left as it was")
        #expect(isFreeRunning(holder.pid))
    }

    @Test(arguments: runTimeCases)
    func runTimeBadInput(_ c: Case) throws {
        let result = try Tool.run(substitute(c.arguments))
        #expect(result.exited(c.status), "\(result)")
        #expect(result.stdout.isEmpty, "nothing on stdout: \(result.stdoutText)")
        #expect(result.stderrLines.count == 1, "exactly one line: \(result.stderr)")
        #expect(result.stderr.hasPrefix("vmio-ptrace: "))
        #expect(result.stderr.contains(c.mentions), "names what was wrong: \(result.stderr)")
        try checkUnchanged()
    }

    @Test(arguments: commandLineCases)
    func malformedCommandLine(_ c: Case) throws {
        let result = try Tool.run(substitute(c.arguments))
        #expect(result.exited(c.status), "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines.count == 1, "exactly one line: \(result.stderr)")
        #expect(result.stderr.hasPrefix("vmio-ptrace: "))
        #expect(result.stderr.contains(substitute([c.mentions])[0]), "names what was wrong: \(result.stderr)")
        try checkUnchanged()
    }

    /// A narrowing value that is not one of the state's type is malformed, 64, as the first
    /// scan's is (the type comes from the state file, so it is found at run time).
    @Test func aScanFilterValueThatDoesNotFitItsStateIsMalformed() throws {
        let state = TempPath("bad-filter.scan")
        let first = try Tool.run(
            "scan", holder.pidArg, "--u8", "7", "-o", state.path, "--region", "\(hx(buf))-\(hx(buf + 4096))")
        #expect(first.exited(0), "\(first)")
        for (filter, value) in [("--eq", "abc"), ("--increased-by", "300"), ("--gt", "-1")] {
            let result = try Tool.run("scan", holder.pidArg, "--state", state.path, filter, value)
            #expect(result.exited(64), "\(filter) \(value): \(result)")
            #expect(result.stderr.contains("'\(value)' is not a valid u8 value for \(filter)"), "\(result)")
        }
        #expect(try holder.get(buf, 4096) == before)
    }

    /// `--tolerance` compares floats in a filter; anywhere else it is refused, 64, not ignored:
    /// a first scan (it matches bytes), a listing (no filter), a state of integers.
    @Test func aToleranceThatWouldBeIgnoredIsRefused() throws {
        let state = TempPath("tolerance.scan")
        let region = "\(hx(buf))-\(hx(buf + 4096))"
        let first = try Tool.run("scan", holder.pidArg, "--f32", "1.5", "-o", state.path, "--region", region)
        #expect(first.exited(0), "\(first)")
        let integers = TempPath("tolerance-u32.scan")
        #expect(try Tool.run("scan", holder.pidArg, "--u32", "7", "-o", integers.path, "--region", region).exited(0))
        let cases: [([String], String)] = [
            (["--f32", "1.5", "-o", TempPath("unused.scan").path, "--region", region], "a first scan matches bytes"),
            (["--state", state.path], "(none given)"),
            (["--state", integers.path, "--unchanged"], "this state holds u32 values"),
        ]
        for (arguments, mentions) in cases {
            let result = try Tool.run(["scan", holder.pidArg] + arguments + ["--tolerance", "0.5"])
            #expect(result.exited(64), "\(arguments): \(result)")
            #expect(result.stderrLines.count == 1 && result.stderr.contains("--tolerance"), "\(result)")
            #expect(result.stderr.contains(mentions), "\(result)")
        }
        let used = try Tool.run("scan", holder.pidArg, "--state", state.path, "--unchanged", "--tolerance", "0.5")
        #expect(used.exited(0), "\(used)")
        #expect(try holder.get(buf, 4096) == before)
    }

    @Test func anInvalidChoiceNamesTheValidOnes() throws {
        let result = try Tool.run("read", holder.pidArg, hx(buf), "16", "--format", "u128")
        #expect(result.exited(64))
        #expect(result.stderrLines.count == 1)
        #expect(
            result.stderr.contains("hex") && result.stderr.contains("u64") && result.stderr.contains("ptr"),
            "\(result.stderr)")
    }

    @Test func jsonErrorObjectOnRunTimeErrors() throws {
        let result = try Tool.run("read", "999999", hx(buf), "16", "--json")
        #expect(result.exited(4))
        let json = try #require(result.json, "\(result)")
        #expect(json["status"] as? Int == 4)
        #expect(json["error"] as? String == "no such process: 999999")
        #expect(result.stderrLines == ["vmio-ptrace: no such process: 999999"])
        let overflow = try Tool.run("read", holder.pidArg, "0xffffffffffffff00", "0x200", "--json")
        #expect(overflow.exited(1))
        #expect(overflow.json?["status"] as? Int == 1)
        #expect((overflow.json?["error"] as? String)?.contains("overflow") == true)
    }

    @Test func helpAndVersion() throws {
        let help = try Tool.run("help", "read")
        #expect(help.exited(0))
        for option in ["--format", "--output", "--stop", "--skip-faults", "--json"] {
            #expect(help.stdoutText.contains(option), "help read mentions \(option)")
        }
        let version = try Tool.run("--version")
        #expect(version.exited(0) && version.lines == ["0.1.0"])
        let top = try Tool.run("--help")
        #expect(top.exited(0))
        for word in ["maps", "read", "write", "copy", "Exit status"] { #expect(top.stdoutText.contains(word)) }
    }
}
