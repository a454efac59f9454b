import PropertyBased
import Testing

@testable import VmIO

// Concrete cases of the seed's inclusive `overlaps(withRange:)`, of `disjoint` with shared
// mappings, and `paramsEqual`. The properties against independent references are in
// InvariantTests.swift.

/// An owner with no view over any range (no view: any range is allowed).
private func bare(_ range: AddressRange, fallible: Bool = true) -> VmIoOwner {
    try! VmIoOwner(range: range, isFallible: fallible, isKernel: false, memView: nil)
}

@Suite("overlaps, disjoint, paramsEqual")
struct OverlapTests {

    @Test("touching ranges and empty ranges at either end overlap; one byte apart does not")
    func overlapsTouchingAndEmpty() async {
        await propertyCheck(count: 500, input: Gens.anyRange, Gen.uint64(in: 0...0x2000)) { a, k in
            let owner = bare(a)
            // [end, end + k): touches the end.
            if !a.end.addingReportingOverflow(k).overflow {
                #expect(owner.overlaps(withRange: try AddressRange(start: a.end, count: k)), "touching at the end")
            }
            // [start - k, start): touches the start.
            if a.start >= k {
                #expect(
                    owner.overlaps(withRange: try AddressRange(start: a.start - k, end: a.start)),
                    "touching at the start")
            }
            #expect(owner.overlaps(withRange: try AddressRange(start: a.start, count: 0)), "empty range at the start")
            #expect(owner.overlaps(withRange: try AddressRange(start: a.end, count: 0)), "empty range at the end")
            if a.end < .max {
                #expect(
                    !owner.overlaps(withRange: try AddressRange(start: a.end + 1, count: k)), "one byte past the end")
            }
            if a.start >= 1 + k {
                #expect(
                    !owner.overlaps(withRange: try AddressRange(start: a.start - 1 - k, end: a.start - 1)),
                    "one byte before")
            }
            // An empty owner overlaps itself and a range it touches.
            let empty = bare(try AddressRange(start: a.start, count: 0))
            #expect(empty.overlaps(withRange: a) == true, "an empty owner at a range's start")
        }
    }

    @Test("concrete cases of the inclusive test")
    func overlapsConcrete() throws {
        let owner = bare(try AddressRange(start: 0x1000, end: 0x2000))
        let yes: [(Address, Address)] = [
            (0x2000, 0x3000), (0x0, 0x1000), (0x1000, 0x1000), (0x2000, 0x2000), (0x1800, 0x1801), (0, .max),
        ]
        let no: [(Address, Address)] = [(0x2001, 0x3000), (0x0, 0xfff), (0x2001, 0x2001), (0xfff, 0xfff)]
        for (s, e) in yes {
            #expect(owner.overlaps(withRange: try AddressRange(start: s, end: e)), "\(s.hex)-\(e.hex)")
        }
        for (s, e) in no {
            #expect(!owner.overlaps(withRange: try AddressRange(start: s, end: e)), "\(s.hex)-\(e.hex)")
        }
        // The registry's half-open test differs exactly on touching ranges.
        #expect(!owner.range.intersects(try AddressRange(start: 0x2000, end: 0x3000)))
    }

    @Test("a shared mapping makes owners not disjoint even when their ranges are far apart")
    func sharedMappingFarApart() throws {
        let big = try AddressRange(start: 0x10_0000, count: 0x100_0000)
        let view = try MemView(mappings: [Mapping(range: big, permissions: .readWrite, path: "[heap]")])
        let lo = try AddressRange(start: big.start, count: 0x10)
        let hi = try AddressRange(start: big.end - 0x10, count: 0x10)
        #expect(bare(lo).overlaps(withRange: hi) == false, "the ranges are far apart")
        for (va, vb) in [
            (VmIoMemView.read(view), VmIoMemView.read(view)), (.write(view), .write(view)), (.read(view), .write(view)),
            (.write(view), .read(view)),
        ] {
            let a = try VmIoOwner(range: lo, isFallible: true, isKernel: false, memView: va)
            let b = try VmIoOwner(range: hi, isFallible: true, isKernel: false, memView: vb)
            #expect(!a.disjoint(b) && !b.disjoint(a))
            #expect(a.overlaps(b) && b.overlaps(a))
        }
        // Without a view on either side only the ranges count.
        let a = try VmIoOwner(range: lo, isFallible: true, isKernel: false, memView: .read(view))
        let b = try VmIoOwner(range: hi, isFallible: true, isKernel: false, memView: nil)
        #expect(a.disjoint(b) && b.disjoint(a) && !a.overlaps(b))
        #expect(bare(lo).disjoint(bare(hi)) == true)
        // Two separate mappings, far apart: disjoint.
        let two = try MemView(mappings: [
            Mapping(range: lo, permissions: .readWrite), Mapping(range: hi, permissions: .readWrite),
        ])
        let c = try VmIoOwner(range: lo, isFallible: true, isKernel: false, memView: .read(two))
        let d = try VmIoOwner(range: hi, isFallible: true, isKernel: false, memView: .write(two))
        #expect(c.disjoint(d) && !c.overlaps(d))
        // Touching ranges are never disjoint (inclusive test).
        let e = try VmIoOwner(
            range: try AddressRange(start: lo.end, count: 0x10), isFallible: true, isKernel: false, memView: nil)
        #expect(bare(lo).disjoint(e) == false)
    }

    @Test("paramsEqual: same range and same fallibility")
    func paramsEqualProperty() async {
        await propertyCheck(count: 500, input: Gens.ownerPair) { p in
            let a = p.a.make()
            let b = p.b.make()
            #expect(a.paramsEqual(b) == (p.a.range == p.b.range && p.a.isFallible == p.b.isFallible))
            // Same range and fallibility, different id, kernel flag and view: still equal.
            let twin = try VmIoOwner(
                range: p.a.range, isFallible: p.a.isFallible, isKernel: !p.a.isKernel, memView: nil)
            #expect(a.paramsEqual(twin) && twin.paramsEqual(a))
            var flipped = p.a.make()
            try flipped.changeFallible(to: !p.a.isFallible)
            #expect(a.paramsEqual(flipped) == false)
        }
    }
}
