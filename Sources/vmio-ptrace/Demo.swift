import ArgumentParser
import Foundation
import VmIO
import VmioCommands
import VmioFixtures
import VmioScript

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A self-contained tour on two fixture processes.",
        discussion: """
            Starts two copies of the holder fixture (built with the tool and found next to it, or \
            installed in PREFIX/libexec/vmio-ptrace), \
            shows their maps, reads and decodes a buffer, writes and verifies, copies between \
            the two processes, shows a partial read stopping exactly at a mapping's end, \
            patches code with --force, stops and resumes a target, and leaves nothing running. \
            Each step runs this binary as a user would and checks the result; the demo exits 1 \
            if any step does not behave as documented.
            """
    )

    @Option(help: "The holder fixture binary (default: vmio-fixture-holder next to this tool, or installed).")
    var fixture: String?

    func run() throws {
        let tool = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        // Built: next to the tool. Installed (scripts/install, the Debian package): PREFIX/libexec/vmio-ptrace.
        let bin = tool.deletingLastPathComponent()
        let candidates = [
            bin.appendingPathComponent("vmio-fixture-holder").path,
            bin.deletingLastPathComponent().appendingPathComponent("libexec/vmio-ptrace/vmio-fixture-holder").path,
        ]
        let fixturePath =
            fixture ?? candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
        guard FileManager.default.isExecutableFile(atPath: fixturePath) else {
            printError("vmio-ptrace: demo: no fixture at \(fixturePath); build the package first (swift build)")
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
        let tour = Tour(tool: tool.path, fixture: fixturePath)
        do {
            try tour.run()
        } catch let failure as TourFailure {
            tour.stopFixtures()
            printError("vmio-ptrace: demo: \(failure.message)")
            throw ExitCode(ExitStatus.badInput.rawValue)
        }
    }
}

private struct TourFailure: Error {
    let message: String
}

extension FixtureProcess {
    /// A fact's first value as printed (`buf 0x… 65536` → `0x…`).
    func hex(_ key: String) -> String { facts[key]?.first ?? "0x0" }

    /// Writes one command line and returns the reply line.
    func ask(_ command: String) throws -> String {
        do { return try send(command) } catch { throw TourFailure(message: "the fixture \(pid): \(error)") }
    }
}

/// The steps of the tour.
private final class Tour {
    let tool: String
    let fixture: String
    var holders: [FixtureProcess] = []
    var step = 0

    init(tool: String, fixture: String) {
        self.tool = tool
        self.fixture = fixture
    }

    func stopFixtures() {
        for holder in holders { holder.terminate() }
    }

    func startHolder() throws -> FixtureProcess {
        let holder: FixtureProcess
        do {
            holder = try Fixtures.launch(.holder, executable: URL(fileURLWithPath: fixture))
        } catch {
            throw TourFailure(message: "cannot start the fixture: \(error)")
        }
        // Another program that prints `ready` is not the holder: the tour needs its addresses.
        let missing = ["buf", "code", "edge"].filter { holder.facts[$0]?.first?.hasPrefix("0x") != true }
        guard missing.isEmpty else {
            holder.terminate()
            throw TourFailure(
                message:
                    "\(fixture) is not the holder fixture: it printed no \(missing.joined(separator: ", ")) address")
        }
        return holder
    }

    func heading(_ text: String) {
        step += 1
        print("\n== \(step). \(text)")
    }

    /// Runs the tool with `arguments`, echoing the command line and its output.
    @discardableResult
    func vmio(_ arguments: [String], expect status: Int32 = 0, show lines: Int = 12) throws -> (
        out: String, err: String
    ) {
        print("$ vmio-ptrace " + arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " "))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let stdout = String(decoding: outData, as: UTF8.self), stderr = String(decoding: errData, as: UTF8.self)
        let shown = stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        for line in shown.prefix(lines) { print("  " + line) }
        if shown.count > lines { print("  … (\(shown.count - lines) more lines)") }
        for line in stderr.split(separator: "\n") { print("  [stderr] " + line) }
        if p.terminationStatus != status {
            throw TourFailure(message: "step \(step): expected exit status \(status), got \(p.terminationStatus)")
        }
        print("  [exit status \(p.terminationStatus)]")
        return (stdout, stderr)
    }

    func check(_ condition: Bool, _ what: String) throws {
        guard condition else { throw TourFailure(message: "step \(step): \(what)") }
        print("  ✓ " + what)
    }

    func run() throws {
        defer { stopFixtures() }
        heading("Start two fixture processes that hold known buffers")
        let a = try startHolder(), b = try startHolder()
        holders = [a, b]
        print("  holder A: pid \(a.pid), buffer at \(a.hex("buf")), a page before a hole at \(a.hex("edge"))")
        print("  holder B: pid \(b.pid), buffer at \(b.hex("buf"))")
        let pa = String(a.pid), pb = String(b.pid)

        heading("The maps of A (first lines)")
        let maps = try vmio(["maps", pa], show: 6)
        let buf = a.address("buf")
        let holding = maps.out.split(separator: "\n").first { line in
            let bounds = line.prefix(while: { $0 != " " }).split(separator: "-").compactMap { UInt64($0, radix: 16) }
            return bounds.count == 2 && bounds[0] <= buf && buf < bounds[1]
        }
        try check(
            holding.map { $0.contains(" rw-p ") } ?? false,
            "A's buffer lies in a rw-p mapping: \(holding.map(String.init) ?? "none")")

        heading("Read and decode A's buffer")
        let dump = try vmio(["read", pa, a.hex("buf") + "+0x100", "32"])
        try check(dump.out.contains("VMIO-MARKER-0001"), "the hex dump shows the marker string")
        let u64 = try vmio(["read", pa, a.hex("buf") + "+0x200", "8", "--format", "u64"])
        try check(
            UInt64(u64.out.trimmingCharacters(in: .whitespacesAndNewlines)) == 0x1122_3344_5566_7788,
            "u64 decodes to 0x1122334455667788")
        let f64 = try vmio(["read", pa, a.hex("buf") + "+0x208", "8", "--format", "f64"])
        try check(f64.out.hasPrefix("3.5"), "f64 decodes to 3.5")
        let str = try vmio(["read", pa, a.hex("buf") + "+0x300", "64", "--format", "str"])
        try check(str.out == "hello, vmio\n", "str stops at the NUL")

        heading("Write into A, verified through the write-to-read handover")
        try vmio(["write", pa, a.hex("buf") + "+0x400", "--string", "written by vmio-ptrace", "--nul", "--verify"])
        let seen = try a.ask("get \(String((a.address("buf") + 0x400).hex)) 22")
        try check(seen == hexString(Array("written by vmio-ptrace".utf8)), "A itself now reads the new bytes")

        heading("Copy 4 KiB from A to B")
        try vmio(["copy", "\(pa):\(a.hex("buf"))", "\(pb):\(b.hex("buf"))+0x1000", "4096"])
        let inA = try a.ask("get \(a.hex("buf")) 4096"), inB = try b.ask("get \((b.address("buf") + 0x1000).hex) 4096")
        try check(inA == inB, "B holds exactly A's 4096 bytes")

        heading("A read that runs off the end of a mapping stops exactly there")
        let edge = a.address("edge")
        let partial = try vmio(["read", pa, (edge + 4000).hex, "200"], expect: 2)
        try check(
            partial.err.contains("96 of 200 bytes moved") && partial.err.contains((edge + 4096).hex),
            "96 bytes moved; the first faulting address is the mapping's end \((edge + 4096).hex)")

        heading("Patch B's code: refused without --force, done with it")
        try check(try b.ask("answer") == "42", "B's function answers 42")
        try vmio(["write", pb, b.hex("code"), "--hex", "b8 07 00 00 00 c3"], expect: 3)
        try vmio(["write", pb, b.hex("code"), "--hex", "b8 07 00 00 00 c3", "--force", "--verify"])
        try check(try b.ask("answer") == "7", "B's function now answers 7 (mov eax, 7; ret)")

        heading("Stop A for a consistent snapshot; it runs on afterwards")
        try vmio(["read", pa, a.hex("buf") + "+0x200", "8", "--format", "u64", "--stop"])
        let status = (try? String(contentsOfFile: "/proc/\(a.pid)/status", encoding: .utf8)) ?? ""
        let state = status.split(separator: "\n").first { $0.hasPrefix("State:") } ?? ""
        let tracer = status.split(separator: "\n").first { $0.hasPrefix("TracerPid:") } ?? ""
        try check(
            !state.contains("t (tracing stop)") && tracer.hasSuffix("\t0"), "A is \(state.dropFirst(7)), not traced")
        try check(try a.ask("ping") == "pong", "A still answers")

        heading("Done")
        stopFixtures()
        try check(holders.allSatisfy { !$0.isRunning }, "both fixtures have exited; nothing is left running")
    }
}
