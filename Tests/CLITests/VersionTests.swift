// The version: written once (Sources/vmio-ptrace/Version.swift), printed by --version.

import Foundation
import Testing

@Suite struct VersionTests {
    /// The version as Version.swift writes it.
    static func written() throws -> String {
        let source = try String(
            contentsOf: repositoryRoot.appendingPathComponent("Sources/vmio-ptrace/Version.swift"), encoding: .utf8)
        let line = try #require(source.split(separator: "\n").first { $0.hasPrefix("let vmioPtraceVersion = \"") })
        return String(line.split(separator: "\"")[1])
    }

    @Test func versionPrintsTheOneWrittenVersion() throws {
        let version = try Self.written()
        #expect(
            version.split(separator: ".").count == 3 && version.allSatisfy { $0.isNumber || $0 == "." }, "\(version)")
        for arguments in [["--version"], ["read", "--version"]] {
            let run = try Tool.run(arguments)
            #expect(run.exited(0), "\(run)")
            #expect(run.stdoutText == version + "\n", "\(arguments): \(run)")
        }
    }

    /// No other file of the package writes the version down (the man page, the scripts and the
    /// Debian package get it from the built binary).
    @Test func versionIsWrittenInOnePlace() throws {
        let version = try Self.written()
        var holders: [String] = []
        let places = ["Sources", "man", "scripts", ".ci", "Package.swift", "README.md", "Fuzz/Package.swift"]
        for place in places {
            let url = repositoryRoot.appendingPathComponent(place)
            var files = [url]
            if let walker = FileManager.default.enumerator(at: url, includingPropertiesForKeys: nil) {
                files = walker.compactMap { $0 as? URL }
            }
            for file in files {
                guard let text = try? String(contentsOf: file, encoding: .utf8) else { continue }
                if ManPageTests.mentions(text, version) { holders.append(file.path) }
            }
        }
        #expect(holders.map { URL(fileURLWithPath: $0).lastPathComponent } == ["Version.swift"], "\(holders)")
    }
}
