import PropertyBased
import Testing

@testable import VmIO

// One property per ensures-clause of the seed's `split`, `advance`, `write_to_read` and
// `change_fallible`, each clause its own named #expect, over random owners, views and
// cut points (n = 0, n = count, mapping edges and empty ranges come up often). `old(self)`
// is the owner's snapshot before the operation; references are computed from the
// generated layout, not from the owner.

private let checks = 400

/// Reference for `read_view_initialized`: every byte of `range` lies in a readable mapping of
/// `mappings`, checked byte by byte at every place where the answer could change.
func referenceReadable(_ range: AddressRange, _ mappings: [Mapping]) -> Bool {
    var next = range.start
    while next < range.end {
        guard let m = mappings.first(where: { $0.start <= next && next < $0.end }), m.permissions.read else {
            return false
        }
        next = m.end
    }
    return true
}

@Suite("VmIoOwner contracts")
struct OwnerContractTests {

    // MARK: split

    @Test("split: every ensures-clause of the seed")
    func splitEnsures() async {
        await propertyCheck(count: checks, input: Gens.viewedOwner) { c in
            var me = c.owner()
            let old = me.snapshot
            let n = c.cut
            let r = try me.split(n).snapshot
            let back = me.snapshot
            let oldInitialized = old.hasReadView && referenceReadable(old.range, c.layout.mappings)

            #expect(r.inv, "r.inv()")
            #expect(r.range.start == old.range.start, "r.range.start == old.range.start")
            #expect(r.range.end == old.range.start + n, "r.range.end == old.range.start + nbytes")
            #expect(r.isFallible == old.isFallible, "r.is_fallible == old.is_fallible")
            #expect(r.isKernel == old.isKernel, "r.is_kernel == old.is_kernel")
            #expect(r.memView != nil, "r.mem_view is Some")
            #expect(back.inv, "final(self).inv()")
            #expect(back.range.start == old.range.start + n, "final.range.start == old.range.start + nbytes")
            #expect(back.range.end == old.range.end, "final.range.end == old.range.end")
            #expect(back.isFallible == old.isFallible, "final.is_fallible == old.is_fallible")
            #expect(back.id == old.id, "final.id == old.id")
            #expect(back.isKernel == old.isKernel, "final.is_kernel == old.is_kernel")
            #expect(back.memView != nil, "final.mem_view is Some")
            if old.hasReadView {
                #expect(r.hasReadView, "old ReadView ==> r ReadView")
                #expect(back.hasReadView, "old ReadView ==> final ReadView")
            }
            if old.hasWriteView {
                #expect(r.hasWriteView, "old WriteView ==> r WriteView")
                #expect(back.hasWriteView, "old WriteView ==> final WriteView")
            }
            if oldInitialized {
                #expect(r.readViewInitialized, "old.read_view_initialized ==> r.read_view_initialized")
                #expect(back.readViewInitialized, "old.read_view_initialized ==> final.read_view_initialized")
            }
            // Ids are a monotonic counter: the front half's is fresh.
            #expect(r.id != old.id, "r.id is fresh")
            #expect(r.id > old.id, "r.id was never handed out before")

            // Beyond the seed: both halves' views translate their ranges as the full layout does.
            for va in sampleAddresses(r.range, c.layout.mappings, seed: c.extra) {
                #expect(r.memView?.memView.translate(va) == c.layout.view.translate(va), "front translates \(va.hex)")
            }
            for va in sampleAddresses(back.range, c.layout.mappings, seed: c.extra) {
                #expect(back.memView?.memView.translate(va) == c.layout.view.translate(va), "back translates \(va.hex)")
            }
        }
    }

    @Test("split at 0, at count, and of an empty range", arguments: [0, 1, 2])
    func splitEdges(which: Int) throws {
        let layout = Layout.make(
            baseKind: 1,
            specs: [
                MappingSpec(gapPages: 0, pages: 2, perms: 1, pathKind: 0),
                MappingSpec(gapPages: 0, pages: 1, perms: 3, pathKind: 1),
            ])
        let whole = layout.runs[0]
        let range = which == 2 ? try AddressRange(start: whole.start + page, count: 0) : whole
        for view in [VmIoMemView.read(layout.view), .write(layout.view)] {
            var me = try VmIoOwner(range: range, isFallible: true, isKernel: false, memView: view)
            let old = me.snapshot
            let n: UInt64 = which == 1 ? range.count : 0
            let r = try me.split(n).snapshot
            let back = me.snapshot
            #expect(r.range == (try AddressRange(start: range.start, count: n)))
            #expect(back.range == (try AddressRange(start: range.start + n, end: range.end)))
            #expect(r.inv && back.inv)
            #expect(r.memView?.isRead == view.isRead && back.memView?.isRead == view.isRead)
            #expect(back.id == old.id && r.id != old.id)
            if n == 0 { #expect(r.range.isEmpty && back.range == old.range) }
            if n == range.count { #expect(back.range.isEmpty && r.range == old.range) }
        }
    }

    // MARK: advance

    @Test("advance: every ensures-clause of the seed")
    func advanceEnsures() async {
        await propertyCheck(count: checks, input: Gens.viewedOwner) { c in
            var me = c.owner()
            let old = me.snapshot
            let n = c.cut
            let passed = try me.advance(n)
            let after = me.snapshot
            let oldInitialized = old.hasReadView && referenceReadable(old.range, c.layout.mappings)

            #expect(after.inv, "final(self).inv()")
            #expect(after.range.start == old.range.start + n, "final.range.start == old.range.start + nbytes")
            #expect(after.range.end == old.range.end, "final.range.end == old.range.end")
            #expect(after.isFallible == old.isFallible, "final.is_fallible == old.is_fallible")
            #expect(after.id == old.id, "final.id == old.id")
            #expect(after.isKernel == old.isKernel, "final.is_kernel == old.is_kernel")
            if old.hasReadView { #expect(after.hasReadView, "old ReadView ==> final ReadView") }
            if old.hasWriteView { #expect(after.hasWriteView, "old WriteView ==> final WriteView") }
            if oldInitialized {
                #expect(after.readViewInitialized, "old.read_view_initialized ==> final.read_view_initialized")
            }
            // For a read view: every remaining address translates as before (ends, every
            // mapping edge in the range and the byte either side of it, random addresses).
            if old.hasReadView {
                let view = try me.readView()
                for va in sampleAddresses(after.range, c.layout.mappings, seed: c.extra) {
                    #expect(view.translate(va) == c.layout.view.translate(va), "addr_transl(\(va.hex)) unchanged")
                    #expect(view.translate(va) != nil, "\(va.hex) still translates")
                }
            }
            // The returned view is the part advanced past: same kind, covers it, translates it as before.
            let passedRange = try AddressRange(start: old.range.start, count: n)
            #expect(passed.range == passedRange, "the part advanced past")
            #expect(passed.owner == old.id)
            #expect(passed.memView.isRead == old.hasReadView, "returned view has the old kind")
            #expect(referenceFirstGap(passedRange, passed.memView.memView.mappings) == nil, "returned view covers it")
            for va in sampleAddresses(passedRange, c.layout.mappings, seed: c.extra) {
                #expect(passed.memView.memView.translate(va) == c.layout.view.translate(va), "returned \(va.hex)")
            }
        }
    }

    @Test("advance by 0 and by count", arguments: [false, true])
    func advanceEdges(toEnd: Bool) throws {
        let layout = Layout.make(
            baseKind: 3,
            specs: [
                MappingSpec(gapPages: 0, pages: 1, perms: 7, pathKind: 3),
                MappingSpec(gapPages: 0, pages: 3, perms: 1, pathKind: 2),
            ])
        var me = try VmIoOwner(range: layout.runs[0], isFallible: false, isKernel: true, memView: .read(layout.view))
        let old = me.snapshot
        let n = toEnd ? old.range.count : 0
        let passed = try me.advance(n)
        let after = me.snapshot
        #expect(after.range.start == old.range.start + n && me.range.end == old.range.end)
        #expect(after.readViewInitialized && after.inv)
        #expect(passed.memView.isRead)
        if toEnd {
            #expect(after.range.isEmpty)
            #expect(after.range.end == 0xffff_ffff_ffff_f000, "the layout ends at the last page of the 64-bit space")
            #expect(passed.memView.memView.mappings == layout.mappings)
        } else {
            #expect(after == old, "advance(0) changes nothing")
            #expect(passed.memView.memView.mappings.isEmpty)
        }
    }

    // MARK: write_to_read

    @Test("writeToRead: every ensures-clause of the seed")
    func writeToReadEnsures() async {
        await propertyCheck(count: checks, input: Gens.owner(viewKinds: 1...1)) { c in
            var me = c.owner()
            let old = me.snapshot
            guard case .write(let mv) = old.memView else {
                Issue.record("generator gave no write view")
                return
            }
            try me.writeToRead()
            let after = me.snapshot
            #expect(after.inv, "final(self).inv()")
            #expect(after.range == old.range, "final.range == old.range")
            #expect(after.isFallible == old.isFallible, "final.is_fallible == old.is_fallible")
            #expect(after.isKernel == old.isKernel, "final.is_kernel == old.is_kernel")
            #expect(after.id == old.id, "final.id == old.id")
            #expect(after.hasReadView, "final.mem_view matches ReadView")
            #expect(try me.readView() == mv, "ReadView(rv) with rv == the old WriteView's mv")
            #expect(!after.hasWriteView && me.canRead == true && me.canWrite == false)
        }
    }

    // MARK: change_fallible

    @Test("changeFallible: every ensures-clause of the seed")
    func changeFallibleEnsures() async {
        await propertyCheck(count: checks, input: Gens.owner()) { c in
            var me = c.owner()
            let old = me.snapshot
            let f = !old.isFallible
            try me.changeFallible(to: f)
            let after = me.snapshot
            #expect(after.inv, "final(self).inv()")
            #expect(after.isFallible == f, "final.is_fallible == fallible")
            // Beyond the seed: nothing else changes.
            #expect(
                after.range == old.range && after.id == old.id && after.isKernel == old.isKernel
                    && after.memView == old.memView)
            try me.changeFallible(to: !f)
            #expect(me.snapshot == old, "changing back restores the owner")
        }
    }

    // MARK: inv after any sequence of operations

    /// A live owner in a test's pool (owners are linear: an array cannot hold them directly).
    final class Held {
        var owner: VmIoOwner
        init(_ owner: consuming VmIoOwner) { self.owner = owner }
    }

    @Test("inv holds after every operation of a random sequence; refused operations change nothing")
    func invAfterRandomOperations() async {
        let ops = zip(Gen.int(in: 0...5), Gen.int(in: 0...Int(Int32.max))).array(of: 1...25)
        await propertyCheck(count: 300, input: Gens.owner(), ops) { c, ops in
            let original = c.shape.range
            var pieces = [Held(c.owner())]
            for (op, arg) in ops {
                let i = arg % pieces.count
                let before = pieces[i].owner.snapshot
                let count = before.range.count
                let n = pick(arg / 7, 0, count + 2, edges: [count, count + 1])
                let f = arg % 2 == 0
                let cutError: VmIoError? =
                    before.memView == nil
                    ? .noView(owner: before.id)
                    : n > count ? .lengthExceedsRange(requested: n, available: count) : nil
                let expected: VmIoError? =
                    switch op {
                    case 0, 1, 2: cutError
                    case 3: before.hasWriteView ? nil : .notAWriteView(owner: before.id)
                    default: f == before.isFallible ? .fallibilityUnchanged(f) : nil
                    }
                do throws(VmIoError) {
                    switch op {
                    case 0: pieces.append(Held(try pieces[i].owner.split(n)))
                    case 1: try pieces[i].owner.advance(n)
                    case 2: pieces.append(Held(try pieces[i].owner.splitTail(at: n)))
                    case 3: try pieces[i].owner.writeToRead()
                    default: try pieces[i].owner.changeFallible(to: f)
                    }
                    #expect(
                        expected == nil,
                        "op \(op) n=\(n) on \(before) should have thrown \(String(describing: expected))")
                } catch {
                    #expect(error == expected, "op \(op) n=\(n) on \(before)")
                    #expect(pieces[i].owner.snapshot == before, "a refused operation leaves the owner as it was")
                }
                let snapshots = pieces.map { $0.owner.snapshot }
                for p in snapshots {
                    #expect(p.inv, "inv of \(p) after op \(op)")
                    #expect(original.contains(p.range), "\(p) stays inside \(original)")
                }
                #expect(Set(snapshots.map(\.id)).count == pieces.count, "ids stay unique")
                for a in pieces.indices {
                    for b in pieces.indices where a < b {
                        #expect(
                            !referenceIntersects(pieces[a].owner.range, pieces[b].owner.range),
                            "\(pieces[a].owner.snapshot) and \(pieces[b].owner.snapshot) do not intersect")
                    }
                }
            }
        }
    }
}
