// `vmio-ptrace restore`: a dump written back with --verify, read-only regions left out
// (and written with --force), a layout that no longer matches (refused, nothing written,
// unless --skip SEL or --skip-mismatched), holes not written, and bad manifests refused
// before anything is written.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `restore --json` output: one entry a region.
struct RestoreJSON {
    struct Region {
        var start: UInt64
        var end: UInt64
        var path: String
        var action: String
        var written: UInt64
    }
    var raw: [String: Any]
    var regions: [Region]
    var written: UInt64 { u64(raw["written"]) ?? 0 }

    init(_ result: RunResult) throws {
        raw = try #require(result.json, "\(result)")
        regions = try #require(raw["regions"] as? [[String: Any]], "\(result)").map { r in
            Region(
                start: try #require(u64(r["start"])), end: try #require(u64(r["end"])),
                path: try #require(r["path"] as? String), action: try #require(r["action"] as? String),
                written: try #require(u64(r["written"])))
        }
    }

    func region(containing address: UInt64) -> Region? { regions.first { $0.start <= address && address < $0.end } }
}

@Suite struct RestoreCLITests {
    let holder: FixtureProcess
    let buf: UInt64
    let dir = TempDir()

    init() throws {
        holder = try Fixtures.launch(.holder)
        buf = holder.address("buf")
    }

    var pid: String { holder.pidArg }

    private func range(_ start: UInt64, _ count: UInt64) -> String { "\(hx(start))-\(hx(start + count))" }

    /// Writes `count` bytes of `byte` at `address` through the tool.
    private func fill(_ address: UInt64, _ count: Int, _ byte: UInt8, force: Bool = false) throws {
        let result = try Tool.run(
            ["write", pid, hx(address), "--hex", hexOf(repeatElement(byte, count: count))]
                + (force ? ["--force"] : []))
        try #require(result.exited(0), "\(result)")
        try #require(try holder.get(address, count) == Array(repeating: byte, count: count))
    }

    /// Waits until the holder is blocked reading its stdin (state S), so that its live stack
    /// frames are the same at the dump and at the restore of its whole memory.
    private func waitBlocked() {
        #expect(waitUntil { procStatus(holder.pid)["State"]?.hasPrefix("S") == true }, "\(procStatus(holder.pid))")
    }

    @Test func wholeProcessRoundTripWithVerify() throws {
        waitBlocked()
        let dumped = try Tool.run("dump", pid, "-o", dir.sub("d"))
        try #require(dumped.exited(0), "\(dumped)")
        let manifest = try DumpManifestFile(dir.sub("d"))
        let original = try holder.get(buf, 65536)
        let edge = holder.address("edge")

        // Change bytes in buf, the edge page and the counter in .data.
        #expect(try Tool.run("write", pid, hx(buf + 0x100), "--string", "CHANGED!CHANGED!").exited(0))
        try fill(buf + 0x1000, 64, 0xee)
        try fill(edge + 100, 16, 0x00)
        #expect(try Tool.run("write", pid, "sym:counter", "--u64", "7").exited(0))
        #expect(try holder.send("counter") == "7")
        #expect(try holder.get(buf, 65536) != original)

        waitBlocked()
        let result = try Tool.run("restore", pid, dir.sub("d"), "--verify")
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.isEmpty, "no progress text on a pipe: \(result.stderr)")
        let writable = manifest.regions.filter { $0.perms.dropFirst().hasPrefix("w") }
        let readOnly = manifest.regions.count - writable.count
        #expect(readOnly > 0)
        #expect(
            result.lines == [
                "restored \(writable.reduce(0) { $0 + $1.count }) bytes into pid \(holder.pid) (verified)",
                "left out \(readOnly) regions the target maps read-only (--force restores them)",
            ])
        #expect(try holder.get(buf, 65536) == original)
        #expect(try holder.get(edge, 4096) == Array(repeating: 0xab, count: 4096))
        #expect(try holder.send("counter") == "12648430")
        #expect(try holder.send("answer") == "42")
        #expect(try holder.send("ping") == "pong")

        // --json: one entry a region, in the dump's order.
        try fill(buf + 0x2000, 8, 0x11)
        waitBlocked()
        let json = try Tool.run("restore", pid, dir.sub("d"), "--verify", "--json")
        #expect(json.exited(0), "\(json)")
        let object = try RestoreJSON(json)
        #expect(Set(object.raw.keys) == ["pid", "directory", "written", "verified", "regions", "mismatch"])
        #expect(object.raw["mismatch"] is NSNull && object.raw["verified"] as? Bool == true)
        #expect(object.raw["directory"] as? String == dir.sub("d"))
        #expect(object.regions.map(\.start) == manifest.regions.map(\.start))
        for (entry, region) in zip(object.regions, manifest.regions) {
            let isWritable = region.perms.dropFirst().hasPrefix("w")
            #expect(entry.action == (isWritable ? "written" : "read-only (use --force)"), "\(region.raw)")
            #expect(entry.written == (isWritable ? region.count : 0))
            #expect(entry.path == region.path && entry.end == region.end)
        }
        #expect(object.region(containing: holder.address("ro"))?.action == "read-only (use --force)")
        #expect(object.region(containing: holder.address("code"))?.action == "read-only (use --force)")
        #expect(object.written == writable.reduce(0) { $0 + $1.count })
        #expect(try holder.get(buf, 65536) == original)
        #expect(try holder.send("ping") == "pong")
    }

    @Test func readOnlyRegionsNeedForce() throws {
        let ro = holder.address("ro")
        let dumped = try Tool.run(
            "dump", pid, "--region", range(ro, 4096), "--region", range(buf, 0x2000), "-o", dir.sub("d"))
        try #require(dumped.exited(0), "\(dumped)")
        let original = try holder.get(buf, 0x2000)
        try fill(ro, 16, 0x00, force: true)
        try fill(buf + 0x10, 16, 0xee)

        let plain = try Tool.run("restore", pid, dir.sub("d"), "--verify")
        #expect(plain.exited(0), "\(plain)")
        #expect(
            plain.lines == [
                "restored 8192 bytes into pid \(holder.pid) (verified)",
                "left out 1 region the target maps read-only (--force restores them)",
            ])
        #expect(try holder.get(ro, 16) == Array(repeating: 0, count: 16), "left as it was")
        #expect(try holder.get(buf, 0x2000) == original)

        let forced = try Tool.run("restore", pid, dir.sub("d"), "--force", "--verify", "--json")
        #expect(forced.exited(0), "\(forced)")
        let json = try RestoreJSON(forced)
        #expect(json.written == 4096 + 0x2000)
        #expect(json.regions.map(\.action) == ["written", "written"])
        #expect(try holder.get(ro, 4096) == Array(repeating: 0x5a, count: 4096))
        #expect(procMapsLines(holder.pid).first { $0.contains(ro) }?.perms == "r--p", "still read-only")

        // --skip perm:w with --force: the read-only page is written, the writable one skipped.
        try fill(ro, 16, 0x00, force: true)
        try fill(buf + 0x10, 16, 0xee)
        let skipWritable = try Tool.run("restore", pid, dir.sub("d"), "--force", "--skip", "perm:w", "--json")
        #expect(skipWritable.exited(0), "\(skipWritable)")
        let skipJSON = try RestoreJSON(skipWritable)
        #expect(skipJSON.region(containing: ro)?.action == "written", "\(skipWritable.stdoutText)")
        #expect(skipJSON.region(containing: buf)?.action == "skipped", "\(skipWritable.stdoutText)")
        #expect(try holder.get(ro, 16) == Array(repeating: 0x5a, count: 16))
        #expect(try holder.get(buf + 0x10, 16) == Array(repeating: 0xee, count: 16))
        // --skip perm:x skips neither (neither is executable).
        let skipX = try RestoreJSON(try Tool.run("restore", pid, dir.sub("d"), "--skip", "perm:x", "--json"))
        #expect(skipX.region(containing: ro)?.action == "read-only (use --force)")
        #expect(skipX.region(containing: buf)?.action == "written")
        #expect(try holder.get(buf, 0x2000) == original)
    }

    /// buf is unmapped after the dump: the restore is refused as a whole (edge is not
    /// written either) until buf is skipped by selector or as mismatched.
    @Test func layoutMismatchWritesNothingUnlessSkipped() throws {
        let edge = holder.address("edge")
        let dumped = try Tool.run(
            "dump", pid, "--region", range(buf, 65536), "--region", range(edge, 4096), "-o", dir.sub("d"))
        try #require(dumped.exited(0), "\(dumped)")
        try #require(try DumpManifestFile(dir.sub("d")).regions.count == 2)
        try fill(edge, 32, 0x00)
        #expect(try holder.send("unmap-buf") == "ok")

        let refused = try Tool.run("restore", pid, dir.sub("d"))
        #expect(refused.exited(1), "\(refused)")
        #expect(refused.stdout.isEmpty)
        #expect(refused.stderrLines.count == 2, "\(refused.stderr)")
        #expect(refused.stderrLines.first?.hasPrefix("vmio-ptrace: the target's maps no longer match the dump") == true)
        #expect(refused.stderrLines.last?.contains("\(range(buf, 65536))") == true, "\(refused.stderr)")
        #expect(refused.stderrLines.last?.contains("no longer mapped") == true, "\(refused.stderr)")
        #expect(try holder.get(edge, 32) == Array(repeating: 0, count: 32), "nothing written")

        let mismatched = try Tool.run("restore", pid, dir.sub("d"), "--skip-mismatched", "--verify", "--json")
        #expect(mismatched.exited(0), "\(mismatched)")
        let json = try RestoreJSON(mismatched)
        #expect(json.regions.count == 2)
        #expect(json.region(containing: buf)?.action.hasPrefix("mismatch: ") == true, "\(mismatched.stdoutText)")
        #expect(json.region(containing: buf)?.written == 0)
        #expect(json.region(containing: edge)?.action == "written")
        #expect(json.written == 4096)
        #expect(try holder.get(edge, 4096) == Array(repeating: 0xab, count: 4096))

        try fill(edge, 32, 0x00)
        let skipped = try Tool.run("restore", pid, dir.sub("d"), "--skip", range(buf, 65536))
        #expect(skipped.exited(0), "\(skipped)")
        #expect(
            skipped.lines == ["restored 4096 bytes into pid \(holder.pid)", "left out \(range(buf, 65536)) : skipped"])
        #expect(try holder.get(edge, 4096) == Array(repeating: 0xab, count: 4096))
        #expect(try holder.send("ping") == "pong")
    }

    /// A dump of one holder does not fit another (different addresses): every region that
    /// does not match is listed, and nothing is written.
    @Test func anotherProcessIsALayoutMismatch() throws {
        let dumped = try Tool.run("dump", pid, "-o", dir.sub("d"))
        try #require(dumped.exited(0), "\(dumped)")
        let manifest = try DumpManifestFile(dir.sub("d"))
        let other = try Fixtures.launch(.holder)
        defer { other.terminate() }
        let otherBuf = other.address("buf")
        let marker = Array("OTHER-HOLDER".utf8)
        #expect(try Tool.run("write", other.pidArg, hx(otherBuf), "--string", "OTHER-HOLDER").exited(0))

        // What the tool must find: regions not covered by one path in the other's maps.
        let lines = procMapsLines(other.pid)
        let expected = manifest.regions.filter { region in
            var next = region.start
            for line in lines where line.end > region.start && line.start < region.end {
                if line.start > next || manifestPath(line) != region.path { return true }
                next = line.end
            }
            return next < region.end
        }
        try #require(!expected.isEmpty)

        let result = try Tool.run("restore", other.pidArg, dir.sub("d"))
        #expect(result.exited(1), "\(result)")
        #expect(result.stderrLines.first?.hasPrefix("vmio-ptrace: the target's maps no longer match the dump") == true)
        let listed = result.stderrLines.dropFirst()
        #expect(listed.count == expected.count, "\(result.stderr)")
        for (line, region) in zip(listed, expected) {
            #expect(line.hasPrefix("  \(hx(region.start))-\(hx(region.end))"), "\(line)")
        }
        #expect(try other.get(otherBuf, marker.count) == marker, "nothing written")
        #expect(try other.send("ping") == "pong")
        #expect(try other.send("counter") == "12648430")
    }

    /// The truncated fixture's hole is not written back: with --force (the mapping is
    /// read-only) the readable page is restored and the restore succeeds; writing the
    /// hole would fault and exit 2.
    @Test func holesAreNotWritten() throws {
        let fixture = try Fixtures.launch(.truncated)
        defer { fixture.terminate() }
        let map = fixture.address("map")
        let dumped = try Tool.run("dump", fixture.pidArg, "--region", range(map, 16384), "-o", dir.sub("t"))
        #expect(dumped.exited(2), "\(dumped)")
        let manifest = try DumpManifestFile(dir.sub("t"))
        #expect(manifest.regions.first?.holes == [.init(address: map + 4096, length: 12288)])

        // Its one region read-only: nothing is written, which is an error naming why (issue 12, bug 10).
        let plain = try Tool.run("restore", fixture.pidArg, dir.sub("t"), "--json")
        #expect(plain.exited(1), "\(plain)")
        let error = plain.json?["error"] as? String ?? ""
        #expect(error.contains("nothing to restore") && error.contains("1 region read-only"), "\(plain)")

        let forced = try Tool.run("restore", fixture.pidArg, dir.sub("t"), "--force", "--verify", "--json")
        #expect(forced.exited(0), "\(forced)")
        let json = try RestoreJSON(forced)
        #expect(json.regions.map(\.action) == ["written"])
        #expect(json.written == 4096, "only the page that was saved")
        #expect(readProcMem(fixture.pid, map, 4096) == Array(repeating: 0x5c, count: 4096))
        #expect(try fixture.send("ping") == "pong")
    }

    /// A hole in a writable region (added to the manifest by hand): the bytes there are
    /// left as they are, the rest is restored.
    @Test func holesInAWritableRegionAreLeftAlone() throws {
        let dumped = try Tool.run("dump", pid, "--region", range(buf, 0x3000), "-o", dir.sub("d"))
        try #require(dumped.exited(0), "\(dumped)")
        let original = try holder.get(buf, 0x3000)
        try editManifest(dir.sub("d")) { manifest in
            var regions = manifest["regions"] as! [[String: Any]]
            regions[0]["holes"] = [["address": hx(buf + 0x1000), "length": 0x1000, "reason": "test"]]
            regions[0]["bytes_saved"] = 0x2000
            manifest["regions"] = regions
            manifest["complete"] = false
        }
        let changed = TempPath("ee.bin")
        #expect(FileManager.default.createFile(atPath: changed.path, contents: Data(repeating: 0xee, count: 0x3000)))
        #expect(try Tool.run("write", pid, hx(buf), "--file", changed.path).exited(0))

        let result = try Tool.run("restore", pid, dir.sub("d"), "--verify", "--json")
        #expect(result.exited(0), "\(result)")
        #expect(try RestoreJSON(result).written == 0x2000)
        let now = try holder.get(buf, 0x3000)
        #expect(Array(now[0..<0x1000]) == Array(original[0..<0x1000]))
        #expect(now[0x1000..<0x2000].allSatisfy { $0 == 0xee }, "the hole is not written")
        #expect(Array(now[0x2000..<0x3000]) == Array(original[0x2000..<0x3000]))
    }

    private func editManifest(_ directory: String, _ edit: (inout [String: Any]) -> Void) throws {
        let path = directory + "/manifest.json"
        let data = try #require(FileManager.default.contents(atPath: path))
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }

    /// Bad dumps are refused with one line and exit 1, before anything is written: the
    /// first region (valid) is not restored either.
    @Test func badManifestsAreRefusedBeforeWriting() throws {
        let dumped = try Tool.run(
            "dump", pid, "--region", range(buf, 0x1000), "--region", range(buf + 0x2000, 0x1000),
            "-o", dir.sub("good"))
        try #require(dumped.exited(0), "\(dumped)")
        let good = try DumpManifestFile(dir.sub("good"))
        try #require(good.regions.count == 2)
        let secondFile = good.regions[1].file
        try fill(buf, 32, 0xee)

        typealias Damage = (String, (String) throws -> Void)
        func setSecond(_ key: String, _ value: Any) -> (String) throws -> Void {
            { directory in
                try self.editManifest(directory) { manifest in
                    var regions = manifest["regions"] as! [[String: Any]]
                    regions[1][key] = value
                    manifest["regions"] = regions
                }
            }
        }
        let cases: [Damage] = [
            ("leaves the directory", setSecond("file", "../" + secondFile)),
            ("leaves the directory", setSecond("file", "sub/" + secondFile)),
            ("leaves the directory", setSecond("file", "/etc/passwd")),
            ("leaves the directory", setSecond("file", ".hidden")),
            ("data file", setSecond("file", "")),
            ("not a range", setSecond("end", hx(buf))),
            ("format", { directory in try self.editManifest(directory) { $0["format"] = "vmio-dump/2" } }),
            (
                "bad dump manifest",
                { directory in
                    try Data("{\"format\": \"vmio-dump/1\", \"regions\": [".utf8).write(
                        to: URL(fileURLWithPath: directory + "/manifest.json"))
                }
            ),
            ("no dump manifest", { directory in unlink(directory + "/manifest.json") }),
            ("shorter than its region", { directory in truncate(directory + "/" + secondFile, 100) }),
            ("No such file", { directory in unlink(directory + "/" + secondFile) }),
            (
                "not a regular file",
                { directory in
                    unlink(directory + "/" + secondFile)
                    symlink("/dev/zero", directory + "/" + secondFile)
                }
            ),
        ]
        for (index, (message, damage)) in cases.enumerated() {
            let copy = dir.sub("bad\(index)")
            try FileManager.default.copyItem(atPath: dir.sub("good"), toPath: copy)
            try damage(copy)
            let result = try Tool.run("restore", pid, copy)
            #expect(result.exited(1), "case \(index) (\(message)): \(result)")
            #expect(result.stderrLines.count == 1, "case \(index): \(result.stderr)")
            #expect(
                result.stderr.hasPrefix("vmio-ptrace: ") && result.stderr.contains(message),
                "case \(index): \(result.stderr)")
            #expect(
                try holder.get(buf, 32) == Array(repeating: 0xee, count: 32),
                "case \(index) (\(message)): nothing written")
        }
        // The good copy still restores.
        let result = try Tool.run("restore", pid, dir.sub("good"), "--verify")
        #expect(result.exited(0), "\(result)")
        #expect(try holder.get(buf, 32) == (0..<32).map(holderPattern))

        // No such directory.
        let missing = try Tool.run("restore", pid, dir.sub("nowhere"))
        #expect(missing.exited(1), "\(missing)")
        #expect(missing.stderrLines.count == 1)
    }

    /// A word the target keeps rewriting (the holder's `scribble`): the restored bytes do not
    /// read back, and --verify says so with exit 2 and the first address that differs.
    @Test func verifyMismatchExits2NamingTheAddress() throws {
        let scribbler = try Fixtures.launch(.holder)
        defer { scribbler.terminate() }
        let word = scribbler.address("buf") + 0x400
        #expect(try scribbler.send("scribble") == "ok")
        let dumped = try Tool.run(
            "dump", scribbler.pidArg, "--region", range(scribbler.address("buf"), 0x1000), "-o", dir.sub("d"))
        try #require(dumped.exited(0), "\(dumped)")
        var mismatches = 0, attempts = 0
        // The scribbling thread must run between the write and its read-back: usually at once,
        // but on a loaded machine it may wait for a CPU, so a few attempts are allowed.
        while mismatches < 2 && attempts < 40 {
            attempts += 1
            let result = try Tool.run("restore", scribbler.pidArg, dir.sub("d"), "--verify", "--json")
            let json = try RestoreJSON(result)
            #expect(json.written == 0x1000, "\(result)")
            if result.exited(0) {
                #expect(json.raw["mismatch"] is NSNull, "\(result)")
                continue
            }
            #expect(result.exited(2), "\(result)")
            mismatches += 1
            let at = try #require(u64(json.raw["mismatch"]), "\(json.raw)")
            #expect(word <= at && at < word + 8, "the first differing byte is in the word: \(json.raw)")
            #expect(
                result.stderrLines.contains("vmio-ptrace: verify failed: the byte at \(hx(at)) reads back differently"),
                "\(result.stderr)")
        }
        print("verify mismatch (restore): \(mismatches) mismatches in \(attempts) attempts")
        #expect(mismatches > 0, "no restore over the scribbled word ever failed its verify (\(attempts) attempts)")
        // The bytes before the word are the dump's.
        let manifest = try DumpManifestFile(dir.sub("d"))
        let first = try #require(manifest.regions.first)
        let saved = try #require(manifest.data(first, in: dir.sub("d")))
        #expect(readProcMem(scribbler.pid, scribbler.address("buf"), 0x400) == Array(saved.prefix(0x400)))
    }

    /// Two holders started without address randomisation have the same layout: a dump of one
    /// restores into the other (its buffer and its .data), and the other then holds the first's bytes.
    @Test func intoAnotherProcessWithTheSameLayout() throws {
        let noASLR = ["/usr/bin/setarch", "x86_64", "-R"]
        let a = try Fixtures.launch(.holder, wrapper: noASLR), b = try Fixtures.launch(.holder, wrapper: noASLR)
        defer {
            a.terminate()
            b.terminate()
        }
        try #require(
            a.address("buf") == b.address("buf") && a.address("counter") == b.address("counter"),
            "the same layout: \(a.factLines) \(b.factLines)")
        // a's bytes differ from b's: a new marker and counter, through the test's own path.
        let aBuf = a.address("buf")
        try #require(writeProcMem(a.pid, aBuf + 0x100, Array("VMIO-MARKER-AAAA".utf8)))
        try #require(writeProcMem(a.pid, a.address("counter"), [7, 0, 0, 0, 0, 0, 0, 0]))
        #expect(try a.send("counter") == "7")
        let counterPage = a.address("counter") & ~0xfff
        let dumped = try Tool.run(
            "dump", a.pidArg, "--region", range(aBuf, 65536), "--region", range(counterPage, 0x1000), "-o", dir.sub("a")
        )
        try #require(dumped.exited(0), "\(dumped)")

        let result = try Tool.run("restore", b.pidArg, dir.sub("a"), "--verify", "--json")
        #expect(result.exited(0), "\(result)")
        let json = try RestoreJSON(result)
        #expect(json.regions.map(\.action) == ["written", "written"], "\(json.raw)")
        #expect(json.regions.map(\.start).sorted() == [aBuf, counterPage].sorted())
        #expect(json.written == 65536 + 0x1000)
        #expect(try b.get(aBuf, 65536) == (try a.get(aBuf, 65536)))
        #expect(try b.get(aBuf + 0x100, 16) == Array("VMIO-MARKER-AAAA".utf8))
        #expect(try b.send("counter") == "7")
        #expect(try b.send("ping") == "pong")
    }

    @Test func stopResumesTheTarget() throws {
        let dumped = try Tool.run("dump", pid, "--region", range(buf, 0x1000), "-o", dir.sub("d"))
        try #require(dumped.exited(0))
        try fill(buf, 8, 0xee)
        let result = try Tool.run("restore", pid, dir.sub("d"), "--stop", "--verify")
        #expect(result.exited(0), "\(result)")
        #expect(waitUntil { isFreeRunning(holder.pid) }, "\(procStatus(holder.pid))")
        #expect(try holder.get(buf, 8) == (0..<8).map(holderPattern))
        // Refused (layout) with --stop: resumed too.
        #expect(try holder.send("unmap-buf") == "ok")
        let refused = try Tool.run("restore", pid, dir.sub("d"), "--stop")
        #expect(refused.exited(1), "\(refused)")
        #expect(waitUntil { isFreeRunning(holder.pid) }, "\(procStatus(holder.pid))")
        #expect(try holder.send("ping") == "pong")
    }
}
