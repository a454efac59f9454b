import PropertyBased
import Testing

@testable import VmIO

// Bytes, not just cursors: after `advance`, `skip` or a partial copy, reading the rest
// gives the original bytes from `start + n` on (the seed's `read(va)` unchanged, checked
// against the fake remote's contents); copies longer than one bounce chunk with holes;
// backends that break their contract; copies within one address space.

private let pid: Int32 = 300
private let otherPid: Int32 = 301

/// The same process with no faulting page: the contents as they are.
private func clean(_ rc: RemoteCase) -> FakeRemote {
    FakeRemote([pid: .init(base: rc.base, bytes: rc.contents, faulting: [])])
}

/// The contents of `rc` over `range`.
private func original(_ rc: RemoteCase, _ range: AddressRange) -> [UInt8] {
    let lo = Int(range.start - rc.base)
    return Array(rc.contents[lo..<lo + Int(range.count)])
}

@Suite("Contents: what is read is what is there")
struct ContentTests {

    @Test("advance(n) on the owner, then a reader over it reads the original bytes from start + n")
    func readAfterAdvance() async {
        await propertyCheck(count: 300, input: Gens.remote(anywhere: 0x7f00_0000_0000), Gen.int(in: 0...Int(Int32.max)))
        {
            rc, pickN in
            var owner = try VmIoOwner.remote(rc.range, view: .read(rc.view))
            let n = pick(pickN, 0, rc.range.count, edges: [page - rc.range.start % page])
            let passed = try owner.advance(n)
            var reader = try VmReader(remote: pid, owner: owner)
            let rest = try reader.collect(using: clean(rc))
            #expect(rest == original(rc, try AddressRange(start: rc.range.start + n, end: rc.range.end)))
            // The part advanced past reads as it was too (a reader over it, rejoined).
            var whole = reader.finish()
            try whole.rejoin(passed)
            var again = try VmReader(remote: pid, owner: whole)
            #expect(try again.collect(using: clean(rc)) == original(rc, rc.range))
        }
    }

    @Test("skip(n), then reading the rest gives the original bytes from start + n")
    func readAfterSkip() async {
        await propertyCheck(count: 300, input: Gens.remote(anywhere: 0x5500_0000_0000), Gen.int(in: 0...Int(Int32.max)))
        {
            rc, pickN in
            var reader = try VmReader(remote: pid, owner: try .remote(rc.range, view: .read(rc.view)))
            let n = pick(pickN, 0, rc.range.count)
            try reader.skip(n)
            let buffer = LocalBuffer(count: Int(rc.range.count - n))
            var writer = buffer.makeWriter()
            #expect(try reader.readFallible(into: &writer, using: clean(rc)) == rc.range.count - n)
            #expect(buffer.array == original(rc, try AddressRange(start: rc.range.start + n, end: rc.range.end)))
        }
    }

    @Test("after a partial copy of k bytes, the rest reads as the original bytes from start + k")
    func readAfterPartialCopy() async {
        await propertyCheck(count: 300, input: Gens.remote(anywhere: 0x7f3a_0000_0000)) { rc in
            let faulty = FakeRemote([pid: rc.process])
            var reader = try VmReader(remote: pid, owner: try .remote(rc.range, view: .read(rc.view)))
            let first = LocalBuffer(count: Int(rc.range.count))
            var writer = first.makeWriter()
            var k = rc.range.count
            do throws(VmIoError) {
                try reader.readFallible(into: &writer, using: faulty)
            } catch {
                guard case .partialCopy(let p) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                k = p.copied
            }
            // The same reader and writer go on, now with nothing faulting.
            try reader.readFallible(into: &writer, using: clean(rc))
            #expect(first.array == original(rc, rc.range), "[start, start + k) then [start + k, end): the original")
            #expect(reader.remain == 0 && writer.avail == 0)
            #expect(k <= rc.range.count)
        }
    }

    @Test("after a partial write of k bytes, readBack gives k written bytes, then the original ones")
    func readBackAfterPartialWrite() async {
        await propertyCheck(count: 300, input: Gens.remote(anywhere: 0x5600_0000_0000), Gen.uint8()) { rc, byte in
            let faulty = FakeRemote([pid: rc.process])
            var writer = try VmWriter(remote: pid, owner: try .remote(rc.range, view: .write(rc.view)))
            var k = rc.range.count
            do throws(VmIoError) {
                try writer.fill(byte, using: faulty)
            } catch {
                guard case .partialCopy(let p) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                k = p.copied
            }
            let written = FakeRemote([pid: .init(base: rc.base, bytes: faulty.processes[pid]!.bytes, faulting: [])])
            var reader = writer.readBack()
            let back = try reader.collect(using: written)
            let rest = original(rc, try AddressRange(start: rc.range.start + k, end: rc.range.end))
            #expect(back == [UInt8](repeating: byte, count: Int(k)) + rest)
        }
    }

    @Test("remote → remote longer than one bounce chunk, stepping over holes page by page")
    func bigCopyWithHoles() async {
        let input = zip(
            Gen.int(in: 257...700), Gen.int(in: 0...Int(Int32.max)).array(of: 0...4), Gen.int(in: 0...4095),
            Gen.int(in: 0...Int(Int32.max)))
        await propertyCheck(count: 12, input: input) { pages, holePicks, startOffset, seed in
            let size = pages * Int(page)
            let srcBase: Address = 0x7f00_0000_0000
            let dstBase: Address = 0xffff_ffff_ffff_f000 - UInt64(size) - page  // near the top
            let contents = randomBytes(size, seed: seed)
            let holes = Set(holePicks.map { srcBase / page + UInt64($0 % pages) })
            let fake = FakeRemote([
                pid: .init(base: srcBase, bytes: contents, faulting: holes),
                otherPid: .init(base: dstBase, bytes: [UInt8](repeating: 0xcc, count: size + Int(page)), faulting: []),
            ])
            let region = { (base: Address, count: Int) in
                try MemView(mappings: [
                    Mapping(range: try AddressRange(start: base, count: UInt64(count)), permissions: .readWrite)
                ])
            }
            let from = srcBase + UInt64(startOffset)
            let count = UInt64(size - startOffset)
            let to = dstBase + 7
            var reader = try VmReader(
                remote: pid,
                owner: try .remote(try AddressRange(start: from, count: count), view: .read(region(srcBase, size))))
            var writer = try VmWriter(
                remote: otherPid,
                owner: try .remote(
                    try AddressRange(start: to, count: count), view: .write(region(dstBase, size + Int(page)))))
            var skipped: [AddressRange] = []
            while reader.remain > 0 {
                do throws(VmIoError) {
                    try reader.readFallible(into: &writer, using: fake)
                } catch {
                    guard case .partialCopy(let p) = error, p.side == .source, let fault = p.faultAddress else {
                        Issue.record("unexpected \(error)")
                        return
                    }
                    let resume = min(reader.end, (fault | (page - 1)) + 1)
                    skipped.append(try AddressRange(start: fault, end: resume))
                    try reader.skip(resume - fault)
                    try writer.skip(resume - fault)
                }
            }
            // Reference: the faulting pages the range touches, clipped to it.
            let expectedHoles = holes.sorted().map { $0 * page }.compactMap { start -> AddressRange? in
                let r = AddressRange(uncheckedStart: max(start, from), end: min(start + page, from + count))
                return r.isEmpty ? nil : r
            }
            #expect(skipped == expectedHoles, "every hole skipped once, page by page")
            let out = fake.processes[otherPid]!.bytes
            for i in 0..<Int(count) {
                let source = from + UInt64(i)
                let inHole = holes.contains(source / page)
                let want = inHole ? 0xcc : contents[startOffset + i]
                if out[7 + i] != want {
                    Issue.record("destination byte \(i) is \(out[7 + i]), expected \(want) (hole: \(inHole))")
                    break
                }
            }
            #expect(out[..<7].allSatisfy { $0 == 0xcc } && out[(7 + Int(count))...].allSatisfy { $0 == 0xcc })
            #expect(fake.calls.allSatisfy { $0.count <= bounceBufferSize }, "no call above the bounce size")
            #expect(
                fake.calls.contains { $0.count == bounceBufferSize } || count < UInt64(bounceBufferSize)
                    || !holes.isEmpty)
        }
    }
}

/// A backend that breaks the ``CopyBackend`` contract on one side, over a fake remote.
final class FaultyBackend: CopyBackend {
    enum Fault {
        /// Reports `extra` more bytes than it was asked to move.
        case overReport(extra: Int)
        /// Reports a negative count.
        case negative
        /// Moves all but `short` bytes and gives no reason.
        case stopWithoutCause(short: Int)
    }
    let inner: FakeRemote
    let fault: Fault
    let onWrite: Bool

    init(_ inner: FakeRemote, _ fault: Fault, onWrite: Bool) {
        self.inner = inner
        self.fault = fault
        self.onWrite = onWrite
    }

    private func broken(_ t: Transfer, asked: Int, redo: (Int) -> Transfer) -> Transfer {
        switch fault {
        case .overReport(let extra): return Transfer(moved: t.moved + extra, stop: nil)
        case .negative: return Transfer(moved: -1, stop: nil)
        case .stopWithoutCause(let short):
            return Transfer(moved: redo(max(0, asked - short)).moved, stop: nil)
        }
    }

    func read(pid: Int32, at address: Address, into destination: UnsafeMutableRawBufferPointer) -> Transfer {
        guard !onWrite else { return inner.read(pid: pid, at: address, into: destination) }
        if case .stopWithoutCause = fault {
            return broken(Transfer(moved: 0, stop: nil), asked: destination.count) { n in
                inner.read(pid: pid, at: address, into: UnsafeMutableRawBufferPointer(rebasing: destination[0..<n]))
            }
        }
        return broken(inner.read(pid: pid, at: address, into: destination), asked: destination.count) { _ in
            Transfer(moved: 0, stop: nil)
        }
    }

    func write(pid: Int32, at address: Address, from source: UnsafeRawBufferPointer) -> Transfer {
        guard onWrite else { return inner.write(pid: pid, at: address, from: source) }
        if case .stopWithoutCause = fault {
            return broken(Transfer(moved: 0, stop: nil), asked: source.count) { n in
                inner.write(pid: pid, at: address, from: UnsafeRawBufferPointer(rebasing: source[0..<n]))
            }
        }
        return broken(inner.write(pid: pid, at: address, from: source), asked: source.count) { _ in
            Transfer(moved: 0, stop: nil)
        }
    }
}

@Suite("Backends that break their contract")
struct FaultyBackendTests {

    static let faults: [FaultyBackend.Fault] = [
        .overReport(extra: 1), .overReport(extra: 4096), .negative, .stopWithoutCause(short: 1),
        .stopWithoutCause(short: 3000),
    ]

    /// What the model must report for `fault` on a request of `asked` bytes, and the bytes it may trust.
    static func expectation(_ fault: FaultyBackend.Fault, asked: UInt64) -> (BackendViolation, UInt64) {
        switch fault {
        case .overReport(let extra): (.movedOutOfBounds(moved: Int(asked) + extra, requested: asked), 0)
        case .negative: (.movedOutOfBounds(moved: -1, requested: asked), 0)
        case .stopWithoutCause(let short):
            (
                .stoppedWithoutCause(moved: asked - min(asked, UInt64(short)), requested: asked),
                asked - min(asked, UInt64(short))
            )
        }
    }

    @Test(
        "remote → local, local → remote, remote → remote: backendContract, cursors by what is accounted for",
        arguments: 0..<5)
    func copies(which: Int) throws {
        let fault = Self.faults[which]
        let base: Address = 0x7f00_0000_0000
        let contents = randomBytes(4 * 4096, seed: which)
        let view = try MemView(mappings: [
            Mapping(range: try AddressRange(start: base, count: 4 * 4096), permissions: .readWrite)
        ])
        let range = try AddressRange(start: base + 100, count: 8000)
        for direction in 0..<3 {
            let fake = FakeRemote([
                pid: .init(base: base, bytes: contents, faulting: []),
                otherPid: .init(base: base, bytes: [UInt8](repeating: 0, count: 4 * 4096), faulting: []),
            ])
            let backend = FaultyBackend(fake, fault, onWrite: direction == 1)
            let buffer = LocalBuffer(contents[..<8000])
            var reader =
                direction == 1
                ? buffer.makeReader() : try VmReader(remote: pid, owner: try .remote(range, view: .read(view)))
            var writer =
                direction == 0
                ? buffer.makeWriter() : try VmWriter(remote: otherPid, owner: try .remote(range, view: .write(view)))
            // Remote → remote: reads are good and the write breaks, on the chunk the read gave it.
            let backendForCopy = direction == 2 ? FaultyBackend(fake, fault, onWrite: true) : backend
            let (violation, trusted) = Self.expectation(fault, asked: 8000)
            #expect(throws: VmIoError.backendContract(violation), "direction \(direction)") {
                try reader.readFallible(into: &writer, using: backendForCopy)
            }
            #expect(reader.remain == 8000 - trusted && writer.avail == 8000 - trusted, "direction \(direction)")
            #expect(reader.owner.snapshot.inv && writer.owner.snapshot.inv)
        }
    }

    @Test("readValue, collect, write, writeValue, fill: backendContract, never a trap", arguments: 0..<5)
    func helpers(which: Int) throws {
        let fault = Self.faults[which]
        let base: Address = 0x1000
        let view = try MemView(mappings: [
            Mapping(range: try AddressRange(start: base, count: 4 * 4096), permissions: .readWrite)
        ])
        let fake = FakeRemote([pid: .init(base: base, bytes: randomBytes(4 * 4096, seed: 9), faulting: [])])
        let readBackend = FaultyBackend(fake, fault, onWrite: false)
        let writeBackend = FaultyBackend(fake, fault, onWrite: true)
        let range = try AddressRange(start: base, count: 4096)
        var reader = try VmReader(remote: pid, owner: try .remote(range, view: .read(view)))
        #expect(throws: VmIoError.backendContract(Self.expectation(fault, asked: 8).0)) {
            _ = try reader.readValue(UInt64.self, using: readBackend)
        }
        #expect(throws: VmIoError.backendContract(Self.expectation(fault, asked: 4096).0)) {
            _ = try reader.collect(using: readBackend)
        }
        #expect(reader.remain == 4096, "all or nothing: the cursor did not move")
        var writer = try VmWriter(remote: pid, owner: try .remote(range, view: .write(view)))
        #expect(throws: VmIoError.backendContract(Self.expectation(fault, asked: 8).0)) {
            try writer.writeValue(UInt64(7), using: writeBackend)
        }
        #expect(writer.avail == 4096)
        let (violation, trusted) = Self.expectation(fault, asked: 4096)
        #expect(throws: VmIoError.backendContract(violation)) { try writer.fill(1, using: writeBackend) }
        #expect(writer.avail == 4096 - trusted)
    }
}

@Suite("Copies within one address space")
struct SameSpaceCopyTests {

    static let base: Address = 0x7f00_0000_0000
    static let size = 3 << 20  // three bounce chunks

    func fixture() throws -> (FakeRemote, MemView, [UInt8]) {
        let contents = randomBytes(Self.size, seed: 77)
        let fake = FakeRemote([pid: .init(base: Self.base, bytes: contents, faulting: [])])
        let view = try MemView(mappings: [
            Mapping(range: try AddressRange(start: Self.base, count: UInt64(Self.size)), permissions: .readWrite)
        ])
        return (fake, view, contents)
    }

    @Test(
        "a target's intersecting ranges are refused, forward or backward, before a byte moves",
        arguments: [Int64(8), -8, 4096, -4096, 1_048_575, -1_048_575, 0] as [Int64])
    func intersectingRefused(shift: Int64) throws {
        let (fake, view, contents) = try fixture()
        let source = try AddressRange(start: Self.base + (1 << 20), count: 1 << 20)
        let destination = try AddressRange(
            start: UInt64(Int64(source.start) + shift), count: source.count)
        var reader = try VmReader(remote: pid, owner: try .remote(source, view: .read(view)))
        var writer = try VmWriter(remote: pid, owner: try .remote(destination, view: .write(view)))
        #expect(throws: VmIoError.overlappingCopy(source: source, destination: destination)) {
            try reader.readFallible(into: &writer, using: fake)
        }
        #expect(fake.calls.isEmpty && fake.processes[pid]!.bytes == contents, "nothing moved")
        #expect(reader.remain == source.count && writer.avail == destination.count)
    }

    @Test(
        "touching or apart ranges of one target copy exactly, forward or backward",
        arguments: [(true, 0), (true, 5), (false, 0), (false, 5)])
    func touchingOrApartCopies(forward: Bool, gap: UInt64) throws {
        let (fake, view, contents) = try fixture()
        let source = try AddressRange(start: Self.base + (1 << 20) + 16, count: (1 << 20) - 32)
        let shift = source.count + gap
        let destination = try AddressRange(
            start: forward ? source.start + shift : source.start - shift, count: source.count)
        var reader = try VmReader(remote: pid, owner: try .remote(source, view: .read(view)))
        var writer = try VmWriter(remote: pid, owner: try .remote(destination, view: .write(view)))
        #expect(try reader.readFallible(into: &writer, using: fake) == source.count)
        var expected = contents
        let (s, d) = (Int(source.start - Self.base), Int(destination.start - Self.base))
        expected.replaceSubrange(d..<d + Int(source.count), with: contents[s..<s + Int(source.count)])
        #expect(fake.processes[pid]!.bytes == expected)
    }

    @Test("local owners must be disjoint: one buffer to itself is refused, two buffers copy")
    func localDisjoint() throws {
        let one = LocalBuffer(Array(0..<64))
        var reader = one.makeReader()
        var writer = one.makeWriter()
        try reader.limit(16)
        try writer.skip(32)
        // Apart in the buffer, but one mapping: the seed's disjoint refuses it.
        #expect(reader.owner.disjoint(writer.owner) == false)
        #expect(throws: VmIoError.overlappingCopy(source: reader.owner.range, destination: writer.owner.range)) {
            try reader.read(into: &writer)
        }
        #expect(one.array == Array(0..<64))
        let other = LocalBuffer(count: 16)
        var into = other.makeWriter()
        #expect(reader.owner.disjoint(into.owner) == true)
        #expect(try reader.read(into: &into) == 16)
        #expect(other.array == Array(0..<16))
    }
}

@Suite("Generators")
struct GeneratorReachTests {
    @Test("remote regions reach address 0 and the last page of the address space; layouts too")
    func reach() {
        var rng = SplitMix(1)
        let regions = (0..<200).map { _ in Gens.remote(anywhere: 0x7f00_0000_0000).run(using: &rng) }
        #expect(regions.contains { $0.base == 0 }, "a region at address 0")
        #expect(regions.contains { $0.region.end == 0xffff_ffff_ffff_f000 }, "a region ending at the last page")
        #expect(regions.contains { $0.range.start == 0 && !$0.range.isEmpty }, "an owner starting at address 0")
        #expect(regions.contains { $0.range.end == 0xffff_ffff_ffff_f000 }, "an owner ending at the top")
        let layouts = (0..<200).map { _ in Gens.layout.run(using: &rng) }
        #expect(layouts.contains { $0.mappings.first?.start == 0 })
        #expect(layouts.contains { $0.mappings.last?.end == 0xffff_ffff_ffff_f000 })
    }
}
