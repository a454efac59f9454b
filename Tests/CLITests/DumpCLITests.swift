// `vmio-ptrace dump`: the manifest against /proc/PID/maps, the data files against the
// target's memory, region selectors, holes (the truncated fixture), refusing and
// replacing an existing dump, --stop, --json, no progress text when stderr is a pipe,
// and, on a 1 GiB target: bounded memory, progress on a terminal, and an interrupted
// dump that never looks complete.
//
// Also the helpers the restore and search tests share: TempDir, DumpManifestFile,
// readProcMem, u64.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Shared helpers

/// A fresh directory under the temporary directory, removed with everything in it at deinit.
final class TempDir {
    let path: String
    init() {
        let tmp = NSTemporaryDirectory()
        var template = Array(((tmp.hasSuffix("/") ? tmp : tmp + "/") + "vmio-dump-test-XXXXXX").utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    /// `path/name`.
    func sub(_ name: String) -> String { path + "/" + name }
    /// The names in `path/name` (or in `path`), sorted.
    func entries(_ name: String? = nil) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: name.map(sub) ?? path)) ?? []).sorted()
    }
}

/// A JSON number (or `0x…` / decimal string) as UInt64.
func u64(_ any: Any?) -> UInt64? {
    if let n = any as? NSNumber { return n.uint64Value }
    if let s = any as? String {
        return s.hasPrefix("0x") ? UInt64(s.dropFirst(2), radix: 16) : UInt64(s)
    }
    return nil
}

/// `count` bytes of `pid`'s memory at `address`, read by the test itself through
/// /proc/PID/mem (an independent path from the tool's process_vm_readv); nil on error,
/// or the bytes before the first that could not be read.
func readProcMem(_ pid: Int32, _ address: UInt64, _ count: Int) -> [UInt8]? {
    let fd = open("/proc/\(pid)/mem", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
        let n = out.withUnsafeMutableBytes {
            pread(fd, $0.baseAddress! + done, count - done, off_t(Int64(bitPattern: address + UInt64(done))))
        }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        done += n
    }
    return Array(out[0..<done])
}

/// `manifest.json` of a dump directory, read with JSONSerialization (the file format, not
/// the library's Codable types).
struct DumpManifestFile {
    struct Hole: Equatable {
        var address: UInt64
        var length: UInt64
    }
    struct Region {
        var raw: [String: Any]
        var file: String
        var start: UInt64
        var end: UInt64
        var perms: String
        var offset: UInt64
        var path: String
        var deleted: Bool
        var bytesSaved: UInt64
        var holes: [Hole]
        var count: UInt64 { end - start }
        func contains(_ address: UInt64) -> Bool { start <= address && address < end }
    }
    var raw: [String: Any]
    var regions: [Region]
    var complete: Bool { raw["complete"] as? Bool ?? false }
    var stopped: Bool { raw["stopped"] as? Bool ?? false }

    init(_ directory: String) throws {
        let data = try #require(
            FileManager.default.contents(atPath: directory + "/manifest.json"), "no manifest in \(directory)")
        raw = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let list = try #require(raw["regions"] as? [[String: Any]])
        regions = try list.map { r in
            Region(
                raw: r, file: try #require(r["file"] as? String), start: try #require(u64(r["start"])),
                end: try #require(u64(r["end"])), perms: try #require(r["perms"] as? String),
                offset: try #require(u64(r["offset"])), path: try #require(r["path"] as? String),
                deleted: try #require(r["deleted"] as? Bool), bytesSaved: try #require(u64(r["bytes_saved"])),
                holes: try #require(r["holes"] as? [[String: Any]]).map {
                    Hole(address: try #require(u64($0["address"])), length: try #require(u64($0["length"])))
                })
        }
    }

    func region(containing address: UInt64) -> Region? { regions.first { $0.contains(address) } }

    /// The bytes of a region's data file.
    func data(_ region: Region, in directory: String) -> [UInt8]? {
        FileManager.default.contents(atPath: directory + "/" + region.file).map { Array($0) }
    }
}

/// The size of a file (stat), nil if it does not exist.
func fileSize(_ path: String) -> UInt64? {
    var st = stat()
    return stat(path, &st) == 0 ? UInt64(st.st_size) : nil
}

/// Kernel pages a default dump or search leaves out.
let kernelPageNames: Set<String> = ["[vvar]", "[vvar_vclock]", "[vsyscall]"]

/// The maps path as the manifest records it (without the kernel's ` (deleted)`).
func manifestPath(_ line: ProcMapsLine) -> String {
    line.path.hasSuffix(" (deleted)") ? String(line.path.dropLast(" (deleted)".count)) : line.path
}

/// The readable lines of /proc/PID/maps a default dump saves.
func dumpableLines(_ pid: Int32) -> [ProcMapsLine] {
    procMapsLines(pid).filter { $0.perms.hasPrefix("r") && !kernelPageNames.contains($0.path) }
}

/// Runs `program args…` with posix_spawn (stdin on /dev/null, stdout on `stdoutFD` or
/// /dev/null, stderr on `stderrFD` or /dev/null) and returns its exit status (-signal if killed) and its peak
/// resident set size in KiB: the largest `VmHWM` of /proc/PID/status, sampled every 2 ms
/// from its exec until it exits.
///
/// Not `ru_maxrss` from wait4: glibc's posix_spawn (and so Foundation's Process) starts
/// the child with CLONE_VM|CLONE_VFORK, and at exec the kernel folds the high-water RSS of
/// the mm it leaves, which is the parent's, into the child's maxrss; so ru_maxrss reports
/// at least the test process's own peak (measured: 68 MiB for a tool whose VmHWM is 25 MiB).
func spawnMeasuringPeakMemory(
    _ program: String, _ arguments: [String], stdoutFD: Int32? = nil, stderrFD: Int32? = nil
) throws -> (status: Int32, maxRSSKiB: Int) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    if let stdoutFD {
        posix_spawn_file_actions_adddup2(&actions, stdoutFD, 1)
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    }
    if let stderrFD {
        posix_spawn_file_actions_adddup2(&actions, stderrFD, 2)
    } else {
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    }
    let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, program, &actions, nil, argv, environ)
    try #require(rc == 0, "posix_spawn \(program): \(String(cString: strerror(rc)))")
    var status: Int32 = 0
    var peak = 0
    while true {
        // Sampled before reaping: while it runs (a zombie has no VmHWM line).
        // Only once the child is the program: exec releases a vfork parent before it swaps
        // the mm, so an early sample can read the parent's VmHWM (measured: 567 MiB); the
        // name changes after the swap.
        let fields = procStatus(pid)
        if fields["Name"] == String(String(program.split(separator: "/").last ?? "").prefix(15)),
            let hwm = fields["VmHWM"], let kib = Int(hwm.split(separator: " ").first ?? "")
        {
            peak = max(peak, kib)
        }
        let done = waitpid(pid, &status, WNOHANG)
        if done == pid { break }
        if done < 0 && errno != EINTR {
            Issue.record("waitpid: \(String(cString: strerror(errno)))")
            break
        }
        usleep(2_000)
    }
    let signal = status & 0x7f
    return (signal == 0 ? (status >> 8) & 0xff : -signal, peak)
}

/// A new pseudo-terminal: (master, slave) descriptors. (posix_openpt and friends are not
/// visible from Swift here, so through /dev/ptmx and its ioctls.)
func openPseudoTerminal() throws -> (master: Int32, slave: Int32) {
    let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
    try #require(master >= 0, "open /dev/ptmx: \(String(cString: strerror(errno)))")
    var unlock: Int32 = 0
    var number: UInt32 = 0
    let TIOCSPTLCK: UInt = 0x4004_5431, TIOCGPTN: UInt = 0x8004_5430
    guard ioctl(master, TIOCSPTLCK, &unlock) == 0, ioctl(master, TIOCGPTN, &number) == 0 else {
        close(master)
        throw PseudoTerminalError(what: "ioctl on /dev/ptmx: \(String(cString: strerror(errno)))")
    }
    let slave = open("/dev/pts/\(number)", O_RDWR | O_NOCTTY | O_CLOEXEC)
    guard slave >= 0 else {
        close(master)
        throw PseudoTerminalError(what: "open /dev/pts/\(number): \(String(cString: strerror(errno)))")
    }
    return (master, slave)
}

struct PseudoTerminalError: Error { let what: String }

// MARK: - Dump tests on small fixtures

@Suite struct DumpCLITests {
    let holder: FixtureProcess
    let buf: UInt64
    let dir = TempDir()

    init() throws {
        holder = try Fixtures.launch(.holder)
        buf = holder.address("buf")
    }

    var pid: String { holder.pidArg }

    /// Dumps into `dir/name` and returns the result; `extra` before `-o`.
    private func dump(_ extra: [String], into name: String = "d") throws -> RunResult {
        try Tool.run(["dump", pid] + extra + ["-o", dir.sub(name)])
    }

    @Test func wholeProcessManifestMatchesMapsAndMemory() throws {
        let result = try dump([])
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.isEmpty, "no progress text when stderr is a pipe: \(result.stderr)")
        let manifest = try DumpManifestFile(dir.sub("d"))
        let lines = dumpableLines(holder.pid)
        #expect(manifest.raw["format"] as? String == "vmio-dump/1")
        #expect(u64(manifest.raw["pid"]) == UInt64(holder.pid))
        #expect(manifest.complete)
        #expect(!manifest.stopped)
        let saved = manifest.regions.reduce(0) { $0 + $1.bytesSaved }
        #expect(result.lines == ["dumped \(lines.count) regions, \(saved) bytes, into \(dir.sub("d"))"])

        // One region a readable maps line, in order, without [vvar], [vvar_vclock], [vsyscall].
        #expect(manifest.regions.map(\.start) == lines.map(\.start))
        #expect(manifest.regions.map(\.end) == lines.map(\.end))
        #expect(manifest.regions.map(\.perms) == lines.map(\.perms))
        #expect(manifest.regions.map(\.offset) == lines.map(\.offset))
        #expect(manifest.regions.map(\.path) == lines.map(manifestPath))
        #expect(!manifest.regions.contains { kernelPageNames.contains($0.path) })
        #expect(manifest.regions.contains { $0.path == "[stack]" })
        #expect(manifest.regions.contains { $0.path == "[vdso]" })
        #expect(!manifest.regions.contains { !$0.perms.hasPrefix("r") }, "the guard page is not readable")

        // Every data file: full length, every byte saved, and the target's bytes.
        for region in manifest.regions {
            #expect(region.holes.isEmpty, "\(region.raw)")
            #expect(region.bytesSaved == region.count, "\(region.raw)")
            #expect(!region.deleted)
            #expect(region.raw["device"] is String && region.raw["inode"] is NSNumber)
            let data = try #require(manifest.data(region, in: dir.sub("d")), "\(region.file)")
            #expect(UInt64(data.count) == region.count, "\(region.file)")
            #expect(data == readProcMem(holder.pid, region.start, Int(region.count)), "\(region.file) \(region.path)")
        }
        #expect(dir.entries("d") == (manifest.regions.map(\.file) + ["manifest.json"]).sorted(), "no .part file left")

        // The holder's own view of buf, ro and counter.
        let bufRegion = try #require(manifest.region(containing: buf))
        #expect(bufRegion.perms == "rw-p" && bufRegion.path == "")
        let data = try #require(manifest.data(bufRegion, in: dir.sub("d")))
        let at = Int(buf - bufRegion.start)
        #expect(Array(data[at..<at + 65536]) == (try holder.get(buf, 65536)))
        #expect(data[at + 0x100..<at + 0x110].elementsEqual("VMIO-MARKER-0001".utf8))
        let ro = holder.address("ro")
        let roRegion = try #require(manifest.region(containing: ro))
        #expect(roRegion.perms == "r--p")
        let roData = try #require(manifest.data(roRegion, in: dir.sub("d")))
        #expect(roData[Int(ro - roRegion.start)..<Int(ro - roRegion.start) + 4096].allSatisfy { $0 == 0x5a })
        let counter = holder.address("counter")
        let counterRegion = try #require(manifest.region(containing: counter))
        #expect(counterRegion.perms == "rw-p" && counterRegion.path.hasSuffix("/vmio-fixture-holder"))
        let counterData = try #require(manifest.data(counterRegion, in: dir.sub("d")))
        let c = counterData.withUnsafeBytes {
            $0.loadUnaligned(fromByteOffset: Int(counter - counterRegion.start), as: UInt64.self)
        }
        #expect(c == 0xC0FFEE)
        #expect(!manifest.regions.contains { $0.contains(holder.address("guard")) })
    }

    @Test func selectsByName() throws {
        let heap = try dump(["--region", "[heap]"], into: "heap")
        #expect(heap.exited(0), "\(heap)")
        let heapManifest = try DumpManifestFile(dir.sub("heap"))
        let heapLines = procMapsLines(holder.pid).filter { $0.path == "[heap]" }
        try #require(heapLines.count == 1, "the holder has a heap")
        #expect(heapManifest.regions.map(\.start) == [heapLines[0].start])
        #expect(heapManifest.regions.map(\.end) == [heapLines[0].end])
        #expect(heapManifest.regions.map(\.path) == ["[heap]"])

        let binary = try dump(["--region", "vmio-fixture-holder"], into: "bin")
        #expect(binary.exited(0), "\(binary)")
        let binManifest = try DumpManifestFile(dir.sub("bin"))
        let binLines = dumpableLines(holder.pid).filter { $0.path.hasSuffix("/vmio-fixture-holder") }
        #expect(binLines.count >= 3, "text, rodata, data")
        #expect(binManifest.regions.map(\.start) == binLines.map(\.start))
        #expect(binManifest.regions.map(\.offset) == binLines.map(\.offset))
        #expect(binManifest.regions.map(\.perms) == binLines.map(\.perms))
        #expect(binManifest.region(containing: holder.address("code"))?.perms == "r-xp")
        for region in binManifest.regions {
            #expect(manifestDataMatches(binManifest, region, "bin"))
        }
        // The full path selects the same.
        let full = try dump(["--region", binLines[0].path], into: "full")
        #expect(full.exited(0))
        #expect(try DumpManifestFile(dir.sub("full")).regions.map(\.start) == binLines.map(\.start))
    }

    private func manifestDataMatches(_ manifest: DumpManifestFile, _ region: DumpManifestFile.Region, _ name: String)
        -> Bool
    {
        manifest.data(region, in: dir.sub(name)) == readProcMem(holder.pid, region.start, Int(region.count))
    }

    @Test func selectsByRangeAndClips() throws {
        // Inside buf: one region, exactly the range, the bytes of that range.
        let lo = buf + 0x1000, hi = buf + 0x3000
        let result = try dump(["--region", "\(hx(lo))-\(hx(hi))"])
        #expect(result.exited(0), "\(result)")
        let manifest = try DumpManifestFile(dir.sub("d"))
        try #require(manifest.regions.count == 1)
        let region = manifest.regions[0]
        #expect(region.start == lo && region.end == hi && region.bytesSaved == 0x2000)
        #expect(manifest.data(region, in: dir.sub("d")) == (try holder.get(lo, 0x2000)))

        // Unaligned, inside the text mapping: the offset is the file offset of the clipped start.
        let code = holder.address("code")
        let text = try #require(procMapsLines(holder.pid).first { $0.contains(code) })
        let clipped = try dump(["--region", "\(hx(code + 3))-\(hx(code + 0x23))"], into: "code")
        #expect(clipped.exited(0), "\(clipped)")
        let codeManifest = try DumpManifestFile(dir.sub("code"))
        try #require(codeManifest.regions.count == 1)
        let c = codeManifest.regions[0]
        #expect(c.start == code + 3 && c.end == code + 0x23)
        #expect(c.offset == text.offset + (code + 3 - text.start))
        #expect(c.perms == "r-xp" && c.path == text.path)
        #expect(codeManifest.data(c, in: dir.sub("code")) == readProcMem(holder.pid, code + 3, 0x20))

        // Across the guard page: the two rw pages around it, the ---p page left out.
        let guardPage = holder.address("guard")
        let around = try dump(["--region", "\(hx(guardPage - 4096))-\(hx(guardPage + 8192))"], into: "guard")
        #expect(around.exited(0), "\(around)")
        let guardManifest = try DumpManifestFile(dir.sub("guard"))
        #expect(guardManifest.regions.map(\.start) == [guardPage - 4096, guardPage + 4096])
        #expect(guardManifest.regions.map(\.end) == [guardPage, guardPage + 8192])
    }

    @Test func selectsByPermissionAndAnonymous() throws {
        let rw = try dump(["--region", "perm:rw"], into: "rw")
        #expect(rw.exited(0), "\(rw)")
        let rwManifest = try DumpManifestFile(dir.sub("rw"))
        let rwLines = procMapsLines(holder.pid).filter { $0.perms.hasPrefix("rw") }
        #expect(rwManifest.regions.map(\.start) == rwLines.map(\.start))
        #expect(rwManifest.regions.allSatisfy { $0.perms.hasPrefix("rw") })
        #expect(rwManifest.region(containing: buf) != nil)
        #expect(rwManifest.region(containing: holder.address("ro")) == nil)
        #expect(rwManifest.region(containing: holder.address("code")) == nil)

        let anon = try dump(["--region", "anon"], into: "anon")
        #expect(anon.exited(0), "\(anon)")
        let anonManifest = try DumpManifestFile(dir.sub("anon"))
        let anonLines = procMapsLines(holder.pid).filter {
            $0.perms.hasPrefix("r") && ($0.path.isEmpty || $0.path.hasPrefix("[anon:"))
        }
        #expect(anonManifest.regions.map(\.start) == anonLines.map(\.start))
        #expect(anonManifest.regions.allSatisfy { $0.path.isEmpty || $0.path.hasPrefix("[anon:") })
        #expect(anonManifest.region(containing: buf) != nil)
        #expect(!anonManifest.regions.contains { $0.path == "[heap]" || $0.path == "[stack]" })

        // Two selectors: the union, each mapping once.
        let both = try dump(["--region", "[heap]", "--region", "perm:rw"], into: "both")
        #expect(both.exited(0))
        #expect(try DumpManifestFile(dir.sub("both")).regions.map(\.start) == rwLines.map(\.start))
    }

    /// `perm:r` picks every readable mapping, but the kernel pages stay out unless named:
    /// they are readable in maps only, and would be saved as holes.
    @Test func permissionSelectorLeavesKernelPagesOut() throws {
        let result = try dump(["--region", "perm:r"])
        #expect(result.exited(0), "\(result)")
        let manifest = try DumpManifestFile(dir.sub("d"))
        #expect(manifest.complete)
        #expect(manifest.regions.map(\.start) == dumpableLines(holder.pid).map(\.start))
        #expect(!manifest.regions.contains { kernelPageNames.contains($0.path) })
    }

    @Test func holesOfTheTruncatedFixture() throws {
        let fixture = try Fixtures.launch(.truncated)
        defer { fixture.terminate() }
        let map = fixture.address("map")
        #expect(fixture.number("map") == 16384)
        let line = try #require(procMapsLines(fixture.pid).first { $0.contains(map) })
        #expect(line.start == map && line.end == map + 16384)
        #expect(line.perms == "r--p")
        #expect(line.path.hasSuffix(" (deleted)"), "the fixture unlinked its file: \(line.path)")

        let result = try Tool.run("dump", fixture.pidArg, "-o", dir.sub("t"))
        #expect(result.exited(2), "\(result)")
        #expect(result.stderrLines == ["vmio-ptrace: dump incomplete: 1 hole, 12288 bytes could not be read"])
        #expect(
            result.lines.contains("hole: 12288 bytes at \(hx(map + 4096)) (page fault at \(hx(map + 4096)))"),
            "\(result)")
        let manifest = try DumpManifestFile(dir.sub("t"))
        #expect(!manifest.complete)
        let region = try #require(manifest.region(containing: map))
        #expect(region.start == map && region.end == map + 16384)
        #expect(region.holes == [.init(address: map + 4096, length: 12288)])
        #expect(
            (region.raw["holes"] as? [[String: Any]])?.first?["reason"] as? String == "page fault at \(hx(map + 4096))")
        #expect(region.bytesSaved == 4096)
        #expect(region.perms == "r--p")
        #expect(region.deleted)
        #expect(region.path == manifestPath(line))
        let data = try #require(manifest.data(region, in: dir.sub("t")))
        #expect(data.count == 16384)
        #expect(data[0..<4096].allSatisfy { $0 == 0x5c })
        #expect(data[4096...].allSatisfy { $0 == 0 }, "holes read as zeros")
        // Every other region is whole.
        for other in manifest.regions where other.start != map {
            #expect(other.holes.isEmpty && other.bytesSaved == other.count, "\(other.raw)")
        }

        // --json: the same facts.
        let json = try Tool.run(
            "dump", fixture.pidArg, "--region", "\(hx(map))-\(hx(map + 16384))", "-o", dir.sub("j"), "--json")
        #expect(json.exited(2), "\(json)")
        let object = try #require(json.json, "\(json)")
        #expect(object["complete"] as? Bool == false)
        #expect(u64(object["regions"]) == 1)
        #expect(u64(object["bytes_saved"]) == 4096)
        let holes = try #require(object["holes"] as? [[String: Any]])
        #expect(holes.count == 1)
        #expect(u64(holes.first?["address"]) == map + 4096)
        #expect(u64(holes.first?["length"]) == 12288)
    }

    @Test func anExistingDumpIsRefusedWithoutForce() throws {
        let first = try dump(["--region", "[heap]", "--region", "\(hx(buf))-\(hx(buf + 65536))"])
        #expect(first.exited(0), "\(first)")
        let before = try #require(FileManager.default.contents(atPath: dir.sub("d/manifest.json")))
        let oldFiles = try DumpManifestFile(dir.sub("d")).regions.map(\.file)
        #expect(oldFiles.count == 2)

        let again = try dump(["--region", "[stack]"])
        #expect(again.exited(1), "\(again)")
        #expect(again.stderrLines.count == 1, "\(again.stderr)")
        #expect(again.stderr.contains("already holds a dump") && again.stderr.contains("--force"), "\(again.stderr)")
        #expect(FileManager.default.contents(atPath: dir.sub("d/manifest.json")) == before, "left as it was")
        #expect(dir.entries("d") == (oldFiles + ["manifest.json"]).sorted())

        let forced = try dump(["--region", "[stack]", "--force"])
        #expect(forced.exited(0), "\(forced)")
        let replaced = try DumpManifestFile(dir.sub("d"))
        #expect(replaced.regions.map(\.path) == ["[stack]"])
        #expect(
            dir.entries("d") == (replaced.regions.map(\.file) + ["manifest.json"]).sorted(),
            "the old data files are gone")

        // A file where the directory should be.
        let file = dir.sub("plain")
        #expect(FileManager.default.createFile(atPath: file, contents: Data([1])))
        let onFile = try dump(["--region", "[stack]"], into: "plain")
        #expect(onFile.exited(1), "\(onFile)")
        #expect(onFile.stderrLines.count == 1 && onFile.stderr.contains("not a directory"), "\(onFile.stderr)")
    }

    @Test func badInput() throws {
        // A selection that picks nothing: exit 1, nothing created.
        let none = try dump(["--region", "no-such-library.so"])
        #expect(none.exited(1), "\(none)")
        #expect(none.stderrLines.count == 1 && none.stderr.contains("no readable mapping"), "\(none.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.sub("d")))
        // A guard page alone is not readable.
        let guardPage = holder.address("guard")
        let unreadable = try dump(["--region", "\(hx(guardPage))-\(hx(guardPage + 4096))"])
        #expect(unreadable.exited(1), "\(unreadable)")
        // Malformed selectors are command-line errors.
        for selector in ["perm:q", "0x2000-0x1000", "12-"] {
            let bad = try dump(["--region", selector])
            #expect(bad.exited(64), "\(selector): \(bad)")
        }
        let noOutput = try Tool.run("dump", pid)
        #expect(noOutput.exited(64), "\(noOutput)")
        // No such process.
        let gone = try Tool.run("dump", "999999999", "-o", dir.sub("gone"))
        #expect(gone.exited(4), "\(gone)")
        #expect(gone.stderrLines.count == 1, "\(gone.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.sub("gone")))
    }

    @Test func jsonShape() throws {
        let result = try dump(["--region", "\(hx(buf))-\(hx(buf + 8192))", "--json"])
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.isEmpty)
        let object = try #require(result.json, "\(result)")
        #expect(Set(object.keys) == ["pid", "directory", "regions", "bytes_saved", "holes", "complete", "stopped"])
        #expect(u64(object["pid"]) == UInt64(holder.pid))
        #expect(object["directory"] as? String == dir.sub("d"))
        #expect(u64(object["regions"]) == 1)
        #expect(u64(object["bytes_saved"]) == 8192)
        #expect((object["holes"] as? [Any])?.isEmpty == true)
        #expect(object["complete"] as? Bool == true)
        #expect(object["stopped"] as? Bool == false)
    }

    /// --stop: a consistent snapshot of a multi-threaded target, which runs again afterwards.
    @Test func stopResumesEveryThread() throws {
        let threads = try Fixtures.launch(.threads)
        defer { threads.terminate() }
        let result = try Tool.run("dump", threads.pidArg, "--stop", "-o", dir.sub("s"), "--json")
        #expect(result.exited(0), "\(result)")
        #expect(result.json?["stopped"] as? Bool == true)
        #expect(try DumpManifestFile(dir.sub("s")).stopped)
        #expect(waitUntil { isFreeRunning(threads.pid) }, "\(procStatus(threads.pid))")
        #expect(waitUntil { threadTracers(threads.pid).values.allSatisfy { $0 == "0" } })
        #expect(threadStates(threads.pid).count == 4)
        #expect(!threadStates(threads.pid).values.contains { $0 == "t" || $0 == "T" }, "\(threadStates(threads.pid))")
        #expect(try threads.send("ping") == "pong")

        // Also on the error path (the directory already holds a dump).
        let refused = try Tool.run("dump", threads.pidArg, "--stop", "-o", dir.sub("s"))
        #expect(refused.exited(1), "\(refused)")
        #expect(waitUntil { isFreeRunning(threads.pid) }, "\(procStatus(threads.pid))")
        #expect(try threads.send("ping") == "pong")

        // And without --stop the manifest says so.
        #expect(try dump(["--region", "[stack]"]).exited(0))
        #expect(!(try DumpManifestFile(dir.sub("d")).stopped))
    }
}

// MARK: - 1 GiB

extension HeavyOrTimed {
    @Suite(.serialized) struct DumpCLILargeTests {
        /// A region file of at least 8 MiB is being written in `directory`: the dump has reached
        /// the exiter's 1 GiB buffer (every other region of it is smaller).
        static func bufIsBeingSaved(_ directory: String) -> Bool {
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).contains { name in
                name.hasSuffix(".part") && (fileSize(directory + "/" + name) ?? 0) >= 8 << 20
            }
        }

        /// Restore and search of 1 GiB with standard error on a terminal: the progress line
        /// (verb, bytes done of the total, rate, ETA), redrawn in place and erased at the end.
        @Test func restoreAndSearchShowProgressOnATerminal() throws {
            let exiter = try Fixtures.launch(.exiter, arguments: ["1024"])
            defer { exiter.terminate() }
            let buf = exiter.address("buf"), size = exiter.number("buf")
            let range = "\(hx(buf))-\(hx(buf + size))"
            let dir = TempDir()
            let dumped = try Tool.run("dump", exiter.pidArg, "--region", range, "-o", dir.sub("d"))
            try #require(dumped.exited(0), "\(dumped)")

            /// Runs the tool with standard error on a terminal; its status and what the terminal showed.
            func onATerminal(_ arguments: [String]) throws -> (status: Int32, text: String) {
                let (master, slave) = try openPseudoTerminal()
                defer { close(master) }
                let drain = DrainThread(fd: master)
                let run = try spawnMeasuringPeakMemory(Tool.path, arguments, stderrFD: slave)
                close(slave)
                return (run.status, String(decoding: drain.result(timeout: 10), as: UTF8.self))
            }

            let restore = try onATerminal(["restore", exiter.pidArg, dir.sub("d")])
            #expect(restore.status == 0, "\(restore.text.debugDescription)")
            let r = restore.text
            #expect(r.hasPrefix("\r\u{1b}[Krestore: "), "\(r.debugDescription.prefix(300))")
            #expect(
                r.contains(" of 1.0 GiB") && r.contains("/s") && r.contains("ETA"), "\(r.debugDescription.prefix(300))")
            #expect(r.hasSuffix("\r\u{1b}[K"), "erased at the end: \(r.debugDescription.suffix(100))")
            #expect(!r.contains("\n"), "one line, redrawn")

            let search = try onATerminal(["search", exiter.pidArg, "--u64", "0xfedcba9876543210", "--region", range])
            #expect(search.status == 0, "\(search.text.debugDescription)")
            let t = search.text
            #expect(t.hasPrefix("\r\u{1b}[Ksearch: "), "\(t.debugDescription.prefix(300))")
            #expect(
                t.contains(" of 1.0 GiB") && t.contains("/s") && t.contains("ETA"), "\(t.debugDescription.prefix(300))")
            // Erased before the summary line, which stays (the terminal turns \n into \r\n).
            #expect(t.hasSuffix("\r\u{1b}[K0 hits in \(size) bytes\r\n"), "\(t.debugDescription.suffix(120))")
            #expect(try exiter.send("ping") == "pong")
        }

        /// exiter 1024: 1 GiB dumped with bounded memory (and a progress line when stderr is a
        /// terminal); then a dump of it killed part-way never looks complete, and the target
        /// it had stopped runs again.
        @Test func oneGiBBoundedMemoryProgressAndInterruption() throws {
            let exiter = try Fixtures.launch(.exiter, arguments: ["1024"])
            defer { exiter.terminate() }
            let buf = exiter.address("buf")
            #expect(exiter.number("buf") == 1 << 30)
            let dir = TempDir()

            // Standard error on a pseudo-terminal, drained while the dump runs.
            let (master, slave) = try openPseudoTerminal()
            defer { close(master) }
            let drain = DrainThread(fd: master)
            let run = try spawnMeasuringPeakMemory(
                Tool.path, ["dump", exiter.pidArg, "-o", dir.sub("big")], stderrFD: slave)
            close(slave)
            let progress = String(decoding: drain.result(timeout: 10), as: UTF8.self)
            #expect(run.status == 0)
            if !Tool.isSanitized {  // a sanitizer's shadow and quarantine dominate; checked unsanitized
                #expect(
                    run.maxRSSKiB > 0 && run.maxRSSKiB < 64 * 1024, "peak RSS \(run.maxRSSKiB) KiB for a 1 GiB dump")
            }

            let manifest = try DumpManifestFile(dir.sub("big"))
            #expect(manifest.complete)
            let region = try #require(manifest.region(containing: buf))
            #expect(region.bytesSaved == region.count && region.count >= 1 << 30)
            // Spot checks of word i == i across the file, without loading 1 GiB.
            let fd = open(dir.sub("big/" + region.file), O_RDONLY)
            try #require(fd >= 0)
            defer { close(fd) }
            var st = stat()
            #expect(fstat(fd, &st) == 0 && UInt64(st.st_size) == region.count)
            for word: UInt64 in [0, 1, 4095, 1 << 19, (1 << 27) - 1] {
                var value: UInt64 = 0
                let n = pread(fd, &value, 8, off_t(buf - region.start + word * 8))
                #expect(n == 8 && value == word, "word \(word)")
            }

            // The progress line: bytes done, total, rate, ETA, redrawn in place, erased at the end.
            #expect(progress.contains("\r\u{1b}[Kdump: "), "\(progress.debugDescription.prefix(300))")
            #expect(
                progress.contains(" of 1.0 GiB") && progress.contains("/s") && progress.contains("ETA"),
                "\(progress.debugDescription.prefix(300))")
            #expect(progress.hasSuffix("\r\u{1b}[K"), "erased at the end: \(progress.debugDescription.suffix(100))")
            #expect(!progress.contains("\n"), "one line, redrawn")

            // Replace that dump with one interrupted part-way (--stop: the target is held
            // meanwhile). The new dump is written beside the old one, which stays complete:
            // SIGINT removes the new one's files; SIGKILL leaves them, in their staging directory.
            let oldNames = dir.entries("big")
            for signal in [SIGINT, SIGKILL] {
                let running = try Running(
                    Tool.path, ["dump", exiter.pidArg, "--stop", "--force", "-o", dir.sub("big")])
                let staging = ".big.\(running.pid).new"
                let started = waitUntil(timeout: 60) { Self.bufIsBeingSaved(dir.sub(staging)) }
                #expect(started, "a region file grows beside the old dump: \(dir.entries())")
                #expect(running.isRunning, "still dumping")
                kill(running.pid, signal)
                let ended = running.finish(timeout: 10)
                #expect(ended.signaled && ended.status == signal, "\(ended)")
                #expect(dir.entries("big") == oldNames, "the old dump is as it was: \(dir.entries("big"))")
                if signal == SIGINT {
                    #expect(!dir.entries().contains(staging), "removed: \(dir.entries())")
                } else {
                    let names = dir.entries(staging)
                    #expect(!names.contains("manifest.json"), "an interrupted dump never looks complete: \(names)")
                    #expect(names.contains { $0.hasSuffix(".part") }, "\(names)")
                    try? FileManager.default.removeItem(atPath: dir.sub(staging))
                }
                #expect(
                    waitUntil { isFreeRunning(exiter.pid) }, "resumed after its tracer ended: \(procStatus(exiter.pid))"
                )
            }
            #expect(try exiter.send("ping") == "pong")

            // The old dump holds: a new one needs --force, and replaces it.
            let fresh = try Tool.run("dump", exiter.pidArg, "--region", "[stack]", "-o", dir.sub("big"))
            #expect(fresh.exited(1) && fresh.stderr.contains("already holds a dump"), "\(fresh)")
            let replaced = try Tool.run("dump", exiter.pidArg, "--region", "[stack]", "-o", dir.sub("big"), "--force")
            #expect(replaced.exited(0), "\(replaced)")
            #expect(dir.entries("big").count == 2 && dir.entries().filter { $0.hasPrefix(".big.") }.isEmpty)

            // The target dies part-way through buf (killed once buf's file has begun to grow),
            // stderr a terminal: the progress line is erased before the error line, no manifest,
            // and the region cut short is not renamed into place (nor left as .part).
            let (master2, slave2) = try openPseudoTerminal()
            defer { close(master2) }
            let drain2 = DrainThread(fd: master2)
            let dumping = try Running(Tool.path, ["dump", exiter.pidArg, "-o", dir.sub("gone")], stderrFD: slave2)
            close(slave2)
            let underWay = waitUntil(timeout: 60) { Self.bufIsBeingSaved(dir.sub("gone")) }
            kill(exiter.pid, SIGKILL)
            let gone = dumping.finish(timeout: 60)
            let goneText = String(decoding: drain2.result(timeout: 10), as: UTF8.self)
            #expect(exiter.waitForExit(timeout: 5))
            try #require(underWay, "buf's file never began to grow: \(dir.entries("gone")), \(gone)")
            try #require(!gone.exited(0), "the dump finished before the kill: nothing interrupted")
            #expect(gone.exited(4), "\(gone): \(goneText.debugDescription)")
            let errorLine = try #require(goneText.range(of: "vmio-ptrace: "), "\(goneText.debugDescription)")
            let before = goneText[..<errorLine.lowerBound]
            #expect(
                before.isEmpty || before.hasSuffix("\r\u{1b}[K"),
                "progress erased first: \(before.suffix(120).debugDescription)")
            let goneNames = dir.entries("gone")
            #expect(
                !goneNames.contains("manifest.json") && !goneNames.contains { $0.hasSuffix(".part") }, "\(goneNames)")
            for name in goneNames {
                let fields = name.dropLast(4).split(separator: "-")
                try #require(name.hasSuffix(".bin") && fields.count == 3, "unexpected \(name)")
                let start = try #require(UInt64(fields[1], radix: 16)), end = try #require(UInt64(fields[2], radix: 16))
                #expect(!(start <= buf && buf < end), "the region cut short is there as \(name)")
                #expect(fileSize(dir.sub("gone/" + name)) == end - start)
            }
        }
    }
}
