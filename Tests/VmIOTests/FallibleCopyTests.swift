import PropertyBased
import Testing

@testable import VmIO

// Fallible copies through the fake remote: remote → local, local → remote and
// remote → remote (two pids, or one pid with both ranges in it). Success moves
// min(remain, avail); a fault moves k < min(remain, avail) bytes, exactly the source's,
// advances both cursors and both owners by k, touches nothing past k, and names the
// first faulting address and the side.

private let srcPid: Int32 = 100
private let dstPid: Int32 = 200
private let srcBase: Address = 0x7f3a_0000_0000
private let dstBase: Address = 0x5600_0000_0000

/// The reader's owner covers exactly `[start, end)` (computed by the test) and keeps `inv`.
private func expectOwner(
    _ r: borrowing VmReader, _ start: Address, _ end: Address, _ sourceLocation: SourceLocation = #_sourceLocation
) {
    let owner = r.owner.snapshot
    #expect(owner.range == AddressRange(uncheckedStart: start, end: end) && owner.inv, sourceLocation: sourceLocation)
}

/// The writer's owner covers exactly `[start, end)` (computed by the test) and keeps `inv`.
private func expectOwner(
    _ w: borrowing VmWriter, _ start: Address, _ end: Address, _ sourceLocation: SourceLocation = #_sourceLocation
) {
    let owner = w.owner.snapshot
    #expect(owner.range == AddressRange(uncheckedStart: start, end: end) && owner.inv, sourceLocation: sourceLocation)
}

/// What a copy of `want` bytes must do, given the first faulting offsets on each side.
private struct Expectation {
    let k: UInt64
    let fault: (address: Address, side: CopySide, space: AddressSpace)?

    init(
        want: UInt64, source: (start: Address, fault: Address?, space: AddressSpace),
        destination: (start: Address, fault: Address?, space: AddressSpace)
    ) {
        let s = source.fault.map { $0 - source.start } ?? want
        let d = destination.fault.map { $0 - destination.start } ?? want
        k = min(s, d)
        if k == want {
            fault = nil
        } else if s <= d {
            // The source stops first, or both at the same byte: the bytes before it are
            // read and written in full, so the source's fault is what stopped the copy.
            fault = (source.start + s, .source, source.space)
        } else {
            fault = (destination.start + d, .destination, destination.space)
        }
    }
}

@Suite("Fallible copies through a fake remote")
struct FallibleCopyTests {

    @Test("remote → local")
    func remoteToLocal() async {
        await propertyCheck(count: 400, input: Gens.remote(anywhere: srcBase), Gens.localSide) { rc, local in
            let fake = FakeRemote([srcPid: rc.process])
            var reader = try VmReader(remote: srcPid, owner: try .remote(rc.range, view: .read(rc.view)))
            let sentinel = randomBytes(local.size, seed: local.seed)
            let dst = LocalBuffer(sentinel)
            var writer = dst.makeWriter()
            try writer.skip(UInt64(local.skip))
            // Where the cursors must be, from the test's own numbers (not read back from the owners).
            let (r0, w0) = (rc.range.start, dst.range.start + UInt64(local.skip))
            let (rEnd, wEnd) = (rc.range.end, dst.range.end)
            let (rid, wid) = (reader.owner.id, writer.owner.id)
            let want = min(rc.range.count, UInt64(local.size - local.skip))
            let e = Expectation(
                want: want,
                source: (r0, fake.firstFault(pid: srcPid, from: r0, count: want), .remote(pid: srcPid)),
                destination: (w0, nil, .local))

            do throws(VmIoError) {
                let n = try reader.readFallible(into: &writer, using: fake)
                #expect(e.fault == nil, "success only when no page of the request faults")
                #expect(n == want, "success moves min(remain, avail)")
            } catch {
                guard case .partialCopy(let p) = error else { Issue.record("unexpected \(error)"); return }
                #expect(e.fault != nil, "a fault only when a page of the request faults")
                #expect(p.copied == e.k, "copied is the bytes before the first faulting address")
                #expect(p.copied < want, "k < min(remain, avail)")
                #expect(p.requested == want)
                #expect(p.faultAddress == e.fault?.address, "faultAddress is the first faulting address")
                #expect(p.side == .source, "the source side faulted")
                #expect(p.space == .remote(pid: srcPid))
            }
            let k = e.k
            #expect(reader.cursor == r0 + k && writer.cursor == w0 + k, "both cursors advanced by exactly k")
            #expect(
                reader.owner.range.start == r0 + k && writer.owner.range.start == w0 + k,
                "both owners advanced by exactly k")
            #expect(reader.end == rEnd && writer.end == wEnd, "ends unchanged")
            #expect(reader.owner.id == rid && writer.owner.id == wid, "ids kept")
            expectOwner(reader, r0 + k, rEnd)
            expectOwner(writer, w0 + k, wEnd)
            let out = dst.array
            let (s, kI) = (local.skip, Int(k))
            #expect(
                out[s..<s + kI] == fake.bytes(pid: srcPid, try AddressRange(start: r0, count: k))[...],
                "destination [0, k) holds the source's bytes")
            #expect(out[..<s] == sentinel[..<s], "nothing before the destination cursor touched")
            #expect(out[(s + kI)...] == sentinel[(s + kI)...], "destination bytes past k untouched")
            #expect(fake.processes[srcPid]!.bytes == rc.contents, "the source is not written")
        }
    }

    @Test("local → remote")
    func localToRemote() async {
        await propertyCheck(count: 400, input: Gens.remote(anywhere: dstBase), Gens.localSide) { rc, local in
            let fake = FakeRemote([dstPid: rc.process])
            let srcBytes = randomBytes(local.size, seed: local.seed)
            let src = LocalBuffer(srcBytes)
            var reader = src.makeReader()
            try reader.skip(UInt64(local.skip))
            var writer = try VmWriter(remote: dstPid, owner: try .remote(rc.range, view: .write(rc.view)))
            let (r0, w0) = (src.range.start + UInt64(local.skip), rc.range.start)
            let (rid, wid) = (reader.owner.id, writer.owner.id)
            let want = min(UInt64(local.size - local.skip), rc.range.count)
            let e = Expectation(
                want: want, source: (r0, nil, .local),
                destination: (w0, fake.firstFault(pid: dstPid, from: w0, count: want), .remote(pid: dstPid)))

            do throws(VmIoError) {
                let n = try reader.readFallible(into: &writer, using: fake)
                #expect(e.fault == nil && n == want, "success moves min(remain, avail)")
            } catch {
                guard case .partialCopy(let p) = error else { Issue.record("unexpected \(error)"); return }
                #expect(e.fault != nil)
                #expect(p.copied == e.k && p.copied < want, "k < min(remain, avail)")
                #expect(p.faultAddress == e.fault?.address, "faultAddress is the first faulting address")
                #expect(p.side == .destination, "the destination side faulted")
                #expect(p.space == .remote(pid: dstPid))
            }
            let k = e.k
            #expect(reader.cursor == r0 + k && writer.cursor == w0 + k, "both cursors advanced by exactly k")
            #expect(
                reader.owner.range.start == r0 + k && writer.owner.range.start == w0 + k,
                "both owners advanced by exactly k")
            #expect(reader.owner.id == rid && writer.owner.id == wid)
            expectOwner(reader, r0 + k, src.range.end)
            expectOwner(writer, w0 + k, rc.range.end)
            // The target: [w0, w0 + k) holds the source's bytes, everything else as it was.
            var expected = rc.contents
            let off = Int(w0 - rc.base)
            for i in 0..<Int(k) { expected[off + i] = srcBytes[local.skip + i] }
            #expect(fake.processes[dstPid]!.bytes == expected, "destination [0,k) written, nothing past k touched")
            #expect(src.array == srcBytes)
        }
    }

    @Test("remote → remote, two pids or one")
    func remoteToRemote() async {
        await propertyCheck(count: 400, input: Gens.remote(anywhere: srcBase), Gens.remote(anywhere: dstBase), Gen.bool)
        {
            a, b, samePid in
            let fake: FakeRemote
            let dstRange: AddressRange
            let to: Int32
            if samePid {
                // Both ranges in the source's process; when they intersect the copy is
                // refused (see "same-pid overlapping copies" below).
                fake = FakeRemote([srcPid: a.process])
                let size = UInt64(a.contents.count)
                let off = (b.range.start - b.base) % size
                dstRange = try AddressRange(start: a.base + off, count: min(b.range.count, size - off))
                to = srcPid
            } else {
                fake = FakeRemote([srcPid: a.process, dstPid: b.process])
                dstRange = b.range
                to = dstPid
            }
            let before = fake.processes
            let dstView = samePid ? a.view : b.view
            var reader = try VmReader(remote: srcPid, owner: try .remote(a.range, view: .read(a.view)))
            var writer = try VmWriter(remote: to, owner: try .remote(dstRange, view: .write(dstView)))
            let (r0, w0) = (a.range.start, dstRange.start)
            let want = min(a.range.count, dstRange.count)
            let e = Expectation(
                want: want,
                source: (r0, fake.firstFault(pid: srcPid, from: r0, count: want), .remote(pid: srcPid)),
                destination: (w0, fake.firstFault(pid: to, from: w0, count: want), .remote(pid: to)))
            let sourceBytes = fake.bytes(pid: srcPid, try AddressRange(start: r0, count: want))
            if samePid && referenceIntersects(a.range, dstRange) {
                #expect(throws: VmIoError.overlappingCopy(source: a.range, destination: dstRange)) {
                    try reader.readFallible(into: &writer, using: fake)
                }
                #expect(reader.cursor == r0 && writer.cursor == w0 && fake.calls.isEmpty, "nothing moved")
                return
            }

            do throws(VmIoError) {
                let n = try reader.readFallible(into: &writer, using: fake)
                #expect(e.fault == nil && n == want, "success moves min(remain, avail)")
            } catch {
                guard case .partialCopy(let p) = error else { Issue.record("unexpected \(error)"); return }
                #expect(e.fault != nil)
                #expect(p.copied == e.k && p.copied < want, "k < min(remain, avail)")
                #expect(p.requested == want)
                #expect(p.faultAddress == e.fault?.address, "faultAddress is the first faulting address")
                #expect(p.side == e.fault?.side, "the side that faulted first")
                #expect(p.space == e.fault?.space)
            }
            let k = e.k
            #expect(reader.cursor == r0 + k && writer.cursor == w0 + k, "both cursors advanced by exactly k")
            #expect(
                reader.owner.range.start == r0 + k && writer.owner.range.start == w0 + k,
                "both owners advanced by exactly k")
            expectOwner(reader, r0 + k, a.range.end)
            expectOwner(writer, w0 + k, dstRange.end)
            var expected = before[to]!.bytes
            let off = Int(w0 - before[to]!.base)
            for i in 0..<Int(k) { expected[off + i] = sourceBytes[i] }
            #expect(
                fake.processes[to]!.bytes == expected,
                "destination [0,k) holds the source's bytes, nothing past k touched")
            if !samePid { #expect(fake.processes[srcPid]!.bytes == a.contents, "the source is not written") }
        }
    }

    @Test(
        "remote → remote across several bounce-buffer chunks",
        arguments: [
            (nil, nil), (600 as Int?, nil as Int?), (nil, 333), (700, 300), (300, 700), (256, 256), (0, nil), (nil, 0),
        ])
    func bounceChunks(srcFaultPage: Int?, dstFaultPage: Int?) throws {
        let pages = 720  // 2.8 MiB: three bounce chunks
        let contents = randomBytes(pages * Int(FakeRemote.pageSize), seed: 42)
        func process(_ base: Address, _ faultPage: Int?) -> FakeRemote.Process {
            .init(
                base: base, bytes: contents,
                faulting: Set(faultPage.map { [base / FakeRemote.pageSize + UInt64($0)] } ?? []))
        }
        let fake = FakeRemote([srcPid: process(srcBase, srcFaultPage), dstPid: process(dstBase, dstFaultPage)])
        fake.processes[dstPid]!.bytes = Array(repeating: 0xcc, count: contents.count)
        let region = UInt64(contents.count)
        let view = { (base: Address) in
            try MemView(mappings: [
                Mapping(range: try AddressRange(start: base, count: region), permissions: .readWrite)
            ])
        }
        // Start 100 bytes in on the source, 7 on the destination: chunks never line up with pages.
        var reader = try VmReader(
            remote: srcPid,
            owner: try .remote(
                try AddressRange(start: srcBase + 100, end: srcBase + region), view: .read(view(srcBase))))
        var writer = try VmWriter(
            remote: dstPid,
            owner: try .remote(try AddressRange(start: dstBase + 7, end: dstBase + region), view: .write(view(dstBase)))
        )
        let want = min(reader.remain, writer.avail)
        let e = Expectation(
            want: want,
            source: (
                srcBase + 100, fake.firstFault(pid: srcPid, from: srcBase + 100, count: want), .remote(pid: srcPid)
            ),
            destination: (
                dstBase + 7, fake.firstFault(pid: dstPid, from: dstBase + 7, count: want), .remote(pid: dstPid)
            ))
        do throws(VmIoError) {
            #expect(try reader.readFallible(into: &writer, using: fake) == want)
            #expect(e.fault == nil)
        } catch {
            guard case .partialCopy(let p) = error else { Issue.record("unexpected \(error)"); return }
            #expect(p.copied == e.k && p.faultAddress == e.fault?.address && p.side == e.fault?.side)
        }
        #expect(reader.cursor == srcBase + 100 + e.k && writer.cursor == dstBase + 7 + e.k)
        let out = fake.processes[dstPid]!.bytes
        #expect(out[7..<7 + Int(e.k)] == contents[100..<100 + Int(e.k)])
        #expect(out[..<7].allSatisfy { $0 == 0xcc } && out[(7 + Int(e.k))...].allSatisfy { $0 == 0xcc })
        #expect(
            fake.calls.allSatisfy { $0.count <= bounceBufferSize }, "memory stays flat: no call above the bounce size")
    }

    @Test("a vanished target: targetGone, nothing moved, no fault address")
    func targetGone() throws {
        let rc = RemoteCase.make(base: srcBase, pages: 2, faultMask: 0, clean: true, seed: 1, startPick: 0, endPick: 3)
        let fake = FakeRemote([:])
        var reader = try VmReader(remote: srcPid, owner: try .remote(rc.range, view: .read(rc.view)))
        var writer = LocalBuffer(count: 64).makeWriter()
        let before = reader.cursor
        do throws(VmIoError) {
            _ = try reader.readFallible(into: &writer, using: fake)
            Issue.record("expected a partial copy")
        } catch {
            guard case .partialCopy(let p) = error else { Issue.record("unexpected \(error)"); return }
            #expect(p.kind == .targetGone && p.copied == 0 && p.faultAddress == nil)
        }
        #expect(reader.cursor == before && writer.avail == 64)
    }

    // MARK: all-or-nothing helpers

    @Test("readValue: all or nothing, the cursor rolls back on a fault")
    func readValue() async {
        await propertyCheck(count: 300, input: Gens.remote(anywhere: srcBase)) { rc in
            let fake = FakeRemote([srcPid: rc.process])
            var reader = try VmReader(remote: srcPid, owner: try .remote(rc.range, view: .read(rc.view)))
            let before = reader.owner.snapshot
            guard reader.remain >= 8 else {
                #expect(throws: VmIoError.lengthExceedsRange(requested: 8, available: reader.remain)) {
                    _ = try reader.readValue(UInt64.self, using: fake)
                }
                return
            }
            let start = reader.cursor
            let fault = fake.firstFault(pid: srcPid, from: start, count: 8)
            do throws(VmIoError) {
                let v = try reader.readValue(UInt64.self, using: fake)
                let bytes = fake.bytes(pid: srcPid, try AddressRange(start: start, count: 8))
                #expect(fault == nil)
                #expect(v == bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }, "little-endian value")
                #expect(reader.cursor == start + 8 && reader.owner.range.start == start + 8)
            } catch {
                guard case .partialCopy(let p) = error else { Issue.record("unexpected \(error)"); return }
                #expect(p.copied == fault.map { $0 - start } && p.faultAddress == fault && p.side == .source)
                #expect(reader.cursor == start && reader.owner.snapshot == before, "the cursor rolled back")
            }
        }
    }

    @Test("collect: all or nothing, the cursor rolls back on a fault")
    func collect() async {
        await propertyCheck(count: 300, input: Gens.remote(anywhere: srcBase)) { rc in
            let fake = FakeRemote([srcPid: rc.process])
            var reader = try VmReader(remote: srcPid, owner: try .remote(rc.range, view: .read(rc.view)))
            let before = reader.owner.snapshot
            let fault = fake.firstFault(pid: srcPid, from: rc.range.start, count: rc.range.count)
            do throws(VmIoError) {
                let bytes = try reader.collect(using: fake)
                #expect(fault == nil)
                #expect(bytes == fake.bytes(pid: srcPid, rc.range))
                #expect(reader.remain == 0 && reader.cursor == rc.range.end)
            } catch {
                guard case .partialCopy(let p) = error else { Issue.record("unexpected \(error)"); return }
                #expect(p.copied == fault.map { $0 - rc.range.start } && p.faultAddress == fault)
                #expect(p.requested == rc.range.count)
                #expect(
                    reader.cursor == before.range.start && reader.owner.snapshot == before, "the cursor rolled back")
            }
        }
    }

    @Test("writeValue: the cursor rolls back on a fault, but the first k bytes were written")
    func writeValue() async {
        await propertyCheck(count: 300, input: Gens.remote(anywhere: dstBase), Gen.uint64()) { rc, value in
            let fake = FakeRemote([dstPid: rc.process])
            var writer = try VmWriter(remote: dstPid, owner: try .remote(rc.range, view: .write(rc.view)))
            let start = writer.cursor
            let owner = writer.owner.snapshot
            guard writer.avail >= 8 else {
                #expect(throws: VmIoError.lengthExceedsRange(requested: 8, available: writer.avail)) {
                    try writer.writeValue(value, using: fake)
                }
                return
            }
            let fault = fake.firstFault(pid: dstPid, from: start, count: 8)
            let k = Int(fault.map { $0 - start } ?? 8)
            let valueBytes = (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
            do throws(VmIoError) {
                try writer.writeValue(value, using: fake)
                #expect(fault == nil)
                #expect(writer.cursor == start + 8 && writer.owner.range.start == start + 8)
            } catch {
                guard case .partialCopy(let p) = error else { Issue.record("unexpected \(error)"); return }
                #expect(p.copied == UInt64(k) && p.faultAddress == fault && p.side == .destination)
                #expect(p.space == .remote(pid: dstPid))
                #expect(writer.cursor == start && writer.owner.snapshot == owner, "the cursor rolled back")
            }
            // Documented: target memory cannot be un-written, so the first k bytes are there.
            var expected = rc.contents
            let off = Int(start - rc.base)
            for i in 0..<k { expected[off + i] = valueBytes[i] }
            #expect(fake.processes[dstPid]!.bytes == expected, "the first k bytes written, nothing past them")
        }
    }

    @Test("fill / fillZeros on a remote writer, then readBack")
    func fillThenReadBack() async {
        await propertyCheck(count: 300, input: Gens.remote(anywhere: dstBase), Gen.uint8(), Gen.bool) {
            rc, byte, zeros in
            let fake = FakeRemote([dstPid: rc.process])
            var writer = try VmWriter(remote: dstPid, owner: try .remote(rc.range, view: .write(rc.view)))
            let origin = writer.owner.snapshot
            let total = writer.avail
            let fault = fake.firstFault(pid: dstPid, from: rc.range.start, count: total)
            let k = fault.map { $0 - rc.range.start } ?? total
            let value: UInt8 = zeros ? 0 : byte
            do throws(VmIoError) {
                let n = zeros ? try writer.fillZeros(total, using: fake) : try writer.fill(byte, using: fake)
                #expect(fault == nil && n == total)
            } catch {
                guard case .partialCopy(let p) = error else { Issue.record("unexpected \(error)"); return }
                #expect(p.copied == k && p.requested == total && p.faultAddress == fault && p.side == .destination)
            }
            #expect(
                writer.cursor == rc.range.start + k && writer.owner.range.start == rc.range.start + k,
                "advanced by what moved")
            var expected = rc.contents
            let off = Int(rc.range.start - rc.base)
            for i in 0..<Int(k) { expected[off + i] = value }
            #expect(fake.processes[dstPid]!.bytes == expected)

            var reader = writer.readBack()
            let back = reader.owner.snapshot
            #expect(back.id == origin.id && back.range == origin.range && back.hasReadView)
            #expect(reader.space == .remote(pid: dstPid) && back.isFallible)
            do throws(VmIoError) {
                let back = try reader.collect(using: fake)
                #expect(fault == nil && back == Array(repeating: value, count: Int(total)))
            } catch {
                guard case .partialCopy(let p) = error else { Issue.record("unexpected \(error)"); return }
                #expect(p.copied == k && p.faultAddress == fault, "read-back stops at the same page")
            }
        }
    }
}
