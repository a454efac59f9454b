import PropertyBased
import Testing

@testable import VmIO

// One property per ensures-clause of the seed's `split`, `advance`, `write_to_read` and
// `change_fallible`, each clause its own named #expect, over random owners, views and
// cut points (n = 0, n = count, mapping edges and empty ranges come up often).

private let checks = 400

@Suite("VmIoOwner contracts")
struct OwnerContractTests {

    // MARK: split

    @Test("split: every ensures-clause of the seed")
    func splitEnsures() async {
        await propertyCheck(count: checks, input: Gens.viewedOwner) { c in
            var me = c.owner
            let old = me
            let n = c.cut
            let r = try me.split(n)

            #expect(r.inv, "r.inv()")
            #expect(r.range.start == old.range.start, "r.range.start == old.range.start")
            #expect(r.range.end == old.range.start + n, "r.range.end == old.range.start + nbytes")
            #expect(r.isFallible == old.isFallible, "r.is_fallible == old.is_fallible")
            #expect(r.isKernel == old.isKernel, "r.is_kernel == old.is_kernel")
            #expect(r.memView != nil, "r.mem_view is Some")
            #expect(me.inv, "final(self).inv()")
            #expect(me.range.start == old.range.start + n, "final.range.start == old.range.start + nbytes")
            #expect(me.range.end == old.range.end, "final.range.end == old.range.end")
            #expect(me.isFallible == old.isFallible, "final.is_fallible == old.is_fallible")
            #expect(me.id == old.id, "final.id == old.id")
            #expect(me.isKernel == old.isKernel, "final.is_kernel == old.is_kernel")
            #expect(me.memView != nil, "final.mem_view is Some")
            if old.hasReadView {
                #expect(r.hasReadView, "old ReadView ==> r ReadView")
                #expect(me.hasReadView, "old ReadView ==> final ReadView")
            }
            if old.hasWriteView {
                #expect(r.hasWriteView, "old WriteView ==> r WriteView")
                #expect(me.hasWriteView, "old WriteView ==> final WriteView")
            }
            if old.readViewInitialized {
                #expect(r.readViewInitialized, "old.read_view_initialized ==> r.read_view_initialized")
                #expect(me.readViewInitialized, "old.read_view_initialized ==> final.read_view_initialized")
            }
            // Ids are a monotonic counter: the front half's is fresh.
            #expect(r.id != old.id, "r.id is fresh")
            #expect(r.id > old.id, "r.id was never handed out before")

            // Beyond the seed: both halves' views translate their ranges exactly as the original.
            for va in sampleAddresses(r.range, c.layout.mappings, seed: c.extra) {
                #expect(
                    r.memView?.memView.translate(va) == old.memView?.memView.translate(va), "front translates \(va.hex)"
                )
            }
            for va in sampleAddresses(me.range, c.layout.mappings, seed: c.extra) {
                #expect(
                    me.memView?.memView.translate(va) == old.memView?.memView.translate(va), "back translates \(va.hex)"
                )
            }
            #expect(throws: Never.self) { try r.checkInvariant() }
            #expect(throws: Never.self) { try me.checkInvariant() }
            #expect(VmIoOwner.splitPostcondition(old: old, front: r, back: me, n: n))
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
            let old = me
            let n: UInt64 = which == 1 ? range.count : 0
            let r = try me.split(n)
            #expect(r.range == (try AddressRange(start: range.start, count: n)))
            #expect(me.range == (try AddressRange(start: range.start + n, end: range.end)))
            #expect(r.inv && me.inv)
            #expect(r.memView?.isRead == view.isRead && me.memView?.isRead == view.isRead)
            #expect(me.id == old.id && r.id != old.id)
            if n == 0 { #expect(r.range.isEmpty && me.range == old.range) }
            if n == range.count { #expect(me.range.isEmpty && r.range == old.range) }
        }
    }

    // MARK: advance

    @Test("advance: every ensures-clause of the seed")
    func advanceEnsures() async {
        await propertyCheck(count: checks, input: Gens.viewedOwner) { c in
            var me = c.owner
            let old = me
            let n = c.cut
            let passed = try me.advance(n)

            #expect(me.inv, "final(self).inv()")
            #expect(me.range.start == old.range.start + n, "final.range.start == old.range.start + nbytes")
            #expect(me.range.end == old.range.end, "final.range.end == old.range.end")
            #expect(me.isFallible == old.isFallible, "final.is_fallible == old.is_fallible")
            #expect(me.id == old.id, "final.id == old.id")
            #expect(me.isKernel == old.isKernel, "final.is_kernel == old.is_kernel")
            if old.hasReadView { #expect(me.hasReadView, "old ReadView ==> final ReadView") }
            if old.hasWriteView { #expect(me.hasWriteView, "old WriteView ==> final WriteView") }
            if old.readViewInitialized {
                #expect(me.readViewInitialized, "old.read_view_initialized ==> final.read_view_initialized")
            }
            // For a read view: every remaining address translates as before (ends, every
            // mapping edge in the range and the byte either side of it, random addresses).
            if old.hasReadView {
                let before = try old.readView()
                let after = try me.readView()
                for va in sampleAddresses(me.range, c.layout.mappings, seed: c.extra) {
                    #expect(before.translate(va) == after.translate(va), "addr_transl(\(va.hex)) unchanged")
                    #expect(after.translate(va) != nil, "\(va.hex) still translates")
                    #expect(
                        after.translate(va) == c.layout.view.translate(va), "\(va.hex) lands where the full view says")
                }
            }
            // The returned view is the part advanced past: same kind, covers it, translates it as before.
            let passedRange = try AddressRange(start: old.range.start, count: n)
            #expect(passed.isRead == old.hasReadView, "returned view has the old kind")
            #expect(passed.memView.covers(passedRange), "returned view covers the part advanced past")
            for va in sampleAddresses(passedRange, c.layout.mappings, seed: c.extra) {
                #expect(
                    passed.memView.translate(va) == old.memView?.memView.translate(va),
                    "returned view translates \(va.hex)")
            }
            #expect(throws: Never.self) { try me.checkInvariant() }
            #expect(VmIoOwner.advancePostcondition(old: old, new: me, n: n))
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
        let old = me
        let n = toEnd ? old.range.count : 0
        let passed = try me.advance(n)
        #expect(me.range.start == old.range.start + n && me.range.end == old.range.end)
        #expect(me.readViewInitialized && me.inv)
        #expect(passed.isRead)
        if toEnd {
            #expect(me.range.isEmpty)
            #expect(me.range.end == 0xffff_ffff_ffff_f000, "the layout ends at the last page of the 64-bit space")
            #expect(passed.memView.mappings == layout.mappings)
        } else {
            #expect(me == old, "advance(0) changes nothing")
            #expect(passed.memView.mappings.isEmpty)
        }
    }

    // MARK: write_to_read

    @Test("writeToRead: every ensures-clause of the seed")
    func writeToReadEnsures() async {
        await propertyCheck(count: checks, input: Gens.owner(viewKinds: 1...1)) { c in
            var me = c.owner
            let old = me
            guard case .write(let mv) = old.memView else {
                Issue.record("generator gave no write view")
                return
            }
            try me.writeToRead()
            #expect(me.inv, "final(self).inv()")
            #expect(me.range == old.range, "final.range == old.range")
            #expect(me.isFallible == old.isFallible, "final.is_fallible == old.is_fallible")
            #expect(me.isKernel == old.isKernel, "final.is_kernel == old.is_kernel")
            #expect(me.id == old.id, "final.id == old.id")
            #expect(me.hasReadView, "final.mem_view matches ReadView")
            #expect(try me.readView() == mv, "ReadView(rv) with rv == the old WriteView's mv")
            #expect(!me.hasWriteView && me.canRead && !me.canWrite)
        }
    }

    // MARK: change_fallible

    @Test("changeFallible: every ensures-clause of the seed")
    func changeFallibleEnsures() async {
        await propertyCheck(count: checks, input: Gens.owner()) { c in
            var me = c.owner
            let old = me
            let f = !old.isFallible
            try me.changeFallible(to: f)
            #expect(me.inv, "final(self).inv()")
            #expect(me.isFallible == f, "final.is_fallible == fallible")
            // Beyond the seed: nothing else changes.
            #expect(
                me.range == old.range && me.id == old.id && me.isKernel == old.isKernel && me.memView == old.memView)
            try me.changeFallible(to: !f)
            #expect(me == old, "changing back restores the owner")
        }
    }

    // MARK: inv after any sequence of operations

    @Test("inv holds after every operation of a random sequence; refused operations change nothing")
    func invAfterRandomOperations() async {
        let ops = zip(Gen.int(in: 0...5), Gen.int(in: 0...Int(Int32.max))).array(of: 1...25)
        await propertyCheck(count: 300, input: Gens.owner(), ops) { c, ops in
            let original = c.owner.range
            var pieces = [c.owner]
            for (op, arg) in ops {
                let i = arg % pieces.count
                let before = pieces[i]
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
                    case 0: pieces.append(try pieces[i].split(n))
                    case 1: try pieces[i].advance(n)
                    case 2: try pieces[i].truncate(to: n)
                    case 3: try pieces[i].writeToRead()
                    default: try pieces[i].changeFallible(to: f)
                    }
                    #expect(
                        expected == nil,
                        "op \(op) n=\(n) on \(before) should have thrown \(String(describing: expected))")
                } catch {
                    #expect(error == expected, "op \(op) n=\(n) on \(before)")
                    #expect(pieces[i] == before, "a refused operation leaves the owner as it was")
                }
                for p in pieces {
                    #expect(p.inv, "inv of \(p) after op \(op)")
                    #expect(original.contains(p.range), "\(p) stays inside \(original)")
                }
                #expect(Set(pieces.map(\.id)).count == pieces.count, "ids stay unique")
                for a in pieces.indices {
                    for b in pieces.indices where a < b {
                        #expect(
                            !pieces[a].range.intersects(pieces[b].range),
                            "\(pieces[a]) and \(pieces[b]) do not intersect")
                    }
                }
            }
        }
    }
}
