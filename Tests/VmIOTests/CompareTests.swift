import PropertyBased
import Testing

@testable import VmIO

// diff and scan's pure parts against plain references: the block compare and the merger
// (any chunking, alignment and join), the state file's blocks (round trip, damage
// refused), the filters, and how regions of two sides pair up.

/// Two sides of `count` bytes: `new` is `old` with `edits` bytes changed at seeded places,
/// in runs, so runs that touch, cross 64-byte blocks and end the buffer all occur.
private func sides(_ count: Int, edits: Int, seed: Int) -> ([UInt8], [UInt8]) {
    let old = randomBytes(count, seed: seed)
    var new = old
    var rng = SplitMix(~seed)
    guard count > 0 else { return (old, new) }
    for _ in 0..<edits {
        let at = Int(rng.next() % UInt64(count))
        let run = Int(rng.next() % 9)
        for i in at..<min(count, at + run) { new[i] = old[i] ^ UInt8(1 + rng.next() % 255) }
    }
    return (old, new)
}

/// The reference: every differing byte, widened to `alignment` (within `count`), merged
/// when less than `join` bytes apart (or touching), ranges of `[start, end)` offsets.
private func reference(_ old: [UInt8], _ new: [UInt8], alignment: Int, join: Int) -> [(Int, Int)] {
    var out: [(Int, Int)] = []
    for i in 0..<old.count where old[i] != new[i] {
        let s = i / alignment * alignment
        let e = min(old.count, (i + 1 + alignment - 1) / alignment * alignment)
        if let last = out.last, s <= last.1 + join {
            out[out.count - 1].1 = max(last.1, e)
        } else {
            out.append((s, e))
        }
    }
    return out
}

@Suite("diff and scan: compare, merge, state file, filters")
struct CompareTests {
    @Test("differences finds exactly the differing runs")
    func differencesMatchReference() async {
        await propertyCheck(
            count: 200, input: Gen.int(in: 0...700), Gen.int(in: 0...20), Gen.int(in: 0...Int(Int32.max))
        ) {
            count, edits, seed in
            let (old, new) = sides(count, edits: edits, seed: seed)
            var runs: [(Int, Int)] = []
            old.withUnsafeBytes { a in
                new.withUnsafeBytes { b in ByteCompare.differences(a, b) { runs.append(($0.lowerBound, $0.upperBound)) }
                }
            }
            let want = reference(old, new, alignment: 1, join: 0)
            #expect(runs.map { [$0.0, $0.1] } == want.map { [$0.0, $0.1] })
        }
    }

    @Test("the merger's ranges, bytes and counts do not depend on the chunking")
    func mergerMatchesReference() async {
        let shape = zip(Gen.int(in: 0...2000), Gen.int(in: 0...30), Gen.int(in: 0...Int(Int32.max)))
        let options = zip(Gen.int(in: 0...3), Gen.int(in: 0...40), Gen.int(in: 1...700))
        await propertyCheck(count: 200, input: shape, options) { shape, options in
            let (count, edits, seed) = shape
            let (alignmentIndex, join, chunk) = options
            let alignment = [1, 2, 4, 8][alignmentIndex]
            // Chunks start at aligned offsets, as the diff's windows do.
            let step = max(alignment, chunk / alignment * alignment)
            let (old, new) = sides(count, edits: edits, seed: seed)
            let base: Address = 0x7f00_0000_0000
            var merger = ChangeMerger(alignment: UInt64(alignment), join: UInt64(join), keep: 1 << 20)
            var got: [ChangedRange] = []
            old.withUnsafeBytes { a in
                new.withUnsafeBytes { b in
                    var at = 0
                    while at < count {
                        let end = min(count, at + step)
                        merger.compare(
                            old: UnsafeRawBufferPointer(rebasing: a[at..<end]),
                            new: UnsafeRawBufferPointer(rebasing: b[at..<end]), at: base + UInt64(at)
                        ) { got.append($0) }
                        at = end
                    }
                }
            }
            merger.finish { got.append($0) }
            let want = reference(old, new, alignment: alignment, join: join)
            #expect(got.map { [Int($0.range.start - base), Int($0.range.end - base)] } == want.map { [$0.0, $0.1] })
            for range in got {
                let (s, e) = (Int(range.range.start - base), Int(range.range.end - base))
                #expect(range.old == Array(old[s..<e]) && range.new == Array(new[s..<e]) && range.isWhole)
                #expect(range.bytesChanged == UInt64((s..<e).count { old[$0] != new[$0] }))
            }
        }
    }

    @Test("a chunk at a gap ends the range before it; kept bytes are capped")
    func mergerGapsAndCap() {
        var merger = ChangeMerger(keep: 4)
        var got: [ChangedRange] = []
        let old = [UInt8](repeating: 0, count: 16), new = [UInt8](repeating: 1, count: 16)
        old.withUnsafeBytes { a in
            new.withUnsafeBytes { b in
                merger.compare(old: a, new: b, at: 0x1000) { got.append($0) }
                // Touching: continues the range. After a gap: a new one.
                merger.compare(old: a, new: b, at: 0x1010) { got.append($0) }
                merger.compare(old: a, new: b, at: 0x2000) { got.append($0) }
            }
        }
        merger.finish { got.append($0) }
        #expect(
            got.map(\.range) == [
                try! AddressRange(start: 0x1000, end: 0x1020), try! AddressRange(start: 0x2000, end: 0x2010),
            ])
        #expect(got.allSatisfy { $0.old == [0, 0, 0, 0] && $0.new == [1, 1, 1, 1] && !$0.isWhole })
        #expect(got.map(\.bytesChanged) == [32, 16])
    }

    @Test("state blocks round-trip; a damaged block is refused, never misread")
    func stateBlocksRoundTrip() async {
        await propertyCheck(
            count: 200, input: Gen.int(in: 1...ScanState.blockCapacity), Gen.int(in: 0...3),
            Gen.int(in: 0...Int(Int32.max))
        ) {
            n, widthIndex, seed in
            let width = [1, 2, 4, 8][widthIndex]
            var rng = SplitMix(seed)
            var address: Address = rng.next() % (1 << 47)
            var addresses: [Address] = []
            for _ in 0..<n {
                addresses.append(address)
                address += 1 + rng.next() % [2, 300, 1 << 20][Int(rng.next() % 3)]
            }
            let values = randomBytes(n * width, seed: seed)
            let block = ScanState.encode(addresses: addresses, values: values)
            let head = block.prefix(ScanState.blockHeaderSize)
            let body = Array(block.dropFirst(ScanState.blockHeaderSize))
            #expect((try? ScanState.blockLength(head)) == body.count)
            #expect(
                (try? ScanState.decode(head: head, body: body, width: width))
                    == .candidates(addresses: addresses, values: values))
            // Delta encoding: close addresses take little room.
            #expect(body.count <= 4 + n * 10 + values.count)
            // Cut short, or values of another width: refused.
            #expect(throws: ScanStateError.self) {
                try ScanState.decode(head: head, body: Array(body.dropLast()), width: width)
            }
            #expect(throws: ScanStateError.self) { try ScanState.decode(head: head, body: body, width: width + 1) }
        }
    }

    @Test("the header round-trips and refuses what is not a state")
    func stateHeader() throws {
        for type in ScanType.numeric + [.bytes(5)] {
            let header = ScanState.Header(
                pid: 4242, startTime: 987_654, type: type, snapshot: true, count: 12, dropped: 3)
            let bytes = header.encoded()
            #expect(bytes.count == ScanState.headerSize)
            #expect(try ScanState.Header(decoding: bytes) == header)
        }
        #expect(throws: ScanStateError.notAState) {
            try ScanState.Header(
                decoding: Array("not a state at all, just text here......".utf8) + [0, 0, 0, 0, 0, 0, 0, 0])
        }
        var wrongWidth = ScanState.Header(pid: 1, startTime: 1, type: .u32, snapshot: false, count: 0, dropped: 0)
            .encoded()
        wrongWidth[14] = 8
        #expect(throws: ScanStateError.self) { try ScanState.Header(decoding: wrongWidth) }
        let snapshot = [UInt8](repeating: 7, count: 64)
        let block = snapshot.withUnsafeBytes { ScanState.encode(snapshotAt: 0x5000, $0) }
        #expect(
            try ScanState.decode(
                head: block.prefix(ScanState.blockHeaderSize), body: Array(block.dropFirst(ScanState.blockHeaderSize)),
                width: 4) == .snapshot(start: 0x5000, bytes: snapshot))
    }

    @Test("filters against plain comparisons of the decoded values")
    func filtersMatchReference() async {
        let types: [ScanType] = [.u8, .u16, .u32, .u64, .i8, .i16, .i32, .i64]
        await propertyCheck(count: 300, input: Gen.int(in: 0...7), Gen.int(in: 0...Int(Int32.max))) { typeIndex, seed in
            let type = types[typeIndex]
            var rng = SplitMix(seed)
            // Small values, so equal and off-by-a-few values are common.
            let mask = type.mask
            let old = (rng.next() % 5 &- 2) & mask, new = (rng.next() % 5 &- 2) & mask
            let operand = (rng.next() % 5 &- 2) & mask
            func signed(_ raw: UInt64) -> Int128 {
                let bits = type.width * 8
                let v = Int128(raw)
                return type.isSigned && raw >> UInt64(bits - 1) & 1 == 1 ? v - (Int128(1) << bits) : v
            }
            let (o, n, v) = (signed(old), signed(new), signed(operand))
            func keeps(_ f: ScanFilter) -> Bool { f.keeps(old: old, new: new, type: type) }
            #expect(keeps(.equal(operand)) == (n == v))
            #expect(keeps(.notEqual(operand)) == (n != v))
            #expect(keeps(.greater(operand)) == (n > v))
            #expect(keeps(.less(operand)) == (n < v))
            #expect(keeps(.changed) == (n != o))
            #expect(keeps(.unchanged) == (n == o))
            #expect(keeps(.increased) == (n > o))
            #expect(keeps(.decreased) == (n < o))
            #expect(keeps(.increasedBy(operand)) == ((old &+ operand) & mask == new))
            #expect(keeps(.decreasedBy(operand)) == ((old &- operand) & mask == new))
        }
    }

    @Test("floats compare within the tolerance; NaN equals nothing")
    func floatFilters() {
        let a = UInt64(Float(1.0).bitPattern), b = UInt64(Float(1.05).bitPattern)
        let nan = UInt64(Float.nan.bitPattern)
        #expect(!ScanFilter.unchanged.keeps(old: a, new: b, type: .f32))
        #expect(ScanFilter.unchanged.keeps(old: a, new: b, type: .f32, tolerance: 0.1))
        #expect(ScanFilter.increased.keeps(old: a, new: b, type: .f32))
        #expect(!ScanFilter.increased.keeps(old: a, new: b, type: .f32, tolerance: 0.1))
        #expect(
            ScanFilter.increasedBy(UInt64(Float(0.05).bitPattern)).keeps(old: a, new: b, type: .f32, tolerance: 1e-6))
        #expect(
            !ScanFilter.equal(nan).keeps(old: a, new: nan, type: .f32)
                && ScanFilter.changed.keeps(old: nan, new: nan, type: .f32))
        let d = Double(2.5).bitPattern
        #expect(ScanFilter.equal(d).keeps(old: 0, new: d, type: .f64))
    }

    @Test("regions pair by address and path: compared, resized, moved, in one side only")
    func regionPairing() throws {
        func r(_ s: Address, _ e: Address) throws -> AddressRange { try AddressRange(start: s, end: e) }
        let a: [(range: AddressRange, path: String)] = [
            (try r(0x1000, 0x2000), "/bin/x"), (try r(0x3000, 0x4000), "[heap]"), (try r(0x5000, 0x6000), "/lib/y"),
            (try r(0x7000, 0x8000), ""), (try r(0x9000, 0xa000), "/gone"),
        ]
        let b: [(range: AddressRange, path: String)] = [
            (try r(0x1000, 0x2000), "/bin/x"), (try r(0x3000, 0x5000), "[heap]"), (try r(0x7000, 0x8000), "other"),
            (try r(0xb000, 0xc000), "/lib/y"), (try r(0xd000, 0xe000), "/new"),
        ]
        let pairs = RegionPairing.pair(a, b)
        #expect(
            pairs == [
                .compared(
                    a: try r(0x1000, 0x2000), b: try r(0x1000, 0x2000), path: "/bin/x", compared: try r(0x1000, 0x2000)),
                .compared(
                    a: try r(0x3000, 0x4000), b: try r(0x3000, 0x5000), path: "[heap]", compared: try r(0x3000, 0x4000)),
                .moved(a: try r(0x5000, 0x6000), b: try r(0xb000, 0xc000), path: "/lib/y"),
                .onlyInA(try r(0x7000, 0x8000), path: ""), .onlyInA(try r(0x9000, 0xa000), path: "/gone"),
                .onlyInB(try r(0x7000, 0x8000), path: "other"), .onlyInB(try r(0xd000, 0xe000), path: "/new"),
            ])
        #expect(pairs.map(\.isResized) == [false, true, false, false, false, false, false])
    }
}
