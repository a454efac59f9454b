// The label property over real maps: for every address of every mapping we look at (both
// ends and random addresses inside), `MemView.label(of:)` is an address expression that
// resolves, in the same view, to that address. The maps are this test process's own and
// the regions fixture's (a split heap, anonymous memory, files sharing a basename, a file
// mapped at two places), and names that denote several regions are refused.

import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Checks the property on `samples` addresses a mapping (plus its first and last byte);
/// returns how many addresses were checked.
private func checkLabels(_ view: MemView, samples: Int, seed: UInt64) -> Int {
    var rng = SplitMix64(seed: seed)
    var checked = 0
    for m in view.mappings {
        let count = m.end - m.start
        var addresses = [m.start, m.end - 1]
        for _ in 0..<samples { addresses.append(m.start + rng.next() % count) }
        for a in addresses {
            guard let label = view.label(of: a) else {
                Issue.record("no label for \(a.hex) in \(m)")
                continue
            }
            let back = Result { try AddressExpression(parsing: label).resolve(in: view) }
            #expect((try? back.get()) == a, "label \(label) of \(a.hex) (\(m)) resolves to \(back)")
            checked += 1
        }
    }
    return checked
}

@Suite struct LabelTests {
    @Test(arguments: [1 as UInt64, 2, 3]) func labelsOfOurOwnMapsResolveBack(seed: UInt64) throws {
        let view = try ProcessMaps.read(pid: getpid())
        #expect(checkLabels(view, samples: 20, seed: seed) > view.mappings.count * 20)
    }

    @Test(arguments: [1 as UInt64, 2, 3]) func labelsOfTheRegionsFixtureResolveBack(seed: UInt64) throws {
        let fixture = try Fixtures.launch(.regions)
        defer { fixture.terminate() }
        let view = try ProcessMaps.read(pid: fixture.pid)
        #expect(checkLabels(view, samples: 50, seed: seed) > view.mappings.count * 50)

        // The heap's label counts from its first mapping, the one `[heap]` resolves to.
        let heaps = view.mappings.filter { $0.path == "[heap]" }
        try #require(heaps.count >= 2)
        let marker = fixture.address("heap_marker")
        #expect(view.label(of: marker) == "[heap]+\((marker - heaps[0].start).hex)")
        #expect(try AddressExpression(parsing: "[heap]").resolve(in: view) == heaps[0].start)
    }

    @Test func namesOfSeveralRegionsAreRefusedWithTheCandidates() throws {
        let fixture = try Fixtures.launch(.regions)
        defer { fixture.terminate() }
        let view = try ProcessMaps.read(pid: fixture.pid)
        let one = try #require(fixture.facts["same_one"]?.last), two = try #require(fixture.facts["same_two"]?.last)
        #expect(view.regions(named: "same.bin").map(\.path).sorted() == [one, two].sorted())
        #expect(throws: VmIoError.self) { try AddressExpression(parsing: "same.bin").resolve(in: view) }
        do {
            _ = try view.regionStart(named: "same.bin")
            Issue.record("same.bin resolved")
        } catch {
            guard case .ambiguousRegion(let name, let candidates) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(name == "same.bin" && candidates.count == 2)
            #expect(
                candidates.contains { $0.hasPrefix(one + " at ") } && candidates.contains { $0.hasPrefix(two + " at ") }
            )
        }
        // Each full path is one region.
        #expect(try view.regionStart(named: one) == fixture.address("same_one"))
        // twice.bin: one path, two places, another file between.
        let twice = view.regions(named: "twice.bin")
        #expect(twice.map(\.start) == [fixture.number("twice", 0), fixture.number("twice", 1)])
        #expect(throws: VmIoError.self) { try view.regionStart(named: "twice.bin") }
        // A library's text, data and .bss are one region: its basename is one name.
        let libc = view.regions(named: "libc.so.6")
        #expect(libc.count == 1 && libc[0].mappings.count >= 3, "\(libc)")
    }
}
