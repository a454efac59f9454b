// The tool's own files: a directory's names as `Sys.directoryEntries` reads them (run under
// AddressSanitizer too, which caught it reading past glibc's buffer), and which names
// `Files.removeLeftovers` takes for a killed writer's.

import Foundation
import Testing

@testable import VmioPtrace

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct FilesTests {
    /// A fresh directory, removed with everything in it by `body`'s end.
    private func withDirectory(_ body: (String) throws -> Void) throws {
        var template = Array((NSTemporaryDirectory() + "/vmio-files-test-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        let path = String(cString: try #require(made))
        defer { try? FileManager.default.removeItem(atPath: path) }
        try body(path)
    }

    /// Names of every length from 1 to 255 bytes, so that records end all over glibc's
    /// buffer, the last ones at its very end: every name read whole, none past it.
    @Test func everyNameOfADirectoryIsReadWhole() throws {
        try withDirectory { path in
            var made: Set<String> = []
            for i in 0..<1200 {
                let length = 1 + (i * 37) % 255
                let name =
                    String(String(i).reversed()) + String(repeating: "n", count: max(0, length - String(i).count))
                #expect(FileManager.default.createFile(atPath: path + "/" + name, contents: nil))
                made.insert(name)
            }
            let read = try Sys.directoryEntries(path)
            #expect(read.count == made.count)
            #expect(Set(read) == made)
        }
    }

    /// Only `.NAME.DIGITS.SUFFIX` is a leftover of NAME, and only one no writer holds.
    @Test func onlyAnUnheldLeftoverOfTheNameIsTaken() throws {
        try withDirectory { path in
            let names = [
                ".out.bin.123.part", ".out.bin.4.part", ".out.bin..part", ".out.bin.12a.part", ".out.bin.123.new",
                ".other.bin.123.part", "out.bin.123.part", ".out.bin.123.part.x", ".out.bin.77.part",
            ]
            for name in names { #expect(FileManager.default.createFile(atPath: path + "/" + name, contents: nil)) }
            let held = try Sys.open(path + "/.out.bin.77.part", O_RDONLY)
            defer { Sys.close(held) }
            Files.holdAsWriter(held)
            var taken: [String] = []
            Files.removeLeftovers(of: "out.bin", in: path + "/", suffixes: ["part"]) { taken.append($0) }
            #expect(taken.sorted() == [path + "/.out.bin.123.part", path + "/.out.bin.4.part"])
        }
    }
}
