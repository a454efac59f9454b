import PropertyBased
import Testing

@testable import VmIO

// `inv`, `read_view_initialized`, `overlaps_with_range`, `overlaps` and `disjoint` against
// references written without the model's code (linear scans, closed intervals, pairwise
// checks), over owners that may be broken; and broken owners, built through the
// module's unchecked initialiser, refused by every operation with `invariantViolated`.

/// Owner fields as generated, broken or not: a range that may be inverted and mappings
/// that may be unsorted, overlapping or leave gaps.
struct RawOwner: Sendable, CustomStringConvertible {
    let range: AddressRange
    /// nil: no view.
    let mappings: [Mapping]?
    let isWrite: Bool
    let isFallible: Bool
    let isKernel: Bool

    var memView: VmIoMemView? {
        mappings.map { m in
            let view = MemView(uncheckedMappings: m, generation: 0)
            return isWrite ? .write(view) : .read(view)
        }
    }

    /// An owner with exactly these fields (the module's test-only, unchecked initialiser).
    func make() -> VmIoOwner {
        VmIoOwner(
            unchecked: freshOwnerID(), range: range, isFallible: isFallible, isKernel: isKernel, memView: memView)
    }

    var description: String {
        let view = mappings.map {
            "\(isWrite ? "write" : "read") [" + $0.map(\.range.description).joined(separator: ", ") + "]"
        }
        return "RawOwner(\(range), view \(view ?? "none"))"
    }
}

/// Reference for `inv`: the first clause that fails, in the order of the seed's `inv`.
func referenceInvariantFailure(_ o: RawOwner) -> InvariantFailure? {
    guard o.range.start <= o.range.end else { return .rangeInverted(start: o.range.start, end: o.range.end) }
    guard let mappings = o.mappings else { return nil }
    // Sorted and pairwise disjoint, each mapping well formed: every earlier mapping ends
    // at or before every later one starts.
    for (i, a) in mappings.enumerated() {
        if a.start > a.end { return .mappingsNotDisjoint }
        for b in mappings[(i + 1)...] where a.end > b.start { return .mappingsNotDisjoint }
    }
    return referenceFirstGap(o.range, mappings).map { .addressNotCovered($0) }
}

extension Gens {
    /// Owners in a 64-page window at the bottom or the top of the address space, with up to
    /// five random mappings in random order (so unsorted, overlapping, empty and gappy
    /// views all come up, gaps of a page or of one byte) and ranges that are sometimes
    /// inverted.
    static let rawOwner = zip(
        zip(Gen.bool, Gen.int(in: 0...64), Gen.int(in: 0...64), Gen.int(in: 0...4095), Gen.int(in: 0...4095)),
        zip(Gen.int(in: 0...40), Gen.int(in: 0...6), Gen.int(in: 0...15)).array(of: 0...5),
        zip(Gen.int(in: 0...2), Gen.bool, Gen.bool, Gen.bool)
    ).map { where_, mappingSpecs, flags -> RawOwner in
        let (top, startPage, endPage, startByte, endByte) = where_
        let base: Address = top ? 0xffff_ffff_ffff_f000 - 64 * page : 0
        let start = base + UInt64(startPage) * page + UInt64(startByte % 4096) / 512 * 512
        let end = base + UInt64(endPage) * page + UInt64(endByte % 4096) / 512 * 512
        var mappings = mappingSpecs.map { first, pages, perms in
            // Some mappings end a byte short of a page, so one-byte gaps come up too.
            Mapping(
                range: AddressRange(
                    uncheckedStart: base + UInt64(first) * page,
                    end: base + UInt64(first + pages) * page - (perms & 4 != 0 && pages > 0 ? 1 : 0)),
                permissions: Permissions(read: perms & 1 != 0, write: perms & 2 != 0, execute: false, shared: false))
        }
        let (viewKind, sorted, fallible, kernel) = flags
        if sorted { mappings.sort { $0.start < $1.start } }
        return RawOwner(
            range: AddressRange(uncheckedStart: start, end: end), mappings: viewKind == 2 ? nil : mappings,
            isWrite: viewKind == 1, isFallible: fallible, isKernel: kernel)
    }
}

@Suite("inv and the predicates against references")
struct InvariantReferenceTests {

    @Test("inv and checkInvariant name the first clause that fails, as the reference does")
    func invMatchesReference() async {
        await propertyCheck(count: 1000, input: Gens.rawOwner) { raw in
            let owner = raw.make()
            let expected = referenceInvariantFailure(raw)
            #expect(owner.inv == (expected == nil), "inv")
            #expect(owner.snapshot.inv == (expected == nil), "a snapshot's inv")
            if let expected {
                #expect(throws: VmIoError.invariantViolated(owner: owner.id, expected)) { try owner.checkInvariant() }
            } else {
                #expect(throws: Never.self) { try owner.checkInvariant() }
            }
        }
    }

    @Test("read_view_initialized: a read view, every byte in a readable mapping (reference: linear scan)")
    func readViewInitializedMatchesReference() async {
        await propertyCheck(count: 600, input: Gens.owner()) { c in
            let owner = c.owner()
            let expected = c.shape.memView?.isRead == true && referenceReadable(c.shape.range, c.layout.mappings)
            #expect(owner.readViewInitialized == expected)
            #expect(owner.snapshot.readViewInitialized == expected)
        }
    }

    @Test("read_view_initialized is false over an unreadable mapping, true over readable ones")
    func readViewInitializedConcrete() throws {
        let readable = Permissions(read: true, write: false, execute: false, shared: false)
        let unreadable = Permissions(read: false, write: true, execute: false, shared: false)
        let view = try MemView(mappings: [
            Mapping(range: try AddressRange(start: 0x1000, end: 0x3000), permissions: readable),
            Mapping(range: try AddressRange(start: 0x3000, end: 0x4000), permissions: unreadable),
        ])
        func initialized(_ s: Address, _ e: Address, _ v: VmIoMemView) throws -> Bool {
            try VmIoOwner(range: try AddressRange(start: s, end: e), isFallible: true, isKernel: false, memView: v)
                .readViewInitialized
        }
        #expect(try initialized(0x1000, 0x3000, .read(view)))
        #expect(try !initialized(0x1000, 0x3001, .read(view)), "one byte into the unreadable mapping")
        #expect(try !initialized(0x3000, 0x4000, .read(view)))
        #expect(try !initialized(0x1000, 0x2000, .write(view)), "a write view is never initialized")
        #expect(try initialized(0x3000, 0x3000, .read(view)), "an empty range is")
    }

    @Test("overlaps(withRange:): the closed intervals [start, end] share a point (independent reference)")
    func overlapsWithRangeMatchesReference() async {
        await propertyCheck(count: 800, input: Gens.anyRange, Gens.anyRange) { a, r in
            let owner = try VmIoOwner(range: a, isFallible: true, isKernel: false, memView: nil)
            // The seed's ranges are compared end-inclusive: as closed intervals they meet
            // when the larger start is at most the smaller end.
            let expected = max(a.start, r.start) <= min(a.end, r.end)
            #expect(owner.overlaps(withRange: r) == expected)
        }
    }

    @Test("disjoint and overlaps(other) against a reference built from the layout")
    func disjointMatchesReference() async {
        await propertyCheck(count: 800, input: Gens.ownerPair) { p in
            let a = p.a.make()
            let b = p.b.make()
            let rangesMeet = max(p.a.range.start, p.b.range.start) <= min(p.a.range.end, p.b.range.end)
            // Shared mappings: the layout's mappings each range intersects (an owner's view is cut
            // down to those), compared only when both owners carry a view.
            let ma = Set(p.layout.mappings.filter { referenceIntersects($0.range, p.a.range) })
            let mb = Set(p.layout.mappings.filter { referenceIntersects($0.range, p.b.range) })
            let share = p.a.memView != nil && p.b.memView != nil && !ma.isDisjoint(with: mb)
            let expectedDisjoint = !rangesMeet && !share
            #expect(a.disjoint(b) == expectedDisjoint, "disjoint")
            #expect(b.disjoint(a) == expectedDisjoint, "disjoint, the other way")
            #expect(a.overlaps(b) == (rangesMeet || share), "overlaps(other)")
        }
    }
}

/// Every operation on a broken owner of shape `raw` must throw `invariantViolated(failure)`
/// and leave the owner as it was; readers and writers refuse it, or refuse every step
/// before a byte moves when they hold one.
private func expectEveryOperationRefuses(
    _ raw: RawOwner, _ failure: InvariantFailure, sourceLocation: SourceLocation = #_sourceLocation
) {
    var owner = raw.make()
    let before = owner.snapshot
    let expected = VmIoError.invariantViolated(owner: before.id, failure)
    func check(_ name: String, _ body: (inout VmIoOwner) throws(VmIoError) -> Void) {
        #expect(throws: expected, "\(name)", sourceLocation: sourceLocation) { try body(&owner) }
        #expect(owner.snapshot == before, "\(name) left the owner as it was", sourceLocation: sourceLocation)
    }
    check("changeFallible(true)") { o throws(VmIoError) in try o.changeFallible(to: true) }
    check("changeFallible(false)") { o throws(VmIoError) in try o.changeFallible(to: false) }
    check("split") { o throws(VmIoError) in _ = try o.split(0) }
    check("advance") { o throws(VmIoError) in _ = try o.advance(0) }
    check("splitTail") { o throws(VmIoError) in _ = try o.splitTail(at: 0) }
    check("writeToRead") { o throws(VmIoError) in try o.writeToRead() }
    check("readView") { o throws(VmIoError) in _ = try o.readView() }
    check("rejoin") { o throws(VmIoError) in
        try o.rejoin(PassedView(owner: 0, range: .empty, memView: .read(.empty)))
    }
    check("append") { o throws(VmIoError) in
        try o.append(try VmIoOwner(range: .empty, isFallible: true, isKernel: false, memView: .read(.empty)))
    }
    // Readers and writers refuse such an owner (each gets a fresh owner of the same shape).
    let buffer = LocalBuffer(count: 16)
    func refuses(_ name: String, _ body: (consuming VmIoOwner) throws(VmIoError) -> Void) {
        let fresh = raw.make()
        let expected = VmIoError.invariantViolated(owner: fresh.id, failure)
        do throws(VmIoError) {
            try body(fresh)
            Issue.record("\(name) took a broken owner", sourceLocation: sourceLocation)
        } catch {
            #expect(error == expected, "\(name)", sourceLocation: sourceLocation)
        }
    }
    refuses("VmReader(remote:)") { o throws(VmIoError) in _ = try VmReader(remote: 1, owner: o) }
    refuses("VmWriter(remote:)") { o throws(VmIoError) in _ = try VmWriter(remote: 1, owner: o) }
    refuses("VmReader(local:)") { o throws(VmIoError) in _ = try VmReader(local: buffer, owner: o) }
    refuses("VmWriter(local:)") { o throws(VmIoError) in _ = try VmWriter(local: buffer, owner: o) }
    // A reader or writer holding a broken owner (only the module can make one) refuses
    // every step, before any byte moves.
    let fake = FakeRemote([:])
    var reader = VmReader(owner: raw.make(), space: .remote(pid: 1), storage: nil)
    let e = VmIoError.invariantViolated(owner: reader.owner.id, failure)
    var sink = buffer.makeWriter()
    #expect(throws: e, sourceLocation: sourceLocation) { try reader.skip(0) }
    #expect(throws: e, sourceLocation: sourceLocation) { try reader.limit(0) }
    #expect(throws: e, sourceLocation: sourceLocation) { try reader.readFallible(into: &sink, using: fake) }
    #expect(throws: e, sourceLocation: sourceLocation) { _ = try reader.readValue(UInt8.self, using: fake) }
    #expect(throws: e, sourceLocation: sourceLocation) { _ = try reader.collect(using: fake) }
    var writer = VmWriter(owner: raw.make(), space: .remote(pid: 1), storage: nil)
    let w = VmIoError.invariantViolated(owner: writer.owner.id, failure)
    var source = buffer.makeReader()
    #expect(throws: w, sourceLocation: sourceLocation) { try writer.skip(0) }
    #expect(throws: w, sourceLocation: sourceLocation) { try writer.limit(0) }
    #expect(throws: w, sourceLocation: sourceLocation) { try source.readFallible(into: &writer, using: fake) }
    #expect(throws: w, sourceLocation: sourceLocation) { try writer.writeValue(UInt8(1), using: fake) }
    #expect(throws: w, sourceLocation: sourceLocation) { try writer.fill(0, using: fake) }
    #expect(throws: w, sourceLocation: sourceLocation) { try writer.fillZeros(0, using: fake) }
    #expect(throws: w, sourceLocation: sourceLocation) {
        try [UInt8(1)].withUnsafeBytes { raw in _ = try writer.write(raw, using: fake) }
    }
    #expect(fake.calls.isEmpty, "no byte moved", sourceLocation: sourceLocation)
    #expect(source.remain == 16 && sink.avail == 16, sourceLocation: sourceLocation)
}

@Suite("Broken owners are refused")
struct BrokenOwnerTests {

    /// The three ways to break an owner, each over the same one-page view.
    static let view = [
        Mapping(range: AddressRange(uncheckedStart: 0x10_0000, end: 0x10_2000), permissions: .readWrite),
        Mapping(range: AddressRange(uncheckedStart: 0x10_3000, end: 0x10_4000), permissions: .readWrite),
    ]
    static let broken: [(String, RawOwner, InvariantFailure)] = [
        (
            "ill-formed range",
            RawOwner(
                range: AddressRange(uncheckedStart: 0x10_1000, end: 0x10_0800), mappings: view, isWrite: true,
                isFallible: true, isKernel: false),
            .rangeInverted(start: 0x10_1000, end: 0x10_0800)
        ),
        (
            "non-disjoint view",
            RawOwner(
                range: AddressRange(uncheckedStart: 0x10_0000, end: 0x10_1000),
                mappings: [
                    view[0],
                    Mapping(range: AddressRange(uncheckedStart: 0x10_1000, end: 0x10_3000), permissions: .readWrite),
                ],
                isWrite: false, isFallible: true, isKernel: false),
            .mappingsNotDisjoint
        ),
        (
            "unsorted view",
            RawOwner(
                range: AddressRange(uncheckedStart: 0x10_0000, end: 0x10_1000), mappings: view.reversed(),
                isWrite: true, isFallible: false, isKernel: true),
            .mappingsNotDisjoint
        ),
        (
            "range not covered",
            RawOwner(
                range: AddressRange(uncheckedStart: 0x10_1000, end: 0x10_3800), mappings: view, isWrite: false,
                isFallible: true, isKernel: false),
            .addressNotCovered(0x10_2000)
        ),
    ]

    @Test("every operation throws invariantViolated and leaves the owner as it was", arguments: 0..<4)
    func everyOperationRefuses(which: Int) {
        let (name, raw, failure) = Self.broken[which]
        #expect(raw.make().inv == false, "\(name)")
        #expect(referenceInvariantFailure(raw) == failure, "the reference agrees on \(name)")
        expectEveryOperationRefuses(raw, failure)
    }

    @Test("every operation refuses random broken owners")
    func randomBrokenOwners() async {
        await propertyCheck(count: 300, input: Gens.rawOwner) { raw in
            guard let failure = referenceInvariantFailure(raw) else { return }
            expectEveryOperationRefuses(raw, failure)
        }
    }

    @Test("the initialiser throws (never asserts) for each way to be broken")
    func initialiserThrows() throws {
        let overlapping = MemView(
            uncheckedMappings: [
                Mapping(range: AddressRange(uncheckedStart: 0x1000, end: 0x3000), permissions: .readWrite),
                Mapping(range: AddressRange(uncheckedStart: 0x2000, end: 0x4000), permissions: .readWrite),
            ], generation: 0)
        let range = try AddressRange(start: 0x1000, end: 0x2000)
        for view in [VmIoMemView.read(overlapping), .write(overlapping)] {
            do throws(VmIoError) {
                _ = try VmIoOwner(range: range, isFallible: true, isKernel: false, memView: view)
                Issue.record("an owner over a broken view was made")
            } catch {
                guard case .invariantViolated(_, .mappingsNotDisjoint) = error else {
                    Issue.record("unexpected \(error)")
                    continue
                }
            }
        }
        #expect(throws: VmIoError.invalidRange(start: 0x2000, end: 0x1000)) {
            _ = try VmIoOwner(
                range: AddressRange(uncheckedStart: 0x2000, end: 0x1000), isFallible: true, isKernel: false,
                memView: .read(.empty))
        }
        #expect(throws: VmIoError.rangeNotCovered(address: 0x1000)) {
            _ = try VmIoOwner(range: range, isFallible: true, isKernel: false, memView: .read(.empty))
        }
    }
}
