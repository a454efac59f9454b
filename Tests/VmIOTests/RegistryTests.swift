import PropertyBased
import Testing

@testable import VmIO

// The registry: unique ids; no two live write owners over intersecting (half-open)
// ranges; no read owner intersecting a live write owner; readers share; touching
// ranges coexist; release and split keep the books straight.

private let base: Address = 0x7f00_0000_0000
private let regionPages: UInt64 = 16

private func regionView() -> MemView {
    try! MemView(mappings: [
        Mapping(range: try! AddressRange(start: base, count: 8 * page), permissions: .readWrite, path: "[heap]"),
        Mapping(
            range: try! AddressRange(start: base + 8 * page, count: 8 * page),
            permissions: Permissions(read: true, write: false, execute: true, shared: false), path: "/usr/lib/libx.so"),
    ])
}

private func range(_ start: UInt64, _ end: UInt64) -> AddressRange {
    try! AddressRange(start: base + start, end: base + end)
}

@Suite("OwnerRegistry")
struct RegistryTests {

    @Test("random acquire/release sequences match a reference model")
    func matchesReference() async {
        let op = zip(Gen.int(in: 0...3), Gen.int(in: 0...Int(Int32.max)), Gen.int(in: 0...Int(Int32.max)))
        await propertyCheck(count: 300, input: op.array(of: 1...30)) { ops in
            let registry = OwnerRegistry()
            let view = regionView()
            var model: [(id: UInt64, range: AddressRange, access: OwnerRegistry.Access)] = []
            let size = regionPages * page
            let edges = (0...regionPages * 4).map { $0 * page / 4 }
            for (kind, a, b) in ops {
                if kind == 3, !model.isEmpty {
                    let victim = model.remove(at: a % model.count)
                    #expect(throws: Never.self) { try registry.release(id: victim.id) }
                    #expect(throws: VmIoError.unknownOwner(victim.id)) { try registry.release(id: victim.id) }
                    continue
                }
                let access: OwnerRegistry.Access = kind == 0 ? .write : .read
                let s = pick(a, 0, size, edges: edges + model.flatMap { [$0.range.start - base, $0.range.end - base] })
                let e = pick(b, s, size, edges: edges + model.flatMap { [$0.range.start - base, $0.range.end - base] })
                let r = range(s, e)
                let clash =
                    model
                    .filter { referenceIntersects($0.range, r) && (access == .write || $0.access == .write) }
                    .min { $0.id < $1.id }
                do throws(VmIoError) {
                    let owner = try registry.acquire(access, range: r, view: view).snapshot
                    #expect(clash == nil, "\(access) \(r) should clash with #\(clash?.id ?? 0)")
                    #expect(owner.range == r && owner.inv)
                    #expect(access == .read ? owner.hasReadView : owner.hasWriteView)
                    #expect(!model.contains { $0.id == owner.id }, "fresh id")
                    model.append((owner.id, r, access))
                } catch {
                    #expect(
                        error == clash.map { .ownerConflict(requested: r, holder: $0.id, holderRange: $0.range) },
                        "refused with ownerConflict naming the (oldest) holder")
                }
                let live = registry.live
                #expect(live.map(\.id) == model.map(\.id).sorted())
                #expect(live.map(\.range) == model.sorted { $0.id < $1.id }.map(\.range))
                // The registry's books never hold a write lease intersecting any other lease.
                for x in live {
                    for y in live where x.id < y.id && (x.access == .write || y.access == .write) {
                        #expect(!referenceIntersects(x.range, y.range))
                    }
                }
            }
        }
    }

    @Test("unique ids, readers share")
    func readersShare() throws {
        let registry = OwnerRegistry()
        let view = regionView()
        let owners = try (0..<20).map { _ in try registry.acquire(.read, range: range(0, 10 * page), view: view).id }
        #expect(Set(owners).count == 20)
        #expect(zip(owners, owners.dropFirst()).allSatisfy { $0 < $1 }, "ids increase")
        #expect(registry.live.count == 20)
    }

    @Test("a write intersecting a live owner is refused, naming the holder; touching ranges are allowed")
    func writeConflicts() throws {
        let registry = OwnerRegistry()
        let view = regionView()
        let w = try registry.acquire(.write, range: range(page, 3 * page), view: view).snapshot
        // Half-open: [3p, 4p) and [0, p) touch it and are fine.
        let after = try registry.acquire(.write, range: range(3 * page, 4 * page), view: view).snapshot
        let before = try registry.acquire(.write, range: range(0, page), view: view).snapshot
        // A read touching a write is fine too.
        let touchingRead = try registry.acquire(.read, range: range(4 * page, 5 * page), view: view).snapshot
        // Intersecting by a single byte is not.
        #expect(
            throws: VmIoError.ownerConflict(
                requested: range(3 * page - 1, 3 * page), holder: w.id, holderRange: w.range)
        ) {
            _ = try registry.acquire(.write, range: range(3 * page - 1, 3 * page), view: view)
        }
        #expect(
            throws: VmIoError.ownerConflict(
                requested: range(2 * page, 2 * page + 1), holder: w.id, holderRange: w.range)
        ) {
            _ = try registry.acquire(.read, range: range(2 * page, 2 * page + 1), view: view)
        }
        // A write over a live read is refused as well.
        #expect(
            throws: VmIoError.ownerConflict(
                requested: range(4 * page + 8, 6 * page), holder: touchingRead.id, holderRange: touchingRead.range)
        ) {
            _ = try registry.acquire(.write, range: range(4 * page + 8, 6 * page), view: view)
        }
        // The oldest holder is named when several clash.
        #expect(throws: VmIoError.ownerConflict(requested: range(0, 4 * page), holder: w.id, holderRange: w.range)) {
            _ = try registry.acquire(.write, range: range(0, 4 * page), view: view)
        }
        // An empty range covers no byte: it conflicts with nothing.
        #expect(throws: Never.self) { _ = try registry.acquire(.write, range: range(2 * page, 2 * page), view: view) }
        #expect(registry.live.map(\.id).prefix(4) == [w.id, after.id, before.id, touchingRead.id])
    }

    @Test("release, then the range can be acquired again; releasing twice is unknownOwner")
    func releaseReacquire() throws {
        let registry = OwnerRegistry()
        let view = regionView()
        let w = try registry.acquire(.write, range: range(0, 2 * page), view: view)
        let id = w.id
        #expect(throws: (any Error).self) { _ = try registry.acquire(.write, range: range(page, 2 * page), view: view) }
        try registry.release(w)
        #expect(throws: VmIoError.unknownOwner(id)) { try registry.release(id: id) }
        let again = try registry.acquire(.write, range: range(page, 2 * page), view: view)
        #expect(again.id > id)
        #expect(registry.live.map(\.id) == [again.id])
    }

    @Test("an uncovered range is refused before any lease is taken")
    func uncovered() throws {
        let registry = OwnerRegistry()
        #expect(throws: VmIoError.rangeNotCovered(address: base + regionPages * page)) {
            _ = try registry.acquire(.read, range: range(page, (regionPages + 1) * page), view: regionView())
        }
        #expect(registry.live.isEmpty)
    }

    @Test(
        "split through the registry keeps both halves live and separately releasable",
        arguments: [0, 1, 4096, 5000, 3 * 4096])
    func splitThroughRegistry(n: UInt64) throws {
        let registry = OwnerRegistry()
        let view = regionView()
        var back = try registry.acquire(.write, range: range(0, 3 * page), view: view)
        let id = back.id
        let front = try registry.split(&back, at: n)
        let (f, b) = (front.snapshot, back.snapshot)
        #expect(b.id == id && f.id != id)
        #expect(f.range == range(0, n) && b.range == range(n, 3 * page))
        let live = registry.live
        #expect(live.count == 2)
        #expect(live.first { $0.id == id }?.range == b.range && live.first { $0.id == f.id }?.range == f.range)
        #expect(live.allSatisfy { $0.access == .write })
        // The halves touch but do not intersect: both may live (the inclusive test would refuse this).
        #expect(!referenceIntersects(f.range, b.range))
        #expect(!front.disjoint(back) || f.range.isEmpty || b.range.isEmpty, "the seed's disjoint would refuse them")
        if !b.range.isEmpty {
            #expect(throws: VmIoError.ownerConflict(requested: b.range, holder: id, holderRange: b.range)) {
                _ = try registry.acquire(.read, range: b.range, view: view)
            }
        }
        // Release the front: its range is free again, the back still holds its own.
        try registry.release(front)
        #expect(registry.live.map(\.id) == [id])
        if !f.range.isEmpty {
            let reuse = try registry.acquire(.write, range: f.range, view: view)
            try registry.release(reuse)
        }
        try registry.release(back)
        #expect(registry.live.isEmpty)
        #expect(throws: VmIoError.unknownOwner(id)) { try registry.release(id: id) }
    }

    @Test("split refused: unknown owner, n past the end (books unchanged)")
    func splitRefused() throws {
        let registry = OwnerRegistry()
        let view = regionView()
        var stranger = try VmIoOwner(range: range(0, page), isFallible: true, isKernel: false, memView: .write(view))
        let strangerID = stranger.id
        #expect(throws: VmIoError.unknownOwner(strangerID)) { _ = try registry.split(&stranger, at: 1) }
        var live = try registry.acquire(.read, range: range(0, page), view: view)
        let before = registry.live
        #expect(throws: VmIoError.lengthExceedsRange(requested: page + 1, available: page)) {
            _ = try registry.split(&live, at: page + 1)
        }
        #expect(registry.live == before)
    }
}
