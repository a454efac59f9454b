import Foundation
import Testing

@testable import VmIO

// The Swift snippets of README.md's "The library" section, verbatim (without their
// `import` lines), so that they are compiled with the tests; the first test checks that
// README.md still holds exactly these, the second runs them.

// MARK: Snippets (keep byte for byte as in README.md)

/// Reads `count` bytes at `address` of process `pid`: the bytes that moved, and the
/// fault that stopped the read early, if any.
func readBytes(
    pid: Int32, at address: Address, count: UInt64, view: MemView, registry: OwnerRegistry,
    backend: some CopyBackend
) throws(VmIoError) -> (bytes: [UInt8], stop: PartialCopy?) {
    let range = try AddressRange(start: address, count: count)
    let buffer = LocalBuffer(count: Int(count))
    // The registry hands out a reader (it holds a new read owner) and takes the owner
    // back when the closure ends.
    return try registry.lend(try registry.reader(remote: pid, range: range, view: view)) {
        reader throws(VmIoError) in
        var writer = buffer.makeWriter()
        do throws(VmIoError) {
            try reader.readFallible(into: &writer, using: backend)
            return (buffer.array, nil)
        } catch .partialCopy(let p) {
            // p.copied bytes moved; both cursors and owners advanced by exactly that,
            // and p.faultAddress is where it stopped.
            return (Array(buffer.array[..<Int(p.copied)]), p)
        }
    }
}

// MARK: Checks

/// The ```swift blocks of README.md's section `heading`, without their `import` lines.
func readmeSnippets(section heading: String) throws -> [String] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    guard let start = readme.range(of: "\n## \(heading)\n") else { return [] }
    let rest = readme[start.upperBound...]
    let section = rest[..<(rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex)]
    var snippets: [String] = []
    var current: [Substring]?
    for line in section.split(separator: "\n", omittingEmptySubsequences: false) {
        if current == nil, line == "```swift" {
            current = []
        } else if let lines = current, line == "```" {
            snippets.append(lines.filter { !$0.hasPrefix("import ") }.joined(separator: "\n"))
            current = nil
        } else if current != nil {
            current!.append(line)
        }
    }
    return snippets.map { $0.trimmingCharacters(in: .newlines) }
}

@Suite("README snippets")
struct ReadmeSnippetTests {
    @Test("every Swift snippet of \"The library\" is in this file, verbatim, and so compiles")
    func snippetsMatch() throws {
        let snippets = try readmeSnippets(section: "The library")
        #expect(!snippets.isEmpty, "README.md has a library section with Swift snippets")
        let source = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        for snippet in snippets {
            #expect(source.contains(snippet), "README.md snippet not found in ReadmeSnippetTests.swift:\n\(snippet)")
        }
    }

    @Test("readBytes: all the bytes, or the prefix and the fault; the owner always goes back")
    func readBytesWorks() throws {
        let base: Address = 0x7000_0000
        let contents = randomBytes(3 * 4096, seed: 5)
        let fake = FakeRemote([42: .init(base: base, bytes: contents, faulting: [base / 4096 + 2])])
        let view = try MemView(mappings: [
            Mapping(range: try AddressRange(start: base, count: 3 * 4096), permissions: .readWrite)
        ])
        let registry = OwnerRegistry()
        let whole = try readBytes(
            pid: 42, at: base + 10, count: 4096, view: view, registry: registry, backend: fake)
        #expect(whole.bytes == Array(contents[10..<4106]) && whole.stop == nil)
        let cut = try readBytes(
            pid: 42, at: base + 4096, count: 8192, view: view, registry: registry, backend: fake)
        #expect(cut.bytes == Array(contents[4096..<8192]))
        #expect(cut.stop?.faultAddress == base + 8192 && cut.stop?.copied == 4096)
        #expect(registry.live.isEmpty, "lend took every owner back")
    }
}
