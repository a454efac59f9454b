// Issue 12, bug 11: a dump leaves a directory holding a whole dump, or nothing of its own.
// SIGINT part-way removes the hidden `.part` file and the region files already renamed into
// place; a target that exits part-way leaves no region files without a manifest; the
// leftovers of a dump killed outright (SIGKILL, which nothing can catch) are cleared by
// the next dump into the directory (and those of a replacing dump, or of an output file, by
// the next write of that name); and a non-empty directory that holds no dump is refused.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct DumpCleanupCLITests {
    /// Starts a dump of the whole exiter (its 512 MiB buffer among its other regions) and
    /// waits until at least one region file is in place and the buffer's `.part` grows: the
    /// dump is under way with files of both kinds on disk.
    private func dumpUnderWay(_ exiter: FixtureProcess, into directory: String, stop: Bool) throws -> Running {
        let running = try Running(Tool.path, ["dump", exiter.pidArg, "-o", directory] + (stop ? ["--stop"] : []))
        let buf = exiter.address("buf")
        let underWay = waitUntil(timeout: 30) {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            let inPlace = names.contains { $0.hasSuffix(".bin") }
            let growing = names.contains { name in
                name.hasSuffix(".part") && name.contains(String(buf, radix: 16))
                    && (fileSize(directory + "/" + name) ?? 0) > 8 << 20
            }
            return inPlace && growing
        }
        try #require(
            underWay,
            "the dump did not get under way: \(String(describing: try? FileManager.default.contentsOfDirectory(atPath: directory)))"
        )
        try #require(running.isRunning, "the dump finished before it could be interrupted")
        return running
    }

    @Test(arguments: [false, true])
    func sigintRemovesEverythingTheDumpWrote(stop: Bool) throws {
        let exiter = try Fixtures.launch(.exiter, arguments: ["512"])
        defer { exiter.terminate() }
        let dir = TempDir()
        let running = try dumpUnderWay(exiter, into: dir.sub("d"), stop: stop)
        kill(running.pid, SIGINT)
        let result = running.finish(timeout: 20)
        #expect(result.signaled && result.status == SIGINT, "the tool dies of SIGINT: \(result)")
        #expect(dir.entries("d").isEmpty, "nothing of the dump is left: \(dir.entries("d"))")
        #expect(!FileManager.default.fileExists(atPath: dir.sub("d")), "the directory it created is gone")
        #expect(waitUntil { isFreeRunning(exiter.pid) }, "\(procStatus(exiter.pid))")
        #expect(try exiter.send("ping") == "pong")
    }

    /// Into a directory that existed before (empty): the directory stays, empty.
    @Test func sigintLeavesAnExistingDirectoryEmpty() throws {
        let exiter = try Fixtures.launch(.exiter, arguments: ["512"])
        defer { exiter.terminate() }
        let dir = TempDir()
        let running = try dumpUnderWay(exiter, into: dir.path, stop: false)
        kill(running.pid, SIGTERM)
        let result = running.finish(timeout: 20)
        #expect(result.signaled && result.status == SIGTERM, "\(result)")
        #expect(FileManager.default.fileExists(atPath: dir.path))
        #expect(dir.entries().isEmpty, "\(dir.entries())")
    }

    @Test func aTargetThatExitsPartWayLeavesNoRegionFiles() throws {
        let exiter = try Fixtures.launch(.exiter, arguments: ["512"])
        let dir = TempDir()
        let running = try dumpUnderWay(exiter, into: dir.sub("d"), stop: true)
        kill(exiter.pid, SIGKILL)
        let result = running.finish(timeout: 20)
        #expect(result.exited(4), "target gone: \(result)")
        #expect(result.stderrLines.count == 1, "\(result.stderr)")
        #expect(dir.entries("d").isEmpty, "no region files without a manifest: \(dir.entries("d"))")
        exiter.terminate()
    }

    /// SIGKILL cannot be caught: its leftovers stay, and the next dump clears them (without
    /// --force: they are no dump) so that the directory holds exactly the new dump.
    @Test func theNextDumpClearsTheLeftoversOfAKilledOne() throws {
        let exiter = try Fixtures.launch(.exiter, arguments: ["512"])
        defer { exiter.terminate() }
        let dir = TempDir()
        let running = try dumpUnderWay(exiter, into: dir.sub("d"), stop: false)
        kill(running.pid, SIGKILL)
        _ = running.finish(timeout: 20)
        let leftovers = dir.entries("d")
        try #require(leftovers.contains { $0.hasSuffix(".bin") } && !leftovers.contains("manifest.json"))

        let again = try Tool.run("dump", exiter.pidArg, "--region", "[stack]", "--region", "[heap]", "-o", dir.sub("d"))
        #expect(again.exited(0), "\(again)")
        let manifest = try DumpManifestFile(dir.sub("d"))
        #expect(dir.entries("d") == (manifest.regions.map(\.file) + ["manifest.json"]).sorted(), "no stale files")
    }

    /// A `dump --force` over a dump writes beside it, in `.NAME.PID.new`; killed by SIGKILL
    /// it leaves that behind, and the next `dump --force` of the same directory clears it.
    @Test func theNextReplacingDumpClearsAKilledOnesStaging() throws {
        let exiter = try Fixtures.launch(.exiter, arguments: ["512"])
        defer { exiter.terminate() }
        let dir = TempDir()
        let small = ["--region", "[stack]", "-o", dir.sub("d"), "--force"]
        #expect(try Tool.run(["dump", exiter.pidArg] + small).exited(0))
        let running = try Running(Tool.path, ["dump", exiter.pidArg, "-o", dir.sub("d"), "--force"])
        let staging = ".d.\(running.pid).new"
        let underWay = waitUntil(timeout: 30) {
            dir.entries(staging).contains {
                $0.hasSuffix(".part") && (fileSize(dir.sub(staging) + "/" + $0) ?? 0) > 8 << 20
            }
        }
        try #require(underWay && running.isRunning, "the replacing dump did not get under way: \(dir.entries())")
        kill(running.pid, SIGKILL)
        _ = running.finish(timeout: 20)
        try #require(dir.entries() == [staging, "d"], "\(dir.entries())")

        #expect(try Tool.run(["dump", exiter.pidArg] + small).exited(0))
        #expect(dir.entries() == ["d"], "the killed dump's staging is gone: \(dir.entries())")
        let manifest = try DumpManifestFile(dir.sub("d"))
        #expect(dir.entries("d") == (manifest.regions.map(\.file) + ["manifest.json"]).sorted())
    }

    /// `read -o FILE` writes `.FILE.PID.part`; one a writer killed by SIGKILL left (no lock
    /// held on it) is removed by the next write of FILE, and one a live writer holds stays.
    @Test func theNextOutputFileClearsAKilledWritersTemporaryFile() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let dir = TempDir()
        let abandoned = dir.sub(".out.bin.4000001.part"), held = dir.sub(".out.bin.4000002.part")
        let unrelated = [
            dir.sub(".out.bin.x1.part"), dir.sub(".other.bin.4000003.part"), dir.sub(".out.bin.4000004.new"),
        ]
        for path in [abandoned] + unrelated {
            #expect(FileManager.default.createFile(atPath: path, contents: Data([1])))
        }
        // A live writer: flock(1) holds an exclusive lock on it while it sleeps.
        let writer = try Running("/usr/bin/flock", ["--exclusive", "--no-fork", held, "sleep", "60"])
        defer {
            kill(writer.pid, SIGKILL)
            _ = writer.finish(timeout: 10)
        }
        let locked = waitUntil {
            var st = stat()
            guard stat(held, &st) == 0, let locks = readProcFile("/proc/locks") else { return false }
            return locks.split(separator: "\n").contains { $0.contains("FLOCK") && $0.contains(":\(st.st_ino) ") }
        }
        try #require(locked, "flock(1) holds its lock")

        let read = try Tool.run(
            "read", holder.pidArg, hx(holder.address("buf")), "64", "--format", "raw", "-o", dir.sub("out.bin"))
        #expect(read.exited(0), "\(read)")
        #expect(!FileManager.default.fileExists(atPath: abandoned), "the killed writer's file is gone")
        #expect(FileManager.default.fileExists(atPath: held), "the live writer's file stays")
        for path in unrelated {
            #expect(FileManager.default.fileExists(atPath: path), "not a leftover of out.bin: \(path)")
        }
        #expect(fileSize(dir.sub("out.bin")) == 64)
    }

    @Test func aNonEmptyDirectoryThatIsNoDumpIsRefused() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let dir = TempDir()
        mkdir(dir.sub("mine"), 0o755)
        try #require(FileManager.default.createFile(atPath: dir.sub("mine/notes.txt"), contents: Data("keep me".utf8)))
        for force in [false, true] {
            let result = try Tool.run(
                ["dump", holder.pidArg, "--region", "[stack]", "-o", dir.sub("mine")] + (force ? ["--force"] : []))
            #expect(result.exited(1), "\(result)")
            #expect(result.stderrLines.count == 1, "\(result.stderr)")
            #expect(
                result.stderr.contains("not empty") && result.stderr.contains("notes.txt"),
                "names what is there: \(result.stderr)")
            #expect(dir.entries("mine") == ["notes.txt"], "nothing written, nothing removed")
        }
        // A dump with a foreign file beside it is no dump either.
        let made = try Tool.run("dump", holder.pidArg, "--region", "[stack]", "-o", dir.sub("d"))
        try #require(made.exited(0), "\(made)")
        try #require(FileManager.default.createFile(atPath: dir.sub("d/extra"), contents: Data()))
        let over = try Tool.run("dump", holder.pidArg, "--region", "[stack]", "-o", dir.sub("d"), "--force")
        #expect(over.exited(1) && over.stderr.contains("extra"), "\(over)")
        #expect(dir.entries("d").contains("extra"))
    }

    /// Every exit path of a failed dump removes what it wrote: here the disk fills up at
    /// the second region (a 100 KiB tmpfs; buf's 64 KiB fit, the stack's 132 KiB do not).
    @Test func aDumpThatFailsToWriteLeavesNothing() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let small = try SmallTmpfs(size: "100k")
        let mount = small.path
        let buf = holder.address("buf")
        let result = try Tool.run(
            "dump", holder.pidArg, "--region", "\(hx(buf))-\(hx(buf + 65536))", "--region", "[stack]",
            "-o", mount + "/d")
        #expect(result.exited(1), "no space left: \(result)")
        #expect(result.stderrLines.count == 1 && result.stderr.contains("No space left"), "\(result.stderr)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: mount + "/d")) ?? []
        #expect(!FileManager.default.fileExists(atPath: mount + "/d"), "\(left)")
    }

    /// The disk fills up in the middle of one large region, whose chunks a second thread
    /// writes while the next are read (a 2 MiB tmpfs, an 8 MiB region): the write error
    /// stops the reading, is the error reported, and no file is left.
    @Test func aWriteErrorInTheMiddleOfARegionLeavesNothing() throws {
        let random = try Fixtures.launch(.random, arguments: ["8"])
        defer { random.terminate() }
        let small = try SmallTmpfs(size: "2m")
        let mount = small.path
        let buf = random.address("buf")
        let result = try Tool.run(
            "dump", random.pidArg, "--region", "\(hx(buf))-\(hx(buf + (8 << 20)))", "-o", mount + "/d")
        #expect(result.exited(1), "no space left: \(result)")
        #expect(result.stderrLines.count == 1 && result.stderr.contains("No space left"), "\(result.stderr)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: mount + "/d")) ?? []
        #expect(!FileManager.default.fileExists(atPath: mount + "/d"), "\(left)")
    }
}

/// A tmpfs of `size` (mount(8)'s `size=`) mounted on a new temporary directory for one test,
/// so a write fills it up; unmounted (and the directory removed) when the test lets it go.
final class SmallTmpfs {
    private let directory = TempDir()
    var path: String { directory.sub("small") }

    init(size: String) throws {
        mkdir(path, 0o755)
        let mounted = try Tool.runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path])
        try #require(mounted.exited(0), "cannot mount a tmpfs here: \(mounted)")
    }

    deinit { _ = try? Tool.runProgram("/bin/umount", [path]) }
}
