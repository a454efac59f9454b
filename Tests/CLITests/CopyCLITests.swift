// `vmio-ptrace copy`: between two processes and within one, --json, faults with exact
// counts, and --skip-faults stepping over each hole.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

@Suite struct CopyCLITests {
    @Test func betweenTwoHolders() throws {
        let a = try Fixtures.launch(.holder), b = try Fixtures.launch(.holder)
        let aBuf = a.address("buf"), bBuf = b.address("buf")
        // Make the source distinct from what the destination already holds.
        #expect(try Tool.run("write", a.pidArg, hx(aBuf + 0x2000), "--string", "from A, with love").exited(0))
        let source = try a.get(aBuf, 0x3000)
        let result = try Tool.run("copy", "\(a.pid):\(hx(aBuf))", "\(b.pid):\(hx(bBuf + 0x4000))", "0x3000")
        #expect(result.exited(0), "\(result)")
        #expect(result.lines == ["copied 12288 bytes from \(a.pid):\(hx(aBuf)) to \(b.pid):\(hx(bBuf + 0x4000))"])
        #expect(result.stderr.isEmpty)
        #expect(try b.get(bBuf + 0x4000, 0x3000) == source)
        #expect(try b.get(bBuf + 0x4000 + 0x2000, 17) == Array("from A, with love".utf8))
        // Bytes around the destination range are untouched.
        #expect(try b.get(bBuf + 0x3fff, 1) == [holderPattern(0x3fff)])
        #expect(try b.get(bBuf + 0x7000, 1) == [holderPattern(0x7000)])
        // And the source is unchanged.
        #expect(try a.get(aBuf, 0x3000) == source)
    }

    @Test func withRegionExpressionsAndJson() throws {
        let a = try Fixtures.launch(.holder), b = try Fixtures.launch(.holder)
        let aBuf = a.address("buf"), bBuf = b.address("buf")
        let result = try Tool.run("copy", "\(a.pid):\(hx(aBuf + 0x100))", "\(b.pid):\(bBuf + 0x9000)", "16", "--json")
        #expect(result.exited(0), "\(result)")
        let json = try #require(result.json)
        #expect(json["source"] as? String == "\(a.pid):\(hx(aBuf + 0x100))")
        #expect(json["destination"] as? String == "\(b.pid):\(hx(bBuf + 0x9000))")
        #expect(json["requested"] as? Int == 16 && json["moved"] as? Int == 16)
        #expect(json["complete"] as? Bool == true)
        #expect((json["holes"] as? [Any])?.isEmpty == true)
        #expect(json["stop"] is NSNull)
        #expect(try b.get(bBuf + 0x9000, 16) == Array("VMIO-MARKER-0001".utf8))
        // The destination given as a region expression.
        let heap = try #require(procMapsLines(b.pid).first { $0.path == "[heap]" })
        let heapCopy = try Tool.run("copy", "\(a.pid):\(hx(aBuf + 0x300))", "\(b.pid):[heap]+0x40", "12")
        #expect(heapCopy.exited(0), "\(heapCopy)")
        #expect(try b.get(heap.start + 0x40, 12) == Array("hello, vmio".utf8) + [0])
    }

    @Test func withinOneProcessAndWithStop() throws {
        let a = try Fixtures.launch(.holder)
        let buf = a.address("buf")
        let result = try Tool.run("copy", "\(a.pid):\(hx(buf + 0x200))", "\(a.pid):\(hx(buf + 0x8000))", "8", "--stop")
        #expect(result.exited(0), "\(result)")
        #expect(
            try Tool.run("read", a.pidArg, hx(buf + 0x8000), "8", "--format", "u64").lines == ["1234605616436508552"])
        #expect(isFreeRunning(a.pid))
        #expect(try a.send("ping") == "pong")
    }

    @Test func fromTheEdgeIntoAHole() throws {
        let a = try Fixtures.launch(.holder), b = try Fixtures.launch(.holder)
        let edge = a.address("edge"), bBuf = b.address("buf")
        let result = try Tool.run("copy", "\(a.pid):\(hx(edge + 4000))", "\(b.pid):\(hx(bBuf))", "200")
        #expect(result.exited(2), "\(result)")
        #expect(result.stderrLines.count == 1)
        let partial = try #require(PartialLine(result.stderr), "\(result.stderr)")
        #expect(partial.moved == 96 && partial.requested == 200)
        #expect(partial.faultAddress == edge + 4096)
        #expect(result.stdoutText.contains("96 of 200"))
        // Exactly 96 bytes landed; the rest of the destination is as it was.
        #expect(try b.get(bBuf, 96) == [UInt8](repeating: 0xab, count: 96))
        #expect(try b.get(bBuf + 96, 104) == (96..<200).map(holderPattern))

        let json = try #require(
            try Tool.run("copy", "\(a.pid):\(hx(edge + 4000))", "\(b.pid):\(hx(bBuf))", "200", "--json").json)
        #expect(json["moved"] as? Int == 96 && json["complete"] as? Bool == false)
        let stop = try #require(json["stop"] as? [String: Any])
        #expect(stop["fault_address"] as? String == hx(edge + 4096))
        #expect(stop["side"] as? String == "source")
    }

    @Test func fromTheGuardPageMovesNothing() throws {
        let a = try Fixtures.launch(.holder)
        let guardPage = a.address("guard"), buf = a.address("buf")
        let result = try Tool.run("copy", "\(a.pid):\(hx(guardPage))", "\(a.pid):\(hx(buf))", "64")
        #expect(result.exited(2), "\(result)")
        #expect(PartialLine(result.stderr)?.moved == 0)
        #expect(PartialLine(result.stderr)?.faultAddress == guardPage)
        #expect(try a.get(buf, 64) == (0..<64).map(holderPattern))
    }

    /// Issue 12, bug 12: a copy into a mapping the destination cannot write is refused as
    /// `write` refuses it — the same check, message and exit status (3), nothing written —
    /// unless --force, which writes through /proc/PID/mem. (It was a partial copy of 0 bytes,
    /// exit 2, at the destination; 9c8067e pinned that, and this test replaces it.)
    @Test func intoAReadOnlyDestinationIsRefusedAsAWriteIs() throws {
        let a = try Fixtures.launch(.holder)
        let ro = a.address("ro"), buf = a.address("buf")
        let write = try Tool.run("write", a.pidArg, hx(ro), "--hex", "00")
        #expect(write.exited(3), "\(write)")
        let result = try Tool.run("copy", "\(a.pid):\(hx(buf))", "\(a.pid):\(hx(ro))", "64")
        #expect(result.exited(3), "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.stderrLines == write.stderrLines, "the same message as write's: \(result.stderr)")
        #expect(
            result.stderr.contains("cannot write; --force writes through /proc/\(a.pid)/mem"), "\(result.stderr)")
        #expect(try a.get(ro, 64) == [UInt8](repeating: 0x5a, count: 64), "nothing written")
        let json = try Tool.run("copy", "\(a.pid):\(hx(buf))", "\(a.pid):\(hx(ro))", "64", "--json")
        #expect(json.exited(3) && json.json?["status"] as? Int == 3, "\(json)")

        let forced = try Tool.run("copy", "\(a.pid):\(hx(buf))", "\(a.pid):\(hx(ro))", "64", "--force")
        #expect(forced.exited(0), "\(forced)")
        #expect(try a.get(ro, 64) == (0..<64).map(holderPattern), "written through /proc/PID/mem")
        #expect(procMapsLines(a.pid).first { $0.contains(ro) }?.perms == "r--p", "still read-only")
    }

    @Test func skipFaultsReportsEachHoleAndCopiesWhatFollows() throws {
        let many = try Fixtures.launch(.manyMaps), b = try Fixtures.launch(.holder)
        let base = many.address("base"), bBuf = b.address("buf")
        // Pages 0…4 of many-maps with the 4 holes between them: 9 pages of range.
        let length = UInt64(4 * 8192 + 4096)
        let result = try Tool.run(
            "copy", "\(many.pid):\(hx(base))", "\(b.pid):\(hx(bBuf))", String(length), "--skip-faults")
        #expect(result.exited(2), "\(result)")
        let holeLines = result.lines.filter { $0.hasPrefix("hole:") }
        #expect(
            holeLines
                == (0..<4).map { k in
                    let at = base + 4096 + UInt64(k) * 8192
                    return "hole: 4096 bytes at \(hx(at)) (page fault at \(hx(at)))"
                })
        #expect(result.stderr.contains("\(5 * 4096) of \(length) bytes moved"), "\(result.stderr)")
        #expect(result.stderr.contains("4 holes skipped (16384 bytes)"))
        for k in 0..<5 {
            let page = try b.get(bBuf + UInt64(k) * 8192, 4096)
            #expect(page[0..<8] == [UInt8(k), 0, 0, 0, 0, 0, 0, 0][...], "page \(k)")
            #expect(page[8...].allSatisfy { $0 == UInt8(k) }, "page \(k)")
        }
        for k in 0..<4 {
            // The destination keeps its own bytes where the source had holes.
            let offset = 4096 + k * 8192
            #expect(try b.get(bBuf + UInt64(offset), 4096) == (offset..<(offset + 4096)).map(holderPattern))
        }
        let json = try #require(
            try Tool.run(
                "copy", "\(many.pid):\(hx(base))", "\(b.pid):\(hx(bBuf))", String(length),
                "--skip-faults", "--json"
            ).json)
        #expect(json["moved"] as? Int == 5 * 4096)
        #expect(json["stop"] is NSNull)
        let holes = try #require(json["holes"] as? [[String: Any]])
        #expect(holes.map { $0["address"] as? String } == (0..<4).map { hx(base + 4096 + UInt64($0) * 8192) })
        #expect(holes.allSatisfy { $0["length"] as? Int == 4096 })
    }

    @Test func skipFaultsFromTheEdge() throws {
        let a = try Fixtures.launch(.holder), b = try Fixtures.launch(.holder)
        let edge = a.address("edge"), bBuf = b.address("buf")
        let result = try Tool.run(
            "copy", "\(a.pid):\(hx(edge + 4000))", "\(b.pid):\(hx(bBuf))", "200", "--skip-faults", "--json")
        #expect(result.exited(2), "\(result)")
        let json = try #require(result.json)
        #expect(json["moved"] as? Int == 96)
        let holes = try #require(json["holes"] as? [[String: Any]])
        #expect(holes.count == 1)
        #expect(holes.first?["address"] as? String == hx(edge + 4096) && holes.first?["length"] as? Int == 104)
        #expect(try b.get(bBuf, 96) == [UInt8](repeating: 0xab, count: 96))
        #expect(try b.get(bBuf + 96, 104) == (96..<200).map(holderPattern))
    }

    @Test func destinationOutsideEveryMappingIsBadInput() throws {
        let a = try Fixtures.launch(.holder)
        let buf = a.address("buf"), edge = a.address("edge")
        let result = try Tool.run("copy", "\(a.pid):\(hx(buf))", "\(a.pid):\(hx(edge + 4000))", "200")
        #expect(result.exited(1), "\(result)")
        #expect(result.stderrLines.count == 1 && result.stderr.contains(hx(edge + 4096)))
        #expect(try a.get(edge + 4000, 96) == [UInt8](repeating: 0xab, count: 96), "nothing written")
    }

    @Test func overlappingRangesInOneProcessAreRefused() throws {
        let exiter = try Fixtures.launch(.exiter, arguments: ["8"])
        defer { exiter.terminate() }
        let buf = exiter.address("buf")
        // Forward overlap larger than the 1 MiB bounce buffer: a chunked copy would read bytes
        // it had already overwritten, so the two owners' ranges must not intersect.
        let result = try Tool.run("copy", "\(exiter.pid):\(hx(buf))", "\(exiter.pid):\(hx(buf + 8))", "4M")
        #expect(result.exited(1), "\(result)")
        #expect(result.stderrLines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("overlap in pid \(exiter.pid)"), "\(result.stderr)")
        for word: UInt64 in [0, 1, 2, 1 << 17, 1 << 19] {
            let r = try Tool.run("read", exiter.pidArg, hx(buf + 8 * word), "8", "--format", "u64")
            #expect(r.lines == [String(word)], "word \(word) unchanged")
        }
        // Touching but not overlapping is fine.
        let touching = try Tool.run("copy", "\(exiter.pid):\(hx(buf))", "\(exiter.pid):\(hx(buf + 4096))", "4096")
        #expect(touching.exited(0), "\(touching)")
        #expect(try Tool.run("read", exiter.pidArg, hx(buf + 4096 + 8), "8", "--format", "u64").lines == ["1"])
    }

    @Test func zeroLengthCopyMovesNothing() throws {
        let a = try Fixtures.launch(.holder)
        let buf = a.address("buf")
        let result = try Tool.run("copy", "\(a.pid):\(hx(buf))", "\(a.pid):\(hx(buf + 0x8000))", "0", "--json")
        #expect(result.exited(0), "\(result)")
        #expect(result.json?["moved"] as? Int == 0 && result.json?["complete"] as? Bool == true)
        #expect(try a.get(buf + 0x8000, 16) == (0x8000..<0x8010).map(holderPattern))
    }
}
