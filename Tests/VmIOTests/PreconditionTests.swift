import PropertyBased
import Testing

@testable import VmIO

// Every violated precondition is a typed error, never a trap and never a silent clamp,
// and a refused operation leaves the owner exactly as it was.

@Suite("Preconditions are typed errors")
struct PreconditionTests {

    @Test("split/advance/splitTail with n > count: lengthExceedsRange, owner unchanged")
    func lengthExceedsRange() async {
        await propertyCheck(count: 300, input: Gens.viewedOwner, Gen.uint64(in: 1...0x10000)) { c, extra in
            var me = c.owner()
            let before = me.snapshot
            let count = before.range.count
            let n = count + extra
            let expected = VmIoError.lengthExceedsRange(requested: n, available: count)
            #expect(throws: expected) { _ = try me.split(n) }
            #expect(me.snapshot == before)
            #expect(throws: expected) { try me.advance(n) }
            #expect(me.snapshot == before)
            #expect(throws: expected) { _ = try me.splitTail(at: n) }
            #expect(me.snapshot == before)
            #expect(throws: VmIoError.lengthExceedsRange(requested: .max, available: count)) { try me.advance(.max) }
        }
    }

    @Test("split/advance/splitTail without a view: noView")
    func noView() async {
        await propertyCheck(count: 200, input: Gens.owner(viewKinds: 2...2)) { c in
            var me = c.owner()
            let before = me.snapshot
            #expect(before.memView == nil && !before.readViewInitialized)
            #expect(me.canRead == false && me.canWrite == false)
            #expect(throws: VmIoError.noView(owner: before.id)) { _ = try me.split(0) }
            #expect(throws: VmIoError.noView(owner: before.id)) { try me.advance(0) }
            #expect(throws: VmIoError.noView(owner: before.id)) { _ = try me.splitTail(at: 0) }
            #expect(throws: VmIoError.notAWriteView(owner: before.id)) { try me.writeToRead() }
            #expect(throws: VmIoError.notAReadView(owner: before.id)) { _ = try me.readView() }
            #expect(me.snapshot == before)
        }
    }

    @Test("changeFallible to the same value: fallibilityUnchanged")
    func fallibilityUnchanged() async {
        await propertyCheck(count: 200, input: Gens.owner()) { c in
            var me = c.owner()
            let before = me.snapshot
            #expect(throws: VmIoError.fallibilityUnchanged(before.isFallible)) {
                try me.changeFallible(to: before.isFallible)
            }
            #expect(me.snapshot == before)
        }
    }

    @Test("writeToRead on a read view: notAWriteView; readView() on a write view: notAReadView")
    func wrongViewKind() async {
        await propertyCheck(count: 200, input: Gens.owner(viewKinds: 0...1)) { c in
            var me = c.owner()
            let before = me.snapshot
            let id = before.id
            if before.hasReadView {
                #expect(throws: VmIoError.notAWriteView(owner: id)) { try me.writeToRead() }
            } else {
                #expect(throws: VmIoError.notAReadView(owner: id)) { _ = try me.readView() }
                #expect(!before.readViewInitialized, "a write view is never read_view_initialized")
            }
            #expect(me.snapshot == before)
            // Readers and writers: the right view, and a remote (fallible, not kernel) owner.
            let remote = c.shape.isFallible && !c.shape.isKernel
            let reader = Result { () throws(VmIoError) in _ = try VmReader(remote: 1, owner: c.owner()) }
            let writer = Result { () throws(VmIoError) in _ = try VmWriter(remote: 1, owner: c.owner()) }
            switch (before.hasReadView, remote) {
            case (true, true):
                #expect(throws: Never.self) { try reader.get() }
                #expect(throws: VmIoError.self) { try writer.get() }
            case (false, true):
                #expect(throws: VmIoError.self) { try reader.get() }
                #expect(throws: Never.self) { try writer.get() }
            case (_, false):
                // Only the id is not known beforehand (each owner gets a fresh one).
                for result in [reader, writer] {
                    guard case .failure(let error) = result else {
                        Issue.record("a local owner made a remote cursor")
                        continue
                    }
                    if case .wrongOwnerKind(_, expected: .remote) = error { continue }
                    if case .notAReadView = error, !before.hasReadView { continue }
                    if case .notAWriteView = error, before.hasReadView { continue }
                    Issue.record("unexpected \(error)")
                }
            }
        }
    }

    @Test("owner kinds: remote cursors need fallible, non-kernel owners; local ones infallible, kernel, in the buffer")
    func ownerKinds() throws {
        let buffer = LocalBuffer(count: 64)
        /// What making a cursor of `o` throws, if anything.
        func refusal(_ o: consuming VmIoOwner, remote: Bool, write: Bool) -> VmIoError? {
            do throws(VmIoError) {
                switch (remote, write) {
                case (true, true): _ = try VmWriter(remote: 9, owner: o)
                case (true, false): _ = try VmReader(remote: 9, owner: o)
                case (false, true): _ = try VmWriter(local: buffer, owner: o)
                case (false, false): _ = try VmReader(local: buffer, owner: o)
                }
                return nil
            } catch {
                return error
            }
        }
        for (fallible, kernel) in [(true, false), (false, true), (true, true), (false, false)] {
            for write in [false, true] {
                for remote in [false, true] {
                    let o = try VmIoOwner(
                        range: buffer.range, isFallible: fallible, isKernel: kernel,
                        memView: write ? .write(buffer.memView) : .read(buffer.memView))
                    let id = o.id
                    let fits = remote ? fallible && !kernel : !fallible && kernel
                    #expect(
                        refusal(o, remote: remote, write: write)
                            == (fits ? nil : .wrongOwnerKind(owner: id, expected: remote ? .remote : .local)),
                        "remote \(remote), fallible \(fallible), kernel \(kernel), write \(write)")
                }
            }
        }
        // A local owner outside the buffer: refused, naming the buffer.
        let other = LocalBuffer(count: 8)
        for write in [false, true] {
            let o = other.makeOwner(write ? .write : .read)
            let id = o.id
            #expect(refusal(o, remote: false, write: write) == .outsideBuffer(owner: id, buffer: buffer.range))
        }
    }

    @Test("an owner over an uncovered range: rangeNotCovered naming the first gap address")
    func rangeNotCovered() async {
        let input = zip(Gens.layout, Gen.int(in: 0...Int(Int32.max)), Gen.int(in: 0...Int(Int32.max)), Gen.bool)
        await propertyCheck(count: 400, input: input) { layout, s, e, write in
            // Anywhere from two pages below the first mapping to two pages above the last.
            let lo = layout.mappings.first!.start &- min(layout.mappings.first!.start, 2 * page)
            let hi = min(layout.mappings.last!.end, UInt64.max - 2 * page) + 2 * page
            let start = pick(s, lo, hi, edges: layout.edges)
            let end = pick(e, start, hi, edges: layout.edges)
            let range = try AddressRange(start: start, end: end)
            let view: VmIoMemView = write ? .write(layout.view) : .read(layout.view)
            if let gap = referenceFirstGap(range, layout.mappings) {
                #expect(throws: VmIoError.rangeNotCovered(address: gap)) {
                    _ = try VmIoOwner(range: range, isFallible: true, isKernel: false, memView: view)
                }
                #expect(!layout.view.covers(range))
                #expect(layout.view.firstAddress(in: range) == gap)
            } else {
                let owner = try VmIoOwner(range: range, isFallible: true, isKernel: false, memView: view)
                #expect(owner.inv == true)
                #expect(layout.view.covers(range))
            }
            // Without a view, any range is fine.
            #expect(throws: Never.self) {
                _ = try VmIoOwner(range: range, isFallible: true, isKernel: false, memView: nil)
            }
        }
    }

    @Test("AddressRange: overflow and inverted ranges are errors, not traps")
    func addressRangeErrors() throws {
        #expect(throws: VmIoError.addressOverflow(base: 0xffff_ffff_ffff_ff00, length: 0x200)) {
            _ = try AddressRange(start: 0xffff_ffff_ffff_ff00, count: 0x200)
        }
        #expect(throws: VmIoError.invalidRange(start: 5, end: 4)) { _ = try AddressRange(start: 5, end: 4) }
        #expect(throws: VmIoError.addressOverflow(base: .max, length: 1)) { _ = try Address.max.adding(1) }
        let top = try AddressRange(start: 0xffff_ffff_ffff_ff00, count: 0xff)
        #expect(top.end == .max && top.count == 0xff)
        #expect(try AddressRange(start: .max, count: 0).isEmpty)
        // An inverted range reaching the owner (only constructible inside the module) is refused.
        let inverted = AddressRange(uncheckedStart: 0x2000, end: 0x1000)
        #expect(!inverted.isWellFormed)
        #expect(throws: VmIoError.invalidRange(start: 0x2000, end: 0x1000)) {
            _ = try VmIoOwner(range: inverted, isFallible: true, isKernel: false, memView: nil)
        }
    }

    @Test("AddressRange(start:count:) throws exactly when start + count overflows")
    func addressRangeOverflowProperty() async {
        await propertyCheck(count: 500, input: Gen.uint64(), Gen.uint64()) { start, count in
            let overflows = start.addingReportingOverflow(count).overflow
            do throws(VmIoError) {
                let r = try AddressRange(start: start, count: count)
                #expect(!overflows && r.start == start && r.count == count)
            } catch {
                #expect(overflows && error == .addressOverflow(base: start, length: count))
            }
        }
    }

    @Test("AddressRange.intersects is the half-open intersection; empty ranges intersect nothing")
    func intersectsProperty() async {
        await propertyCheck(count: 500, input: Gens.anyRange, Gens.anyRange) { a, b in
            #expect(a.intersects(b) == referenceIntersects(a, b))
            #expect(a.intersects(b) == b.intersects(a))
            #expect(a.clamped(to: b).isEmpty == !referenceIntersects(a, b))
        }
        let r = try! AddressRange(start: 0x1000, end: 0x2000)
        #expect(!r.intersects(try! AddressRange(start: 0x1800, count: 0)), "an empty range strictly inside")
        #expect(!r.intersects(try! AddressRange(start: 0x2000, count: 0x10)), "touching at the end")
        #expect(r.intersects(try! AddressRange(start: 0x1fff, count: 1)))
    }

    @Test("reader and writer preconditions: skip past the end, write more than avail")
    func cursorPreconditions() throws {
        let buffer = LocalBuffer(Array(0..<100))
        var reader = buffer.makeReader()
        #expect(throws: VmIoError.lengthExceedsRange(requested: 101, available: 100)) { try reader.skip(101) }
        #expect(reader.cursor == buffer.range.start)
        #expect(reader.remain == 100)
        var writer = LocalBuffer(count: 10).makeWriter()
        let bytes: [UInt8] = Array(repeating: 1, count: 11)
        let before = writer.cursor
        #expect(throws: VmIoError.lengthExceedsRange(requested: 11, available: 10)) {
            try bytes.withUnsafeBytes { _ = try writer.write($0, using: LocalOnlyBackend()) }
        }
        #expect(throws: VmIoError.lengthExceedsRange(requested: 11, available: 10)) {
            try writer.fillZeros(11, using: LocalOnlyBackend())
        }
        #expect(throws: VmIoError.lengthExceedsRange(requested: 11, available: 10)) { try writer.skip(11) }
        #expect(writer.cursor == before)
        #expect(writer.avail == 10)
        // local → local only through read(into:): a remote side is refused.
        var local = LocalBuffer(count: 4).makeWriter()
        let remoteView = try MemView(mappings: [
            Mapping(range: try AddressRange(start: 0x1000, count: 0x1000), permissions: .readWrite)
        ])
        var remote = try VmReader(
            remote: 7, owner: try .remote(try AddressRange(start: 0x1000, count: 8), view: .read(remoteView)))
        #expect(throws: VmIoError.addressSpaceMismatch(expected: .local, got: .remote(pid: 7))) {
            try remote.read(into: &local)
        }
        #expect(remote.remain == 8)
        #expect(local.avail == 4)
    }
}
