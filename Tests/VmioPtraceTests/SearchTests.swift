// BytePattern (parsing, scan: wildcards, alignment, the `starts` window, matches at the
// very end, overlapping matches) against a naive reference, and Target.search over live
// fixtures with chunk sizes small enough that matches straddle many chunk boundaries.

import Foundation
import PropertyBased
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Every offset `scan` reports, in order.
private func scanAll(
    _ pattern: BytePattern, _ buffer: [UInt8], base: UInt64 = 0, starts: Range<Int>? = nil
) -> [Int] {
    var hits: [Int] = []
    buffer.withUnsafeBytes { raw in
        _ = pattern.scan(raw, base: base, starts: starts) {
            hits.append($0); return true
        }
    }
    return hits
}

/// The obvious quadratic search: what `scan` must agree with.
private func naive(
    _ pattern: BytePattern, _ buffer: [UInt8], base: UInt64 = 0, starts: Range<Int>? = nil
) -> [Int] {
    let m = pattern.count
    guard buffer.count >= m else { return [] }
    let window = starts ?? 0..<buffer.count
    return (0...(buffer.count - m)).filter { s in
        window.contains(s) && (base &+ UInt64(s)) % pattern.alignment == 0
            && (0..<m).allSatisfy { !pattern.mask[$0] || buffer[s + $0] == pattern.bytes[$0] }
    }
}

@Suite struct BytePatternSearchTests {
    // MARK: parsing

    @Test func parsesHexForms() throws {
        for text in ["564d494f", "56 4d 49 4f", "0x564d494f", "56:4d:49:4f", "  56 4D\t49 4f "] {
            let p = try BytePattern(hex: text)
            #expect(p.bytes == [0x56, 0x4d, 0x49, 0x4f], "\(text)")
            #expect(p.mask == [true, true, true, true], "\(text)")
            #expect(p.alignment == 1)
        }
        let w = try BytePattern(hex: "de ad ?? ef", alignment: 4)
        #expect(w.count == 4)
        #expect(w.mask == [true, true, false, true])
        #expect(w.bytes[0] == 0xde && w.bytes[1] == 0xad && w.bytes[3] == 0xef)
        #expect(w.alignment == 4)
        #expect(try BytePattern(hex: "dead??ef").mask == [true, true, false, true])
    }

    @Test(arguments: [
        "",  // empty
        "?? ??",  // no known byte
        "??",
        "zz",  // not hex
        "5",  // odd number of digits
        "56 4",
        "?4",  // half a wildcard
        "+f",  // UInt8("+f", radix: 16) would take it as 0x0f
        "-0",  // ... and this as 0
        "0x",
    ])
    func refusesMalformedHex(text: String) {
        #expect(throws: VmIoError.self, "'\(text)'") { try BytePattern(hex: text) }
    }

    @Test func refusesBadConstruction() {
        #expect(throws: VmIoError.self) { try BytePattern(bytes: []) }
        #expect(throws: VmIoError.self) { try BytePattern(bytes: [1, 2], mask: [true]) }
        #expect(throws: VmIoError.self) { try BytePattern(bytes: [1, 2], mask: [false, false]) }
        #expect(throws: VmIoError.self) { try BytePattern(bytes: [1], alignment: 0) }
    }

    // MARK: scan

    @Test func findsEveryOccurrenceInOrder() throws {
        let buffer = Array("xxabcxabcabcx".utf8)
        let p = try BytePattern(bytes: Array("abc".utf8))
        #expect(scanAll(p, buffer) == [2, 6, 9])
    }

    @Test func overlappingMatchesAtEveryOffset() throws {
        let p = try BytePattern(bytes: Array("aaaa".utf8))
        #expect(scanAll(p, Array("aaaaaa".utf8)) == [0, 1, 2])
        #expect(scanAll(p, Array("aaaa".utf8)) == [0])
        #expect(scanAll(p, Array("aaa".utf8)) == [])
        let q = try BytePattern(bytes: Array("abab".utf8))
        #expect(scanAll(q, Array("abababab".utf8)) == [0, 2, 4])
    }

    @Test func wildcards() throws {
        let p = try BytePattern(hex: "56 4d ?? 4f")  // V M ? O
        let buffer = Array("VMIO VMxO VM O VMI0 VMO".utf8)
        #expect(scanAll(p, buffer) == [0, 5, 10])
        // Wildcards at both ends still match at offset 0 and at the very end.
        let q = try BytePattern(hex: "?? 41 ??")
        #expect(scanAll(q, Array("zAzzAz".utf8)) == [0, 3])
        #expect(scanAll(q, Array("Az".utf8)) == [])  // no room before the A
        #expect(scanAll(q, Array("zA".utf8)) == [])  // no room after it
        // A wildcard run longer than the known part.
        let r = try BytePattern(hex: "?? ?? ?? 42")
        #expect(scanAll(r, Array("123B45B".utf8)) == [0, 3])
    }

    @Test func matchAtTheVeryEnd() throws {
        let p = try BytePattern(bytes: [0xde, 0xad, 0xbe, 0xef])
        var buffer = [UInt8](repeating: 0, count: 4096)
        buffer.replaceSubrange(4092..<4096, with: [0xde, 0xad, 0xbe, 0xef])
        #expect(scanAll(p, buffer) == [4092])
        // Cut one byte short: gone.
        #expect(scanAll(p, Array(buffer.dropLast())) == [])
        // The buffer is exactly the pattern.
        #expect(scanAll(p, [0xde, 0xad, 0xbe, 0xef]) == [0])
        // Shorter than the pattern: nothing, and the scan still reports it ran to the end.
        [0xde, 0xad].withUnsafeBytes { raw in
            #expect(
                p.scan(raw, base: 0) { _ in
                    Issue.record("no hit expected"); return true
                })
        }
    }

    @Test func alignmentIsOfTheAddressNotTheOffset() throws {
        var buffer = [UInt8](repeating: 0, count: 64)
        for at in [3, 8, 13, 16] { buffer.replaceSubrange(at..<at + 2, with: [0x12, 0x34]) }
        let p = try BytePattern(bytes: [0x12, 0x34], alignment: 4)
        #expect(scanAll(p, buffer, base: 0x1000) == [8, 16])
        // base 0x1001: offset 3 is address 0x1004, aligned; 8 and 16 are not any more.
        #expect(scanAll(p, buffer, base: 0x1001) == [3])
        #expect(scanAll(p, buffer, base: 0x1003) == [13])
        let unaligned = try BytePattern(bytes: [0x12, 0x34], alignment: 1)
        #expect(scanAll(unaligned, buffer, base: 0x1001) == [3, 8, 13, 16])
        // An aligned candidate after a rejected unaligned one at an earlier anchor.
        let eight = try BytePattern(bytes: [0x12, 0x34], alignment: 8)
        #expect(scanAll(eight, buffer, base: 0) == [8, 16])
    }

    @Test func startsWindowLimitsWhereHitsStartNotWhereTheyEnd() throws {
        let buffer = Array("abcabcabcabc".utf8)  // hits at 0, 3, 6, 9
        let p = try BytePattern(bytes: Array("abc".utf8))
        #expect(scanAll(p, buffer, starts: 0..<12) == [0, 3, 6, 9])
        #expect(scanAll(p, buffer, starts: 1..<7) == [3, 6])  // 6 starts inside, ends at 9
        #expect(scanAll(p, buffer, starts: 0..<1) == [0])
        #expect(scanAll(p, buffer, starts: 9..<10) == [9])  // runs to the very end
        #expect(scanAll(p, buffer, starts: 10..<12) == [])  // would run past the end
        #expect(scanAll(p, buffer, starts: 4..<6) == [])
        #expect(scanAll(p, buffer, starts: 0..<0) == [])
        // With a leading wildcard the anchor sits after the start.
        let w = try BytePattern(hex: "?? 62 63")
        #expect(scanAll(w, buffer, starts: 3..<4) == [3])
        #expect(scanAll(w, buffer, starts: 1..<3) == [])
    }

    @Test func stopsWhenTheCallbackSaysSo() throws {
        let p = try BytePattern(bytes: [7])
        let buffer = [UInt8](repeating: 7, count: 100)
        var seen: [Int] = []
        let ranToEnd = buffer.withUnsafeBytes { raw in
            p.scan(raw, base: 0) {
                seen.append($0); return seen.count < 3
            }
        }
        #expect(!ranToEnd)
        #expect(seen == [0, 1, 2])
    }

    /// Random buffers over a small alphabet (so matches are frequent), random patterns
    /// with wildcards, random bases, alignments and windows: scan == the naive search.
    @Test func agreesWithNaiveSearch() throws {
        var rng = SplitMix64(seed: 0x5EED_0001)
        for round in 0..<1500 {
            let n = Int.random(in: 0...200, using: &rng)
            let buffer = (0..<n).map { _ in UInt8.random(in: 0...2, using: &rng) }
            let m = Int.random(in: 1...6, using: &rng)
            var bytes = (0..<m).map { _ in UInt8.random(in: 0...2, using: &rng) }
            var mask = (0..<m).map { _ in Int.random(in: 0..<4, using: &rng) != 0 }
            if !mask.contains(true) { mask[Int.random(in: 0..<m, using: &rng)] = true }
            for i in 0..<m where !mask[i] { bytes[i] = 0 }
            let alignment = [1, 1, 2, 4, 8].randomElement(using: &rng)!
            let p = try BytePattern(bytes: bytes, mask: mask, alignment: UInt64(alignment))
            let base = UInt64.random(in: 0...15, using: &rng) + 0x7f00_0000_0000
            var window: Range<Int>? = nil
            if n > 0 && Bool.random(using: &rng) {
                let lo = Int.random(in: 0...n, using: &rng)
                window = lo..<Int.random(in: lo...n, using: &rng)
            }
            let got = scanAll(p, buffer, base: base, starts: window)
            let want = naive(p, buffer, base: base, starts: window)
            #expect(
                got == want,
                Comment(
                    rawValue: "round \(round): pattern \(bytes) mask \(mask) align \(alignment) base \(base) "
                        + "window \(String(describing: window)) buffer \(buffer)")
            )
            if got != want { break }
        }
    }

    /// A value of 2, 4 or 8 bytes at its own alignment (a typed scan's pattern) goes through
    /// the word-at-a-time scan: over buffers long enough for many 64-byte blocks and a tail,
    /// with the value planted at random offsets (aligned or not) among near misses (bytes of
    /// the value itself and zeros), random bases and windows, and a stop after K hits, it
    /// reports what the naive search does.
    @Test func alignedValueScanAgreesWithNaiveSearch() async throws {
        let shape = zip(Gen.int(in: 0...2), Gen.int(in: 0...700), Gen.int(in: 0...Int(Int32.max)))
        let window = zip(Gen.int(in: 0...15), Gen.int(in: 0...3), Gen.int(in: 0...8))
        await propertyCheck(count: 400, input: shape, window) { shape, window in
            let (widthIndex, count, seed) = shape
            let (baseOffset, windowKind, stopAfter) = window
            let width = [2, 4, 8][widthIndex]
            var rng = SplitMix64(seed: UInt64(seed))
            let value = (0..<width).map { _ in UInt8.random(in: 1...255, using: &rng) }
            var buffer = (0..<count).map { _ in Bool.random(using: &rng) ? value.randomElement(using: &rng)! : 0 }
            if count >= width {
                for _ in 0..<Int.random(in: 0...count / 8, using: &rng) {
                    let at = Int.random(in: 0...(count - width), using: &rng)
                    buffer.replaceSubrange(at..<at + width, with: value)
                }
            }
            let pattern = try! BytePattern(bytes: value, alignment: UInt64(width))
            let base = 0x7f00_0000_0000 + UInt64(baseOffset)
            var starts: Range<Int>? = nil
            if windowKind > 0 && count > 0 {
                let lo = Int.random(in: 0...count, using: &rng)
                starts = lo..<Int.random(in: lo...count, using: &rng)
            }
            let want = naive(pattern, buffer, base: base, starts: starts)
            #expect(scanAll(pattern, buffer, base: base, starts: starts) == want)
            // Stopping: exactly the first K hits, and false when the hit callback stopped it.
            var seen: [Int] = []
            let ranToEnd = buffer.withUnsafeBytes { raw in
                pattern.scan(raw, base: base, starts: starts) {
                    seen.append($0)
                    return seen.count < stopAfter
                }
            }
            #expect(seen == Array(want.prefix(max(1, stopAfter))))
            #expect(ranToEnd == (want.count < max(1, stopAfter)))
        }
    }
}

// MARK: - Target.search over live fixtures

/// The holder's own view of its memory (its `get` command), as bytes.
private func holderBytes(_ holder: FixtureProcess, _ address: UInt64, _ count: Int) throws -> [UInt8] {
    let reply = try holder.send("get 0x\(String(address, radix: 16)) \(count)")
    try #require(!reply.hasPrefix("error"), "\(reply)")
    var out: [UInt8] = []
    var i = reply.startIndex
    while i < reply.endIndex {
        let j = reply.index(i, offsetBy: 2)
        out.append(UInt8(reply[i..<j], radix: 16)!)
        i = j
    }
    return out
}

@Suite struct TargetSearchTests {
    /// Chunks of 1, 7, 16, 4093 … bytes make 16-byte matches straddle one or many
    /// chunk boundaries (and chunks shorter than the pattern): every match of the
    /// holder's buf is still found exactly once, in address order.
    @Test(arguments: [1, 3, 7, 15, 16, 17, 4093, 1 << 20])
    func smallChunksFindEveryMatchOnce(chunkSize: Int) throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let target = try Target(pid: holder.pid)
        let range = try AddressRange(start: buf, count: 65536)
        let regions = RegionSelector.select([.range(range)], in: target.view)
        try #require(regions.count >= 1)
        #expect(regions.reduce(0) { $0 + $1.range.count } == 65536)
        let content = try holderBytes(holder, buf, 65536)

        let marker = try BytePattern(bytes: Array("VMIO-MARKER-0001".utf8))
        let report = try target.search(marker, in: regions, max: 100, chunkSize: chunkSize)
        #expect(report.hits.map(\.address) == [buf + 0x100])
        #expect(report.scanned == 65536)
        #expect(report.holes.isEmpty)
        #expect(!report.truncated)
        if let hit = report.hits.first {
            #expect(hit.mapping.range.contains(hit.address))
            #expect(hit.offsetInMapping == hit.address - hit.mapping.start)
        }

        // A frequent wildcard pattern (byte i is (i*131+7)&0xff, so byte pairs repeat
        // every 256 bytes): the hits equal the naive search of the same bytes.
        let frequent = try BytePattern(hex: "07 ?? 0d", alignment: 1)
        let all = try target.search(frequent, in: regions, max: 100_000, chunkSize: chunkSize)
        #expect(all.hits.map { Int($0.address - buf) } == naive(frequent, content, base: buf))
        #expect(!all.hits.isEmpty)

        let aligned = try BytePattern(bytes: [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], alignment: 8)
        #expect(
            try target.search(aligned, in: regions, max: 10, chunkSize: chunkSize).hits.map(\.address) == [buf + 0x200])
    }

    @Test func maxStopsTheSearchAndSaysSo() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let target = try Target(pid: holder.pid)
        let regions = RegionSelector.select([.range(try AddressRange(start: buf, count: 65536))], in: target.view)
        let p = try BytePattern(hex: "07 ?? 0d")
        let all = try target.search(p, in: regions, max: 100_000)
        try #require(all.hits.count > 3)
        let three = try target.search(p, in: regions, max: 3, chunkSize: 5)
        #expect(three.truncated)
        #expect(three.hits.map(\.address) == all.hits.prefix(3).map(\.address))
        #expect(!all.truncated)
        // Exactly as many hits as there are is not truncation... unless the max is reached.
        let exact = try target.search(p, in: regions, max: all.hits.count + 1)
        #expect(!exact.truncated && exact.hits.count == all.hits.count)
    }

    /// The truncated fixture: 4 pages in maps, only the first readable. The three
    /// others become one hole; the search goes on and finds what is readable.
    @Test func faultingPagesAreHolesNotErrors() throws {
        let fixture = try Fixtures.launch(.truncated)
        defer { fixture.terminate() }
        let map = fixture.address("map")
        #expect(fixture.number("map") == 16384)
        let target = try Target(pid: fixture.pid)
        let regions = RegionSelector.select([.range(try AddressRange(start: map, count: 16384))], in: target.view)
        try #require(regions.count == 1)
        #expect(regions[0].mapping.permissions.description.hasPrefix("r--"))
        let p = try BytePattern(bytes: [UInt8](repeating: 0x5c, count: 64))
        let report = try target.search(p, in: regions, max: 10_000, chunkSize: 1000)
        #expect(report.scanned == 4096)
        #expect(report.holes.map(\.address) == [map + 4096])
        #expect(report.holes.map(\.length) == [12288])
        #expect(report.holes.first?.kind == .pageFault(address: map + 4096))
        #expect(report.hits.count == 4096 - 64 + 1)
        #expect(report.hits.first?.address == map)
        #expect(report.hits.last?.address == map + 4096 - 64)
    }
}
