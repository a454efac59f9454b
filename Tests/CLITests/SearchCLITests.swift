// `vmio-ptrace search`: strings, hex with ?? wildcards, UTF-16LE, typed values with their
// alignment, --max, --json, a match straddling the 4 MiB streaming chunks, unreadable
// pages skipped and counted (truncated fixture), bad patterns, and nothing but the summary
// on stderr when it is a pipe.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// One hit of `search --json`.
struct SearchHitJSON: Equatable {
    var address: UInt64
    var regionStart: UInt64
    var regionEnd: UInt64
    var perms: String
    var path: String
    var offset: UInt64
}

/// `search --json` output.
struct SearchJSON {
    var raw: [String: Any]
    var hits: [SearchHitJSON]
    var truncated: Bool { raw["truncated"] as? Bool ?? false }
    var scanned: UInt64 { u64(raw["scanned"]) ?? 0 }
    var unreadable: UInt64 { u64(raw["unreadable"]) ?? 0 }
    var addresses: [UInt64] { hits.map(\.address) }

    init(_ result: RunResult) throws {
        raw = try #require(result.json, "\(result)")
        let list = try #require(raw["hits"] as? [[String: Any]], "\(result)")
        hits = try list.map { h in
            let region = try #require(h["region"] as? [String: Any])
            return SearchHitJSON(
                address: try #require(u64(h["address"])), regionStart: try #require(u64(region["start"])),
                regionEnd: try #require(u64(region["end"])), perms: try #require(region["perms"] as? String),
                path: try #require(region["path"] as? String), offset: try #require(u64(h["offset"])))
        }
    }
}

@Suite struct SearchCLITests {
    let holder: FixtureProcess
    let buf: UInt64

    init() throws {
        holder = try Fixtures.launch(.holder)
        buf = holder.address("buf")
    }

    var pid: String { holder.pidArg }
    var bufRange: ClosedRange<UInt64> { buf...(buf + 65535) }

    private func search(_ arguments: String...) throws -> RunResult {
        try Tool.run(["search", pid] + arguments)
    }

    private func searchJSON(_ arguments: String...) throws -> SearchJSON {
        let result = try Tool.run(["search", pid] + arguments + ["--json"])
        #expect(result.exited(0), "\(result)")
        return try SearchJSON(result)
    }

    @Test func findsTheMarkerWithRegionAndOffset() throws {
        let result = try search("--string", "VMIO-MARKER-0001")
        #expect(result.exited(0), "\(result)")
        // The hit in buf, as text: address, label (anonymous memory has no name: the mapping's
        // start + offset, an ADDR that resolves back), permissions and bounds.
        let bufLine = try #require(procMapsLines(holder.pid).first { $0.contains(buf + 0x100) })
        let want =
            "\(hx(buf + 0x100))  \(hx(bufLine.start))+\(hx(buf + 0x100 - bufLine.start))  (rw-p \(hx(bufLine.start))-\(hx(bufLine.end)))"
        #expect(result.lines.contains(want), "\(result.lines)")
        // Standard error holds the summary line only (no progress text on a pipe).
        #expect(result.stderrLines.count == 1, "\(result.stderr)")
        let summary = result.stderrLines.first ?? ""
        #expect(summary.range(of: #"^\d+ hits? in \d+ bytes$"#, options: .regularExpression) != nil, "\(summary)")
        #expect(summary.hasPrefix("\(result.lines.count) hit"))

        let json = try searchJSON("--string", "VMIO-MARKER-0001")
        let hit = try #require(json.hits.first { $0.address == buf + 0x100 }, "\(json.hits)")
        #expect(
            hit
                == SearchHitJSON(
                    address: buf + 0x100, regionStart: bufLine.start, regionEnd: bufLine.end,
                    perms: "rw-p", path: "", offset: buf + 0x100 - bufLine.start))
        #expect(json.hits.filter { bufRange.contains($0.address) }.count == 1)
        #expect(!json.truncated)
        #expect(json.unreadable == 0)
        // Every hit is the marker, and lies in the region it names.
        for h in json.hits {
            #expect(readProcMem(holder.pid, h.address, 16).map { Array($0) } == Array("VMIO-MARKER-0001".utf8))
            #expect(h.regionStart <= h.address && h.address < h.regionEnd && h.offset == h.address - h.regionStart)
        }
        // Scanned: every readable mapping except the kernel pages.
        #expect(json.scanned == dumpableLines(holder.pid).reduce(0) { $0 + $1.end - $1.start })
    }

    @Test func jsonShape() throws {
        let json = try searchJSON("--string", "hello, vmio", "--region", "anon")
        #expect(Set(json.raw.keys) == ["pid", "pattern", "hits", "truncated", "scanned", "unreadable"])
        #expect(u64(json.raw["pid"]) == UInt64(holder.pid))
        #expect(json.raw["pattern"] as? String == "string:hello, vmio")
        let first = try #require((json.raw["hits"] as? [[String: Any]])?.first)
        #expect(Set(first.keys) == ["address", "region", "offset", "label"])
        let region = try #require(first["region"] as? [String: Any])
        #expect(Set(region.keys) == ["start", "end", "perms", "path"])
        #expect(json.addresses.contains(buf + 0x300))
    }

    @Test func hexWithWildcards() throws {
        // "VM?O": the marker, and a planted "VMxO".
        let planted = buf + 0x420
        #expect(try Tool.run("write", pid, hx(planted), "--string", "VMxO").exited(0))
        let json = try searchJSON("--hex", "56 4d ?? 4f", "--region", "\(hx(buf))-\(hx(buf + 65536))")
        #expect(json.addresses == [buf + 0x100, planted])
        for address in json.addresses {
            let bytes = try holder.get(address, 4)
            #expect(bytes[0] == 0x56 && bytes[1] == 0x4d && bytes[3] == 0x4f)
        }
        // The same without the wildcard: only the marker.
        #expect(
            try searchJSON("--hex", "564d494f", "--region", "\(hx(buf))-\(hx(buf + 65536))").addresses == [buf + 0x100])
        // A leading wildcard: the byte before the planted one is part of the match.
        #expect(
            try searchJSON("--hex", "?? 56 4d 78", "--region", "\(hx(buf))-\(hx(buf + 65536))").addresses == [
                planted - 1
            ])
    }

    @Test func utf16LittleEndian() throws {
        let text = "wïde ştring ✓"
        let at = buf + 0x800
        #expect(try Tool.run("write", pid, hx(at), "--utf16", text).exited(0))
        // Searched before the holder's `get` copies the bytes into its static buffer.
        let json = try searchJSON("--utf16", text)
        #expect(json.addresses == [at], "found once, where it was written")
        #expect(json.raw["pattern"] as? String == "utf16:" + text)
        let units = Array(text.utf16)
        #expect(try holder.get(at, units.count * 2) == units.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] })
        // Its UTF-8 form is nowhere in the holder.
        #expect(try searchJSON("--string", text).hits.isEmpty)
    }

    /// One typed value: its option, its text, the little-endian bytes it must match (computed
    /// here, not by the tool), and its natural alignment.
    struct TypedCase: Sendable, CustomStringConvertible {
        var option: String
        var value: String
        var bytes: [UInt8]
        var width: UInt64
        /// Where the test plants it first (offset in buf; nil: the holder already holds it).
        var plant: UInt64?
        var description: String { "\(option) \(value)" }
    }

    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }

    static let typedCases: [TypedCase] = [
        // The pattern byte 0x07 is at every multiple of 256 (but 0x100, 0x200, 0x300).
        TypedCase(option: "--u8", value: "7", bytes: [0x07], width: 1),
        // -5 is 0xfb: in the pattern, and the low byte of the i32 at 0x310.
        TypedCase(option: "--i8", value: "-5", bytes: [0xfb], width: 1),
        TypedCase(option: "--u16", value: "0xBEEF", bytes: le(UInt16(0xBEEF)), width: 2),
        TypedCase(option: "--i16", value: "-1234", bytes: le(Int16(-1234)), width: 2, plant: 0x402),
        TypedCase(option: "--i32", value: "-5", bytes: le(Int32(-5)), width: 4),
        TypedCase(
            option: "--i64", value: "-81985529216486896", bytes: le(Int64(-81_985_529_216_486_896)), width: 8,
            plant: 0x408),
        TypedCase(option: "--u64", value: "0x1122334455667788", bytes: le(UInt64(0x1122_3344_5566_7788)), width: 8),
        TypedCase(option: "--f32", value: "-2.75", bytes: le(Float(-2.75).bitPattern), width: 4, plant: 0x414),
        TypedCase(option: "--f64", value: "3.5", bytes: le(Double(3.5).bitPattern), width: 8),
    ]

    /// Every typed option finds exactly the naturally aligned places of buf that hold its
    /// bytes, computed here from the holder's own view of buf (and nothing else).
    @Test(arguments: typedCases)
    func typedValuesAtTheirAlignment(_ c: TypedCase) throws {
        if let offset = c.plant {
            try #require(writeProcMem(holder.pid, buf + offset, c.bytes), "planting \(c)")
        }
        let memory = try holder.get(buf, 65536)
        let expected = stride(from: 0, through: memory.count - c.bytes.count, by: Int(c.width)).filter {
            Array(memory[$0..<$0 + c.bytes.count]) == c.bytes
        }.map { buf + UInt64($0) }
        try #require(!expected.isEmpty, "\(c): buf holds it somewhere")
        // `--opt=value`: a negative value after a separate option is taken for an option.
        let json = try searchJSON("\(c.option)=\(c.value)", "--region", "\(hx(buf))-\(hx(buf + 65536))")
        #expect(json.addresses == expected, "\(c)")
        #expect(!json.truncated)
        #expect(json.raw["pattern"] as? String == "\(c.option.dropFirst(2)):\(c.value)", "\(json.raw)")
    }

    @Test func u64OverTheWholeProcess() throws {
        let json = try searchJSON("--u64", "0x1122334455667788")
        #expect(json.addresses.contains(buf + 0x200), "\(json.addresses)")
        #expect(json.addresses.allSatisfy { $0 % 8 == 0 })
        #expect(json.raw["pattern"] as? String == "u64:0x1122334455667788")
    }

    @Test func unalignedValueNeedsAlignOne() throws {
        let at = buf + 0x501
        #expect(try Tool.run("write", pid, hx(at), "--u32", "0xa1b2c3d4").exited(0))
        #expect(try holder.get(at, 4) == [0xd4, 0xc3, 0xb2, 0xa1])
        let aligned = try searchJSON("--u32", "0xa1b2c3d4")
        #expect(!aligned.addresses.contains(at), "natural alignment 4 skips it")
        #expect(aligned.addresses.filter { bufRange.contains($0) }.isEmpty)
        let any = try searchJSON("--u32", "0xa1b2c3d4", "--align", "1")
        #expect(any.addresses.filter { bufRange.contains($0) } == [at])
        // The same bytes as hex: alignment 1 by default.
        #expect(try searchJSON("--hex", "d4c3b2a1").addresses.filter { bufRange.contains($0) } == [at])
        // --align 2 does not take an odd address either.
        #expect(try searchJSON("--hex", "d4c3b2a1", "--align", "2").addresses.filter { bufRange.contains($0) }.isEmpty)
    }

    @Test func maxTruncates() throws {
        // Byte i of buf is 07 only at multiples of 256, followed by 8a: 256 of them, less
        // the three the marker, the u64 and the string overwrite (0x100, 0x200, 0x300).
        let all = try searchJSON("--hex", "07 8a", "--region", "\(hx(buf))-\(hx(buf + 65536))")
        #expect(all.hits.count == 253, "\(all.hits.count)")
        #expect(all.addresses.allSatisfy { ($0 - buf) % 256 == 0 })
        #expect(!all.truncated)
        let one = try Tool.run("search", pid, "--hex", "07 8a", "--max", "1", "--json")
        #expect(one.exited(0), "\(one)")
        let oneJSON = try SearchJSON(one)
        #expect(oneJSON.hits.count == 1)
        #expect(oneJSON.truncated)
        let text = try search("--hex", "07 8a", "--region", "\(hx(buf))-\(hx(buf + 65536))", "--max", "10")
        #expect(text.exited(0))
        #expect(text.lines.count == 10)
        #expect(text.lines.first?.hasPrefix(hx(buf) + "  ") == true, "\(text.lines)")
        #expect(text.stderrLines.count == 1 && text.stderr.contains("(stopped at --max 10)"), "\(text.stderr)")
        // The default is 1000.
        let many = try searchJSON("--hex", "07")
        #expect(many.hits.count == 1000 && many.truncated)
    }

    /// The search streams 4 MiB chunks from the start of each region: a pattern planted
    /// 7 bytes before a chunk boundary straddles it, and is found.
    @Test func matchStraddlingAChunkBoundary() throws {
        let exiter = try Fixtures.launch(.exiter)  // 256 MiB
        defer { exiter.terminate() }
        let base = exiter.address("buf")
        let pattern = "5354524144444c452d3031323334353f"  // "STRADDLE-012345?"
        let at = base + (4 << 20) - 7
        #expect(try Tool.run("write", exiter.pidArg, hx(at), "--hex", pattern).exited(0))
        // Clipped to buf: its chunks start at buf + k * 4 MiB.
        let clipped = try Tool.run(
            "search", exiter.pidArg, "--hex", pattern, "--region",
            "\(hx(base))-\(hx(base + (256 << 20)))", "--json")
        #expect(clipped.exited(0), "\(clipped)")
        let json = try SearchJSON(clipped)
        #expect(json.addresses == [at])
        #expect(json.scanned == 256 << 20)
        // The whole process: buf's maps line may start before buf, so plant a second copy
        // 7 bytes before a boundary of that line's chunks too.
        let line = try #require(procMapsLines(exiter.pid).first { $0.contains(base) })
        let boundary = line.start + ((base + (64 << 20) - line.start) / (4 << 20)) * (4 << 20)
        let second = boundary - 7
        #expect(try Tool.run("write", exiter.pidArg, hx(second), "--hex", pattern).exited(0))
        let whole = try Tool.run("search", exiter.pidArg, "--hex", pattern, "--json")
        #expect(whole.exited(0), "\(whole)")
        #expect(try SearchJSON(whole).addresses == [at, second].sorted())
        // A wildcard version straddles too.
        let wild = try Tool.run(
            "search", exiter.pidArg, "--hex", "53 54 52 41 44 44 ?? 45 2d 30 31 32 33 34 35 3f", "--json")
        #expect(try SearchJSON(wild).addresses == [at, second].sorted())
    }

    @Test func unreadablePagesAreSkippedAndCounted() throws {
        let fixture = try Fixtures.launch(.truncated)
        defer { fixture.terminate() }
        let map = fixture.address("map")
        let range = "\(hx(map))-\(hx(map + 16384))"
        let result = try Tool.run(
            "search", fixture.pidArg, "--hex", "5c 5c 5c 5c", "--region", range, "--max", "5000", "--json")
        #expect(result.exited(0), "\(result)")
        let json = try SearchJSON(result)
        #expect(json.unreadable == 12288)
        #expect(json.scanned == 4096)
        #expect(json.hits.count == 4096 - 4 + 1, "overlapping hits at every offset of the readable page")
        #expect(json.addresses.first == map && json.addresses.last == map + 4092)
        #expect(!json.truncated)
        // Text: the summary names the skipped bytes; the status is still 0.
        let text = try Tool.run("search", fixture.pidArg, "--hex", "5c5c5c5c", "--region", range, "--max", "5000")
        #expect(text.exited(0), "\(text)")
        #expect(text.stderrLines == ["4093 hits in 4096 bytes; 12288 unreadable bytes skipped"], "\(text.stderr)")
        #expect(text.lines.count == 4093)
        // The whole process: the same pages are counted, never fatal.
        let whole = try Tool.run("search", fixture.pidArg, "--string", "no such string in there", "--json")
        #expect(whole.exited(0), "\(whole)")
        let wholeJSON = try SearchJSON(whole)
        #expect(wholeJSON.unreadable >= 12288)
        #expect(wholeJSON.hits.isEmpty)
    }

    @Test func badPatterns() throws {
        for hex in ["zz", "?? ??", "5", "+f", "-0 41", "0x", ""] {
            // `--hex=V` so that "-0 41" is not taken for an option (and "" needs two arguments).
            let result = hex.isEmpty ? try search("--hex", hex) : try search("--hex=" + hex)
            #expect(result.exited(64), "'\(hex)': \(result)")  // a malformed value (issue 12, bug 13)
            #expect(result.stderrLines.count == 1, "'\(hex)': \(result.stderr)")
            #expect(
                result.stderr.hasPrefix("vmio-ptrace: ") && result.stderr.contains("pattern"),
                "'\(hex)': \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
        // A value that does not fit its type.
        let tooBig = try search("--u32", "0x1ffffffff")
        #expect(tooBig.exited(64), "\(tooBig)")
        #expect(tooBig.stderrLines.count == 1 && tooBig.stderr.contains("0x1ffffffff"), "\(tooBig.stderr)")
        // Nothing selected.
        let nowhere = try search("--string", "x", "--region", "no-such-library.so")
        #expect(nowhere.exited(1), "\(nowhere)")
        #expect(nowhere.stderrLines.count == 1 && nowhere.stderr.contains("no readable mapping"), "\(nowhere.stderr)")
        // Command-line errors: two patterns, none, --max 0, --align 0.
        for arguments in [
            ["--hex", "41", "--string", "A"], ["--u32", "1", "--u64", "1"], [], ["--hex", "41", "--max", "0"],
            ["--u32", "1", "--align", "0"],
        ] {
            let result = try Tool.run(["search", pid] + arguments)
            #expect(result.exited(64), "\(arguments): \(result)")
            #expect(
                result.stderrLines.count == 1 && result.stderr.hasPrefix("vmio-ptrace: "),
                "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
        // The holder is untouched and answering.
        #expect(try holder.send("ping") == "pong")
    }
}
