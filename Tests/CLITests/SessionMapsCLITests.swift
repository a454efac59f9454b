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
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let session = try Conversation(Tool.path, ["session", holder.pidArg, "-", "--json"])
        defer { session.waitExit() }
        try session.send("maps")
        let before = try #require(generation(session.nextObject()))
        for i in 0..<5 {
            try session.send("read \(hx(buf + UInt64(8 * i))) 8 --format u64")
            #expect(session.nextObject()?["ok"] as? Bool == true)
        }
        // `maps` uses the whole view: it reads the maps once, as the target ran since.
        try session.send("maps")
        #expect(generation(session.nextObject()) == before + 1, "five reads read no maps")
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
}
