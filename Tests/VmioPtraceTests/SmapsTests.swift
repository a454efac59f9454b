// /proc/PID/smaps parsing for `maps --sizes`: fixed texts, the real smaps of the test
// process and of an idle fixture, and the fixture's figures against `pmap -XX` (procps),
// which reads the same file, when it is installed.

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

@Suite struct SmapsTests {
    static let sample = """
        55b488a62000-55b488a64000 r--p 00000000 fe:00 254163                     /usr/bin/head
        Size:                  8 kB
        KernelPageSize:        4 kB
        MMUPageSize:           4 kB
        Rss:                   8 kB
        Pss:                   4 kB
        Pss_Dirty:             0 kB
        Shared_Clean:          0 kB
        Shared_Dirty:          0 kB
        Private_Clean:         8 kB
        Private_Dirty:         0 kB
        Swap:                  0 kB
        THPeligible:           0
        VmFlags: rd mr mw me
        7f0000000000-7f0000003000 rw-p 00000000 00:00 0
        Size:                 12 kB
        Rss:                   8 kB
        Pss:                   8 kB
        Private_Dirty:         8 kB
        Swap:                  4 kB
        VmFlags: rd wr mr mw me ac

        """

    @Test func parsesTheFieldsOfEachMapping() throws {
        let usages = try ProcessSmaps.parse(Self.sample)
        #expect(usages.count == 2)
        #expect(usages[0].mapping.path == "/usr/bin/head" && usages[0].mapping.start == 0x55b4_88a6_2000)
        #expect(usages[0].size == 8192 && usages[0].rss == 8192 && usages[0].pss == 4096)
        #expect(usages[0].privateDirty == 0 && usages[0].swap == 0)
        #expect(usages[1].mapping.path == "" && usages[1].mapping.permissions.write)
        #expect(usages[1].size == 12288 && usages[1].rss == 8192 && usages[1].privateDirty == 8192)
        #expect(usages[1].swap == 4096)
        let total = MappingUsage.total(usages)
        #expect(total.size == 20480 && total.rss == 16384 && total.pss == 12288)
        #expect(total.privateDirty == 8192 && total.swap == 4096)
        #expect(try ProcessSmaps.parse("").isEmpty)
    }

    @Test func refusesMalformedText() {
        func syntaxLine(_ text: String) -> Int? {
            do {
                _ = try ProcessSmaps.parse(text)
                return nil
            } catch {
                if case .mapsSyntax(let line, _, _) = error { return line }
                return nil
            }
        }
        #expect(syntaxLine("Size: 8 kB\n") == 1, "a field before any mapping")
        #expect(syntaxLine("7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nRss: x kB\n") == 2)
        #expect(syntaxLine("7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nRss: -4 kB\n") == 2)
        #expect(syntaxLine("7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nRss: 99999999999999999999 kB\n") == 2)
        #expect(syntaxLine("7f0000000000-7f0000001000 rw-p 00000000 00:00 0\nbad line\n") == 2)
        let unsorted = """
            7f0000001000-7f0000002000 rw-p 00000000 00:00 0
            7f0000000000-7f0000001000 rw-p 00000000 00:00 0

            """
        #expect(throws: VmIoError.self) { try ProcessSmaps.parse(unsorted) }
    }

    @Test func theTestProcessesOwnSmaps() throws {
        let usages = try ProcessSmaps.read(pid: getpid())
        #expect(usages.count > 10)
        for u in usages {
            #expect(u.size == u.mapping.range.count, "\(u.mapping)")
            #expect(u.rss <= u.size && u.pss <= u.rss && u.privateDirty <= u.rss, "\(u.mapping)")
        }
        let stack = try #require(usages.first { $0.mapping.path == "[stack]" })
        #expect(stack.rss > 0 && stack.privateDirty > 0, "the stack is in use")
    }

    @Test func aFixturesSmapsMatchItsMaps() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let usages = try ProcessSmaps.read(pid: holder.pid)
        let view = try ProcessMaps.read(pid: holder.pid)
        #expect(usages.map(\.mapping) == view.mappings)
        let buf = try #require(usages.first { $0.mapping.range.contains(holder.address("buf")) })
        #expect(buf.rss >= 65536 && buf.privateDirty >= 65536, "the holder wrote all 64 KiB of buf")
        let guardPage = try #require(usages.first { $0.mapping.start == holder.address("guard") })
        #expect(guardPage.rss == 0, "a PROT_NONE page is never resident")
    }

    @Test func noSuchProcess() {
        #expect(throws: TargetError.self) { try ProcessSmaps.read(pid: Int32.max - 3) }
    }

    /// pmap -XX prints smaps' fields a column each (in KiB). An idle fixture's figures stay
    /// put between the two reads, except that another process may start or stop sharing a
    /// library page meanwhile: so Pss is compared for anonymous mappings only, and a
    /// mismatch is read again (three tries) before it counts.
    @Test func aFixtureAgainstPmap() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/pmap") else { return }
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        var mismatches: [String] = []
        for _ in 0..<3 {
            let pmap = try pmapColumns(holder.pid)
            let usages = try ProcessSmaps.read(pid: holder.pid)
            mismatches = []
            if pmap.count != usages.count { mismatches.append("pmap \(pmap.count) rows, smaps \(usages.count)") }
            for u in usages {
                guard let row = pmap[u.mapping.start] else {
                    mismatches.append("pmap has no row at \(u.mapping.start.hex)")
                    continue
                }
                var ours: [String: UInt64] = [
                    "Size": u.size >> 10, "Rss": u.rss >> 10, "Private_Dirty": u.privateDirty >> 10,
                    "Swap": u.swap >> 10,
                ]
                if !u.mapping.isFileBacked { ours["Pss"] = u.pss >> 10 }
                for (column, value) in ours where row[column] != value {
                    mismatches.append("\(u.mapping.start.hex) \(column): pmap \(row[column] ?? 0), ours \(value)")
                }
            }
            if mismatches.isEmpty { break }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    /// `pmap -XX PID` as [start: [column: KiB]] for the columns before `VmFlags` (which holds spaces).
    func pmapColumns(_ pid: Int32) throws -> [UInt64: [String: UInt64]] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/pmap")
        process.arguments = ["-XX", String(pid)]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        let header = try #require(lines.first { $0.contains("Address") && $0.contains("Rss") })
        let columns = header.split(separator: " ").map(String.init)
        var rows: [UInt64: [String: UInt64]] = [:]
        for line in lines {
            let words = line.split(separator: " ")
            // A mapping's row: its address, then its permissions (the totals row has neither).
            guard words.count > 2, words[1].count == 4, let start = UInt64(words[0], radix: 16) else { continue }
            var row: [String: UInt64] = [:]
            for (i, name) in columns.enumerated() where i < words.count {
                if name == "VmFlags" { break }
                row[name] = UInt64(words[i])
            }
            rows[start] = row
        }
        return rows
    }
}
