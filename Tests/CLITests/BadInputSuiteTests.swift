// A generated bad-input suite over the whole command line (issue 8, hardening).
//
// Some 250+ bad invocations across every command: malformed and impossible pids (0, -1, 'abc',
// 2^31, a pid that does not exist, a kernel thread, a zombie, the tool itself), addresses and
// lengths that overflow or name nothing, malformed hex and search patterns, missing files,
// unwritable / symlinked / existing output paths, broken session scripts, and `run` with a
// program that does not exist. For each: the documented exit status, exactly one line on
// stderr starting `vmio-ptrace: ` and naming what was wrong, nothing on stdout (with `--json`,
// exactly the documented `{"error", "status"}` object), no crash or Swift runtime trap, and
// the holder fixture left exactly as it was (its `buf`, `counter`, `answer`, `ping`, not
// stopped or traced). File-system cases also check what is left on disk afterwards.
//
// Cases that may attach to the holder (sessions, `run`, backtrace, regs, --stop, restore)
// run one at a time; the others run in parallel batches.
//
// Documented behaviours that are not "one line on stderr", and so not cases here:
// - `doctor PID` prints its report on stdout (exit 4 for a zombie or a missing pid, nothing
//   on stderr).
// - `run` prints `vmio-ptrace: started CMD as pid N …` on stderr before the session runs; that
//   line is allowed (and only that one) in the `run` cases below.
// - `read PID ADDR 0` reads nothing and exits 0 with empty output (see `zeroLengths`).
// - `restore` onto a process whose maps no longer match lists each mismatch on its own
//   indented line after the error line; `session --keep-going` lists every failure at the end.
// - A read cut short with `-o FILE` leaves no FILE; what moved is kept as `FILE.partial`.
// - Session integers are 128-bit: `0xffffffffffffffff + 1` is a value, refused only when used
//   as an address; beyond 128 bits is an `overflows` error.

import Foundation
import Testing
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A kernel thread (PF_KTHREAD in /proc/PID/stat) whose maps are empty, e.g. kthreadd; nil
/// when none is visible (a pid namespace of its own).
func visibleKernelThread() -> Int32? {
    for pid in Int32(2)...Int32(400) {
        guard let stat = readProcFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        // fields[0] is the state (field 3); flags is field 9.
        guard fields.count > 6, let flags = UInt64(fields[6]), flags & 0x0020_0000 != 0 else { continue }
        if readProcFile("/proc/\(pid)/maps") == "" { return pid }
    }
    return nil
}

@Suite(.serialized) struct BadInputSuiteTests {

    /// One generated bad invocation.
    struct Case: Sendable {
        enum Mode: Sendable { case parallel, serial }
        /// The arguments; `PID`, `BUF`, `CODE`, `RO`, `ZOMBIE`, `KTHREAD`, `TMP` (this case's
        /// own directory) and `DUMP` (a good dump of the holder) are substituted.
        var arguments: [String]
        var status: Int32
        /// A piece of text the stderr line must contain (substituted too).
        var mentions: String
        var mode: Mode = .parallel
        /// Tells apart cases with the same arguments and different setups.
        var variant = ""
        /// Prepares this case's directory (the substituted TMP path is given).
        var setup: (@Sendable (String) throws -> Void)? = nil
        /// Checks what the case left on disk: problems, none when all is well.
        var after: (@Sendable (String) -> [String])? = nil
        /// A session script written to TMP/s.vmio first (substituted), for `SCRIPT` in the arguments.
        var script: String? = nil
        /// With `--json`: stdout must be the error object.
        var json: Bool = false
        /// Needs the kernel-thread pid (run by `kernelThreadInvocations`, skipped visibly when
        /// none is visible).
        var needsKernelThread = false
    }

    // MARK: - Fixtures and substitution

    /// Everything the cases refer to, set up once.
    final class Context: @unchecked Sendable {
        let holder: FixtureProcess
        let states: FixtureProcess
        let zombie: Int32
        let kthread: Int32?
        let buf: UInt64
        let code: UInt64
        let ro: UInt64
        let root: String
        let dump: String

        init() throws {
            holder = try Fixtures.launch(.holder)
            states = try Fixtures.launch(.states)
            let reply = try states.send("zombie")
            guard reply.hasPrefix("zombie "), let z = Int32(reply.dropFirst("zombie ".count)) else {
                throw HolderError(reply: reply)
            }
            zombie = z
            kthread = findKernelThread()
            buf = holder.address("buf")
            code = holder.address("code")
            ro = holder.address("ro")
            root = NSTemporaryDirectory() + "vmio-badinput-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            dump = root + "/gooddump"
            let made = try Tool.run([
                "dump", String(holder.pid), "--region", "\(hx(buf))-\(hx(buf + 0x2000))", "-o", dump,
            ])
            guard made.exited(0) else { throw HolderError(reply: "dump failed: \(made)") }
        }

        func substitute(_ text: String, tmp: String) -> String {
            text.replacingOccurrences(of: "ZOMBIE", with: String(zombie))
                .replacingOccurrences(of: "KTHREAD", with: kthread.map { String($0) } ?? "KTHREAD-NOT-FOUND")
                .replacingOccurrences(of: "PID", with: String(holder.pid))
                .replacingOccurrences(of: "BUFEND", with: hx(buf + 0x1000))
                .replacingOccurrences(of: "BUF", with: hx(buf))
                .replacingOccurrences(of: "CODE", with: hx(code))
                .replacingOccurrences(of: "RO", with: hx(ro))
                .replacingOccurrences(of: "TMP", with: tmp)
                .replacingOccurrences(of: "DUMP", with: dump)
        }

        deinit {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// A kernel thread (PF_KTHREAD in /proc/PID/stat) whose maps are empty, e.g. kthreadd.
    static func findKernelThread() -> Int32? { visibleKernelThread() }

    // MARK: - The generator

    static func generate() -> [Case] {
        var cases: [Case] = []
        func add(_ arguments: [String], _ status: Int32, _ mentions: String, _ mode: Case.Mode = .parallel) {
            cases.append(Case(arguments: arguments, status: status, mentions: mentions, mode: mode))
        }

        // --- pids: every command that takes one, each malformed pid → 64 naming <pid>.
        let pidTemplates: [(command: String, rest: [String], mode: Case.Mode)] = [
            ("maps", [], .parallel),
            ("read", ["BUF", "16"], .parallel),
            ("write", ["BUF", "--hex", "00"], .parallel),
            ("dump", ["-o", "TMP/d"], .parallel),
            ("restore", ["DUMP"], .serial),
            ("search", ["--hex", "de ad"], .parallel),
            ("backtrace", [], .serial),
            ("regs", [], .serial),
            ("session", ["SCRIPT"], .serial),
            ("doctor", [], .parallel),
        ]
        let malformedPids = [
            "0", "abc", "2147483648", "4294967296", "99999999999999999999", "1.5", "0x10", "12abc", "selff", "",
        ]
        for template in pidTemplates {
            for pid in malformedPids {
                var c = Case(
                    arguments: [template.command, pid] + template.rest, status: 64, mentions: "<pid>",
                    mode: template.mode)
                if template.command == "session" { c.script = "echo hi" }
                cases.append(c)
            }
            // A negative pid reads as an option: still a malformed command line.
            var negative = Case(
                arguments: [template.command, "--", "-1"] + template.rest, status: 64, mentions: "-1",
                mode: template.mode)
            if template.command == "session" { negative.script = "echo hi" }
            cases.append(negative)
        }
        // copy's PID:ADDR forms.
        for bad in ["0:BUF", "abc:BUF", "2147483648:BUF", ":BUF", "PID:", "PIDBUF"] {
            add(["copy", bad, "PID:BUF", "16"], 64, "<source>")
            add(["copy", "PID:BUF", bad, "16"], 64, "<destination>")
        }
        add(["copy", "--", "-1:BUF", "PID:BUF", "16"], 64, "'-1:BUF' is invalid for '<source>'")
        add(["copy", "--", "PID:BUF", "-1:BUF", "16"], 64, "'-1:BUF' is invalid for '<destination>'")
        // Without `--`, a leading '-' makes the argument parser take it for an option and blame
        // the next value (documented as surprising in the report): still 64, one line.
        add(["copy", "-1:BUF", "PID:BUF", "16"], 64, "is invalid for")
        // Within one process, overlapping ranges are refused in words, not owners.
        add(["copy", "PID:BUF", "PID:BUF+8", "64"], 1, "overlap", .serial)
        add(["copy", "PID:BUF+8", "PID:BUF", "64"], 1, "overlap", .serial)
        add(["read", "-1", "BUF", "16"], 64, "is invalid for '<pid>'")

        // --- pids that parse but name no live process: 999999 and a zombie → 4.
        let gonePidTemplates: [(command: String, rest: [String], mode: Case.Mode)] = [
            ("maps", [], .parallel),
            ("read", ["0x1000", "16"], .parallel),
            ("read", ["BUF", "16", "--stop"], .serial),
            ("write", ["0x1000", "--hex", "00"], .parallel),
            ("dump", ["-o", "TMP/d"], .parallel),
            ("restore", ["DUMP"], .serial),
            ("search", ["--hex", "de ad"], .parallel),
            ("backtrace", [], .serial),
            ("regs", [], .serial),
            ("session", ["SCRIPT"], .serial),
        ]
        // A zombie is named as one, with its unreaping parent (issue 12, bug 8).
        for (gone, says) in [("999999", "no such process: 999999"), ("ZOMBIE", "ZOMBIE (vmio-fixture-st) is a zombie")]
        {
            for template in gonePidTemplates {
                var c = Case(
                    arguments: [template.command, gone] + template.rest, status: 4, mentions: says,
                    mode: template.mode)
                if template.command == "session" { c.script = "echo hi" }
                cases.append(c)
            }
            add(["copy", "\(gone):0x1000", "PID:BUF", "16"], 4, says)
            add(["copy", "PID:BUF", "\(gone):0x1000", "16"], 4, says)
        }

        // --- a kernel thread: it has no memory at all; it cannot be traced. Every command says so,
        // with status 3 (issue 12, bug 7).
        let kernelThread = "is a kernel thread: it has no user memory"
        let kthreadCases: [Case] = [
            Case(arguments: ["maps", "KTHREAD"], status: 3, mentions: kernelThread),
            Case(arguments: ["read", "KTHREAD", "0x1000", "16"], status: 3, mentions: kernelThread),
            Case(arguments: ["read", "KTHREAD", "[stack]", "16"], status: 3, mentions: kernelThread),
            Case(arguments: ["write", "KTHREAD", "0x1000", "--hex", "00"], status: 3, mentions: kernelThread),
            Case(arguments: ["search", "KTHREAD", "--hex", "00"], status: 3, mentions: kernelThread),
            Case(arguments: ["dump", "KTHREAD", "-o", "TMP/d"], status: 3, mentions: kernelThread),
            Case(arguments: ["copy", "KTHREAD:0x1000", "PID:BUF", "16"], status: 3, mentions: kernelThread),
            Case(arguments: ["copy", "PID:BUF", "KTHREAD:0x1000", "16"], status: 3, mentions: kernelThread),
            Case(arguments: ["read", "KTHREAD", "sym:main", "8"], status: 3, mentions: kernelThread),
            Case(arguments: ["backtrace", "KTHREAD"], status: 3, mentions: kernelThread, mode: .serial),
            Case(arguments: ["regs", "KTHREAD"], status: 3, mentions: kernelThread, mode: .serial),
            Case(
                arguments: ["session", "KTHREAD", "SCRIPT"], status: 3, mentions: kernelThread, mode: .serial,
                script: "read 0x1000 16"),
        ]
        for var c in kthreadCases {
            c.needsKernelThread = true
            cases.append(c)
        }

        // --- the tool itself: reads are allowed (a bad address is still bad), tracing is refused.
        add(["backtrace", "self"], 1, "cannot trace its own", .serial)
        add(["regs", "self"], 1, "cannot trace its own", .serial)
        // A stop of this tool's own process: ptrace refuses it, and the reason says why.
        add(["read", "self", "[stack]", "8", "--stop"], 3, "this tool's own process", .serial)
        add(["read", "self", "0x10", "16"], 1, "0x10 is in no mapping")
        add(["read", "self", "[nosuch]", "16"], 1, "[nosuch]")
        add(["write", "self", "0x10", "--hex", "00"], 1, "0x10 is in no mapping")
        add(["search", "self", "--hex", "de", "--region", "[nosuch]"], 1, "no readable mapping")
        add(["dump", "self", "--region", "[nosuch]", "-o", "TMP/d"], 1, "no readable mapping")
        add(["copy", "self:0x10", "PID:BUF", "16"], 1, "0x10 is in no mapping")

        // --- addresses: malformed on the command line (64), or naming nothing at run time (1).
        for address in ["0x", "0xg", "12abc", "sym:", "99999999999999999999999", "0x10000000000000000", ""] {
            add(["read", "PID", address, "16"], 64, "<address>")
            add(["write", "PID", address, "--hex", "00"], 64, "<address>")
        }
        // Anything else that is not a number is taken as a mapping's name (a file may be called
        // anything), so these are run-time errors naming it.
        for address in ["zz0x10", "+", "[heap]+", "[heap]+zz", "lib.so+-", "[stack"] {
            add(["read", "PID", address, "16"], 1, "no mapping named '\(address)'")
            add(["write", "PID", address, "--hex", "00"], 1, "no mapping named '\(address)'")
        }
        let runTimeAddresses: [(String, String)] = [
            ("0x10", "0x10 is in no mapping"), ("0", "0x0 is in no mapping"), ("[nosuch]+1", "[nosuch]"),
            ("[anon:nope]", "[anon:nope]"), ("libnope.so+0x10", "libnope.so"), ("/nope/libx.so", "/nope/libx.so"),
            ("sym:nope", "unknown symbol 'nope'"), ("sym:libnope.so:main", "libnope.so"),
            ("0xffffffffffffffff", "overflow"), ("0xffffffffffffff00+0x200", "overflow"),
            ("BUF-0xffffffffffffffff", "BUF"), ("0x8000000000000000", "in no mapping"),
        ]
        for (address, mentions) in runTimeAddresses {
            add(["read", "PID", address, "0x200"], 1, mentions)
            add(["write", "PID", address, "--hex", "00 11"], 1, mentions)
            // copy checks the source is mapped before adding the length.
            add(
                ["copy", "PID:\(address)", "PID:BUF", "0x200"], 1,
                address == "0xffffffffffffffff" ? "0xffffffffffffffff is in no mapping" : mentions)
            add(["copy", "PID:BUF", "PID:\(address)", "0x200"], 1, mentions)
        }

        // --- lengths.
        for length in [
            "-1", "1e9", "0x", "12Q", "1.5", "99999999999999999999999", "0x10000000000000000", "16X", "", "1T", "K",
        ] {
            add(["read", "PID", "BUF", length], 64, "<length>")
            add(["copy", "PID:BUF", "PID:BUF", length], 64, "<length>")
        }
        add(["read", "PID", "BUF", "0xffffffffffffffff"], 1, "overflow")
        add(["read", "PID", "0xffffffffffffff00", "0x200"], 1, "overflow")
        add(["copy", "PID:BUF", "PID:BUF", "0xffffffffffffffff"], 1, "overflow")
        // Lengths that are not a multiple of the typed width.
        for (format, length) in [
            ("u16", "3"), ("u32", "6"), ("u64", "12"), ("i16", "1"), ("i32", "5"), ("i64", "9"), ("f32", "2"),
            ("f64", "4"), ("ptr", "7"),
        ] {
            add(["read", "PID", "BUF", length, "--format", format], 1, "not a multiple")
        }

        // --- malformed hex and values for write; patterns for search.
        for (hex, mentions) in [
            ("zz", "'zz' is not a hex byte"), ("abc", "odd number of hex digits"), ("+f", "'+f'"),
            ("0x", "no hex digits"),
            ("de ad b", "odd number"), ("g0", "'g0'"), ("??", "'??'"), ("de ?? ef", "'??'"), ("", "no hex digits"),
            ("0x0x", "'0x' is not a hex byte"),
            ("\u{00e9}\u{00e9}", "not a hex byte"),
        ] {
            add(["write", "PID", "BUF", "--hex", hex], 64, mentions)  // a malformed value (issue 12, bug 13)
        }
        add(["write", "PID", "BUF", "--hex=-0"], 64, "-0")
        for (option, value) in [
            ("--u8", "256"), ("--u8", "-1"), ("--u16", "65536"), ("--u32", "0x100000000"),
            ("--u64", "0x10000000000000000"),
            ("--i8", "128"), ("--i16", "-32769"), ("--i32", "2147483648"), ("--i64", "9223372036854775808"),
            ("--f32", "x"), ("--f64", "1.0.0"), ("--u32", "zz"), ("--u16", "1e3"),
            // A float past its type's range would be written as infinity: it does not fit.
            ("--f32", "1e39"), ("--f64", "1e400"), ("--f32", "-1e39"),
        ] {
            add(["write", "PID", "BUF", "\(option)=\(value)"], 64, value)
        }
        add(["write", "PID", "BUF", "--u64="], 64, "--u64")
        // Even an empty write names an address in a mapping, as an empty read does.
        add(["write", "PID", "0x10", "--string", ""], 1, "0x10 is in no mapping")
        // An empty path names no file: malformed, not a file error naming nothing.
        for arguments in [
            ["read", "PID", "BUF", "16", "-o", ""], ["dump", "PID", "-o", ""], ["restore", "PID", ""],
            ["scan", "PID", "--changed", "--state", ""], ["scan", "PID", "--u8", "1", "-o", ""],
            ["core", "PID", "-o", ""],
            ["write", "PID", "BUF", "--file", ""],
        ] {
            add(arguments, 64, "a path is needed, not an empty string")
        }
        add(["scan", "PID", "--f64", "nan", "-o", "TMP/s", "--region", "[heap]"], 64, "NaN equals nothing")
        for (pattern, mentions) in [
            ("?? ??", "at least one known byte"), ("??", "at least one known byte"), ("zz", "'zz'"),
            ("a", "odd number"),
            ("", "empty"), ("de ad ?", "odd number"), ("de+ad", "de+ad"), ("0x", "0x"),
        ] {
            add(["search", "PID", "--hex", pattern], 64, mentions)
        }
        add(["search", "PID", "--string", ""], 64, "empty")
        add(["search", "PID", "--u32", "0x100000000"], 64, "u32")
        add(["search", "PID", "--u32", "-1"], 64, "u32")
        add(["search", "PID", "--u8", "256"], 64, "u8")
        // An option that takes one value, given twice (issue 12, bug 14).
        add(["search", "PID", "--string", "A", "--string", "B"], 64, "--string given twice")
        add(["write", "PID", "BUF", "--u8", "1", "--u8", "2"], 64, "--u8 given twice")
        add(["read", "PID", "BUF", "16", "--format", "u8", "--format=u16"], 64, "--format given twice")
        add(["search", "PID", "--hex", "de", "--region", "[nosuch]"], 1, "no readable mapping")
        add(["search", "PID", "--hex", "de", "--region", "0x10-0x20"], 1, "no readable mapping")
        add(["search", "PID", "--hex", "de", "--max", "0"], 64, "--max")
        add(["search", "PID", "--hex", "de", "--align", "0"], 64, "--align")
        add(["search", "PID", "--hex", "de", "--region", "0x20-0x10"], 64, "0x20-0x10")
        add(["search", "PID", "--hex", "de", "--region", "perm:q"], 64, "perm:q")
        add(["search", "PID"], 64, "exactly one of")
        add(["dump", "PID", "--region", "[nosuch]", "-o", "TMP/d"], 1, "no readable mapping")
        add(["dump", "PID", "--region", "perm:", "-o", "TMP/d"], 64, "perm:")
        add(["backtrace", "PID", "--thread", "999999"], 1, "999999", .serial)
        add(["regs", "PID", "--thread", "999999"], 1, "999999", .serial)
        add(["backtrace", "PID", "--thread", "abc"], 64, "abc", .serial)
        add(["backtrace", "PID", "--depth", "-5"], 64, "--depth", .serial)
        add(["backtrace", "PID", "--memory", "ram"], 64, "ram", .serial)
        add(["read", "PID", "BUF", "16", "--attach-timeout", "-1"], 64, "attach-timeout")
        add(["read", "PID", "BUF", "16", "--attach-timeout", "soon"], 64, "soon")
        // Nothing attaches without --stop: a timeout there would be ignored, so it is refused.
        for command in [
            ["read", "PID", "BUF", "16"], ["search", "PID", "--u8", "1"], ["dump", "PID", "-o", "TMP/x"],
        ] {
            add(command + ["--attach-timeout", "2"], 64, "--attach-timeout applies only with --stop")
        }
        add(["doctor", "PID", "--for", "frob"], 64, "frob")

        // --- missing and unreadable input files.
        add(["write", "PID", "BUF", "--file", "/nope/payload"], 1, "/nope/payload")
        add(["write", "PID", "BUF", "--file", "/"], 1, "/")
        add(["session", "PID", "/nope.vmio"], 1, "cannot read script /nope.vmio", .serial)
        add(["session", "PID", "/"], 1, "cannot read script /", .serial)
        add(["restore", "PID", "/nope"], 1, "/nope", .serial)
        add(["restore", "PID", "/proc/version"], 1, "/proc/version", .serial)
        cases.append(
            Case(arguments: ["restore", "PID", "TMP"], status: 1, mentions: "no dump manifest", mode: .serial))
        for (number, (name, mutate)) in brokenDumps.enumerated() {
            cases.append(
                Case(
                    arguments: ["restore", "PID", "TMP/d"], status: 1, mentions: name, mode: .serial,
                    variant: "broken dump \(number)",
                    setup: { tmp in
                        try FileManager.default.copyItem(atPath: tmp + "/../gooddump", toPath: tmp + "/d")
                        try mutate(tmp + "/d")
                    }))
        }

        // --- output paths: unwritable, a directory, symlinked, existing.
        add(["read", "PID", "BUF", "16", "-o", "/nonexistent/dir/x"], 1, "/nonexistent/dir/x")
        add(["read", "PID", "BUF", "16", "-o", "/proc/vmio-nope"], 1, "/proc/vmio-nope")
        add(["read", "PID", "BUF", "16", "-o", "/proc/version"], 1, "/proc/version")
        add(["read", "PID", "BUF", "16", "-o", "TMP"], 1, "is a directory")
        add(["read", "PID", "BUF", "16", "-o", "TMP", "--force"], 1, "is a directory")
        add(["read", "PID", "BUF", "16", "-o", "/proc/self/status", "--force"], 1, "/proc/self/status")
        add(["dump", "PID", "--region", "BUF-BUF", "-o", "TMP/d"], 1, "no readable mapping")
        add(["dump", "PID", "-o", "/nonexistent/dir/x"], 1, "/nonexistent/dir/x")
        add(["dump", "PID", "-o", "/proc/version"], 1, "/proc/version")
        add(["dump", "PID", "-o", "/proc/vmio-nope"], 1, "/proc/vmio-nope")
        cases.append(
            Case(
                arguments: ["read", "PID", "BUF", "16", "-o", "TMP/out"], status: 1, mentions: "pass --force",
                setup: { tmp in try Data("precious".utf8).write(to: URL(fileURLWithPath: tmp + "/out")) },
                after: { tmp in fileIs(tmp + "/out", "precious") }))
        cases.append(
            Case(
                arguments: ["read", "PID", "BUF", "16", "--format", "raw", "-o", "TMP/link"], status: 1,
                mentions: "pass --force",
                setup: { tmp in
                    try Data("target".utf8).write(to: URL(fileURLWithPath: tmp + "/target"))
                    try FileManager.default.createSymbolicLink(
                        atPath: tmp + "/link", withDestinationPath: tmp + "/target")
                },
                after: { tmp in fileIs(tmp + "/target", "target") + isSymlink(tmp + "/link") }))
        cases.append(
            Case(
                arguments: ["read", "PID", "BUF", "16", "-o", "TMP/dangling"], status: 1, mentions: "pass --force",
                setup: { tmp in
                    try FileManager.default.createSymbolicLink(
                        atPath: tmp + "/dangling", withDestinationPath: tmp + "/made")
                },
                after: { tmp in absent(tmp + "/made") + isSymlink(tmp + "/dangling") }))
        // A read cut short leaves no output file (what moved is kept as FILE.partial, and named).
        cases.append(
            Case(
                arguments: ["read", "PID", "BUF", "0xffffffffffff", "--format", "raw", "-o", "TMP/big"], status: 2,
                mentions: "TMP/big.partial",
                after: { tmp in absent(tmp + "/big") + onlyEntries(tmp, ["big.partial"]) }))
        cases.append(
            Case(
                arguments: ["read", "PID", "BUF", "0xffffffffffff", "--format", "raw", "-o", "TMP/big", "--force"],
                status: 2,
                mentions: "partial read",
                setup: { tmp in try Data("old".utf8).write(to: URL(fileURLWithPath: tmp + "/big")) },
                after: { tmp in fileIs(tmp + "/big", "old") }))
        // dump into a symlinked directory: refused, the real directory untouched.
        cases.append(
            Case(
                arguments: ["dump", "PID", "--region", "BUF-BUFEND", "-o", "TMP/dlink"], status: 1,
                mentions: "symbolic link",
                setup: { tmp in
                    try FileManager.default.createDirectory(atPath: tmp + "/real", withIntermediateDirectories: false)
                    try FileManager.default.createSymbolicLink(
                        atPath: tmp + "/dlink", withDestinationPath: tmp + "/real")
                },
                after: { tmp in onlyEntries(tmp + "/real", []) + isSymlink(tmp + "/dlink") }))
        cases.append(
            Case(
                arguments: ["dump", "PID", "--region", "BUF-BUFEND", "-o", "TMP/dlink", "--force"], status: 1,
                mentions: "symbolic link",
                setup: { tmp in
                    try FileManager.default.createDirectory(atPath: tmp + "/real", withIntermediateDirectories: false)
                    try FileManager.default.createSymbolicLink(
                        atPath: tmp + "/dlink", withDestinationPath: tmp + "/real")
                },
                after: { tmp in onlyEntries(tmp + "/real", []) }))
        // dump over an existing dump without --force: refused, the old dump untouched.
        cases.append(
            Case(
                arguments: ["dump", "PID", "--region", "BUF-BUFEND", "-o", "TMP/d"], status: 1,
                mentions: "pass --force",
                setup: { tmp in try FileManager.default.copyItem(atPath: tmp + "/../gooddump", toPath: tmp + "/d") },
                after: { tmp in sameTree(tmp + "/d", tmp + "/../gooddump") }))
        // dump -o a regular file.
        cases.append(
            Case(
                arguments: ["dump", "PID", "--region", "BUF-BUFEND", "-o", "TMP/file"], status: 1,
                mentions: "not a directory",
                setup: { tmp in try Data("keep".utf8).write(to: URL(fileURLWithPath: tmp + "/file")) },
                after: { tmp in fileIs(tmp + "/file", "keep") }))

        // --- broken session scripts: parse errors (nothing runs) and run-time errors.
        let scripts: [(String, Int32, String)] = [
            ("frob 1", 1, "line 1:1: unknown command 'frob'"),
            ("read", 1, "read needs ADDR LEN"),
            ("let = 1", 1, "is not a name"),
            ("let x 1", 1, "expected '='"),
            ("expect", 1, "expect needs an expression"),
            ("read $nope 16", 1, "unknown variable $nope"),
            ("echo \"unterminated", 1, "unterminated string"),
            ("let x = 1 +", 1, "expected a value"),
            ("expect 1 == 2", 1, "expectation failed"),
            ("expect (read BUF 4) ==", 1, "expected an expression after =="),
            ("sleep 10parsecs", 1, "not a duration"),
            ("let x = 9999999999999999999999999999999999999999", 1, "is not a number"),
            ("let x = x\"zz\"", 1, "must hold hex bytes"),
            ("expect \"a\" < 1", 1, "cannot compare"),
            (")", 1, "unbalanced ')'"),
            ("let x = (read", 1, "unbalanced '('"),
            ("read BUF 16 --bogus", 1, "has no option --bogus"),
            ("dump TMP/x", 1, "dump takes no arguments"),
            ("echo ok\nfrob", 1, "line 2:1: unknown command 'frob'"),
            ("read 0x10 16", 1, "0x10 is in no mapping"),
            ("read [nosuch] 16", 1, "[nosuch]"),
            ("read sym:nope 8", 1, "unknown symbol 'nope'"),
            ("read 0xffffffffffffff00 0x200", 1, "overflow"),
            ("read BUF+0xffffffffffffffff 16", 1, "outside"),
            ("read BUF 7 --format u32", 1, "not a multiple"),
            ("write 0x10 --hex 00", 1, "0x10 is in no mapping"),
            ("write BUF --hex zz", 64, "'zz' is not a hex byte"),
            ("copy BUF 999999:0x1000 16", 4, "no such process: 999999"),
            ("copy BUF PID:0x10 16", 1, "0x10 is in no mapping"),
            ("search --hex ??", 64, "bad search pattern"),
            ("search --hex zz", 64, "bad search pattern"),
            ("search --string \"\"", 64, "bad search pattern"),
            ("restore /nope", 1, "no dump manifest"),
            ("echo $undefined", 1, "unknown variable $undefined"),
            ("let x = 0xffffffffffffffff * 0xffffffffffffffff", 1, "overflows"),
            ("let x = 0x7fffffffffffffff * 0x7fffffffffffffff * 4", 1, "overflows"),
            ("expect (read BUF 4 --format hex) == x\"00000000\"", 1, "expectation failed"),
        ]
        for (text, status, mentions) in scripts {
            // No script here stops the target, so nothing attaches: these run in parallel.
            cases.append(
                Case(arguments: ["session", "PID", "SCRIPT"], status: status, mentions: mentions, script: text))
        }
        // The same through standard input is covered by SessionCLITests; --json answers on stdout.

        // --- run.
        add(["run", "--", "/nonexistent/prog"], 1, "/nonexistent/prog", .serial)
        add(["run", "--", "TMP"], 1, "TMP", .serial)
        add(["run", "--script", "/nope.vmio", "--", "/bin/true"], 1, "cannot read script /nope.vmio", .serial)
        add(["run"], 64, "after --")
        add(["run", "--"], 64, "after --")
        // A broken script starts nothing: no "started" line, the error alone.
        cases.append(
            Case(
                arguments: ["run", "--script", "SCRIPT", "--", "/bin/sleep", "5"], status: 1,
                mentions: "line 1:1: unknown command 'frob'", mode: .serial, script: "frob"))

        // --- --json: the same error also as {"error", "status"} on stdout.
        let jsonCases: [([String], Int32, String)] = [
            (["read", "999999", "BUF", "16"], 4, "no such process"),
            (["read", "ZOMBIE", "BUF", "16"], 4, "is a zombie"),
            (["read", "PID", "0x10", "16"], 1, "in no mapping"),
            (["read", "PID", "sym:nope", "8"], 1, "unknown symbol"),
            (["read", "PID", "BUF", "6", "--format", "u32"], 1, "not a multiple"),
            (["write", "PID", "BUF", "--hex", "zz"], 64, "not a hex byte"),
            (["write", "PID", "0xffffffffffffffff", "--hex", "0011"], 1, "overflow"),
            (["copy", "PID:0x10", "PID:BUF", "16"], 1, "in no mapping"),
            (["maps", "999999"], 4, "no such process"),
            (["search", "PID", "--hex", "??"], 64, "at least one known byte"),
            // Usage errors too (issue 12, bug 3).
            (["read", "abc", "0x1", "8"], 64, "'abc' is invalid for '<pid>'"),
            (["read", "PID", "BUF", "8", "--format", "u128"], 64, "u128"),
            (["search", "PID", "--u8", "1", "--u8", "2"], 64, "--u8 given twice"),
            (["dump", "PID", "--region", "[nosuch]", "-o", "TMP/d"], 1, "no readable mapping"),
            (["restore", "PID", "/nope"], 1, "no dump manifest"),
            (["backtrace", "self"], 1, "cannot trace its own"),
            (["regs", "999999"], 4, "no such process"),
        ]
        for (arguments, status, mentions) in jsonCases {
            var c = Case(
                arguments: arguments + ["--json"], status: status, mentions: mentions,
                mode: ["restore", "backtrace", "regs"].contains(arguments[0]) ? .serial : .parallel)
            c.json = true
            cases.append(c)
        }
        return cases
    }

    /// Ways to break a good dump (a copy in `dir`), each with a word the error must name.
    static let brokenDumps: [(String, @Sendable (String) throws -> Void)] = [
        ("manifest", { dir in try Data("{".utf8).write(to: URL(fileURLWithPath: dir + "/manifest.json")) }),
        ("manifest", { dir in try Data("[]".utf8).write(to: URL(fileURLWithPath: dir + "/manifest.json")) }),
        ("manifest", { dir in try Data().write(to: URL(fileURLWithPath: dir + "/manifest.json")) }),
        ("manifest", { dir in try FileManager.default.removeItem(atPath: dir + "/manifest.json") }),
        (
            ".bin",
            { dir in
                for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".bin") {
                    try FileManager.default.removeItem(atPath: dir + "/" + name)
                }
            }
        ),
        (
            ".bin",
            { dir in
                for name in try FileManager.default.contentsOfDirectory(atPath: dir) where name.hasSuffix(".bin") {
                    try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/" + name))
                }
            }
        ),
    ]

    // MARK: - Disk checks

    static func fileIs(_ path: String, _ text: String) -> [String] {
        var st = stat()
        guard lstat(path, &st) == 0 else { return ["\(path) is gone"] }
        guard st.st_mode & S_IFMT == S_IFREG else { return ["\(path) is no longer a regular file"] }
        let contents = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
        return contents == text ? [] : ["\(path) changed: \(contents ?? "unreadable")"]
    }

    static func isSymlink(_ path: String) -> [String] {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK ? [] : ["\(path) is no longer a symlink"]
    }

    static func absent(_ path: String) -> [String] {
        var st = stat()
        return lstat(path, &st) != 0 ? [] : ["\(path) exists"]
    }

    static func onlyEntries(_ dir: String, _ names: [String]) -> [String] {
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
        return entries == names.sorted() ? [] : ["\(dir) holds \(entries), expected \(names)"]
    }

    static func sameTree(_ a: String, _ b: String) -> [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: a)) ?? []).sorted()
        guard names == ((try? FileManager.default.contentsOfDirectory(atPath: b)) ?? []).sorted() else {
            return ["\(a) entries changed: \(names)"]
        }
        return names.compactMap { name in
            FileManager.default.contentsEqual(atPath: a + "/" + name, andPath: b + "/" + name)
                ? nil : "\(a)/\(name) changed"
        }
    }

    // MARK: - Running a case

    /// Problems with one case's result; empty when it behaved.
    static func check(_ c: Case, _ context: Context, index: Int) -> [String] {
        let tmp = context.root + "/case\(index)"
        do {
            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            if let script = c.script {
                try Data(context.substitute(script, tmp: tmp).utf8).write(to: URL(fileURLWithPath: tmp + "/s.vmio"))
            }
            try c.setup?(tmp)
        } catch {
            return ["setup failed: \(error)"]
        }
        let arguments = c.arguments.map {
            $0 == "SCRIPT" ? tmp + "/s.vmio" : context.substitute($0, tmp: tmp)
        }
        let result: RunResult
        do {
            result = try Tool.run(arguments, timeout: 30)
        } catch {
            return ["could not run: \(error)"]
        }
        var problems: [String] = []
        if result.signaled || result.timedOut {
            problems.append("crashed or hung")
        } else if result.status != c.status {
            problems.append("exit \(result.status), expected \(c.status)")
        }
        for trap in [
            "Fatal error", "Swift runtime failure", "Illegal instruction", "Segmentation fault", "Stack dump",
            "Assertion failed",
        ]
        where result.stderr.contains(trap) {
            problems.append("trap: \(trap)")
        }
        let lines = result.stderrLines
        if lines.count != 1 {
            problems.append("\(lines.count) stderr lines")
        } else {
            if !lines[0].hasPrefix("vmio-ptrace: ") { problems.append("stderr does not start with 'vmio-ptrace: '") }
            let mentions = context.substitute(c.mentions, tmp: tmp)
            if !lines[0].contains(mentions) { problems.append("stderr does not mention '\(mentions)'") }
        }
        if c.json {
            if let json = result.json, json.count == 2, json["status"] as? Int == Int(c.status),
                let error = json["error"] as? String
            {
                if lines.count == 1 && "vmio-ptrace: " + error != lines[0] {
                    problems.append("JSON error differs from stderr")
                }
                if result.lines.count != 1 { problems.append("JSON output is not one line") }
            } else {
                problems.append("stdout is not the JSON error object")
            }
        } else if !result.stdout.isEmpty {
            problems.append("stdout not empty")
        }
        problems += c.after?(tmp) ?? []
        return problems.map { "\(arguments.joined(separator: " ")) [\(c.status), '\(c.mentions)']: \($0) — \(result)" }
    }

    /// The holder as it was at the start (buf, counter, answer, ping, not stopped or traced).
    struct HolderState: Equatable {
        var buf: [UInt8]
        var counter: String
        var answer: String
        var ping: String
        var free: Bool

        init(_ context: Context) throws {
            buf = try context.holder.get(context.buf, 65536)
            counter = try context.holder.send("counter")
            answer = try context.holder.send("answer")
            ping = try context.holder.send("ping")
            free = isFreeRunning(context.holder.pid)
        }
    }

    @Test func generatedBadInvocations() throws {
        let cases = Self.generate().filter { !$0.needsKernelThread }
        let distinct = Set(
            cases.map { $0.arguments.joined(separator: "\u{1}") + "\u{2}" + ($0.script ?? "") + $0.variant })
        #expect(cases.count >= 200, "generated \(cases.count) cases")
        #expect(distinct.count == cases.count, "generated cases are distinct")
        try Self.run(cases, name: "BadInputSuite")
    }

    /// The kernel-thread cases, where a kernel thread is visible (not in every container).
    @Test(.enabled(if: visibleKernelThread() != nil, "no kernel thread is visible in this pid namespace"))
    func kernelThreadInvocations() throws {
        let cases = Self.generate().filter(\.needsKernelThread)
        #expect(cases.count >= 10, "generated \(cases.count) cases")
        try Self.run(cases, name: "BadInputSuite (kernel thread)")
    }

    /// Runs `cases` against a fresh context: the parallel ones in batches, then the serial
    /// ones, checking after each batch that the holder is as it was.
    static func run(_ cases: [Case], name: String) throws {
        let context = try Context()
        defer {
            context.holder.terminate()
            context.states.terminate()
        }
        if cases.contains(where: \.needsKernelThread) {
            try #require(context.kthread != nil, "a kernel-thread case needs a kernel thread")
        }
        let start = Date()
        let before = try HolderState(context)
        #expect(before.answer == "42" && before.ping == "pong" && before.free)

        // Parallel batches first, then the serial ones; the holder is checked after each batch.
        let indexed = Array(cases.enumerated())
        let parallel = indexed.filter { $0.element.mode == .parallel }
        let serial = indexed.filter { $0.element.mode == .serial }
        var batches: [[(offset: Int, element: Case)]] = stride(from: 0, to: parallel.count, by: Self.batchSize).map {
            Array(parallel[$0..<min($0 + Self.batchSize, parallel.count)])
        }
        batches += serial.map { [$0] }
        var failures = 0
        for batch in batches {
            let results = ResultSlots(batch.count)
            DispatchQueue.concurrentPerform(iterations: batch.count) { i in
                results.set(i, Self.check(batch[i].element, context, index: batch[i].offset))
            }
            for problems in results.all {
                for problem in problems { Issue.record("\(problem)") }
                if !problems.isEmpty { failures += 1 }
            }
            let now = try HolderState(context)
            if now != before {
                let names = batch.map { $0.element.arguments.joined(separator: " ") }
                Issue.record(
                    "the holder changed after \(names): answer \(now.answer), counter \(now.counter), ping \(now.ping), free \(now.free), buf same \(now.buf == before.buf)"
                )
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        print(
            "\(name): \(cases.count) cases (\(parallel.count) parallel, \(serial.count) serial), \(failures) failing, \(String(format: "%.1f", elapsed)) s"
        )
    }

    /// How many parallel cases run at once.
    static let batchSize = 12

    /// One result slot a case of a batch, filled from concurrent threads.
    final class ResultSlots: @unchecked Sendable {
        private let lock = NSLock()
        private var slots: [[String]]
        init(_ count: Int) { slots = Array(repeating: [], count: count) }
        func set(_ index: Int, _ value: [String]) {
            lock.lock()
            slots[index] = value
            lock.unlock()
        }
        var all: [[String]] {
            lock.lock()
            defer { lock.unlock() }
            return slots
        }
    }

    // MARK: - The documented non-errors next to the bad cases

    @Test func zeroLengthsMoveNothingAndSucceed() throws {
        let holder = try Fixtures.launch(.holder)
        let buf = holder.address("buf")
        let read = try Tool.run("read", holder.pidArg, hx(buf), "0")
        #expect(read.exited(0) && read.stdout.isEmpty && read.stderr.isEmpty, "\(read)")
        let copy = try Tool.run("copy", "\(holder.pid):\(hx(buf))", "\(holder.pid):\(hx(buf + 0x100))", "0", "--json")
        #expect(copy.exited(0) && copy.json?["moved"] as? Int == 0, "\(copy)")
    }

    @Test func anEmptyScriptRunsNothingAndSucceeds() throws {
        let holder = try Fixtures.launch(.holder)
        let result = try Tool.run("session", holder.pidArg, "/dev/null")
        #expect(result.exited(0) && result.stdout.isEmpty && result.stderr.isEmpty, "\(result)")
    }

    @Test func readingTheToolItselfIsAllowed() throws {
        let read = try Tool.run("read", "self", "[stack]", "16", "--json")
        #expect(read.exited(0), "\(read)")
        #expect(read.json?["moved"] as? Int == 16)
    }

    @Test func forceReplacesAnExistingFileOrASymlinkWithoutFollowingIt() throws {
        let holder = try Fixtures.launch(.holder)
        let buf = holder.address("buf")
        let expected = try holder.get(buf, 16)
        let dir = TempPath("force")
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        let file = dir.path + "/out", target = dir.path + "/target", link = dir.path + "/link"
        try Data("old".utf8).write(to: URL(fileURLWithPath: file))
        try Data("target".utf8).write(to: URL(fileURLWithPath: target))
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        for path in [file, link] {
            let result = try Tool.run("read", holder.pidArg, hx(buf), "16", "--format", "raw", "-o", path, "--force")
            #expect(result.exited(0) && result.stdout.isEmpty && result.stderr.isEmpty, "\(result)")
            #expect(FileManager.default.contents(atPath: path).map { Array($0) } == expected)
            #expect(Self.isSymlink(path).count == 1, "\(path) is a regular file now")
        }
        #expect(Self.fileIs(target, "target").isEmpty, "the symlink's target is untouched")
    }
}
