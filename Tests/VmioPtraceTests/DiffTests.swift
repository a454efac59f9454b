// Diff (Diff.swift) against a dump that another program changes while the diff reads it.

import Foundation
import Testing
import VmIO
import VmioFixtures

@testable import VmioPtrace

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct DiffTests {
    /// The bug: a dump's data file was mapped a window at a time, so a file truncated after
    /// the diff had opened it raised SIGBUS at the next window's first read and killed the
    /// tool. Here the file is cut to nothing when the first change is handed out (in the
    /// second 4 KiB window): the diff ends with the file's error, naming the file.
    @Test func aDumpTruncatedWhileTheDiffReadsItIsAnErrorNotACrash() throws {
        let fixture = try Fixtures.launch(.random, arguments: ["1"])
        defer { fixture.terminate() }
        let buf = fixture.address("buf")
        let target = try Target(pid: fixture.pid)
        let range = try AddressRange(start: buf, count: 64 << 10)
        let mapping = try #require(target.view.translate(buf)?.mapping)
        let dir = NSTemporaryDirectory() + "vmio-diff-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let manifest = try target.dump([(mapping, range)], to: dir, replace: false, durable: false)
        let file = dir + "/" + (try #require(manifest.regions.first)).file
        // Two changes: the first is handed out when the second is found, in the second window.
        for at in [buf, buf + 4096 + 100] {
            var byte: UInt8 = 0
            _ = try withUnsafeMutableBytes(of: &byte) {
                try target.read(try AddressRange(start: at, count: 1), into: $0)
            }
            #expect(try target.write([byte ^ 0xff], at: at, force: false, verify: true).verified)
        }
        var options = DiffOptions()
        options.chunkSize = 4096
        var changes = 0
        var failure: TargetError?
        do {
            _ = try DiffSource.diff(
                .dump(directory: dir, manifest: manifest), .live(target), selectors: [.range(range)], options: options
            ) { _ in
                changes += 1
                #expect(truncate(file, 0) == 0)
                return true
            }
        } catch { failure = error }
        #expect(changes == 1)
        #expect(failure == .file(path: file, .tooShort), "\(String(describing: failure))")
    }
}
