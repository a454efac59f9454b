// Memory that goes away under the tool: a source process that exits part-way through a
// large read or copy (exiter), and a region unmapped and remapped in a loop (unmapper).
// Whatever happens, the tool exits 0, 2 or 4 with the exact count, never crashes, and the
// bytes that did land are right.

import Foundation
import Testing
import VmioFixtures
import VmioPtrace
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A file's size (0 if it does not exist).
private func sizeOnDisk(_ path: String) -> Int64 {
    var st = stat()
    return stat(path, &st) == 0 ? Int64(st.st_size) : 0
}

extension HeavyOrTimed {
    @Suite(.serialized) struct VanishingMemoryCLITests {
        /// Checks that `data` holds word i == `first + i` for every whole word.
        private func wordsAreIndices(_ data: [UInt8], first: UInt64 = 0) -> Int? {
            data.withUnsafeBytes { raw -> Int? in
                let words = raw.count / 8
                for i in 0..<words where raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != first + UInt64(i)
                {
                    return i
                }
                return nil
            }
        }

        @Test func readWhoseSourceExitsMidway() throws {
            let exiter = try Fixtures.launch(.exiter, arguments: ["512"])
            defer { exiter.terminate() }
            let buf = exiter.address("buf")
            #expect(exiter.number("buf") == 512 << 20)
            let out = TempPath("exiter.bin")
            // Start the tool first, then tell the exiter to die while the read is under way.
            let running = try Running(
                Tool.path, ["read", exiter.pidArg, hx(buf), "512M", "--format", "raw", "-o", out.path])
            // Once bytes land in the file (under its temporary name until the read is
            // complete) the read is under way: now let the source die.
            let temporary =
                (out.path as NSString).deletingLastPathComponent + "/." + (out.path as NSString).lastPathComponent
                + ".\(running.pid).part"
            #expect(waitUntil(timeout: 20) { sizeOnDisk(temporary) > 0 || !running.isRunning })
            #expect(try exiter.send("exit-after 1") == "ok")
            let result = running.finish(timeout: 60)
            #expect(!result.signaled && !result.timedOut, "\(result)")
            #expect(result.exited(4) || result.exited(2), "\(result)")
            #expect(exiter.waitForExit(timeout: 5), "the exiter did exit")
            let partial = try #require(PartialLine(result.stderr), "the count is printed: \(result.stderr)")
            #expect(partial.requested == 512 << 20)
            #expect(partial.moved < 512 << 20)
            if result.exited(4) { #expect(result.stderr.contains("target gone"), "\(result.stderr)") }
            // A read cut short leaves no FILE; the bytes that moved are kept in FILE.partial.
            #expect(out.contents == nil, "no complete-looking file")
            #expect(result.stderr.contains("the bytes that moved are in \(out.path).partial"), "\(result.stderr)")
            let file = try #require(FileManager.default.contents(atPath: out.path + ".partial").map { [UInt8]($0) })
            defer { unlink(out.path + ".partial") }
            #expect(UInt64(file.count) == partial.moved, "the partial file holds exactly the bytes that moved")
            #expect(wordsAreIndices(file) == nil, "word i == i for every word that landed")
        }

        @Test func copyWhoseSourceExitsMidway() throws {
            let source = try Fixtures.launch(.exiter, arguments: ["512"])
            defer { source.terminate() }
            let destination = try Fixtures.launch(.exiter, arguments: ["512"])
            defer { destination.terminate() }
            let from = source.address("buf"), to = destination.address("buf")
            let length: UInt64 = (512 << 20) - 8
            // Shifted by one word: destination word i+1 becomes i, so what landed is visible.
            let running = try Running(
                Tool.path,
                [
                    "copy", "\(source.pid):\(hx(from))", "\(destination.pid):\(hx(to + 8))",
                    String(length), "--json",
                ])
            // Destination word 1 turns from 1 to 0 when the first bytes land: now let the source die.
            let started = waitUntil(timeout: 20) {
                var word: UInt64 = 1
                let t = withUnsafeMutableBytes(of: &word) {
                    ProcessVMBackend().read(pid: destination.pid, at: to + 8, into: $0)
                }
                return (t.moved == 8 && word == 0) || !running.isRunning
            }
            #expect(started)
            #expect(try source.send("exit-after 1") == "ok")
            let result = running.finish(timeout: 60)
            #expect(!result.signaled && !result.timedOut, "\(result)")
            #expect(result.exited(4) || result.exited(2), "\(result)")
            let json = try #require(result.json, "\(result)")
            let moved = try #require((json["moved"] as? NSNumber)?.uint64Value)
            #expect(moved < length)
            #expect(json["complete"] as? Bool == false)
            let stop = try #require(json["stop"] as? [String: Any])
            if result.exited(4) { #expect(stop["reason"] as? String == "target gone") }
            #expect(stop["side"] as? String == "source")
            // Check the destination around and inside what landed, through the tool.
            let words = moved / 8
            func word(_ index: UInt64) throws -> UInt64 {
                let r = try Tool.run("read", destination.pidArg, hx(to + 8 * index), "8", "--format", "u64")
                return UInt64(try #require(r.lines.first)) ?? .max
            }
            #expect(try word(0) == 0, "word 0 is before the destination range")
            if words > 0 {
                #expect(try word(1) == 0)
                #expect(try word(words / 2 + 1) == words / 2)
                #expect(try word(words) == words - 1, "the last word that landed")
            }
            if moved % 8 == 0 {
                #expect(try word(words + 1) == words + 1, "the first word after the copied bytes is untouched")
            }
            // The sampled middle, 64 KiB at a time through the tool.
            let sampleStart = (words / 3) * 8 + 8
            if moved > sampleStart - 8 + 65536 {
                let r = try Tool.run("read", destination.pidArg, hx(to + sampleStart), "65536", "--format", "raw")
                #expect(wordsAreIndices(r.stdout, first: sampleStart / 8 - 1) == nil)
            }
            #expect(try destination.send("ping") == "pong")
        }

        @Test func readsOfTheUnmapperAreAllOrPageExact() throws {
            let unmapper = try Fixtures.launch(.unmapper)
            defer { unmapper.terminate() }
            let region = unmapper.address("region"), size = unmapper.number("region")
            #expect(size == 262_144)
            var partials = 0, completes = 0
            for attempt in 0..<20 {
                let out = TempPath("unmapper-\(attempt).bin")
                let result = try Tool.run(
                    "read", unmapper.pidArg, hx(region), String(size), "--format", "raw", "-o", out.path, "--json")
                #expect(result.exited(0) || result.exited(2), "attempt \(attempt): \(result)")
                let json = try #require(result.json, "attempt \(attempt): \(result)")
                let moved = try #require((json["moved"] as? NSNumber)?.uint64Value)
                // A complete read is FILE; one cut short leaves no FILE, and its bytes in FILE.partial.
                let partialPath = out.path + ".partial"
                defer { unlink(partialPath) }
                let file = try #require(
                    result.exited(0)
                        ? out.contents
                        : FileManager.default.contents(atPath: partialPath).map { [UInt8]($0) })
                if !result.exited(0) { #expect(out.contents == nil) }
                #expect(file.prefix(131_072).allSatisfy { $0 == 0x11 }, "the first half is always 0x11")
                if result.exited(0) {
                    completes += 1
                    #expect(moved == size)
                    #expect(file.count == Int(size))
                    // 0x11 before the first cycle, 0x22 once refilled, 0 between the remap and the refill.
                    #expect(file[131_072...].allSatisfy { $0 == 0x22 || $0 == 0x11 || $0 == 0 })
                } else {
                    partials += 1
                    #expect(moved % 4096 == 0, "page-exact: \(moved)")
                    #expect(moved >= 131_072, "the first half never faults")
                    let stop = try #require(json["stop"] as? [String: Any])
                    #expect(stop["fault_address"] as? String == hx(region + moved), "attempt \(attempt)")
                    let line = try #require(PartialLine(result.stderr), "\(result.stderr)")
                    #expect(line.moved == moved && line.faultAddress == region + moved)
                    #expect(UInt64(file.count) == moved)
                }
            }
            // Half the time the second half is unmapped: over 20 reads some are cut short, so the
            // checks of a partial read above did run.
            print("vanishing memory: \(partials) of 20 reads of the unmapper cut short, \(completes) complete")
            #expect(partials > 0, "no read was cut short: the partial path was never exercised")
            #expect(try unmapper.send("ping") == "pong")
        }
    }
}
