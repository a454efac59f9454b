// The interpreter without a fixture: `let`/`expect`/`echo` semantics, failures and
// their statuses, --keep-going, JSON lines, line-at-a-time input, and the memory verbs
// against the test process itself (reading and writing one's own memory needs no
// privilege and no attach).

import Foundation
import Glibc
import Testing
import VmIO
import VmioCommands
import VmioPtrace

@testable import VmioScript

/// The session's exit status (Testing has an `ExitStatus` of its own).
private typealias ExitStatus = VmIO.ExitStatus

/// What one session printed.
private final class Captured: @unchecked Sendable {
    private let lock = NSLock()
    private var _out: [String] = []
    private var _err: [String] = []
    var out: [String] { lock.withLock { _out } }
    var err: [String] { lock.withLock { _err } }
    func output(_ s: String) { lock.withLock { _out.append(s) } }
    func diagnostic(_ s: String) { lock.withLock { _err.append(s) } }
}

private struct SessionRun {
    let status: ExitStatus
    let out: [String]
    let err: [String]
    let interpreter: Interpreter

    /// Standard output lines parsed as JSON objects.
    var objects: [[String: Any]] {
        out.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}

/// The test process as a target, for sessions that run no verb (`let`, `expect`, `echo`):
/// they never touch it, so one serves every test. (Opening a target reads its maps,
/// which takes a while in a debug build.)
nonisolated(unsafe) private let sharedSelf: Target? = try? Target(pid: getpid())

/// An interpreter on the test process: a fresh target for sessions that use verbs
/// (`fresh`), else the shared one.
private func makeInterpreter(json: Bool = false, keepGoing: Bool = false, fresh: Bool = false) throws -> (
    Interpreter, Captured
) {
    let captured = Captured()
    let target = fresh ? try Target(pid: getpid()) : try #require(sharedSelf)
    let interpreter = Interpreter(
        target: target, json: json, keepGoing: keepGoing,
        output: { captured.output($0) }, diagnostics: { captured.diagnostic($0) })
    return (interpreter, captured)
}

/// Runs `lines` as a script file against the test process itself.
private func session(_ lines: [String], json: Bool = false, keepGoing: Bool = false, fresh: Bool = false) throws
    -> SessionRun
{
    let (interpreter, captured) = try makeInterpreter(json: json, keepGoing: keepGoing, fresh: fresh)
    let status = interpreter.run(script: lines.joined(separator: "\n") + "\n")
    return SessionRun(status: status, out: captured.out, err: captured.err, interpreter: interpreter)
}

private func hx(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

/// Two pages of our own memory: the first `rw-p`, the second `PROT_NONE`, so a read
/// running off the first page faults at a known address. Unmapped at deinit.
private final class OwnPages {
    let base: UnsafeMutableRawPointer
    var address: UInt64 { UInt64(UInt(bitPattern: base)) }
    var bytes: UnsafeMutableBufferPointer<UInt8> {
        UnsafeMutableBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: 4096)
    }

    init() throws {
        let p = mmap(nil, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw POSIXError(.ENOMEM) }
        base = p
        mprotect(base + 4096, 4096, PROT_NONE)
        for i in 0..<4096 { bytes[i] = UInt8(truncatingIfNeeded: i * 7 + 1) }
    }

    func put(_ s: String, at offset: Int) { for (i, b) in s.utf8.enumerated() { bytes[offset + i] = b } }
    func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
    }

    deinit { munmap(base, 8192) }
}

// MARK: - Expectations and values

@Suite struct InterpreterCompareTests {
    /// `expect LEFT OP RIGHT` and whether it holds.
    static let comparisons: [(String, Bool)] = [
        // Integers (wide: no wrap at 64 bits).
        ("1 == 1", true), ("1 != 1", false), ("1 < 2", true), ("2 < 1", false), ("2 <= 2", true),
        ("3 >= 4", false), ("4 > 3", true), ("-1 < 0", true), ("0x10 == 16", true), ("4K == 4096", true),
        ("0xffffffffffffffff > 0x7fffffffffffffff", true), ("0xffffffffffffffff + 1 > 0xffffffffffffffff", true),
        ("-0x8000000000000000 - 1 < -0x8000000000000000", true), ("2 * 3 + 1 == 7", true), ("10 - 2 - 3 == 5", true),
        // Floats, and integers with floats.
        ("1.5 > 1", true), ("1 == 1.0", true), ("0.1 + 0.2 == 0.3", false), ("-1.5 < -1", true), ("2 * 1.5 == 3", true),
        // Strings: in Unicode order.
        (#""abc" < "abd""#, true), (#""abc" == "abc""#, true), (#""b" > "abc""#, true), (#""" < "a""#, true),
        (#""a" + "b" == "ab""#, true), (#""A" < "a""#, true),
        // Bytes: lexicographic, a prefix first.
        (#"x"01" < x"0100""#, true), (#"x"ff" > x"0100""#, true), (#"x"dead" == x"de ad""#, true),
        (#"x"de" + x"ad" == x"dead""#, true), (#"x"00" != x"0000""#, true),
        // A string against bytes compares its UTF-8, either way round.
        (#""AB" == x"4142""#, true), (#"x"4142" == "AB""#, true), (#""AB" < x"4143""#, true),
        (#"x"4143" > "AB""#, true), (#"x"4141" < "AB""#, true), (#""AB" > x"4141""#, true), (#""é" == x"c3a9""#, true),
        (#""AB" <= x"41""#, false), (#"x"41" <= "AB""#, true),
    ]

    @Test(arguments: comparisons)
    func expectation(_ text: String, _ holds: Bool) throws {
        let run = try session(["expect " + text], json: true)
        #expect(run.status == (holds ? .ok : .badInput), "\(text): \(run.out)")
        let first = try #require(run.objects.first)
        let result = try #require(first["result"] as? [String: Any])
        #expect(result["holds"] as? Bool == holds, "\(text)")
        #expect(first["ok"] as? Bool == holds)
    }

    @Test func truthTests() throws {
        let truths: [(String, Bool)] = [
            ("1", true), ("0", false), ("-1", true), (#""""#, false), (#""x""#, true), (#"x"00""#, true),
            ("0.0", false), ("0.5", true), ("2 - 2", false),
        ]
        for (text, holds) in truths {
            let run = try session(["expect " + text])
            #expect(run.status == (holds ? .ok : .badInput), "\(text)")
            if !holds { #expect(run.err.last?.hasSuffix("is not true") == true, "\(run.err)") }
        }
    }

    @Test func incomparableKindsFailWithStatus1() throws {
        let run = try session([#"expect 1 == "a""#])
        #expect(run.status == .badInput)
        #expect(run.err == ["vmio-ptrace: line 1:1: cannot compare integer 1 with string a"])
        let bytes = try session([#"expect x"01" < 1.5"#])
        #expect(bytes.status == .badInput)
        #expect(bytes.err.first?.contains("cannot compare bytes") == true, "\(bytes.err)")
    }

    @Test func failedExpectationNamesLineColumnAndValues() throws {
        let run = try session(["let a = 3", "", "# the check", "  expect $a * 2 == 7", "echo not reached"])
        #expect(run.status == .badInput)
        #expect(run.out.isEmpty)
        #expect(run.err == ["vmio-ptrace: line 4:3: expectation failed: 6 == 7"])
        #expect(run.interpreter.failures.map(\.line) == [4])
        #expect(run.interpreter.commandsRun == 2)
    }
}

@Suite struct InterpreterValueTests {
    @Test func letComputes() throws {
        let run = try session([
            "let a = 2 + 3 * 4", "let b = $a - 20", "let c = -$b", #"let s = "ab" + "cd""#, #"let x = x"de" + x"ad""#,
            "let f = 1.5 * 2", "let big = 0xffffffffffffffff * 16", "let d = ${a}*${a}",
        ])
        #expect(run.status == .ok, "\(run.err)")
        let v = run.interpreter.variables
        #expect(v["a"] == .int(14))
        #expect(v["b"] == .int(-6))
        #expect(v["c"] == .int(6))
        #expect(v["s"] == .string("abcd"))
        #expect(v["x"] == .bytes([0xde, 0xad]))
        #expect(v["f"] == .double(3))
        #expect(v["big"] == .int(Int128(UInt64.max) * 16))
        #expect(v["d"] == .int(196))
    }

    @Test func arithmeticErrorsNameTheirColumn() throws {
        let cases: [(String, String)] = [
            (
                "let b = 0xffffffffffffffff * 0xffffffffffffffff",
                "line 1:28: 18446744073709551615 * 18446744073709551615 overflows"
            ),
            (#"let b = "a" * 2"#, "line 1:13: cannot compute string * integer"),
            (#"let b = "a" - "b""#, "line 1:13: cannot compute string - string"),
            (#"let b = x"00" + "a""#, "line 1:15: cannot compute bytes + string"),
            (#"let b = -"a""#, "line 1:9: cannot negate string a"),
            ("let b = $nope + 1", "line 1:9: unknown variable $nope"),
        ]
        for (line, message) in cases {
            let run = try session([line])
            #expect(run.status == .badInput)
            #expect(run.err == ["vmio-ptrace: " + message], "\(line)")
        }
    }

    @Test func echoInterpolates() throws {
        let run = try session([
            "let v = 3", "let big = 0x10000", "let small = 0xffff", "let neg = -5", #"let b = x"dead""#, "let f = 3.5",
            #"let s = "text""#,
            #"echo v=$v ${v}x "quoted $v" $big $small $neg $b $f $s"#,
            "echo", #"echo "  spaced  ""#,
        ])
        #expect(run.status == .ok, "\(run.err)")
        #expect(run.out == [#"v=3 3x quoted 3 0x10000 65535 -5 x"dead" 3.5 text"#, "", "  spaced  "])
    }

    @Test func echoOfAnUnknownVariableFails() throws {
        let run = try session(["echo fine", "echo $nope here"])
        #expect(run.status == .badInput)
        #expect(run.out == ["fine"])
        #expect(run.err == ["vmio-ptrace: line 2:6: unknown variable $nope"])
    }

    @Test func sleepSleeps() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let run = try session(["sleep 30ms"], json: true)
        #expect(clock.now - start >= .milliseconds(30))
        #expect(run.status == .ok)
        let result = try #require(run.objects.first?["result"] as? [String: Any])
        #expect(abs((result["seconds"] as? Double ?? 0) - 0.03) < 1e-9)
    }
}

// MARK: - Running: failures, keep-going, JSON, line at a time

@Suite struct InterpreterRunTests {
    @Test func aSyntaxErrorAnywhereRunsNothing() throws {
        let run = try session(["echo first", "let x = (1", "echo third", "frob"])
        #expect(run.status == .badInput)
        #expect(run.out.isEmpty)
        #expect(run.interpreter.commandsRun == 0)
        #expect(
            run.err == [
                "vmio-ptrace: line 2:9: unbalanced '('",
                "vmio-ptrace: line 4:1: unknown command 'frob' (expected maps, read, write, copy, search, dump, restore, diff, scan, monitor, core, backtrace, regs, symbol, break, watch, delete, wait, step, finish, let, expect, stop, cont, echo, sleep)",
            ])
        // With --json: one object a bad line, then the summary.
        let json = try session(["echo first", "let x = (1"], json: true)
        #expect(json.status == .badInput)
        let objects = json.objects
        #expect(objects.count == 2, "\(json.out)")
        #expect(objects.first?["line"] as? Int == 2 && objects.first?["verb"] as? String == "parse")
        #expect(objects.first?["ok"] as? Bool == false && objects.first?["status"] as? Int == 1)
        #expect(objects.first?["error"] as? String == "line 2:9: unbalanced '('")
        let summary = try #require(objects.last?["summary"] as? [String: Any])
        #expect(summary["commands"] as? Int == 0 && summary["status"] as? Int == 1)
    }

    @Test func theFirstFailureEndsTheSession() throws {
        let run = try session(["echo one", "expect 1 == 2", "echo three"])
        #expect(run.status == .badInput)
        #expect(run.out == ["one"])
        #expect(run.err == ["vmio-ptrace: line 2:1: expectation failed: 1 == 2"])
    }

    @Test func keepGoingRunsEveryLineAndListsEveryFailure() throws {
        let run = try session(
            ["echo one", "expect 1 == 2", "echo $nope", "echo four", "expect 3 < 2"], keepGoing: true)
        #expect(run.status == .badInput)
        #expect(run.out == ["one", "four"])
        #expect(run.interpreter.commandsRun == 5)
        #expect(
            run.err == [
                "vmio-ptrace: line 2:1: expectation failed: 1 == 2",
                "vmio-ptrace: line 3:6: unknown variable $nope",
                "vmio-ptrace: line 5:1: expectation failed: 3 < 2",
                "vmio-ptrace: 3 of 5 commands failed:",
                "  line 2:1: expectation failed: 1 == 2",
                "  line 3:6: unknown variable $nope",
                "  line 5:1: expectation failed: 3 < 2",
            ])
    }

    @Test func keepGoingStatusIsTheFirstFailures() throws {
        let pages = try OwnPages()
        // A partial read (2) first, then a failed expectation (1): the session exits 2.
        let run = try session(["read \(hx(pages.address + 4090)) 16", "expect 0"], keepGoing: true, fresh: true)
        #expect(run.status == .partialCopy)
        #expect(run.interpreter.failures.map(\.status) == [.partialCopy, .badInput])
    }

    @Test func jsonLines() throws {
        let run = try session(
            ["# comment", "let a = 0x10", "echo a is $a", "expect $a == 16", "expect $a == 17"],
            json: true, keepGoing: true)
        #expect(run.status == .badInput)
        #expect(run.out.count == 5)
        let objects = run.objects
        #expect(objects.count == 5, "every line is one JSON object: \(run.out)")
        #expect(run.out[0] == #"{"line":2,"verb":"let","ok":true,"status":0,"result":{"name":"a","value":16}}"#)
        #expect(run.out[1] == #"{"line":3,"verb":"echo","ok":true,"status":0,"result":{"text":"a is 16"}}"#)
        #expect(
            run.out[2]
                == #"{"line":4,"verb":"expect","ok":true,"status":0,"result":{"left":16,"op":"==","right":16,"holds":true}}"#
        )
        #expect(
            run.out[3]
                == #"{"line":5,"verb":"expect","ok":false,"status":1,"result":{"left":16,"op":"==","right":17,"holds":false},"error":"expectation failed: 16 == 17"}"#
        )
        let summary = try #require(objects[4]["summary"] as? [String: Any])
        #expect(summary["commands"] as? Int == 4)
        #expect(summary["status"] as? Int == 1)
        let failures = try #require(summary["failures"] as? [[String: Any]])
        #expect(failures.count == 1 && failures[0]["line"] as? Int == 5 && failures[0]["status"] as? Int == 1)
        // Nothing goes to stderr but the --keep-going list.
        #expect(run.err.first == "vmio-ptrace: 1 of 4 commands failed:")
    }

    @Test func linesAreAnsweredOneAtATime() throws {
        let (interpreter, captured) = try makeInterpreter(json: true)
        let lines = ["let a = 1", "", "expect $a == 1", "echo done"]
        var asked = 0
        var outputsWhenAsked: [Int] = []
        let status = interpreter.run(lines: {
            // Each line has been answered before the next one is asked for.
            outputsWhenAsked.append(captured.out.count)
            defer { asked += 1 }
            return asked < lines.count ? lines[asked] : nil
        })
        #expect(status == .ok)
        #expect(outputsWhenAsked == [0, 1, 1, 2, 3])  // the empty line answers nothing
        #expect(captured.out.count == 4)
        #expect(captured.out.last?.hasPrefix(#"{"summary":{"commands":3,"failures":[],"status":0}"#) == true)
    }

    @Test func lineAtATimeStopsAtABadLineUnlessKeepGoing() throws {
        for keepGoing in [false, true] {
            let (interpreter, captured) = try makeInterpreter(json: false, keepGoing: keepGoing)
            var lines = ["echo one", "frob", "echo three"][...]
            let status = interpreter.run(lines: { lines.popFirst() })
            #expect(status == .badInput)
            #expect(captured.out == (keepGoing ? ["one", "three"] : ["one"]))
            #expect(captured.err.first?.hasPrefix("vmio-ptrace: line 2:1: unknown command 'frob'") == true)
            // The bad line counts as a command that failed.
            #expect(interpreter.commandsRun == (keepGoing ? 3 : 2))
            if keepGoing { #expect(captured.err.contains("vmio-ptrace: 1 of 3 commands failed:"), "\(captured.err)") }
        }
    }

    @Test func backtraceAndRegsRefuseTheToolItself() throws {
        // A process cannot ptrace its own threads: the verbs say so instead of hanging.
        let (interpreter, captured) = try makeInterpreter(fresh: true)
        let status = interpreter.run(script: "regs\n")
        #expect(status == .badInput)
        #expect(captured.err == ["vmio-ptrace: line 1:1: vmio-ptrace cannot trace its own threads; give another pid"])
        let (again, capturedAgain) = try makeInterpreter(fresh: true)
        // A malformed value is a usage error, in a session as on the command line.
        #expect(again.run(script: "backtrace --depth 0\n") == .usage)
        #expect(capturedAgain.err.first?.contains("--depth must be at least 1") == true)
    }
}

// MARK: - The memory verbs, on the test process itself

@Suite struct InterpreterOwnMemoryTests {
    @Test func readWriteAndExpect() throws {
        let pages = try OwnPages()
        pages.put(UInt64(0x1122_3344_5566_7788), at: 0x200)
        pages.put(Int32(-5), at: 0x210)
        pages.put(Double(3.5).bitPattern, at: 0x218)
        pages.put("hello, vmio\0", at: 0x300)
        let b = hx(pages.address)
        let run = try session(
            [
                "let b = \(b)",
                "expect (read $b+0x200 8 --format u64) == 0x1122334455667788",
                "expect (read $b+0x210 4 --format i32) == -5",
                "expect (read $b+0x218 8 --format f64) == 3.5",
                "expect (read $b+0x300 64 --format str) == \"hello, vmio\"",
                "expect (read $b+0x200 2) == x\"8877\"",
                "let p = read $b+0x200 8 --format ptr",
                "expect $p == 0x1122334455667788",
                "write $b+0x400 --u64 0xdeadbeef --verify",
                "write $b+0x408 --string \"patched\" --nul",
                "write $b+0x410 --hex \"01 02 03\"",
                "let v = read $b+0x400 4 --format u32",
                "write $b+0x420 --u32 $v+1",
                "expect (read $b+0x420 4 --format u32) == 0xdeadbef0",
                "write $b+0x428 --i16 -2",
            ], fresh: true)
        #expect(run.status == .ok, "\(run.err)")
        #expect(Array(pages.bytes[0x400..<0x408]) == [0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0])
        #expect(Array(pages.bytes[0x408..<0x410]) == Array("patched\0".utf8))
        #expect(Array(pages.bytes[0x410..<0x413]) == [1, 2, 3])
        #expect(Array(pages.bytes[0x420..<0x424]) == [0xf0, 0xbe, 0xad, 0xde])
        #expect(Array(pages.bytes[0x428..<0x42a]) == [0xfe, 0xff])
        #expect(run.out.contains("wrote 8 bytes at \(hx(pages.address + 0x400)) (verified)"))
        #expect(run.interpreter.variables["p"] == .int(0x1122_3344_5566_7788))
    }

    @Test func searchCopyAndPidAddresses() throws {
        let pages = try OwnPages()
        let marker = "VMIO-SELF-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        pages.put(marker, at: 0x100)
        pages.put(marker, at: 0x700)
        let region = "\(hx(pages.address))-\(hx(pages.address + 4096))"
        let pid = getpid()
        let run = try session(
            [
                "let first = search --string \"\(marker)\" --region \(region)",
                "let second = search --string \"\(marker)\" --region \(region) --nth 2",
                "expect $first == \(hx(pages.address + 0x100))",
                "expect $second - $first == 0x600",
                "expect (search --string \"\(marker)\" --region \(region) --nth 2) == $second",
                "copy $first \(pid):$first+0x800 \(marker.utf8.count)",
                "expect (read \(pid):$first+0x800 \(marker.utf8.count) --format str) == \"\(marker)\"",
                "write \(pid):$first+0x900 --u8 0x7f",
            ], fresh: true)
        #expect(run.status == .ok, "\(run.err)")
        #expect(Array(pages.bytes[0x900..<(0x900 + marker.utf8.count)]) == Array(marker.utf8))
        #expect(pages.bytes[0xa00] == 0x7f)
        #expect(
            run.out.contains(
                "copied \(marker.utf8.count) bytes from \(pid):\(hx(pages.address + 0x100)) to \(pid):\(hx(pages.address + 0x900))"
            ))

        let none = try session(["let h = search --string \"\(marker)-nope\" --region \(region) --nth 1"], fresh: true)
        #expect(none.status == .badInput)
        #expect(none.err == ["vmio-ptrace: line 1:9: search found 0 hits, not 1"])
    }

    @Test func aFaultingReadFailsWithStatus2AndItsLine() throws {
        let pages = try OwnPages()
        let guardPage = pages.address + 4096
        let run = try session(["echo before", "read \(hx(pages.address + 4090)) 16", "echo after"], fresh: true)
        #expect(run.status == .partialCopy)
        #expect(run.out.first == "before" && !run.out.contains("after"))
        #expect(
            run.err == [
                "vmio-ptrace: line 2:1: partial read: 6 of 16 bytes moved; first faulting address \(hx(guardPage))"
            ])

        // Inside an expression the failure keeps its status and names the call's column.
        let nested = try session(["expect (read \(hx(guardPage)) 8 --format u64) == 0"], fresh: true)
        #expect(nested.status == .partialCopy)
        #expect(
            nested.err == [
                "vmio-ptrace: line 1:9: partial read: 0 of 8 bytes moved; first faulting address \(hx(guardPage))"
            ])

        // An address in no mapping is bad input.
        let nowhere = try session(["read 0x10 8"], fresh: true)
        #expect(nowhere.status == .badInput)
        #expect(nowhere.err == ["vmio-ptrace: line 1:1: address 0x10 is in no mapping of pid \(getpid())"])
        // A command that throws inside an expression is a ScriptError at the call's column too.
        let inside = try session(["expect (read 0x10 8 --format u64) == 1"], json: true, fresh: true)
        #expect(inside.status == .badInput)
        #expect(inside.out.first?.contains(#""error":"line 1:9: address 0x10 is in no mapping"#) == true, "\(inside)")
    }

    @Test("evaluate throws a ScriptError (a typed error) at the column of what failed, with its status")
    func evaluateThrowsTypedErrors() throws {
        let (interpreter, _) = try makeInterpreter(fresh: true)
        let line = "expect $nope + (read 0x10 8) == 1"
        let parser = Parser(line: 3, text: line)
        let unknown = #expect(throws: ScriptError.self) {
            try interpreter.evaluate(.variable("nope", column: 8), parser: parser)
        }
        #expect(unknown?.line == 3 && unknown?.column == 8 && unknown?.message == "unknown variable $nope")
        guard case .expect(.binary(_, _, let call, _), _, _) = try Parser.parse(line, line: 3) else {
            Issue.record("\(line) parses as something else")
            return
        }
        // `error` is a ScriptError: evaluate's throws is typed.
        do throws(ScriptError) {
            _ = try interpreter.evaluate(call, parser: parser)
            Issue.record("reading address 0x10 succeeded")
        } catch {
            #expect(error.column == 17 && error.status == .badInput, "\(error)")
            #expect(error.message == "address 0x10 is in no mapping of pid \(getpid())")
        }
    }
}
