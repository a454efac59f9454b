// `read -o` and `dump` flush their files to disk (fsync) by default and not with --no-sync
// (README.md, "sync"): the files are complete either way, strace counts the fsync calls, and
// a session's verbs take the option from the same definition.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct SyncCLITests {
    /// The fsync calls `vmio-ptrace ARGS…` made (every thread), through strace; and its run.
    private func fsyncCalls(_ arguments: [String]) throws -> (count: Int, run: RunResult) {
        let log = TempPath("strace.log")
        let run = try Tool.runProgram(
            "/usr/bin/strace", ["-f", "-qq", "-e", "trace=fsync,fdatasync", "-o", log.path, Tool.path] + arguments)
        let lines = String(decoding: log.contents ?? [], as: UTF8.self).split(separator: "\n")
        return (lines.filter { $0.contains("fsync(") }.count, run)
    }

    @Test func noSyncDumpIsCompleteAndMakesNoFsync() throws {
        try #require(haveStrace(), "strace is not installed and could not be installed")
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf"), length = holder.number("buf")
        let expected = try #require(readProcMem(holder.pid, buf, Int(length)))
        for noSync in [false, true] {
            let dir = TempDir()
            let out = dir.sub("dump")
            let (fsyncs, run) = try fsyncCalls(
                ["dump", holder.pidArg, "--region", "\(hx(buf))-\(hx(buf + length))", "-o", out]
                    + (noSync ? ["--no-sync"] : []))
            #expect(run.exited(0), "\(run)")
            let manifest = try DumpManifestFile(out)
            #expect(manifest.complete)
            let region = try #require(manifest.regions.first)
            #expect(manifest.regions.count == 1 && region.start == buf && region.count == length)
            #expect(manifest.data(region, in: out) == expected, "--no-sync \(noSync): the data file holds buf")
            #expect(dir.entries("dump") == [region.file, "manifest.json"].sorted(), "no .part file is left")
            // Synced: the data file, the manifest and the directory; --no-sync: none.
            #expect(noSync ? fsyncs == 0 : fsyncs >= 3, "--no-sync \(noSync): \(fsyncs) fsync calls")
        }
    }

    @Test func noSyncReadToAFileIsCompleteAndMakesNoFsync() throws {
        try #require(haveStrace(), "strace is not installed and could not be installed")
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let expected = try #require(readProcMem(holder.pid, buf, 4096))
        for noSync in [false, true] {
            let file = TempPath("read.bin")
            let (fsyncs, run) = try fsyncCalls(
                ["read", holder.pidArg, hx(buf), "4096", "--format", "raw", "-o", file.path]
                    + (noSync ? ["--no-sync"] : []))
            #expect(run.exited(0), "\(run)")
            #expect(file.contents == expected, "--no-sync \(noSync): the file holds the 4096 bytes")
            // Synced: the file and its directory; --no-sync: none.
            #expect(noSync ? fsyncs == 0 : fsyncs >= 2, "--no-sync \(noSync): \(fsyncs) fsync calls")
        }
    }

    @Test func sessionVerbsTakeNoSync() throws {
        try #require(haveStrace(), "strace is not installed and could not be installed")
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let expected = try #require(readProcMem(holder.pid, buf, 4096))
        let dir = TempDir()
        let script = TempPath("sync.vmio")
        try [
            "read \(hx(buf)) 4096 --format raw -o \(dir.sub("read.bin")) --no-sync",
            "dump --region \(hx(buf))-\(hx(buf + 4096)) -o \(dir.sub("dump")) --no-sync",
        ].joined(separator: "\n").appending("\n").write(toFile: script.path, atomically: true, encoding: .utf8)
        let (fsyncs, run) = try fsyncCalls(["session", holder.pidArg, script.path])
        #expect(run.exited(0), "\(run)")
        #expect(FileManager.default.contents(atPath: dir.sub("read.bin")).map { Array($0) } == expected)
        let manifest = try DumpManifestFile(dir.sub("dump"))
        let region = try #require(manifest.regions.first)
        #expect(manifest.complete && manifest.data(region, in: dir.sub("dump")) == expected)
        #expect(fsyncs == 0, "a session's --no-sync: \(fsyncs) fsync calls")
    }
}
