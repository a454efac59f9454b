// `read` streams every format (issue 12, bug 1): typed values, strings and `--json` go
// through one buffer as they come, so memory stays flat for any length, and a value or a
// UTF-8 sequence split between two chunks of the stream comes out whole.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct ReadStreamingCLITests {
    /// The exiter's buffer: word i (at `buf + 8*i`) holds i.
    let exiter: FixtureProcess
    let buf: UInt64

    init() throws {
        exiter = try Fixtures.launch(.exiter, arguments: ["8"])
        buf = exiter.address("buf")
    }

    /// The buffer's byte at offset `o`.
    func byte(_ o: UInt64) -> UInt8 { UInt8(truncatingIfNeeded: (o / 8) >> (8 * (o % 8))) }

    /// The little-endian value of `width` bytes at offset `o`.
    func value(_ o: UInt64, _ width: UInt64) -> UInt64 {
        (0..<width).reduce(0) { $0 | UInt64(byte(o + $1)) << (8 * $1) }
    }

    /// 4 MiB in each format, written to /dev/null: the peak memory stays far below what
    /// holding the bytes (let alone their decoded values) would take. Before the fix a typed
    /// read of 4 MiB peaked near 100 MiB, a raw one in JSON above 30 MiB.
    @Test(arguments: [
        ["--format", "u64"], ["--format", "u64", "--json"], ["--format", "i32"], ["--format", "f64", "--json"],
        ["--format", "ptr", "--json"], ["--json"], ["--format", "raw", "--json"], [], ["--format", "u8"],
    ])
    func everyFormatStreamsWithBoundedMemory(_ format: [String]) throws {
        let run = try spawnMeasuringPeakMemory(Tool.path, ["read", exiter.pidArg, hx(buf), "4M"] + format)
        #expect(run.status == 0, "\(format)")
        // Under a sanitizer the runtime's shadow and quarantine dominate: the bound is checked unsanitized.
        if !Tool.isSanitized {
            #expect(run.maxRSSKiB > 0 && run.maxRSSKiB < 30 * 1024, "\(format): peak RSS \(run.maxRSSKiB) KiB")
        }
    }

    /// Values that straddle the 256 KiB chunks of the stream (the start is 3 bytes past a
    /// word), in text and in JSON, are the buffer's values.
    @Test func valuesSplitBetweenChunksComeOutWhole() throws {
        let start: UInt64 = 3, count: UInt64 = (1 << 20) / 4 + 4
        let text = try Tool.run("read", exiter.pidArg, hx(buf + start), String(count * 4), "--format", "u32")
        #expect(text.exited(0), "\(text)")
        let lines = text.lines
        #expect(UInt64(lines.count) == count)
        let json = try Tool.run(
            "read", exiter.pidArg, hx(buf + start), String(count * 4), "--format", "u32", "--json")
        let values = try #require(json.json?["values"] as? [NSNumber], "\(json)")
        #expect(UInt64(values.count) == count)
        var wrong: [UInt64] = []
        for k in 0..<count {
            let expected = value(start + 4 * k, 4)
            let line = "\(hx(buf + start + 4 * k)): \(expected)"
            if lines[Int(k)] != line || values[Int(k)].uint64Value != expected { wrong.append(k) }
        }
        #expect(wrong.isEmpty, "values differ at \(wrong.prefix(5))")
    }

    /// The hex dump across a chunk boundary is the buffer's bytes, 16 a line, from the start.
    @Test func hexDumpAcrossChunksIsTheBytes() throws {
        let start: UInt64 = (1 << 20) - 40, length: UInt64 = 100
        let dump = try Tool.run("read", exiter.pidArg, hx(buf + start), String(length))
        #expect(dump.exited(0), "\(dump)")
        let expected = stride(from: 0, to: length, by: 16).map { line -> String in
            let bytes = (line..<min(line + 16, length)).map { byte(start + $0) }
            var text = String(buf + start + line, radix: 16)
            text = String(repeating: "0", count: max(0, 12 - text.count)) + text + ": "
            for i in 0..<16 {
                text += i < bytes.count ? String(format: "%02x", bytes[i]) : "  "
                if i % 2 == 1 { text += " " }
            }
            return text + " " + String(bytes.map { (0x20..<0x7f).contains($0) ? Character(UnicodeScalar($0)) : "." })
        }
        #expect(dump.lines == expected)
    }

    /// One value prints bare, in text; more print one `ADDR: VALUE` a line.
    @Test func oneValuePrintsBare() throws {
        let one = try Tool.run("read", exiter.pidArg, hx(buf + 8), "8", "--format", "u64")
        #expect(one.exited(0) && one.lines == ["1"], "\(one)")
        let two = try Tool.run("read", exiter.pidArg, hx(buf + 8), "16", "--format", "u64")
        #expect(two.lines == ["\(hx(buf + 8)): 1", "\(hx(buf + 16)): 2"], "\(two)")
    }
}
