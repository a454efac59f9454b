// `vmio-ptrace read`: every format, -o, --json, every ADDR form, and reads that fault.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// One holder shared by the read tests of a suite instance (read-only use).
final class HolderBox {
    let holder: FixtureProcess
    let buf: UInt64
    let edge: UInt64
    init() throws {
        holder = try Fixtures.launch(.holder)
        buf = holder.address("buf")
        edge = holder.address("edge")
    }
    deinit { holder.terminate() }
    var pid: String { holder.pidArg }
}

/// Whether this kernel names anonymous mappings (`[anon:NAME]`): a holder says so with its
/// `named` fact.
let kernelNamesAnonymousMemory: Bool = {
    guard let holder = try? Fixtures.launch(.holder) else { return false }
    defer { holder.terminate() }
    return holder.facts["named"] != nil
}()

@Suite struct ReadCLITests {
    let box: HolderBox
    init() throws { box = try HolderBox() }

    /// The holder's expected bytes of `buf` at `offset` for `count` bytes, from its own `get`.
    private func expected(_ offset: UInt64, _ count: Int) throws -> [UInt8] {
        try box.holder.get(box.buf + offset, count)
    }

    // MARK: hex dump

    @Test func hexDumpShowsAddressesAndBytes() throws {
        let result = try Tool.run("read", box.pid, hx(box.buf), "40")
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.isEmpty)
        let lines = result.lines
        try #require(lines.count == 3, "\(lines)")
        for (index, line) in lines.enumerated() {
            let address = box.buf + UInt64(index * 16)
            let prefix = String(address, radix: 16)
            let padded = String(repeating: "0", count: max(0, 12 - prefix.count)) + prefix + ": "
            #expect(line.hasPrefix(padded), "line \(index): \(line)")
            // 16 bytes as 8 groups of 4 hex digits (fewer on the last line), then the text column.
            let body = line.dropFirst(padded.count)
            let hexPart = body.prefix(40).replacingOccurrences(of: " ", with: "")
            let want = (0..<min(16, 40 - index * 16)).map { holderPattern(index * 16 + $0) }
            #expect(hexPart == hexOf(want), "line \(index): \(line)")
            let text = String(body.dropFirst(41))
            let printable = String(want.map { (0x20..<0x7f).contains($0) ? Character(UnicodeScalar($0)) : "." })
            #expect(text == printable, "text column of line \(index): '\(text)'")
        }
        #expect(lines[0].hasSuffix(": 078a 0d90 1396 199c 1fa2 25a8 2bae 31b4  ..........%.+.1."), "\(lines[0])")
    }

    @Test func hexDumpOfTheMarker() throws {
        let result = try Tool.run("read", box.pid, hx(box.buf + 0x100), "16")
        #expect(result.exited(0))
        #expect(result.lines.count == 1)
        #expect(result.lines.first?.hasSuffix("  VMIO-MARKER-0001") == true, "\(result)")
        #expect(result.lines.first?.contains("564d 494f 2d4d 4152 4b45 522d 3030 3031") == true)
    }

    // MARK: raw

    @Test func rawToStandardOutput() throws {
        let result = try Tool.run("read", box.pid, hx(box.buf), "4096", "--format", "raw")
        #expect(result.exited(0), "\(result.status) \(result.stderr)")
        #expect(result.stdout.count == 4096)
        #expect(result.stdout == (try expected(0, 4096)))
        #expect(result.stdout[0x100..<0x110].elementsEqual("VMIO-MARKER-0001".utf8))
    }

    /// Standard output that refuses the bytes (a full device) is a failed write, named with
    /// its errno's text: status 1, for the buffered hex dump, the raw bytes and the streamed
    /// JSON object alike (JSON exited 0 before: its last bytes were flushed where a failure
    /// could not be reported).
    @Test(arguments: [["--format", "hex"], ["--format", "raw"], ["--json"], ["--format", "u64", "--json"]])
    func aFullStandardOutputIsAFailedWrite(format: [String]) throws {
        let script = #"pid=$1 address=$2; shift 2; exec "$0" read "$pid" "$address" 4096 "$@" > /dev/full"#
        let result = try Tool.runProgram("/bin/sh", ["-c", script, Tool.path, box.pid, hx(box.buf)] + format)
        #expect(result.exited(1), "\(result)")
        #expect(
            result.stderrLines == ["vmio-ptrace: cannot write standard output: No space left on device"], "\(result)")
    }

    /// An output file that cannot grow (`ulimit -f`: EFBIG) is named in the error: status 1,
    /// and neither the file nor its temporary file is left. (ThreadSanitizer's runtime itself
    /// dies of SIGBUS under that limit.)
    @Test(.disabled(if: ProcessInfo.processInfo.environment["VMIO_SANITIZER"] == "thread"))
    func aFileThatCannotBeWrittenIsNamed() throws {
        let dir = try temporaryDirectory("vmio-read-fsize")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("out.bin").path
        let script = #"trap '' XFSZ; ulimit -f 1; exec "$0" read "$1" "$2" 4096 -o "$3""#
        let result = try Tool.runProgram("/bin/sh", ["-c", script, Tool.path, box.pid, hx(box.buf), file])
        #expect(result.exited(1), "\(result)")
        #expect(result.stderrLines == ["vmio-ptrace: cannot write \(file): File too large"], "\(result)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == [])
    }

    @Test func rawToAFileIsTheWholeBuffer() throws {
        let out = TempPath("buf.bin")
        let result = try Tool.run("read", box.pid, hx(box.buf), "64K", "--format", "raw", "-o", out.path)
        #expect(result.exited(0), "\(result)")
        #expect(result.stdout.isEmpty, "nothing on stdout with -o")
        let file = try #require(out.contents)
        #expect(file.count == 65536)
        var want: [UInt8] = []
        for offset in stride(from: 0, to: 65536, by: 16384) { want += try expected(UInt64(offset), 16384) }
        #expect(file == want)
        // --output is the long form, and --json names the file instead of dumping data.
        let out2 = TempPath("buf2.bin")
        let json = try Tool.run(
            "read", box.pid, hx(box.buf + 0x200), "0x10", "--format", "raw", "--output", out2.path, "--json")
        #expect(json.exited(0), "\(json)")
        let object = try #require(json.json)
        #expect(object["output"] as? String == out2.path)
        #expect(object["data"] == nil)
        #expect(object["moved"] as? Int == 16)
        #expect(out2.contents == (try expected(0x200, 16)))
    }

    @Test func rawWithJsonOnStandardOutputIsValidJson() throws {
        let result = try Tool.run("read", box.pid, hx(box.buf), "16", "--format", "raw", "--json")
        #expect(result.exited(0))
        // The JSON object alone: no raw bytes before it.
        let object = try #require(result.json, "stdout: \(result.stdout.prefix(40))")
        #expect(object["data"] as? String == hexOf(try expected(0, 16)))
        #expect(object["moved"] as? Int == 16)
        #expect(result.stdout.first == UInt8(ascii: "{"))
    }

    // MARK: typed values

    @Test(arguments: [
        ("u64", 0x200, 8, "1234605616436508552"),
        ("ptr", 0x200, 8, "0x1122334455667788"),
        ("f64", 0x208, 8, "3.5"),
        ("f32", 0x20c, 4, "2.1875"),  // the high half of 3.5 (0x400c0000)
        ("i32", 0x310, 4, "-5"),
        ("u32", 0x310, 4, "4294967291"),
        ("u16", 0x318, 2, "48879"),
        ("i16", 0x318, 2, "-16657"),
        ("u8", 0x318, 1, "239"),
        ("i8", 0x310, 1, "-5"),
        ("i64", 0x200, 8, "1234605616436508552"),
        ("str", 0x300, 32, "hello, vmio"),
        ("str", 0x100, 16, "VMIO-MARKER-0001"),
    ])
    func singleTypedValue(format: String, offset: Int, length: Int, want: String) throws {
        let result = try Tool.run("read", box.pid, hx(box.buf + UInt64(offset)), String(length), "--format", format)
        #expect(result.exited(0), "\(result)")
        #expect(result.lines == [want], "\(format) at buf+\(hx(UInt64(offset)))")
        #expect(result.stderr.isEmpty)
    }

    @Test func severalValuesAreListedWithTheirAddresses() throws {
        let base = box.buf + 0x310
        let i8 = try Tool.run("read", box.pid, hx(base), "4", "--format", "i8")
        #expect(i8.lines == ["\(hx(base)): -5", "\(hx(base + 1)): -1", "\(hx(base + 2)): -1", "\(hx(base + 3)): -1"])
        let u32 = try Tool.run("read", box.pid, hx(box.buf + 0x200), "8", "--format", "u32")
        #expect(u32.lines == ["\(hx(box.buf + 0x200)): \(0x5566_7788)", "\(hx(box.buf + 0x204)): \(0x1122_3344)"])
        let u8 = try Tool.run("read", box.pid, hx(box.buf), "16", "--format", "u8")
        #expect(u8.lines == (0..<16).map { "\(hx(box.buf + UInt64($0))): \(holderPattern($0))" })
        // i64 at 0x310: -5 as int32 then 4 pattern bytes.
        let raw = try expected(0x310, 8)
        let value = raw.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        let i64 = try Tool.run("read", box.pid, hx(base), "8", "--format", "i64")
        #expect(i64.lines == [String(Int64(bitPattern: value))])
        let u16 = try Tool.run("read", box.pid, hx(box.buf + 0x316), "4", "--format", "u16")
        let b = try expected(0x316, 2)
        #expect(
            u16.lines == [
                "\(hx(box.buf + 0x316)): \(UInt16(b[0]) | UInt16(b[1]) << 8)", "\(hx(box.buf + 0x318)): 48879",
            ])
        let ptr = try Tool.run("read", box.pid, hx(box.buf + 0x200), "16", "--format", "ptr")
        #expect(
            ptr.lines == ["\(hx(box.buf + 0x200)): 0x1122334455667788", "\(hx(box.buf + 0x208)): 0x400c000000000000"])
    }

    @Test func typedValuesGoToAFileWithO() throws {
        let out = TempPath("u64.txt")
        let result = try Tool.run("read", box.pid, hx(box.buf + 0x200), "8", "--format", "u64", "-o", out.path)
        #expect(result.exited(0))
        #expect(result.stdout.isEmpty)
        #expect(out.contents.map { String(decoding: $0, as: UTF8.self) } == "1234605616436508552\n")
    }

    @Test func jsonShapes() throws {
        let typed = try Tool.run("read", box.pid, hx(box.buf + 0x310), "4", "--format", "i32", "--json")
        #expect(typed.exited(0))
        let t = try #require(typed.json, "\(typed)")
        #expect(t["pid"] as? Int == Int(box.holder.pid))
        #expect(t["address"] as? String == hx(box.buf + 0x310))
        #expect(t["length"] as? Int == 4 && t["format"] as? String == "i32")
        #expect(t["requested"] as? Int == 4 && t["moved"] as? Int == 4 && t["complete"] as? Bool == true)
        #expect((t["holes"] as? [Any])?.isEmpty == true)
        #expect(t["stop"] is NSNull)
        #expect(t["values"] as? [Int] == [-5])

        let many = try #require(
            try Tool.run("read", box.pid, hx(box.buf + 0x200), "16", "--format", "u64", "--json").json)
        #expect((many["values"] as? [NSNumber])?.map(\.uint64Value) == [0x1122_3344_5566_7788, 0x400c_0000_0000_0000])
        let f = try #require(try Tool.run("read", box.pid, hx(box.buf + 0x208), "8", "--format", "f64", "--json").json)
        #expect(f["values"] as? [Double] == [3.5])
        let p = try #require(try Tool.run("read", box.pid, hx(box.buf + 0x200), "8", "--format", "ptr", "--json").json)
        #expect(p["values"] as? [String] == ["0x1122334455667788"])
        let s = try #require(try Tool.run("read", box.pid, hx(box.buf + 0x300), "64", "--format", "str", "--json").json)
        #expect(s["string"] as? String == "hello, vmio")
        let h = try #require(try Tool.run("read", box.pid, hx(box.buf + 0x100), "16", "--json").json)
        #expect(h["format"] as? String == "hex")
        #expect(h["data"] as? String == hexOf("VMIO-MARKER-0001".utf8))
    }

    /// NaN and the infinities read back by name in text (JSON, which has no word for them,
    /// says null); written by name, they are what was asked.
    @Test func floatsThatAreNotFiniteReadByName() throws {
        let at = box.buf + 0x700
        for (offset, value) in [(0, "nan"), (8, "inf"), (16, "-inf")] {
            #expect(try Tool.run("write", box.pid, hx(at + UInt64(offset)), "--f64", value).exited(0))
        }
        for (offset, value) in [(24, "nan"), (28, "-inf")] {
            #expect(try Tool.run("write", box.pid, hx(at + UInt64(offset)), "--f32", value).exited(0))
        }
        let f64 = try Tool.run("read", box.pid, hx(at), "24", "--format", "f64")
        #expect(f64.stdoutText.contains("nan") && f64.stdoutText.contains(" inf") && f64.stdoutText.contains("-inf"))
        #expect(!f64.stdoutText.contains("null"), "\(f64)")
        let f32 = try Tool.run("read", box.pid, hx(at + 24), "8", "--format", "f32")
        #expect(f32.stdoutText.contains("nan") && f32.stdoutText.contains("-inf") && !f32.stdoutText.contains("null"))
    }

    // MARK: address forms

    @Test func decimalAddress() throws {
        let result = try Tool.run("read", box.pid, String(box.buf + 0x100), "16", "--format", "raw")
        #expect(result.exited(0), "\(result)")
        #expect(result.stdout.elementsEqual("VMIO-MARKER-0001".utf8))
    }

    @Test func heapPlusOffset() throws {
        let heap = try #require(procMapsLines(box.holder.pid).first { $0.path == "[heap]" })
        let result = try Tool.run("read", box.pid, "[heap]+0x10", "32", "--json")
        #expect(result.exited(0), "\(result)")
        let json = try #require(result.json)
        #expect(json["address"] as? String == hx(heap.start + 0x10))
        #expect(json["data"] as? String == hexOf(try box.holder.get(heap.start + 0x10, 32)))
    }

    @Test func stackRegion() throws {
        let stack = try #require(procMapsLines(box.holder.pid).first { $0.path == "[stack]" })
        let result = try Tool.run("read", box.pid, "[stack]", "16", "--json")
        #expect(result.exited(0), "\(result)")
        #expect(result.json?["address"] as? String == hx(stack.start))
        // The top of the stack mapping: the end is 16 bytes below it, read through the region name too.
        let top = try Tool.run("read", box.pid, "[stack]+\(hx(stack.end - stack.start - 16))", "16", "--json")
        #expect(top.exited(0))
        #expect(top.json?["address"] as? String == hx(stack.end - 16))
        #expect(top.json?["data"] as? String == hexOf(try box.holder.get(stack.end - 16, 16)))
    }

    @Test func fileBasenamePlusOffsetReadsTheElfHeader() throws {
        let binary = Fixtures.path(of: .holder)
        let image = try #require(FileManager.default.contents(atPath: binary.path))
        // The first mapping of the file maps it from offset 0: FILE+OFF reads the file's bytes.
        let first = try #require(procMapsLines(box.holder.pid).first { $0.path.hasSuffix("/vmio-fixture-holder") })
        #expect(first.offset == 0)
        let result = try Tool.run("read", box.pid, "vmio-fixture-holder+0x10", "48", "--format", "raw")
        #expect(result.exited(0), "\(result)")
        #expect(result.stdout == Array(image[0x10..<0x40]))
        let magic = try Tool.run("read", box.pid, "vmio-fixture-holder", "4", "--format", "raw")
        #expect(magic.stdout == [0x7f, 0x45, 0x4c, 0x46])
        let json = try Tool.run("read", box.pid, "vmio-fixture-holder+0x10", "8", "--json")
        #expect(json.json?["address"] as? String == hx(first.start + 0x10))
    }

    @Test func vdsoByName() throws {
        let vdso = try #require(procMapsLines(box.holder.pid).first { $0.path == "[vdso]" }, "the holder has a vDSO")
        let result = try Tool.run("read", box.pid, "[vdso]+0x10", "16", "--json")
        #expect(result.exited(0), "\(result)")
        #expect(result.json?["address"] as? String == hx(vdso.start + 0x10))
        #expect(result.json?["data"] as? String == readProcMem(box.holder.pid, vdso.start + 0x10, 16).map(hexOf))
        let magic = try Tool.run("read", box.pid, "[vdso]", "4", "--format", "raw")
        #expect(magic.exited(0) && magic.stdout == [0x7f, 0x45, 0x4c, 0x46], "the vDSO is an ELF image: \(magic)")
    }

    @Test func fullPathOfAFile() throws {
        let first = try #require(procMapsLines(box.holder.pid).first { $0.path.hasSuffix("/vmio-fixture-holder") })
        let result = try Tool.run("read", box.pid, first.path + "+0x10", "8", "--json")
        #expect(result.exited(0), "\(result)")
        #expect(result.json?["address"] as? String == hx(first.start + 0x10))
        let image = try #require(FileManager.default.contents(atPath: first.path))
        #expect(result.json?["data"] as? String == hexOf(image[0x10..<0x18]))
        // A path that is not mapped (a directory of it) names nothing.
        let parent = (first.path as NSString).deletingLastPathComponent
        let none = try Tool.run("read", box.pid, parent, "8")
        #expect(none.exited(1) && none.stderr.contains("no mapping named '\(parent)'"), "\(none)")
    }

    /// `-N` offsets, chained with `+N` in any order, on every base form.
    @Test func minusOffsets() throws {
        let heap = try #require(procMapsLines(box.holder.pid).first { $0.path == "[heap]" })
        let cases: [(String, UInt64)] = [
            ("\(hx(box.buf + 0x110))-0x10", box.buf + 0x100),
            ("\(hx(box.buf))+0x200-0x100", box.buf + 0x100),
            ("\(hx(box.buf))-0x10+0x110", box.buf + 0x100),
            ("\(box.buf + 0x110)-16", box.buf + 0x100),
            ("[heap]+0x40-0x20", heap.start + 0x20),
            (
                "vmio-fixture-holder+0x18-0x8",
                try #require(
                    procMapsLines(box.holder.pid).first { $0.path.hasSuffix("/vmio-fixture-holder") }?.start) + 0x10
            ),
            ("sym:counter+0x10-0x10", box.holder.address("counter")),
        ]
        for (expression, address) in cases {
            let result = try Tool.run("read", box.pid, expression, "8", "--json")
            #expect(result.exited(0), "\(expression): \(result)")
            #expect(result.json?["address"] as? String == hx(address), "\(expression): \(result)")
            #expect(
                result.json?["data"] as? String == readProcMem(box.holder.pid, address, 8).map(hexOf), "\(expression)")
        }
        // Below zero is refused (bad input), like a sum above 2^64.
        let under = try Tool.run("read", box.pid, "0x10-0x20", "8")
        #expect(under.exited(1), "\(under)")
        #expect(under.stderrLines == ["vmio-ptrace: bad address '0x10-0x20': 0x10 - 0x20 is below zero"], "\(under)")
    }

    /// `[anon:NAME]`: the holder names one page `vmio-named` (where the kernel can name
    /// anonymous memory: PR_SET_VMA_ANON_NAME, CONFIG_ANON_VMA_NAME).
    @Test(.enabled(if: kernelNamesAnonymousMemory, "this kernel cannot name anonymous memory (CONFIG_ANON_VMA_NAME)"))
    func namedAnonymousMapping() throws {
        let named = box.holder.address("named")
        let line = try #require(procMapsLines(box.holder.pid).first { $0.contains(named) })
        #expect(line.path == "[anon:vmio-named]", "\(line)")
        let result = try Tool.run("read", box.pid, "[anon:vmio-named]+0x10", "4", "--json")
        #expect(result.exited(0), "\(result)")
        #expect(result.json?["address"] as? String == hx(line.start + 0x10))
        #expect(result.json?["data"] as? String == "4e4e4e4e")
    }

    @Test func selfReadsTheToolsOwnMemory() throws {
        let magic = try Tool.run("read", "self", "vmio-ptrace", "4", "--format", "raw")
        #expect(magic.exited(0), "\(magic)")
        #expect(magic.stdout == [0x7f, 0x45, 0x4c, 0x46])
        let running = try Running(Tool.path, ["read", "self", "[stack]", "8", "--json"])
        let result = running.finish()
        #expect(result.exited(0), "\(result)")
        #expect(result.json?["pid"] as? Int == Int(running.pid))
    }

    @Test func zeroLengthReadMovesNothing() throws {
        let result = try Tool.run("read", box.pid, hx(box.buf), "0", "--json")
        #expect(result.exited(0), "\(result)")
        #expect(result.json?["requested"] as? Int == 0 && result.json?["moved"] as? Int == 0)
        #expect(result.json?["complete"] as? Bool == true)
    }

    @Test func lengthSuffixes() throws {
        for (text, count) in [("1K", 1024), ("0x400", 1024), ("1024", 1024), ("2k", 2048)] {
            let result = try Tool.run("read", box.pid, hx(box.buf), text, "--format", "raw")
            #expect(result.exited(0), "\(text): \(result.stderr)")
            #expect(result.stdout.count == count, "\(text)")
        }
    }

    // MARK: reads that fault

    @Test func readAcrossTheEndOfAMappingIntoAHole() throws {
        let edge = box.edge
        let result = try Tool.run("read", box.pid, hx(edge + 4000), "200")
        #expect(result.exited(2), "\(result)")
        // The 96 bytes that did move are shown: 6 lines of 0xab.
        #expect(result.lines.count == 6, "\(result.lines)")
        for (i, line) in result.lines.enumerated() {
            #expect(
                line.hasPrefix(
                    String(edge + 4000 + UInt64(i * 16), radix: 16) + ": abab abab abab abab abab abab abab abab"),
                "\(line)")
        }
        #expect(result.stderrLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("96 of 200"))
        let partial = try #require(PartialLine(result.stderr))
        #expect(partial.moved == 96 && partial.requested == 200)
        #expect(partial.faultAddress == edge + 4096)

        let json = try #require(try Tool.run("read", box.pid, hx(edge + 4000), "200", "--json").json)
        #expect(json["moved"] as? Int == 96 && json["requested"] as? Int == 200 && json["complete"] as? Bool == false)
        let stop = try #require(json["stop"] as? [String: Any])
        #expect(stop["fault_address"] as? String == hx(edge + 4096))
        #expect(stop["side"] as? String == "source")
        #expect(json["data"] as? String == String(repeating: "ab", count: 96))
    }

    @Test func rawReadIntoAHoleKeepsThePrefixAsPartial() throws {
        let out = TempPath("edge.bin")
        defer { for name in [".partial", ".partial.2"] { unlink(out.path + name) } }
        let result = try Tool.run("read", box.pid, hx(box.edge + 1000), "8192", "--format", "raw", "-o", out.path)
        #expect(result.exited(2))
        #expect(result.stderrLines.count == 1, "\(result.stderr)")
        #expect(PartialLine(result.stderr)?.moved == 3096)
        #expect(PartialLine(result.stderr)?.faultAddress == box.edge + 4096)
        // FILE is complete or absent; the 3096 bytes that moved are in FILE.partial.
        #expect(out.contents == nil)
        #expect(
            FileManager.default.contents(atPath: out.path + ".partial").map { [UInt8]($0) }
                == [UInt8](repeating: 0xab, count: 3096))
        // Again without --force: the old FILE.partial stays, the new prefix goes beside it, named.
        let again = try Tool.run("read", box.pid, hx(box.edge + 2000), "8192", "--format", "raw", "-o", out.path)
        #expect(again.exited(2))
        #expect(FileManager.default.contents(atPath: out.path + ".partial")?.count == 3096)
        #expect(FileManager.default.contents(atPath: out.path + ".partial.2")?.count == 2096)
        #expect(again.stderr.contains("the bytes that moved are in \(out.path).partial.2"), "\(again.stderr)")
        let stdout = try Tool.run("read", box.pid, hx(box.edge + 1000), "8192", "--format", "raw")
        #expect(stdout.exited(2))
        #expect(stdout.stdout == [UInt8](repeating: 0xab, count: 3096))
    }

    @Test func skipFaultsReportsTheHole() throws {
        let edge = box.edge
        let result = try Tool.run("read", box.pid, hx(edge + 4000), "200", "--skip-faults", "--json")
        #expect(result.exited(2), "\(result)")
        let json = try #require(result.json)
        #expect(json["moved"] as? Int == 96)
        #expect(json["complete"] as? Bool == false)
        #expect(json["stop"] is NSNull)
        let holes = try #require(json["holes"] as? [[String: Any]])
        #expect(holes.count == 1)
        #expect(holes.first?["address"] as? String == hx(edge + 4096))
        #expect(holes.first?["length"] as? Int == 104)
        // The data spans the whole range, the hole read as zeros, so bytes keep their places.
        #expect(json["data"] as? String == String(repeating: "ab", count: 96) + String(repeating: "00", count: 104))
        // Text: stderr names the hole.
        let text = try Tool.run("read", box.pid, hx(edge + 4000), "200", "--skip-faults")
        #expect(text.exited(2))
        #expect(
            text.stderrLines.count == 1 && text.stderr.contains("96 of 200") && text.stderr.contains("104 bytes"),
            "\(text.stderr)")
        #expect(
            text.lines.count == 7 && text.lines.last == "*** 104 bytes at \(hx(edge + 4096)) could not be read",
            "a trailing hole is marked too: \(text.lines)")
        // Raw to a file: the hole reads as zeros and the file has the full length.
        let out = TempPath("skip.bin")
        let raw = try Tool.run(
            "read", box.pid, hx(edge + 4000), "200", "--skip-faults", "--format", "raw", "-o", out.path)
        #expect(raw.exited(2))
        #expect(out.contents == [UInt8](repeating: 0xab, count: 96) + [UInt8](repeating: 0, count: 104))
        let rawOut = try Tool.run("read", box.pid, hx(edge + 4000), "200", "--skip-faults", "--format", "raw")
        #expect(rawOut.stdout == [UInt8](repeating: 0xab, count: 96) + [UInt8](repeating: 0, count: 104))
    }

    @Test func readOfTheGuardPageMovesNothing() throws {
        let guardPage = box.holder.address("guard")
        let result = try Tool.run("read", box.pid, hx(guardPage), "16")
        #expect(result.exited(2), "\(result)")
        #expect(result.stdout.isEmpty)
        let partial = try #require(PartialLine(result.stderr), "\(result.stderr)")
        #expect(partial.moved == 0 && partial.requested == 16)
        #expect(partial.faultAddress == guardPage)
        let json = try #require(try Tool.run("read", box.pid, hx(guardPage), "16", "--json").json)
        #expect(json["moved"] as? Int == 0)
        #expect((json["stop"] as? [String: Any])?["fault_address"] as? String == hx(guardPage))
        // Starting before it: exactly the bytes up to the guard move.
        let before = try Tool.run("read", box.pid, hx(guardPage - 10), "20", "--format", "raw")
        #expect(before.exited(2))
        #expect(before.stdout == (try box.holder.get(guardPage - 10, 10)))
        #expect(PartialLine(before.stderr)?.faultAddress == guardPage)
    }

    @Test func skipFaultsOverManyHolesInTheHexDump() throws {
        let many = try Fixtures.launch(.manyMaps)
        defer { many.terminate() }
        let base = many.address("base")
        // page 0, hole, page 1, hole, page 2 (ends on a mapped page).
        let result = try Tool.run("read", many.pidArg, hx(base), String(8192 * 2 + 4096), "--skip-faults", "--json")
        #expect(result.exited(2), "\(result.stderr)")
        let json = try #require(result.json)
        #expect(json["moved"] as? Int == 3 * 4096)
        let holes = try #require(json["holes"] as? [[String: Any]])
        #expect(holes.map { $0["address"] as? String } == [hx(base + 4096), hx(base + 4096 + 8192)])
        #expect(holes.map { $0["length"] as? Int } == [4096, 4096])
        let data = bytesOf(hex: try #require(json["data"] as? String))
        // The whole range, holes as zeros.
        #expect(data.count == 5 * 4096)
        for k in 0..<3 {
            let page = Array(data[(k * 8192)..<(k * 8192 + 4096)])
            #expect(page[0..<8] == [UInt8(k), 0, 0, 0, 0, 0, 0, 0][...])
            #expect(page[8...].allSatisfy { $0 == UInt8(k) })
        }
        for k in 0..<2 { #expect(data[(k * 8192 + 4096)..<(k * 8192 + 8192)].allSatisfy { $0 == 0 }) }
        // The text dump: lines jump over each hole, and the hole is named.
        let text = try Tool.run("read", many.pidArg, hx(base), String(8192 * 2 + 4096), "--skip-faults")
        #expect(text.exited(2))
        #expect(text.lines.count >= 3 * 256)
        #expect(text.lines.contains { $0.hasPrefix(String(base + 8192, radix: 16) + ": 0100 0000 0000 0000 0101") })
        #expect(!text.lines.contains { $0.hasPrefix(String(base + 4096, radix: 16) + ":") })
        let marks = text.lines.filter { $0.hasPrefix("***") }
        #expect(
            marks == [
                "*** 4096 bytes at \(hx(base + 4096)) could not be read",
                "*** 4096 bytes at \(hx(base + 4096 + 8192)) could not be read",
            ], "\(marks)")
    }
}
