// `vmio-ptrace diff`, `scan` and `monitor` on the changer fixture, which changes known bytes
// on command: dump vs live and dump vs dump find exactly the ranges changed and nothing
// else, typed diffs decode, holes are reported and not counted, a grown and a moved region
// are reported; scan narrows to the counter from an unknown start in four passes, and its
// state is refused for another process; monitor reports each change once and ends after N.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `diff --json` output: the changes as (address, length), and the rest raw.
private struct DiffJSON {
    var raw: [String: Any]
    var changes: [[String: Any]]
    var ranges: [[UInt64]] { changes.map { [u64($0["address"]) ?? 0, u64($0["length"]) ?? 0] } }
    var holes: [[String: Any]] { raw["holes"] as? [[String: Any]] ?? [] }
    func list(_ key: String) -> [[String: Any]] { raw[key] as? [[String: Any]] ?? [] }

    init(_ result: RunResult) throws {
        raw = try #require(result.json, "\(result)")
        changes = try #require(raw["changes"] as? [[String: Any]], "\(result)")
    }
}

/// A suite on its own changer fixture, and the names its tests use.
private protocol ChangerSuite {
    var changer: FixtureProcess { get }
}

extension ChangerSuite {
    var pid: String { changer.pidArg }
    var data: UInt64 { changer.address("data") }
    /// Only the fixture's own data region: the rest of a live process (its stack, libc's
    /// state) may change between two reads.
    var dataRegion: String { "\(hx(data))-\(hx(data + 65536))" }
}

@Suite(.serialized) struct DiffCLITests: ChangerSuite {
    let changer: FixtureProcess
    let dir = TempDir()

    init() throws {
        changer = try Fixtures.launch(.changer)
    }

    private func diffJSON(_ arguments: [String]) throws -> DiffJSON {
        let result = try Tool.run(["diff"] + arguments + ["--json"])
        #expect(result.exited(0), "\(result)")
        return try DiffJSON(result)
    }

    @Test func dumpAgainstLiveFindsExactlyTheChanges() throws {
        let before = dir.sub("before")
        let dumped = try Tool.run("dump", pid, "-o", before, "--region", dataRegion)
        #expect(dumped.exited(0), "\(dumped)")
        let counter = changer.address("counter")
        let string = changer.address("string")
        let buffer = changer.address("buffer")
        #expect(try changer.send("inc").hasPrefix("counter "))
        #expect(try changer.send("move") == "string \(hx(string + 0x100))")
        #expect(try changer.send("rewrite") == "rewrote \(hx(buffer + 0x123)) 16")

        let diff = try diffJSON([before, pid, "--region", dataRegion])
        // The counter's low byte; the string cleared in one slot and written in the next; the
        // 16 rewritten bytes: nothing else.
        let counterRange = try #require(diff.ranges.first)
        #expect(counterRange[0] >= counter && counterRange[0] + counterRange[1] <= counter + 4, "\(diff.ranges)")
        #expect(
            Array(diff.ranges.dropFirst()) == [[string, 16], [string + 0x100, 16], [buffer + 0x123, 16]],
            "\(diff.ranges)")
        #expect(diff.holes.isEmpty && diff.list("only_in_a").isEmpty && diff.list("only_in_b").isEmpty)
        #expect(u64(diff.raw["regions_compared"]) == 1)
        #expect(u64(diff.raw["bytes_compared"]) == 65536)
        // Old and new bytes are the fixture's: the string's slot now holds it.
        let moved = diff.changes[2]
        #expect(moved["old"] as? String == String(repeating: "00", count: 16))
        #expect(moved["new"] as? String == Data("VMIO-MOVING-STR!".utf8).map { String(format: "%02x", $0) }.joined())
        #expect(u64(diff.raw["bytes_changed"]) == counterRange[1] + 16 + 16 + 16)
    }

    /// An address range that clips a dump's region compares the clipped part, read from the
    /// dump's data file at its offset in the region: on either side, and dump against dump.
    /// (It was a hole of the dump's whole part: 0 bytes compared, no change, status 0.)
    @Test func aRangeThatClipsADumpRegionComparesTheClippedPart() throws {
        let before = dir.sub("before")
        #expect(try Tool.run("dump", pid, "-o", before, "--region", dataRegion).exited(0))
        let string = changer.address("string")
        let buffer = changer.address("buffer")
        #expect(try changer.send("move") == "string \(hx(string + 0x100))")
        #expect(try changer.send("rewrite") == "rewrote \(hx(buffer + 0x123)) 16")
        let after = dir.sub("after")
        #expect(try Tool.run("dump", pid, "-o", after, "--region", dataRegion).exited(0))
        // Not at a page or a region's bounds: the last 8 bytes of the string's old slot, its new
        // slot, the first 13 rewritten bytes.
        let start = data + 0x1008, end = data + 0x4130
        let tail = Data("ING-STR!".utf8).map { String(format: "%02x", $0) }.joined()
        let zeros = String(repeating: "00", count: 8)
        for (a, b) in [(before, pid), (pid, before), (before, after)] {
            let diff = try diffJSON([a, b, "--region", "\(hx(start))-\(hx(end))"])
            #expect(diff.ranges == [[string + 8, 8], [string + 0x100, 16], [buffer + 0x123, 13]], "\(diff.raw)")
            #expect(diff.holes.isEmpty, "\(a) \(b) \(diff.holes)")
            // Unwrapped first: ASan saw the #expect of an optional UInt64 against a sum read 9
            // bytes of an 8-byte slot (in the macro's AnyHashable thunk, CI of 2026-12-04).
            let regions = u64(diff.raw["regions_compared"]) ?? 0, compared = u64(diff.raw["bytes_compared"]) ?? 0
            let changedBytes = u64(diff.raw["bytes_changed"]) ?? 0
            #expect(regions == 1 && compared == end - start && changedBytes == 8 + 16 + 13, "\(diff.raw)")
            // The bytes are each side's, from the right offset: the string's tail before the move.
            #expect(diff.changes.first?["old"] as? String == (a == before ? tail : zeros), "\(diff.changes)")
            #expect(diff.changes.first?["new"] as? String == (b == before ? tail : zeros), "\(diff.changes)")
        }
        // A page inside the region: its one change.
        let page = try diffJSON([before, pid, "--region", "\(hx(buffer))-\(hx(buffer + 4096))"])
        #expect(page.ranges == [[buffer + 0x123, 16]] && page.holes.isEmpty, "\(page.raw)")
    }

    @Test func typedDiffDecodesAtTheValuesAlignment() throws {
        let before = dir.sub("before")
        #expect(try Tool.run("dump", pid, "-o", before, "--region", dataRegion).exited(0))
        let start = UInt32(changer.facts["counter"]![1])!
        let counter = changer.address("counter")
        for _ in 0..<300 { _ = try changer.send("inc") }
        let after = dir.sub("after")
        #expect(try Tool.run("dump", pid, "-o", after, "--region", dataRegion).exited(0))
        // Two dumps: one range, the whole u32, old and new as numbers.
        let diff = try diffJSON([before, after, "--format", "u32"])
        #expect(diff.ranges == [[counter, 4]], "\(diff.ranges)")
        #expect((diff.changes[0]["old"] as? [Any])?.compactMap(u64) == [UInt64(start)])
        #expect((diff.changes[0]["new"] as? [Any])?.compactMap(u64) == [UInt64(start + 300)])
        let text = try Tool.run("diff", before, after, "--format", "u32")
        #expect(text.exited(0), "\(text)")
        #expect(text.lines == ["\(hx(counter))  \(hx(data))+0x40  4  \(start) -> \(start + 300)"], "\(text)")
        #expect(text.stderrLines.last?.hasPrefix("1 changed range, ") == true, "\(text.stderr)")
        // A range cut at unaligned addresses keeps its whole u32 values only: the same one.
        let clipped = try diffJSON([
            before, after, "--format", "u32", "--region", "\(hx(counter - 1))-\(hx(counter + 7))",
        ])
        #expect(clipped.ranges == [[counter, 4]], "\(clipped.raw)")
        #expect((clipped.changes.first?["new"] as? [Any])?.compactMap(u64) == [UInt64(start + 300)], "\(clipped.raw)")
    }

    @Test func holesAreReportedNotCounted() throws {
        let hole = changer.address("hole")
        let tail = "\(hx(hole - 4096))-\(hx(hole + 4096))"
        let before = dir.sub("before")
        // The dump meets the hole (status 2) and records it.
        #expect(try Tool.run("dump", pid, "-o", before, "--region", tail).exited(2))
        let diff = try diffJSON([before, pid, "--region", tail])
        #expect(diff.changes.isEmpty, "\(diff.changes)")
        let sides = Set(
            diff.holes.map {
                "\($0["side"] as? String ?? "?") \(hx(u64($0["address"]) ?? 0)) \(u64($0["length"]) ?? 0)"
            })
        #expect(sides == ["a \(hx(hole)) 4096", "b \(hx(hole)) 4096"], "\(diff.holes)")
        #expect(u64(diff.raw["bytes_compared"]) == 4096 && u64(diff.raw["bytes_changed"]) == 0)
        // The page both sides miss is one page not compared, not two.
        #expect(u64(diff.raw["bytes_not_compared"]) == 4096, "\(diff.raw)")
        let text = try Tool.run(["diff", before, pid, "--region", tail])
        #expect(text.exited(0), "\(text)")
        #expect(text.stderr.contains("; 4096 unreadable bytes not compared"), "\(text.stderr)")
    }

    @Test func grownAndMovedRegionsAreReported() throws {
        let grow = changer.address("grow"), moving = changer.address("moving")
        let regions = ["--region", "\(hx(grow))-\(hx(grow + 8192))", "--region", "\(hx(moving))-\(hx(moving + 4096))"]
        let before = dir.sub("before")
        #expect(try Tool.run(["dump", pid, "-o", before] + regions).exited(0))
        #expect(try changer.send("grow") == "grew \(hx(grow)) 8192")
        let movedTo = try #require(UInt64(try changer.send("remap").dropFirst("moved 0x".count), radix: 16))
        // The whole process on the live side: the moved mapping is found at its new place.
        let diff = try diffJSON([before, pid, "--region", "\(hx(grow))-\(hx(grow + 8192))", "--region", "perm:r"])
        let resized = diff.list("resized")
        #expect(resized.count == 1, "\(diff.raw)")
        let b = resized.first?["b"] as? [String: Any]
        #expect(u64(b?["start"]) == grow && u64(b?["end"]) == grow + 8192, "\(resized)")
        let moved = diff.list("moved")
        #expect(moved.count == 1, "\(diff.raw)")
        #expect(u64((moved.first?["a"] as? [String: Any])?["start"]) == moving)
        #expect(u64((moved.first?["b"] as? [String: Any])?["start"]) == movedTo)
        // The grown region's common page is unchanged: no range reported there.
        #expect(!diff.ranges.contains { $0[0] >= grow && $0[0] < grow + 8192 }, "\(diff.ranges)")
    }

    @Test func liveAgainstLiveOfTheSameProcessIsEmptyAndBadSidesAreRefused() throws {
        let diff = try diffJSON([pid, pid, "--region", dataRegion])
        #expect(diff.changes.isEmpty && u64(diff.raw["bytes_compared"]) == 65536)
        let missing = try Tool.run("diff", dir.sub("nothing"), pid)
        #expect(missing.exited(1) && missing.stderr.contains("no dump manifest"), "\(missing)")
        let oneSide = try Tool.run("diff", pid)
        #expect(oneSide.exited(64), "\(oneSide)")
        let badFormat = try Tool.run("diff", pid, pid, "--format", "str")
        #expect(badFormat.exited(64), "\(badFormat)")
    }
}

/// `diff --json` streams its changes like the text output: a diff of two dumps with 262,144
/// changed ranges (every 32nd byte of 8 MiB) keeps its peak memory far below what holding
/// the ranges takes (before the fix: 225 MiB; streamed: about 33 MiB), and its object is whole.
@Suite struct DiffStreamingCLITests {
    @Test func aLargeDiffStreamsWithBoundedMemory() throws {
        let exiter = try Fixtures.launch(.exiter, arguments: ["8"])
        let dir = TempDir()
        let buf = exiter.address("buf")
        let before = dir.sub("before"), after = dir.sub("after")
        let dumped = try Tool.run("dump", exiter.pidArg, "-o", before, "--region", "\(hx(buf))-\(hx(buf + 8 << 20))")
        #expect(dumped.exited(0), "\(dumped)")
        try FileManager.default.copyItem(atPath: before, toPath: after)
        let data = try #require(dir.entries("after").first { $0.hasSuffix(".bin") })
        let file = try FileHandle(forUpdating: URL(fileURLWithPath: "\(after)/\(data)"))
        var bytes = [UInt8](try file.readToEnd() ?? Data())
        try #require(bytes.count == 8 << 20)
        for i in stride(from: 0, to: bytes.count, by: 32) { bytes[i] ^= 0xff }
        try file.seek(toOffset: 0)
        try file.write(contentsOf: bytes)
        try file.close()

        let output = dir.sub("stdout"), errors = dir.sub("stderr")
        let outputFD = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let errorFD = open(errors, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { close(outputFD); close(errorFD) }
        let run = try spawnMeasuringPeakMemory(
            Tool.path, ["diff", before, after, "--json"], stdoutFD: outputFD, stderrFD: errorFD)
        #expect(run.status == 0)
        let summary = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(summary.hasPrefix("262144 changed ranges, 262144 bytes changed"), "\(summary)")
        // Under a sanitizer the runtime's shadow and quarantine dominate: the bound is checked unsanitized.
        if !Tool.isSanitized {
            #expect(run.maxRSSKiB > 0 && run.maxRSSKiB < 64 * 1024, "peak RSS \(run.maxRSSKiB) KiB")
        }
        // The streamed object parses, with every change and the fields after them.
        let parsed = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output)))
        let json = try #require(parsed as? [String: Any])
        let changes = try #require(json["changes"] as? [[String: Any]])
        #expect(changes.count == 262_144)
        #expect(u64(changes.last?["address"]) == buf + (8 << 20) - 32 && changes.last?["new"] as? String != nil)
        #expect(u64(json["ranges"]) == 262_144 && u64(json["bytes_compared"]) == 8 << 20)
        #expect((json["holes"] as? [Any])?.isEmpty == true && json["b"] as? String == after)
        exiter.terminate()
    }
}

@Suite(.serialized) struct ScanCLITests: ChangerSuite {
    let changer: FixtureProcess
    let dir = TempDir()

    init() throws {
        changer = try Fixtures.launch(.changer)
    }

    private func scan(_ arguments: String...) throws -> [String: Any] { try scan(arguments) }

    private func scan(_ arguments: [String]) throws -> [String: Any] {
        let result = try Tool.run(["scan", pid] + arguments + ["--json"])
        #expect(result.exited(0), "\(result)")
        return try #require(result.json, "\(result)")
    }

    @Test func findsTheCounterFromAnUnknownStartInFourPasses() throws {
        let state = dir.sub("state")
        let counter = changer.address("counter")
        let first = try scan("--snapshot", "u32", "-o", state, "--region", dataRegion)
        #expect(u64(first["candidates"]) == 65536 / 4 && first["snapshot"] as? Bool == true)
        _ = try changer.send("inc")
        let up = try scan("--state", state, "--increased")
        #expect((u64(up["candidates"]) ?? 0) >= 1)
        let same = try scan("--state", state, "--unchanged")
        #expect((u64(same["candidates"]) ?? 0) >= 1)
        let now = try changer.send("inc").split(separator: " ")[1]
        let found = try scan("--state", state, "--eq", String(now))
        #expect(u64(found["candidates"]) == 1, "\(found)")
        let listed = try #require((found["listed"] as? [[String: Any]])?.first)
        #expect(u64(listed["address"]) == counter && u64(listed["value"]) == UInt64(now))
        // The state is compact: a header and one block of one candidate.
        #expect((u64(found["state_bytes"]) ?? 0) < 80)
        let text = try Tool.run("scan", pid, "--state", state)
        // Anonymous memory is labelled by its maps line's start (README.md, "Labels").
        let line = try #require(procMapsLines(changer.pid).first { $0.contains(counter) })
        #expect(text.lines == ["\(hx(counter))  \(hx(line.start))+\(hx(counter - line.start))  \(now)"], "\(text)")
        #expect(text.stderrLines == ["1 candidate (u32)"], "\(text.stderr)")
    }

    /// A snapshot over an unaligned address range makes the aligned slots inside it, as a value
    /// scan does: none starts before the range or ends past it. (Its slots were counted from
    /// the range's start: 0x41 and 0x45 for 0x41-0x49.)
    @Test func aSnapshotOfAnUnalignedRangeHasOnlyAlignedSlots() throws {
        let state = dir.sub("state")
        let first = try scan("--snapshot", "u32", "-o", state, "--region", "\(hx(data + 0x41))-\(hx(data + 0x49))")
        #expect(u64(first["candidates"]) == 1, "\(first)")
        // The one slot, 0x44, holds the data's bytes 0x44…0x47: byte i is (i*131 + 7) & 0xff.
        let bytes: [UInt64] = (0x44..<0x48).map { i in UInt64((i * 131 + 7) & 0xff) }
        let value: UInt64 = bytes[0] | bytes[1] << 8 | bytes[2] << 16 | bytes[3] << 24
        for pass in [["--list", "10"], ["--unchanged"]] {
            let listed = try #require(try scan(["--state", state] + pass)["listed"] as? [[String: Any]])
            #expect(listed.map { u64($0["address"]) } == [data + 0x44], "\(pass) \(listed)")
            #expect(listed.map { u64($0["value"]) } == [value], "\(pass) \(listed)")
        }
        // A longer range: 0x44, 0x48 … 0x103c (its last slot to end by 0x1041), 1023 slots, not 1024.
        let longer = try scan("--snapshot", "u32", "-o", state, "--region", "\(hx(data + 0x41))-\(hx(data + 0x1041))")
        #expect(u64(longer["candidates"]) == 1023, "\(longer)")
        let kept = try scan("--state", state, "--unchanged", "--list", "2000")
        let addresses = try #require(kept["listed"] as? [[String: Any]]).compactMap { u64($0["address"]) }
        #expect(addresses.count == 1023 && addresses.allSatisfy { $0 % 4 == 0 }, "\(addresses.prefix(4).map(hx))")
        #expect(addresses.first == data + 0x44 && addresses.last == data + 0x103c)
    }

    /// A value scan over a range that starts unaligned reads it in aligned chunks: the u32 at
    /// buf + 4 MiB, across where a chunk from buf + 1 would end, is found. (It was not.)
    @Test func aValueScanOfAnUnalignedRangeFindsAValueAtAChunksEnd() throws {
        // The exiter's u64 word i (at buf + 8i) holds i: the u32 524288 (0x80000) is only at buf + 4 MiB.
        let exiter = try Fixtures.launch(.exiter, arguments: ["8"])
        let buf = exiter.address("buf")
        let state = dir.sub("state")
        let result = try Tool.run(
            "scan", exiter.pidArg, "--u32", "524288", "-o", state, "--region", "\(hx(buf + 1))-\(hx(buf + 8 << 20))",
            "--json")
        #expect(result.exited(0), "\(result)")
        let json = try #require(result.json, "\(result)")
        #expect(u64(json["candidates"]) == 1, "\(json)")
        #expect((json["listed"] as? [[String: Any]])?.compactMap { u64($0["address"]) } == [buf + (4 << 20)])
        exiter.terminate()
    }

    @Test func aValueScanNarrowsWithComparisons() throws {
        let state = dir.sub("state")
        let start = changer.facts["counter"]![1]
        let first = try scan("--u32", start, "-o", state)
        let candidates = try #require(u64(first["candidates"]))
        #expect(candidates >= 1)
        _ = try changer.send("inc")
        _ = try changer.send("inc")
        let byTwo = try scan("--state", state, "--increased-by", "2")
        #expect(u64(byTwo["candidates"]) == 1, "\(byTwo)")
        #expect(
            (byTwo["listed"] as? [[String: Any]])?.compactMap { u64($0["address"]) } == [changer.address("counter")])
        // A pass may write elsewhere, leaving the state as it was.
        let other = dir.sub("other")
        let none = try scan("--state", state, "--lt", "5", "-o", other)
        #expect(u64(none["candidates"]) == 0)
        #expect(u64(try scan("--state", state, "--list", "0")["candidates"]) == 1)
    }

    @Test func aStateIsRefusedForAnotherProcessOrARestartedOne() throws {
        let state = dir.sub("state")
        _ = try scan("--u32", changer.facts["counter"]![1], "-o", state, "--region", dataRegion)
        let other = try Fixtures.launch(.changer)
        let refused = try Tool.run("scan", other.pidArg, "--state", state, "--changed")
        #expect(
            refused.exited(1) && refused.stderr.contains("scan state of pid \(changer.pid), not of pid \(other.pid)"),
            "\(refused)")
        // The same pid, another start time: a state written with a start time one tick off.
        var bytes = try #require(FileManager.default.contents(atPath: state))
        bytes[16] ^= 1
        let restarted = dir.sub("restarted")
        _ = FileManager.default.createFile(atPath: restarted, contents: bytes)
        let refusedAgain = try Tool.run("scan", pid, "--state", restarted, "--changed")
        #expect(refusedAgain.exited(1) && refusedAgain.stderr.contains("has been restarted"), "\(refusedAgain)")
        // Not a state at all; a filter after a snapshot that needs values.
        _ = FileManager.default.createFile(atPath: dir.sub("junk"), contents: Data("junk".utf8))
        let junk = try Tool.run("scan", pid, "--state", dir.sub("junk"), "--changed")
        #expect(junk.exited(1), "\(junk)")
        let snap = dir.sub("snap")
        _ = try scan("--snapshot", "u8", "-o", snap, "--region", dataRegion)
        let eq = try Tool.run("scan", pid, "--state", snap, "--eq", "3")
        #expect(eq.exited(1) && eq.stderr.contains("needs known values"), "\(eq)")
        // The refused passes left the states as they were.
        #expect(FileManager.default.contents(atPath: state) != nil)
        let usage = try Tool.run("scan", pid, "--u32", "1")
        #expect(usage.exited(64) && usage.stderr.contains("-o STATE"), "\(usage)")
        other.terminate()
    }
}

@Suite(.serialized) struct MonitorCLITests {
    @Test func reportsEachChangeOnceAndEndsAfterN() throws {
        let changer = try Fixtures.launch(.changer)
        let counter = changer.address("counter")
        let start = UInt32(changer.facts["counter"]![1])!
        let monitor = try Running(
            Tool.path,
            [
                "monitor", changer.pidArg, hx(counter), "4", "--format", "u32", "--every", "20ms", "--count", "2",
                "--json",
            ])
        // Each change well apart from the next (and after the tool's start, under load): each
        // seen once, in order.
        usleep(2_000_000)
        _ = try changer.send("inc")
        usleep(1_000_000)
        _ = try changer.send("inc")
        let result = monitor.finish(timeout: 20)
        #expect(result.exited(0), "\(result)")
        let json = try #require(result.json, "\(result)")
        let changes = try #require(json["changes"] as? [[String: Any]])
        #expect(changes.map { ($0["old"] as? [Any])?.compactMap(u64) ?? [] } == [[UInt64(start)], [UInt64(start + 1)]])
        #expect(
            changes.map { ($0["new"] as? [Any])?.compactMap(u64) ?? [] } == [[UInt64(start + 1)], [UInt64(start + 2)]])
        #expect(json["ended"] as? String == "count")
        // The target ends: status 4.
        let watching = try Running(Tool.path, ["monitor", changer.pidArg, hx(counter), "4"])
        usleep(1_000_000)
        changer.terminate()
        let ended = watching.finish(timeout: 20)
        #expect(ended.exited(4), "\(ended)")
    }

    /// Interrupted (Ctrl-C) without --count, `monitor --json` still prints the changes it saw,
    /// ended "interrupted", then dies of the signal, at once even with a long --every; the
    /// text mode says how it ended on standard error.
    @Test(arguments: [true, false]) func anInterruptedMonitorKeepsWhatItSaw(json: Bool) throws {
        let changer = try Fixtures.launch(.changer)
        let counter = changer.address("counter")
        let monitor = try Running(
            Tool.path,
            ["monitor", changer.pidArg, hx(counter), "4", "--format", "u32", "--every", "200ms"]
                + (json ? ["--json"] : []))
        // Changes until the monitor has seen one: its start may be late under load.
        var seen = 0
        for _ in 0..<40 {
            _ = try changer.send("inc")
            usleep(400_000)
            seen += 1
            if !json && !monitor.peekStdout().isEmpty { break }
            if json && seen >= 5 { break }
        }
        kill(monitor.pid, SIGINT)
        let result = monitor.finish(timeout: 20)
        #expect(result.signaled && result.status == SIGINT, "\(result)")
        #expect(result.stderr.contains("monitor: ") && result.stderr.contains("ended: SIGINT received"), "\(result)")
        if json {
            let object = try #require(result.json, "\(result)")
            #expect(object["ended"] as? String == "interrupted", "\(result)")
            #expect((object["changes"] as? [Any])?.isEmpty == false, "\(result)")
        }
        #expect(try changer.send("ping") == "pong", "the target runs on")
    }

    /// A change that cannot be written (standard output a full device) ends the monitor with
    /// the write's error, status 1: the library's loop takes a callback that cannot throw, so
    /// the command keeps the error, ends the loop and throws it. (Without --count a swallowed
    /// error would leave it polling for ever.)
    @Test func aChangeThatCannotBeWrittenEndsTheMonitor() throws {
        let changer = try Fixtures.launch(.changer)
        let script = #"exec "$0" monitor "$1" "$2" 4 --format u32 --every 20ms > /dev/full"#
        let monitor = try Running("/bin/sh", ["-c", script, Tool.path, changer.pidArg, hx(changer.address("counter"))])
        // Changes until the monitor has seen one (it may start polling late, under load).
        for _ in 0..<60 where monitor.peekStderr().isEmpty {
            _ = try changer.send("inc")
            usleep(250_000)
        }
        let result = monitor.finish(timeout: 20)
        #expect(result.exited(1), "\(result)")
        #expect(
            result.stderrLines == ["vmio-ptrace: cannot write standard output: No space left on device"], "\(result)")
        #expect(try changer.send("ping") == "pong", "the target runs on")
    }
}

@Suite(.serialized) struct DiffScanMonitorSessionCLITests {
    @Test func theVerbsRunInASessionWithTheirValues() throws {
        let changer = try Fixtures.launch(.changer)
        let dir = TempDir()
        let data = changer.address("data"), counter = changer.address("counter")
        let region = "\(hx(data))-\(hx(data + 65536))"
        let before = dir.sub("before"), state = dir.sub("state")
        #expect(try Tool.run("dump", changer.pidArg, "-o", before, "--region", region).exited(0))
        _ = try changer.send("rewrite")
        let start = changer.facts["counter"]![1]
        let script = """
            expect (diff \(before) --region \(region)) == 1
            expect (scan --u32 \(start) -o \(state) --region \(region)) == 1
            let found = (scan --state \(state) --nth 1)
            expect $found == \(hx(counter))
            expect (monitor \(hx(counter)) 4 --every 10ms --count 1) == 1
            """
        let path = dir.sub("s.vmio")
        try Data(script.utf8).write(to: URL(fileURLWithPath: path))
        // The monitor waits for the counter to change. The first scan needs it unchanged: once
        // its state is in place (renamed there when complete), change it until the session ends.
        let session = try Running(Tool.path, ["session", changer.pidArg, path])
        #expect(waitUntil(timeout: 60) { FileManager.default.fileExists(atPath: state) || !session.isRunning })
        for _ in 0..<600 where session.isRunning {
            _ = try changer.send("inc")
            usleep(50_000)
        }
        let result = session.finish(timeout: 30)
        #expect(result.exited(0), "\(result)")
        // Without --count a session's monitor would never end: refused.
        try Data("monitor \(hx(counter)) 4\n".utf8).write(to: URL(fileURLWithPath: path))
        let refused = try Tool.run("session", changer.pidArg, path)
        #expect(refused.exited(64) && refused.stderr.contains("--count"), "\(refused)")
    }
}
