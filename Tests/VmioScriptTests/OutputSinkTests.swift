import Foundation
import Testing
import VmioCommands

/// `OutputSink` over the Linux layer's `OutputFile`: what lands in the file, across buffer
/// flushes and direct writes, and that a file is complete or absent.
@Suite struct OutputSinkTests {
    /// A fresh directory, removed by the caller.
    private func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("output-sink-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
        return url
    }

    private func entries(_ directory: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    }

    @Test func aFileGetsExactlyWhatWasAppendedAndAppearsOnlyAtCommit() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("out.txt").path
        var expected: [UInt8] = []
        do {
            let sink = try OutputSink(path: path)
            // Lines enough for several buffer flushes, then one append larger than the buffer
            // (written directly), then lines again.
            for i in 0..<40_000 {
                let line = "line \(i) " + String(repeating: "x", count: i % 17)
                try sink.line(line)
                expected += Array(line.utf8) + [0x0a]
            }
            let big = [UInt8]((0..<(OutputSink.bufferSize + 12_345)).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            try big.withUnsafeBytes { try sink.append($0) }
            expected += big
            try sink.append(byte: 0x21)
            try sink.line("end")
            expected += [0x21] + Array("end\n".utf8)
            #expect(!FileManager.default.fileExists(atPath: path), "no file before the commit")
            try sink.commit()
        }
        #expect(FileManager.default.contents(atPath: path).map(Array.init) == expected)
        #expect(entries(dir) == ["out.txt"], "no temporary file left")
    }

    @Test func bytesWrittenInPlaceLeaveHolesOfZeros() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("raw.bin").path
        do {
            let sink = try OutputSink(path: path)
            try [UInt8](repeating: 0xaa, count: 10).withUnsafeBytes { try sink.write($0, at: 0) }
            try [UInt8](repeating: 0xbb, count: 5).withUnsafeBytes { try sink.write($0, at: 100) }
            try sink.finish(length: 200)
            try sink.commit()
        }
        let bytes = try #require(FileManager.default.contents(atPath: path).map(Array.init))
        #expect(bytes.count == 200)
        #expect(bytes[0..<10].allSatisfy { $0 == 0xaa })
        #expect(bytes[10..<100].allSatisfy { $0 == 0 })
        #expect(bytes[100..<105].allSatisfy { $0 == 0xbb })
        #expect(bytes[105...].allSatisfy { $0 == 0 })
    }

    @Test func anUnfinishedFileIsAbsentOrKeptAsPartial() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cut.txt").path
        do {
            let sink = try OutputSink(path: path)
            try sink.line("never committed")
        }
        #expect(entries(dir).isEmpty, "nothing left: \(entries(dir))")
        do {
            let sink = try OutputSink(path: path)
            try sink.line("kept")
            #expect(try sink.keepPartial(replace: false)?.get() == path + ".partial")
        }
        #expect(entries(dir) == ["cut.txt.partial"])
        #expect(FileManager.default.contents(atPath: path + ".partial") == Data("kept\n".utf8))
        // A second one does not replace the first, and is not lost: it takes the next free name.
        for number in 2...3 {
            let sink = try OutputSink(path: path)
            try sink.line("kept \(number)")
            #expect(try sink.keepPartial(replace: false)?.get() == path + ".partial.\(number)")
        }
        #expect(FileManager.default.contents(atPath: path + ".partial") == Data("kept\n".utf8))
        #expect(FileManager.default.contents(atPath: path + ".partial.3") == Data("kept 3\n".utf8))
        do {
            let sink = try OutputSink(path: path)
            try sink.line("replaces")
            #expect(try sink.keepPartial(replace: true)?.get() == path + ".partial")
        }
        #expect(FileManager.default.contents(atPath: path + ".partial") == Data("replaces\n".utf8))
    }

    @Test func anExistingFileIsReplacedOnlyWhenAskedAndADirectoryNever() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("there.txt").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data("old".utf8)))
        let exists = #expect(throws: CommandError.self) { try OutputSink(path: path) }
        #expect(exists?.message == "\(path) exists; pass --force to replace it")
        #expect(exists?.exitStatus == .badInput)
        let directory = #expect(throws: CommandError.self) { try OutputSink(path: dir.path, replace: true) }
        #expect(directory?.message == "\(dir.path) is a directory")
        let missing = dir.appendingPathComponent("no/such/x").path
        let cannot = #expect(throws: CommandError.self) { try OutputSink(path: missing) }
        #expect(cannot?.message == "cannot create \(missing): No such file or directory")
        do {
            let sink = try OutputSink(path: path, replace: true)
            try sink.line("new")
            try sink.commit()
        }
        #expect(FileManager.default.contents(atPath: path) == Data("new\n".utf8))
    }
}
