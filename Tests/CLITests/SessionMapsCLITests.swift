// Issue 16, "Sessions on big targets": a session reads the target's maps again only when a
// command needs them — an address the view does not map, a fault, a command that uses the
// whole view (maps, dump, search) — not before every verb; and it never reads through a
// stale view silently.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct SessionMapsCLITests {
    /// The generation of the maps `maps --json` shows, from a session's answer.
    private func generation(_ answer: [String: Any]?) -> Int? {
        (answer?["result"] as? [String: Any])?["generation"] as? Int
    }

    @Test func readsDoNotReadTheMapsAgain() throws {
        try expectReadsReadNoMaps(offsets: (0..<5).map { UInt64(8 * $0) })
    }

    /// Reads 8 bytes at each of `offsets` in the holder's buf, each a new command on a running
    /// target, between two `maps`: the generation moves by one (the second `maps` uses the
    /// whole view and reads the maps once, as the target ran since), so no read read them.
    func expectReadsReadNoMaps(offsets: [UInt64]) throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let session = try Conversation(Tool.path, ["session", holder.pidArg, "-", "--json"])
        defer { session.waitExit() }
        try session.send("maps")
        let before = try #require(generation(session.nextObject()))
        for offset in offsets {
            try session.send("read \(hx(buf + offset)) 8 --format u64")
            #expect(session.nextObject()?["ok"] as? Bool == true)
        }
        try session.send("maps")
        #expect(generation(session.nextObject()) == before + 1, "\(offsets.count) reads inside the view read no maps")
        session.closeInput()
    }

    @Test func aMappingMadeSinceIsFoundAndReadInFull() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let edge = holder.address("edge")
        let session = try Conversation(Tool.path, ["session", holder.pidArg, "-", "--json"])
        defer { session.waitExit() }
        try session.send("read \(hx(edge)) 8")
        #expect(session.nextObject()?["ok"] as? Bool == true)
        #expect(try holder.send("map-after-edge") == "ok")
        // The view the session holds ends at edge + 4096: the read meets its gap, reads the
        // maps again and goes on through the new page.
        try session.send("read \(hx(edge)) 8192 --format raw")
        let whole = try #require(session.nextObject())
        #expect(whole["ok"] as? Bool == true, "\(whole)")
        let result = try #require(whole["result"] as? [String: Any])
        #expect(result["moved"] as? Int == 8192 && (result["holes"] as? [Any])?.isEmpty == true, "\(result)")
        session.closeInput()
    }

    @Test func anAddressOutsideTheViewReadsTheMapsAgain() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let edge = holder.address("edge")
        let session = try Conversation(Tool.path, ["session", holder.pidArg, "-", "--json"])
        defer { session.waitExit() }
        try session.send("read \(hx(edge)) 8")
        #expect(session.nextObject()?["ok"] as? Bool == true)
        #expect(try holder.send("map-after-edge") == "ok")
        try session.send("read \(hx(edge + 4096)) 8 --format u64")
        let answer = try #require(session.nextObject())
        #expect(answer["ok"] as? Bool == true, "\(answer)")
        let values = (answer["result"] as? [String: Any])?["values"] as? [NSNumber]
        #expect(values?.map(\.uint64Value) == [0xcdcd_cdcd_cdcd_cdcd], "\(answer)")
        try session.send("write \(hx(edge + 4096)) --u8 1 --verify")
        #expect(session.nextObject()?["ok"] as? Bool == true)
        session.closeInput()
    }

    @Test func memoryUnmappedSinceIsAFaultNotAStaleRead() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let session = try Conversation(Tool.path, ["session", holder.pidArg, "-", "--json", "--keep-going"])
        defer { session.waitExit() }
        try session.send("read \(hx(buf)) 8")
        #expect(session.nextObject()?["ok"] as? Bool == true)
        #expect(try holder.send("unmap-buf") == "ok")
        // The session's view still maps buf: the read faults, the maps are read again, and
        // the fault is reported at buf with nothing moved.
        try session.send("read \(hx(buf)) 8")
        let answer = try #require(session.nextObject())
        #expect(answer["ok"] as? Bool == false && answer["status"] as? Int == 2, "\(answer)")
        #expect((answer["error"] as? String)?.contains(hx(buf)) == true, "\(answer)")
        try session.send("maps")
        let maps = try #require((session.nextObject()?["result"] as? [String: Any])?["mappings"] as? [[String: Any]])
        let starts = maps.compactMap { ($0["start"] as? String).flatMap { UInt64($0.dropFirst(2), radix: 16) } }
        let ends = maps.compactMap { ($0["end"] as? String).flatMap { UInt64($0.dropFirst(2), radix: 16) } }
        #expect(!zip(starts, ends).contains { $0.0 <= buf && buf < $0.1 }, "buf is gone from the maps")
        session.closeInput()
    }

    /// The u64 values of a read's answer.
    private func values(_ answer: [String: Any]) -> [UInt64]? {
        ((answer["result"] as? [String: Any])?["values"] as? [NSNumber])?.map(\.uint64Value)
    }

    @Test func readsInsideTheViewReadNoMapsWhateverTheirNumber() throws {
        // Every page of buf, and back: 64 reads.
        let offsets: [UInt64] = (0..<64).map { (i: Int) -> UInt64 in UInt64(4096 * (i % 16) + 8 * (i / 16)) }
        try expectReadsReadNoMaps(offsets: offsets)
    }

    @Test func afterContAMappingMadeSinceIsFound() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let edge = holder.address("edge")
        let session = try Conversation(Tool.path, ["session", holder.pidArg, "-", "--json"])
        defer { session.waitExit() }
        try session.send("stop")
        #expect(session.nextObject()?["ok"] as? Bool == true)
        try session.send("read \(hx(edge)) 8")
        #expect(session.nextObject()?["ok"] as? Bool == true)
        try session.send("cont")
        #expect(session.nextObject()?["ok"] as? Bool == true)
        // The target ran since the session read its maps (while it held it stopped).
        #expect(try holder.send("map-after-edge") == "ok")
        try session.send("read \(hx(edge + 4096)) 8 --format u64")
        let answer = try #require(session.nextObject())
        #expect(answer["ok"] as? Bool == true, "\(answer)")
        #expect(values(answer) == [0xcdcd_cdcd_cdcd_cdcd], "\(answer)")
        session.closeInput()
    }

    @Test func afterWaitAMappingMadeMeanwhileIsFound() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let edge = holder.address("edge")
        let session = try Conversation(Tool.path, ["session", holder.pidArg, "-", "--json"])
        defer { session.waitExit() }
        // The breakpoint holds every thread from then on (between waits); `maps` reads the maps
        // of the held target, which cannot change while it is held.
        try session.send("break sym:vmio_fixture_answer")
        #expect(session.nextObject(timeout: 20)?["ok"] as? Bool == true)
        try session.send("maps")
        #expect(session.nextObject()?["ok"] as? Bool == true)
        // The wait lets every thread run: the holder maps the page, then calls the function.
        try session.send("let hit = wait --timeout 20")
        #expect(try holder.send("map-after-edge", timeout: 20) == "ok")
        try holder.write("answer")
        let waited = try #require(session.nextObject(timeout: 20))
        #expect(waited["ok"] as? Bool == true, "\(waited)")
        try session.send("read \(hx(edge + 4096)) 8 --format u64")
        let answer = try #require(session.nextObject())
        #expect(answer["ok"] as? Bool == true, "\(answer)")
        #expect(values(answer) == [0xcdcd_cdcd_cdcd_cdcd], "\(answer)")
        session.closeInput()
    }

    @Test func aFileTheViewDoesNotKnowReadsTheMapsAgain() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        // A name without a dash (a dash would be a minus in an expression).
        let name = "vmiolate\(getpid())x\(holder.pid).bin"
        let file = NSTemporaryDirectory() + "/" + name
        let contents = Data((0..<4096).map { UInt8(truncatingIfNeeded: 0x11 * ($0 % 8 + 1)) })
        try contents.write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        let session = try Conversation(Tool.path, ["session", holder.pidArg, "-", "--json"])
        defer { session.waitExit() }
        try session.send("maps")
        let before = try #require(generation(session.nextObject()))
        let mapped = try holder.send("map-file \(file)")
        let address = try #require(
            mapped.hasPrefix("ok 0x") ? UInt64(mapped.dropFirst(5), radix: 16) : nil, "\(mapped)")
        try session.send("read \(name)+8 8 --format u64")
        let answer = try #require(session.nextObject())
        #expect(answer["ok"] as? Bool == true, "\(answer)")
        #expect(values(answer) == [0x8877_6655_4433_2211], "\(answer)")
        #expect((answer["result"] as? [String: Any])?["address"] as? String == hx(address + 8), "\(answer)")
        // One read of the maps for the name, none more: the view holds the name now.
        try session.send("read \(name) 8 --format u64")
        #expect(session.nextObject()?["ok"] as? Bool == true)
        try session.send("maps")
        #expect(generation(session.nextObject()) == before + 2, "the unknown name read the maps once")
        session.closeInput()
    }
}
