// The library examples (Examples/library: one executable a product use, depending on this
// package by path as another package would) built and run against fixtures, and README.md's
// library snippets checked against them, so neither can drift.
//
// The examples build once a test run, into their own scratch path (.build-examples): minutes
// from clean, seconds when up to date. The suite is serialized so that the build runs once.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct LibraryExamplesTests {
    static let package = repositoryRoot.appendingPathComponent("Examples/library")
    static let examples = ["read-range", "copy-between", "stream-region", "unwind-thread", "run-session"]

    /// `swift build` of the examples package, once a test run: the folder of its executables.
    static let built: Result<URL, BuildFailure> = {
        let scratch = repositoryRoot.appendingPathComponent(".build-examples")
        let arguments = ["swift", "build", "--package-path", package.path, "--scratch-path", scratch.path]
        guard let build = try? Tool.runProgram("/usr/bin/env", arguments, timeout: 1800), build.exited(0) else {
            let again = try? Tool.runProgram("/usr/bin/env", arguments, timeout: 1800)
            return .failure(BuildFailure(output: again.map { "\($0)" } ?? "swift build did not run"))
        }
        return .success(scratch.appendingPathComponent("debug"))
    }()

    struct BuildFailure: Error, CustomStringConvertible {
        var output: String
        var description: String { "the library examples did not build: \(output)" }
    }

    /// Runs example `name` with `arguments`.
    static func run(_ name: String, _ arguments: [String]) throws -> RunResult {
        let bin = try built.get()
        return try Tool.runProgram(bin.appendingPathComponent(name).path, arguments, timeout: 120)
    }

    static func hex(_ address: UInt64) -> String { "0x" + String(address, radix: 16) }

    @Test("read-range: all the bytes, or the prefix up to the fault and where it stopped")
    func readRange() throws {
        let holder = try Fixtures.launch(.holder)
        let buf = holder.address("buf"), guardPage = holder.address("guard"), edge = holder.address("edge")
        let whole = try Self.run("read-range", [String(holder.pid), Self.hex(buf + 0x200), "8"])
        #expect(whole.exited(0) && whole.lines == ["read 8 of 8 bytes: 88 77 66 55 44 33 22 11"], "\(whole)")
        // Into the PROT_NONE page: mapped (so the registry grants the owner), unreadable.
        let cut = try Self.run("read-range", [String(holder.pid), Self.hex(guardPage - 96), "200"])
        #expect(cut.exited(2), "\(cut)")
        #expect(cut.lines.first?.hasPrefix("read 96 of 200 bytes: ") == true, "\(cut)")
        #expect(cut.lines.dropFirst() == ["stopped by a page fault at \(Self.hex(guardPage))"], "\(cut)")
        // Past the edge page nothing is mapped: no owner is granted, nothing is read.
        let unmapped = try Self.run("read-range", [String(holder.pid), Self.hex(edge + 4000), "200"])
        #expect(
            unmapped.exited(1) && unmapped.lines == ["read-range: address \(Self.hex(edge + 4096)) is in no mapping"],
            "\(unmapped)")
    }

    @Test("copy-between: the prefix lands in the other process; the source-side fault is named")
    func copyBetween() throws {
        let source = try Fixtures.launch(.holder), destination = try Fixtures.launch(.holder)
        let edge = source.address("edge"), buf = destination.address("buf")
        let before = try destination.send("get \(Self.hex(buf + 2048)) 4")
        let copy = try Self.run(
            "copy-between",
            [String(source.pid), Self.hex(edge + 2048), String(destination.pid), Self.hex(buf), "8192"])
        #expect(copy.exited(2), "\(copy)")
        #expect(
            copy.lines == [
                "copied 2048 of 8192 bytes",
                "stopped on the source side (pid \(source.pid)): page fault at \(Self.hex(edge + 4096))",
            ], "\(copy)")
        #expect(try destination.send("get \(Self.hex(buf)) 4") == "abababab")
        #expect(try destination.send("get \(Self.hex(buf + 2048)) 4") == before, "nothing past the prefix moved")
    }

    @Test("stream-region: the readable page as one chunk, the unmapped rest as one hole; the target let go")
    func streamRegion() throws {
        let holder = try Fixtures.launch(.holder)
        let edge = holder.address("edge")
        let stream = try Self.run("stream-region", [String(holder.pid), Self.hex(edge), "12288"])
        #expect(stream.exited(2), "\(stream)")
        #expect(
            stream.lines == [
                "chunk at \(Self.hex(edge)): 4096 bytes, sum \(4096 * 0xab)",
                "hole at \(Self.hex(edge + 4096)): 8192 bytes, page fault at \(Self.hex(edge + 4096))",
                "moved 4096 of 12288 bytes",
            ], "\(stream)")
        let status = try String(contentsOfFile: "/proc/\(holder.pid)/status", encoding: .utf8)
        #expect(status.contains("TracerPid:\t0\n"), "held stopped for the stream, then let go: \(status)")
        #expect(try holder.send("ping") == "pong")
    }

    @Test("unwind-thread: the main thread's frames down to main; the target is left running, untraced")
    func unwindThread() throws {
        let fixture = try Fixtures.launch(.deepStack)
        let unwind = try Self.run("unwind-thread", [String(fixture.pid)])
        #expect(unwind.exited(0), "\(unwind)")
        let names = unwind.lines.compactMap { $0.split(separator: " ").dropFirst(2).first }
            .map { String($0.split(separator: "+").first ?? "") }
        let expected = ["wait_for_commands", "recurse", "level_three", "level_two", "level_one", "main"]
        #expect(expected.allSatisfy(names.contains), "\(unwind)")
        #expect(unwind.lines.last?.hasPrefix("end: ") == true, "\(unwind)")
        let status = try String(contentsOfFile: "/proc/\(fixture.pid)/status", encoding: .utf8)
        #expect(status.contains("TracerPid:\t0\n"), "\(status)")
        #expect(try fixture.send("ping") == "pong")
    }

    @Test("run-session: an example script runs from Swift, and a failed expect is its exit status")
    func runSession() throws {
        let holder = try Fixtures.launch(.holder)
        let script = try String(
            contentsOf: repositoryRoot.appendingPathComponent("Examples/check-values.vmio"), encoding: .utf8)
        let session = try Self.run("run-session", [String(holder.pid), script])
        #expect(session.exited(0), "\(session)")
        #expect(session.lines.last?.hasSuffix(" commands, status 0") == true, "\(session)")
        #expect(
            session.lines.contains { $0.hasPrefix("buf at 0x") && $0.hasSuffix("counter = 0xc0ffee") }, "\(session)")
        let failed = try Self.run(
            "run-session", [String(holder.pid), "stop\nexpect (read sym:counter 8 --format u64) == 1"])
        #expect(!failed.exited(0) && failed.lines.last?.hasPrefix("2 commands, status ") == true, "\(failed)")
        let status = try String(contentsOfFile: "/proc/\(holder.pid)/status", encoding: .utf8)
        #expect(status.contains("TracerPid:\t0\n"), "the session's stop was let go: \(status)")
    }

    @Test("each example imports only the products it lists and the system's modules")
    func examplesImportOnlyTheirProducts() throws {
        // With MemberImportVisibility (Examples/library/Package.swift) a member counts only
        // from a module imported, so an example that builds uses nothing but these products:
        // what VmioScript's API names is in VmIO and VmioPtrace, not in VmioCommands.
        let manifest = try String(
            contentsOf: Self.package.appendingPathComponent("Package.swift"), encoding: .utf8)
        let system: Set<String> = ["Glibc", "Foundation", "Synchronization", "Dispatch"]
        for name in Self.examples {
            let entry = try #require(
                manifest.split(separator: "\n").first { $0.contains("(\"\(name)\", [") }, "\(name) in Package.swift")
            // `("name", ["VmIO", "VmioPtrace"]),`: the quoted words after the name.
            let quoted = entry.split(separator: "\"", omittingEmptySubsequences: false).enumerated()
            let products = Set(quoted.filter { $0.offset % 2 == 1 }.dropFirst().map { String($0.element) })
            let source = try String(
                contentsOf: Self.package.appendingPathComponent("Sources/\(name)/main.swift"), encoding: .utf8)
            let imports = source.split(separator: "\n").filter { $0.hasPrefix("import ") }
                .map { String($0.dropFirst("import ".count)) }
            #expect(!imports.isEmpty)
            for module in imports {
                #expect(products.contains(module) || system.contains(module), "\(name) imports \(module)")
            }
        }
    }

    @Test("every Swift snippet of README's \"The library\" is part of an example, and every example is named there")
    func readmeSnippetsAreExamples() throws {
        let readme = try String(contentsOf: repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let snippets = swiftBlocks(of: readme, section: "The library")
        #expect(!snippets.isEmpty)
        let sources = try Self.examples.map { name in
            try String(contentsOf: Self.package.appendingPathComponent("Sources/\(name)/main.swift"), encoding: .utf8)
        }
        for snippet in snippets {
            #expect(sources.contains { $0.contains(snippet) }, "README snippet is in no example:\n\(snippet)")
        }
        for name in Self.examples {
            #expect(readme.contains("Examples/library/Sources/\(name)/main.swift"), "README names \(name)")
        }
    }
}

/// The text of each ```swift block of README section `heading` (a `## ` heading), each
/// ending in a newline.
func swiftBlocks(of readme: String, section heading: String) -> [String] {
    guard let start = readme.range(of: "\n## \(heading)\n") else { return [] }
    let rest = readme[start.upperBound...]
    let section = rest[..<(rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex)]
    var blocks: [String] = []
    var current: [Substring]?
    for line in section.split(separator: "\n", omittingEmptySubsequences: false) {
        if current == nil, line == "```swift" {
            current = []
        } else if let lines = current, line == "```" {
            blocks.append(lines.joined(separator: "\n") + "\n")
            current = nil
        } else {
            current?.append(line)
        }
    }
    return blocks
}
