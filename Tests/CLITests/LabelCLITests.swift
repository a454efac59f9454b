// Every label the tool prints is an ADDR that resolves back to the address it labels:
// search hits (a split heap, anonymous memory, files sharing a basename, a file mapped at
// two places) and backtrace frames, fed back to `read`. A name that denotes several
// separate regions is refused with the candidates listed, never resolved by a silent pick.

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

private func parseHex(_ text: String) -> UInt64? {
    text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : nil
}

/// The hits of `search PID --string TEXT --json`: address and label.
private func hits(_ pid: String, _ text: String) throws -> [(address: UInt64, label: String)] {
    let result = try Tool.run("search", pid, "--string", text, "--json")
    #expect(result.exited(0), "\(result)")
    let list = try #require(result.json?["hits"] as? [[String: Any]], "\(result)")
    return list.compactMap { hit in
        guard let address = (hit["address"] as? String).flatMap(parseHex), let label = hit["label"] as? String
        else { return nil }
        return (address, label)
    }
}

/// What `read PID LABEL LEN --json` resolves the label to.
private func resolved(_ pid: String, _ label: String) throws -> UInt64? {
    let result = try Tool.run("read", pid, label, "1", "--json")
    #expect(result.exited(0), "read \(label): \(result)")
    return (result.json?["address"] as? String).flatMap(parseHex)
}

@Suite struct LabelCLITests {
    /// The marker in the second of the heap's mappings: labelled from the first, as `[heap]`
    /// resolves, and the text line shows the same label.
    @Test func splitHeapLabelResolvesBack() throws {
        let fixture = try Fixtures.launch(.regions)
        defer { fixture.terminate() }
        let marker = fixture.address("heap_marker")
        let heaps = procMapsLines(fixture.pid).filter { $0.path == "[heap]" }
        try #require(heaps.count >= 2, "the heap is split: \(heaps)")
        let found = try #require(try hits(fixture.pidArg, "VMIO-HEAP-SECOND").first { $0.address == marker })
        #expect(found.label == "[heap]+\(hx(marker - heaps[0].start))", "\(found.label)")
        #expect(try resolved(fixture.pidArg, found.label) == marker)
        let read = try Tool.run("read", fixture.pidArg, found.label, "16", "--format", "str")
        #expect(read.exited(0) && read.lines == ["VMIO-HEAP-SECOND"], "\(read)")

        let text = try Tool.run("search", fixture.pidArg, "--string", "VMIO-HEAP-SECOND")
        #expect(text.lines.contains { $0.hasPrefix("\(hx(marker))  \(found.label)  (r--p ") }, "\(text)")
    }

    /// Anonymous memory has no name: the label is the mapping's start plus the offset.
    @Test func anonymousLabelResolvesBack() throws {
        let fixture = try Fixtures.launch(.regions)
        defer { fixture.terminate() }
        let marker = fixture.address("anon_marker")
        let found = try #require(try hits(fixture.pidArg, "VMIO-ANON-MARKER").first { $0.address == marker })
        let mapping = try #require(procMapsLines(fixture.pid).first { $0.contains(marker) })
        #expect(found.label == "\(hx(mapping.start))+\(hx(marker - mapping.start))")
        #expect(try resolved(fixture.pidArg, found.label) == marker)
    }

    /// Two files named `same.bin`: the basename is ambiguous (refused, both listed), so the
    /// labels use the full paths, which resolve back.
    @Test func sharedBasenameIsRefusedAndLabelsUseFullPaths() throws {
        let fixture = try Fixtures.launch(.regions)
        defer { fixture.terminate() }
        for (key, text) in [("same_one", "VMIO-SAME-ONE---"), ("same_two", "VMIO-SAME-TWO---")] {
            let start = fixture.address(key), path = try #require(fixture.facts[key]?.last)
            let found = try #require(try hits(fixture.pidArg, text).first { $0.address == start + 0x20 })
            #expect(found.label == "\(path)+0x20")
            #expect(try resolved(fixture.pidArg, found.label) == start + 0x20)
        }
        let ambiguous = try Tool.run("read", fixture.pidArg, "same.bin+0x20", "16")
        #expect(ambiguous.exited(1), "\(ambiguous)")
        #expect(ambiguous.stdout.isEmpty)
        #expect(ambiguous.stderr.contains("'same.bin' names 2 separate regions"), "\(ambiguous.stderr)")
        for key in ["same_one", "same_two"] {
            #expect(ambiguous.stderr.contains(try #require(fixture.facts[key]?.last)), "\(ambiguous.stderr)")
        }
    }

    /// One file mapped at two places with another file between: its name, even its full
    /// path, denotes two regions (refused), and each hit's label is its address form.
    @Test func fileMappedTwiceIsRefusedAndLabelledByAddress() throws {
        let fixture = try Fixtures.launch(.regions)
        defer { fixture.terminate() }
        let first = fixture.number("twice", 0), second = fixture.number("twice", 1)
        let path = try #require(fixture.facts["twice"]?.last)
        // (The marker's text is also in the fixture's own .rodata: keep the hits in twice.bin.)
        let found = try hits(fixture.pidArg, "VMIO-TWICE------").filter {
            [first + 0x20, second + 0x20].contains($0.address)
        }
        #expect(found.count == 2, "\(found)")
        for hit in found {
            let start = hit.address - 0x20
            #expect(hit.label == "\(hx(start))+0x20")
            #expect(try resolved(fixture.pidArg, hit.label) == hit.address)
        }
        for name in ["twice.bin", path] {
            let refused = try Tool.run("read", fixture.pidArg, name, "16")
            #expect(refused.exited(1), "\(refused)")
            #expect(refused.stderr.contains("names 2 separate regions"), "\(refused.stderr)")
            #expect(refused.stderr.contains(hx(first)) && refused.stderr.contains(hx(second)), "\(refused.stderr)")
        }
    }

    /// Every frame's label in a backtrace reads back as the frame's pc.
    @Test func backtraceLabelsResolveBack() throws {
        let fixture = try Fixtures.launch(.deepStack, arguments: ["deep", "2"])
        defer { fixture.terminate() }
        let result = try Tool.run("backtrace", fixture.pidArg, "--json")
        #expect(result.exited(0), "\(result)")
        let threads = try #require(result.json?["threads"] as? [[String: Any]])
        var checked = 0
        for thread in threads {
            for frame in thread["frames"] as? [[String: Any]] ?? [] {
                let pc = try #require((frame["pc"] as? String).flatMap(parseHex))
                let label = try #require(frame["label"] as? String, "\(frame)")
                #expect(try resolved(fixture.pidArg, label) == pc, "\(label)")
                checked += 1
            }
        }
        #expect(checked >= 10)
    }
}
