import PropertyBased
import Testing

@testable import VmIO

// Readers and writers over the tool's own memory: local → local copies move exactly
// min(remain, avail) and never fail; skip/limit keep the owner in step with the cursor;
// readBack hands the writer's whole range back as a read view.

/// The reader's owner covers `[start, end)` (the test's own numbers) and keeps `inv`.
private func covers(_ r: borrowing VmReader, _ start: Address, _ end: Address) -> Bool {
    let o = r.owner.snapshot
    return o.range == AddressRange(uncheckedStart: start, end: end) && o.inv
}

/// The writer's owner covers `[start, end)` (the test's own numbers) and keeps `inv`.
private func covers(_ w: borrowing VmWriter, _ start: Address, _ end: Address) -> Bool {
    let o = w.owner.snapshot
    return o.range == AddressRange(uncheckedStart: start, end: end) && o.inv
}

@Suite("Local readers and writers")
struct LocalCopyTests {

    @Test("local → local read(into:) moves exactly min(remain, avail); nothing else is touched")
    func localToLocal() async {
        let sizes = zip(Gen.int(in: 0...600), Gen.int(in: 0...600), Gen.int(in: 0...Int(Int32.max)))
        let cuts = Gen.int(in: 0...Int(Int32.max)).array(of: 4)
        await propertyCheck(count: 400, input: sizes, cuts) { sizes, cuts in
            let (srcSize, dstSize, seed) = sizes
            let srcBytes = randomBytes(srcSize, seed: seed)
            let sentinel = randomBytes(dstSize, seed: ~seed)
            let src = LocalBuffer(srcBytes)
            let dst = LocalBuffer(sentinel)
            var reader = src.makeReader()
            var writer = dst.makeWriter()
            let rs = pick(cuts[0], 0, UInt64(srcSize))
            try reader.skip(rs)
            let rl = pick(cuts[1], 0, UInt64(srcSize) + 10, edges: [UInt64(srcSize) - rs])
            try reader.limit(rl)
            let ws = pick(cuts[2], 0, UInt64(dstSize))
            try writer.skip(ws)
            let wl = pick(cuts[3], 0, UInt64(dstSize) + 10, edges: [UInt64(dstSize) - ws])
            try writer.limit(wl)
            let (readerID, writerID) = (reader.owner.id, writer.owner.id)
            // The cursors and ends from the test's own numbers.
            let (r0, w0) = (src.range.start + rs, dst.range.start + ws)
            let (rEnd, wEnd) = (r0 + min(rl, UInt64(srcSize) - rs), w0 + min(wl, UInt64(dstSize) - ws))
            let want = min(rEnd - r0, wEnd - w0)

            let n = try reader.read(into: &writer)

            #expect(n == want, "moves exactly min(remain, avail)")
            #expect(reader.cursor == r0 + n && writer.cursor == w0 + n, "both cursors advance by n")
            #expect(reader.end == rEnd && writer.end == wEnd, "ends unchanged")
            #expect(covers(reader, r0 + n, rEnd) && covers(writer, w0 + n, wEnd), "owners advanced by n")
            #expect(reader.owner.id == readerID && writer.owner.id == writerID, "ids kept")
            #expect(reader.remain == 0 || writer.avail == 0, "one side is exhausted")
            let out = dst.array
            let (wsI, nI, rsI) = (Int(ws), Int(n), Int(rs))
            #expect(out[wsI..<wsI + nI] == srcBytes[rsI..<rsI + nI], "the bytes moved")
            #expect(out[..<wsI] == sentinel[..<wsI], "nothing before the cursor touched")
            #expect(out[(wsI + nI)...] == sentinel[(wsI + nI)...], "nothing past n touched")
            #expect(src.array == srcBytes, "the source is unchanged")
            // A second read moves nothing.
            #expect(try reader.read(into: &writer) == 0)
        }
    }

    @Test("skip and limit move the owner with the cursor, against a model of [cursor, end)")
    func skipLimitInStep() async {
        let ops = zip(Gen.bool, Gen.int(in: 0...Int(Int32.max))).array(of: 1...20)
        await propertyCheck(count: 300, input: Gen.int(in: 0...300), ops) { size, ops in
            let buffer = LocalBuffer(count: size)
            var reader = buffer.makeReader()
            var writer = buffer.makeWriter()
            let (readerID, writerID) = (reader.owner.id, writer.owner.id)
            // The model: each side's [cursor, end), moved by the test's own arithmetic.
            var model = [buffer.range, buffer.range]
            for (isSkip, arg) in ops {
                for side in 0..<2 {
                    let m = model[side]
                    let n = pick(arg, 0, m.count + 3, edges: [m.count, m.count + 1])
                    do throws(VmIoError) {
                        if isSkip {
                            if side == 0 { try reader.skip(n) } else { try writer.skip(n) }
                            #expect(n <= m.count, "skip past the end must throw")
                            model[side] = AddressRange(uncheckedStart: m.start + n, end: m.end)
                        } else {
                            if side == 0 { try reader.limit(n) } else { try writer.limit(n) }
                            model[side] = AddressRange(uncheckedStart: m.start, end: m.start + min(n, m.count))
                        }
                    } catch {
                        #expect(isSkip && n > m.count && error == .lengthExceedsRange(requested: n, available: m.count))
                    }
                    let (r, w) = (model[0], model[1])
                    #expect(covers(reader, r.start, r.end) && covers(writer, w.start, w.end), "owners as the model")
                    #expect(reader.cursor == r.start && reader.end == r.end && reader.remain == r.count)
                    #expect(writer.cursor == w.start && writer.end == w.end && writer.avail == w.count)
                }
            }
            #expect(reader.owner.id == readerID && writer.owner.id == writerID)
            let (r, w) = (reader.owner.snapshot, writer.owner.snapshot)
            #expect(r.hasReadView && w.hasWriteView)
            #expect(!r.isFallible && r.isKernel, "a local buffer is the infallible kernel side")
            // Given back whole, whatever the cursors did.
            let (readerBack, writerBack) = (reader.finish().range, writer.finish().range)
            #expect(readerBack == buffer.range && writerBack == buffer.range)
        }
    }

    @Test("readBack returns the writer's whole original range, same owner id, a read view")
    func readBack() async {
        let input = zip(
            Gen.int(in: 0...3000), Gen.int(in: 0...Int(Int32.max)), Gen.int(in: 0...Int(Int32.max)),
            Gen.uint8(), Gen.int(in: 0...Int(Int32.max)))
        await propertyCheck(count: 300, input: input) { size, skipPick, limitPick, byte, zeroPick in
            let original = randomBytes(size, seed: skipPick)
            let buffer = LocalBuffer(original)
            var writer = buffer.makeWriter()
            let origin = writer.owner.snapshot
            let skip = pick(skipPick, 0, UInt64(size))
            try writer.skip(skip)
            let limit = pick(limitPick, 0, UInt64(size) - skip)
            try writer.limit(limit)
            let zeros = pick(zeroPick, 0, writer.avail)
            #expect(try writer.fillZeros(zeros, using: LocalOnlyBackend()) == zeros)
            let filled = writer.avail
            #expect(try writer.fill(byte, using: LocalOnlyBackend()) == filled)
            let end = buffer.range.start + skip + limit
            #expect(writer.avail == 0 && covers(writer, end, end))

            var reader = writer.readBack()
            let back = reader.owner.snapshot
            #expect(back.id == origin.id, "same owner id")
            #expect(back.range == origin.range && back.range == buffer.range, "the whole original range")
            #expect(back.hasReadView && !back.hasWriteView, "a read view")
            #expect(back.memView?.memView == origin.memView?.memView, "of the same MemView")
            #expect(back.readViewInitialized && back.inv)
            #expect(back.isFallible == origin.isFallible && back.isKernel == origin.isKernel)
            #expect(reader.space == .local)
            var expected = original
            let (s, z, f) = (Int(skip), Int(zeros), Int(filled))
            for i in s..<s + z { expected[i] = 0 }
            for i in s + z..<s + z + f { expected[i] = byte }
            #expect(try reader.collect(using: LocalOnlyBackend()) == expected)
            #expect(reader.remain == 0)
        }
    }

    @Test("fill over more than one pattern chunk (64 KiB) and a typed round trip")
    func bigFillAndValues() throws {
        let buffer = LocalBuffer(count: 200_000 + 3)
        var writer = buffer.makeWriter()
        try writer.skip(3)
        #expect(try writer.fill(0x5a, using: LocalOnlyBackend()) == 200_000)
        #expect(buffer.array[..<3] == [0, 0, 0] && buffer.array[3...].allSatisfy { $0 == 0x5a })

        let values = LocalBuffer(count: 16)
        var w = values.makeWriter()
        try w.writeValue(UInt64(0x0123_4567_89ab_cdef), using: LocalOnlyBackend())
        try w.writeValue(Int32(-2), using: LocalOnlyBackend())
        #expect(throws: VmIoError.lengthExceedsRange(requested: 8, available: 4)) {
            try w.writeValue(UInt64(1), using: LocalOnlyBackend())
        }
        var r = w.readBack()
        #expect(try r.readValue(UInt64.self, using: LocalOnlyBackend()) == 0x0123_4567_89ab_cdef)
        #expect(try r.readValue(Int32.self, using: LocalOnlyBackend()) == -2)
        #expect(throws: VmIoError.lengthExceedsRange(requested: 8, available: 4)) {
            _ = try r.readValue(UInt64.self, using: LocalOnlyBackend())
        }
        #expect(r.remain == 4)
    }

    @Test("owners of distinct buffers are disjoint and never reuse ids")
    func buffersAndIDs() {
        let buffers = (0..<50).map { LocalBuffer(count: $0 * 3) }
        let ids = buffers.map { $0.makeReader().owner.id }
        #expect(Set(ids).count == ids.count)
        for (i, a) in buffers.enumerated() where a.count > 0 {
            for b in buffers[(i + 1)...] where b.count > 0 {
                #expect(!a.range.intersects(b.range))
            }
        }
    }
}
