// `vmio-ptrace maps`: text and --json, checked against /proc/PID/maps as the kernel prints it.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

@Suite struct MapsCLITests {
    /// Parses one text line of `maps` output: start, end, perms, path.
    private func parse(_ line: String) -> (start: UInt64, end: UInt64, perms: String, path: String)? {
        let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count >= 5 else { return nil }
        let bounds = fields[0].split(separator: "-")
        guard bounds.count == 2, let s = UInt64(bounds[0], radix: 16), let e = UInt64(bounds[1], radix: 16) else {
            return nil
        }
        return (s, e, String(fields[1]), fields.count > 5 ? fields[5].trimmingCharacters(in: .whitespaces) : "")
    }

    @Test func textListsEveryMappingOfTheHolder() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf"), edge = holder.address("edge")
        let guardPage = holder.address("guard"), ro = holder.address("ro"), code = holder.address("code")
        let result = try Tool.run("maps", holder.pidArg)
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.isEmpty)
        let parsed = result.lines.compactMap(parse)
        #expect(parsed.count == result.lines.count, "every line parses")
        let kernel = procMapsLines(holder.pid)
        #expect(parsed.count == kernel.count)
        for (mine, theirs) in zip(parsed, kernel) {
            #expect(
                mine.start == theirs.start && mine.end == theirs.end && mine.perms == theirs.perms
                    && mine.path == theirs.path, "\(mine) vs \(theirs)")
        }
        func line(containing address: UInt64) -> (start: UInt64, end: UInt64, perms: String, path: String)? {
            parsed.first { $0.start <= address && address < $0.end }
        }
        let bufLine = try #require(line(containing: buf))
        #expect(bufLine.perms == "rw-p")
        #expect(bufLine.start <= buf && buf + 65536 <= bufLine.end)
        #expect(line(containing: edge)?.perms == "rw-p")
        #expect(line(containing: edge + 4096) == nil, "the page after edge is a hole")
        let guardLine = try #require(line(containing: guardPage))
        #expect(guardLine.perms == "---p" && guardLine.start == guardPage && guardLine.end == guardPage + 4096)
        let roLine = try #require(line(containing: ro))
        #expect(roLine.perms == "r--p" && roLine.start == ro && roLine.end == ro + 4096)
        let codeLine = try #require(line(containing: code))
        #expect(codeLine.perms == "r-xp")
        #expect(codeLine.path.hasSuffix("/vmio-fixture-holder"))
    }

    @Test func jsonHasTheDocumentedShape() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf"), guardPage = holder.address("guard")
        let result = try Tool.run("maps", holder.pidArg, "--json")
        #expect(result.exited(0), "\(result)")
        let json = try #require(result.json, "stdout is one JSON object: \(result)")
        #expect(json["pid"] as? Int == Int(holder.pid))
        #expect(json["generation"] is Int)
        let mappings = try #require(json["mappings"] as? [[String: Any]])
        #expect(mappings.count == procMapsLines(holder.pid).count)
        func number(_ any: Any?) -> UInt64? { (any as? String).flatMap { UInt64($0.dropFirst(2), radix: 16) } }
        var previousEnd: UInt64 = 0
        for m in mappings {
            let start = try #require(number(m["start"])), end = try #require(number(m["end"]))
            #expect(start < end && start >= previousEnd, "sorted and disjoint")
            previousEnd = end
            #expect((m["size"] as? Int).map(UInt64.init) == end - start)
            for key in ["perms", "offset", "device", "path"] { #expect(m[key] is String, "\(key) in \(m)") }
            #expect(m["inode"] is Int)
            #expect(m["deleted"] is Bool)
        }
        let bufMapping = try #require(
            mappings.first { m in
                guard let s = number(m["start"]), let e = number(m["end"]) else { return false }
                return s <= buf && buf + 65536 <= e
            })
        #expect(bufMapping["perms"] as? String == "rw-p")
        #expect(bufMapping["path"] as? String == "")
        let guardMapping = try #require(mappings.first { number($0["start"]) == guardPage })
        #expect(guardMapping["perms"] as? String == "---p")
        #expect(number(guardMapping["end"]) == guardPage + 4096)
        let code = holder.address("code")
        let codeMapping = try #require(
            mappings.first { m in
                guard let s = number(m["start"]), let e = number(m["end"]) else { return false }
                return s <= code && code < e
            })
        #expect(codeMapping["perms"] as? String == "r-xp")
        #expect((codeMapping["path"] as? String)?.hasSuffix("/vmio-fixture-holder") == true)
        #expect(codeMapping["deleted"] as? Bool == false)
    }

    @Test func manyMapsListsTenThousandMappings() throws {
        let many = try Fixtures.launch(.manyMaps)
        defer { many.terminate() }
        let base = many.address("base"), count = many.number("count")
        #expect(count == 10_000)
        let text = try Tool.run("maps", many.pidArg)
        #expect(text.exited(0), "\(text.status) \(text.stderr)")
        #expect(text.lines.count >= 10_000)
        let starts = Set(
            text.lines.compactMap(parse).filter { $0.end - $0.start == 4096 && $0.perms == "rw-p" }
                .map(\.start))
        let missing = (0..<count).filter { !starts.contains(base + $0 * 8192) }
        #expect(missing.isEmpty, "pages without their own maps line: \(missing.prefix(10))")

        let json = try Tool.run("maps", many.pidArg, "--json")
        #expect(json.exited(0))
        let mappings = try #require(json.json?["mappings"] as? [[String: Any]])
        #expect(mappings.count >= 10_000)
        #expect(mappings.count == text.lines.count)
        let last = try #require(mappings.first { $0["start"] as? String == hx(base + (count - 1) * 8192) })
        #expect(last["size"] as? Int == 4096 && last["perms"] as? String == "rw-p")
    }

    @Test func mapsOfSelfIsTheToolsOwnMaps() throws {
        let running = try Running(Tool.path, ["maps", "self", "--json"])
        let result = running.finish()
        #expect(result.exited(0), "\(result)")
        let json = try #require(result.json)
        #expect(json["pid"] as? Int == Int(running.pid))
        let mappings = try #require(json["mappings"] as? [[String: Any]])
        #expect(mappings.contains { ($0["path"] as? String)?.hasSuffix("/vmio-ptrace") == true })
        #expect(mappings.contains { $0["path"] as? String == "[stack]" })
    }
}
