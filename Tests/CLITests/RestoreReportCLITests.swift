// Issue 12, bug 10: what `restore` says. `--verify` reports that it verified ("(verified)",
// `verified`); a restore that matches nothing of the target (a dump of another process with
// --skip-mismatched) says so and exits 1; a manifest that does not decode is one line that
// names the field, not Swift's DecodingError.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct RestoreReportCLITests {
    let holder: FixtureProcess
    let buf: UInt64
    let dir = TempDir()

    init() throws {
        holder = try Fixtures.launch(.holder)
        buf = holder.address("buf")
    }

    private func dumpBuf(_ name: String = "d") throws {
        let dumped = try Tool.run(
            "dump", holder.pidArg, "--region", "\(hx(buf))-\(hx(buf + 0x2000))", "-o", dir.sub(name))
        try #require(dumped.exited(0), "\(dumped)")
    }

    @Test func verifyIsReported() throws {
        try dumpBuf()
        #expect(try Tool.run("write", holder.pidArg, hx(buf + 0x100), "--string", "CHANGED").exited(0))
        let verified = try Tool.run("restore", holder.pidArg, dir.sub("d"), "--verify")
        #expect(verified.exited(0), "\(verified)")
        #expect(verified.lines == ["restored 8192 bytes into pid \(holder.pid) (verified)"], "\(verified)")
        #expect(try holder.get(buf + 0x100, 16) == Array("VMIO-MARKER-0001".utf8))

        let plain = try Tool.run("restore", holder.pidArg, dir.sub("d"))
        #expect(plain.lines == ["restored 8192 bytes into pid \(holder.pid)"], "\(plain)")

        let json = try #require(try Tool.run("restore", holder.pidArg, dir.sub("d"), "--verify", "--json").json)
        #expect(json["verified"] as? Bool == true && json["mismatch"] is NSNull, "\(json)")
        let jsonPlain = try #require(try Tool.run("restore", holder.pidArg, dir.sub("d"), "--json").json)
        #expect(jsonPlain["verified"] as? Bool == false, "\(jsonPlain)")
    }

    @Test func skipMismatchedThatMatchesNothingSaysSoAndExits1() throws {
        try dumpBuf()
        let other = try Fixtures.launch(.holder)
        defer { other.terminate() }
        let before = try other.get(other.address("buf"), 64)
        let result = try Tool.run("restore", other.pidArg, dir.sub("d"), "--skip-mismatched")
        #expect(result.exited(1), "\(result)")
        #expect(
            result.stderr.contains("nothing to restore") && result.stderr.contains("1 region"),
            "\(result.stderr)")
        #expect(!result.stdoutText.contains("restored 0 bytes"), "\(result)")
        #expect(try other.get(other.address("buf"), 64) == before)

        let json = try Tool.run("restore", other.pidArg, dir.sub("d"), "--skip-mismatched", "--json")
        #expect(json.exited(1), "\(json)")
        let object = try #require(json.json, "\(json)")
        #expect(object["status"] as? Int == 1 && (object["error"] as? String)?.contains("nothing to restore") == true)

        // Everything skipped on request is the same: nothing restored, exit 1.
        let skipped = try Tool.run("restore", holder.pidArg, dir.sub("d"), "--skip", "anon")
        #expect(skipped.exited(1) && skipped.stderr.contains("nothing to restore"), "\(skipped)")
    }

    @Test func aBadManifestIsOneLineNamingTheField() throws {
        try dumpBuf()
        let manifestPath = dir.sub("d/manifest.json")
        let good = try #require(FileManager.default.contents(atPath: manifestPath))
        func damaged(_ edit: (inout [String: Any]) -> Void) throws -> RunResult {
            var object = try #require(try JSONSerialization.jsonObject(with: good) as? [String: Any])
            edit(&object)
            try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: manifestPath))
            return try Tool.run("restore", holder.pidArg, dir.sub("d"))
        }
        func region(_ edit: @escaping (inout [String: Any]) -> Void) -> (inout [String: Any]) -> Void {
            { object in
                var regions = object["regions"] as! [[String: Any]]
                edit(&regions[0])
                object["regions"] = regions
            }
        }
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            (#"regions[0]: missing "start""#, region { $0["start"] = nil }),
            (#"regions[0].inode: expected a number"#, region { $0["inode"] = "seven" }),
            (#"regions[0].path: expected a string, found null"#, region { $0["path"] = NSNull() }),
            (#"missing "format""#, { $0["format"] = nil }),
            (#"regions: expected an array"#, { $0["regions"] = "none" }),
        ]
        for (expected, edit) in cases {
            let result = try damaged(edit)
            #expect(result.exited(1), "\(expected): \(result)")
            #expect(result.stderrLines.count == 1, "\(expected): \(result.stderr)")
            #expect(
                result.stderr.hasPrefix("vmio-ptrace: bad dump manifest \(manifestPath): ")
                    && result.stderr.contains(expected), "\(expected): \(result.stderr)")
            #expect(
                !result.stderr.contains("DecodingError") && !result.stderr.contains("CodingKeys"), "\(result.stderr)")
        }
        try Data("{\"format\": ".utf8).write(to: URL(fileURLWithPath: manifestPath))
        let broken = try Tool.run("restore", holder.pidArg, dir.sub("d"))
        #expect(broken.exited(1) && broken.stderrLines.count == 1, "\(broken)")
        #expect(broken.stderr.contains("not valid JSON") && !broken.stderr.contains("DecodingError"), "\(broken)")
    }
}
