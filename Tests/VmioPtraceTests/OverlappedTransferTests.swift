// The overlapped transfer (Target/Overlap.swift): one thread reads into a ring of buffers
// while another consumes; what the consumer sees, the faults and the holes are exactly the
// one-thread transfer's, whichever side is ahead.

import Dispatch
import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioTestSupport

@testable import VmioPtrace

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct OverlappedTransferTests {
    /// What the consumer was handed, in order.
    enum Seen: Equatable {
        case bytes(UInt64, [UInt8])
        case hole(UInt64, UInt64)
    }

    /// The truncated fixture's mapping faults after its first page. The consumer is held at
    /// its first chunk until the reader has met the fault and ended, so the fault is found
    /// with the writer behind: the consumer still gets the chunk, then each hole, in order,
    /// and the report names the hole exactly.
    @Test func aFaultFoundWhileTheConsumerIsBehind() throws {
        let fixture = try Fixtures.launch(.truncated)
        defer { fixture.terminate() }
        let map = fixture.address("map")
        let target = try Target(pid: fixture.pid)
        let range = try AddressRange(start: map, count: 16384)
        let readerDone = DispatchSemaphore(value: 0)
        var seen: [Seen] = []
        let report = try target.transferOverlapped(
            range, policy: .skip, chunkSize: 4096, readerEnded: { readerDone.signal() }
        ) { item in
            if seen.isEmpty { readerDone.wait() }
            switch item {
            case .bytes(let at, let bytes): seen.append(.bytes(at, Array(bytes)))
            case .hole(let hole): seen.append(.hole(hole.address, hole.length))
            }
            return true
        }
        #expect(
            seen == [
                .bytes(map, [UInt8](repeating: 0x5c, count: 4096)), .hole(map + 4096, 4096), .hole(map + 8192, 4096),
                .hole(map + 12288, 4096),
            ])
        #expect(report.moved == 4096)
        #expect(report.stop == nil)
        #expect(report.holes.map { [$0.address, $0.length] } == [[map + 4096, 12288]])
        #expect(report.holes.first?.kind == .pageFault(address: map + 4096))
    }

    /// A dump in 4 KiB chunks (so through the ring) of the same mapping: the manifest's
    /// hole and the data file are the one-thread dump's.
    @Test func aDumpInSmallChunksKeepsItsHoles() throws {
        let fixture = try Fixtures.launch(.truncated)
        defer { fixture.terminate() }
        let map = fixture.address("map")
        let target = try Target(pid: fixture.pid)
        let range = try AddressRange(start: map, count: 16384)
        let mapping = try #require(target.view.translate(map)?.mapping)
        let dir = NSTemporaryDirectory() + "vmio-overlap-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let manifest = try target.dump(
            [(mapping, range)], to: dir, replace: false, durable: false, chunkSize: 4096, progress: nil)
        #expect(!manifest.complete)
        let region = try #require(manifest.regions.first)
        #expect(region.bytesSaved == 4096)
        #expect(region.holes.map { [$0.address, "\($0.length)"] } == [[(map + 4096).hex, "12288"]])
        let data = try #require(FileManager.default.contents(atPath: dir + "/" + region.file))
        #expect(data.count == 16384)
        #expect(data.prefix(4096).allSatisfy { $0 == 0x5c })
        #expect(data.dropFirst(4096).allSatisfy { $0 == 0 })
    }

    /// A search of 4 MiB of random bytes in 4 KiB chunks, the needle across a chunk boundary
    /// (4 bytes each side): found once, where the fixture put it, also with `max` 1, which
    /// ends the search while the reader is ahead.
    @Test func aHitAcrossAChunkBoundary() throws {
        let fixture = try Fixtures.launch(.random, arguments: ["4"])
        defer { fixture.terminate() }
        let buf = fixture.address("buf")
        let needle = buf + fixture.number("needle", 0)
        let target = try Target(pid: fixture.pid)
        let pattern = try BytePattern(hex: fixture.text("needle", 1))
        // Chunks start at the range's start: the fifth ends in the middle of the needle.
        let range = try AddressRange(start: needle + 4 - 4 * 4096, end: needle + 4 + 64 * 4096)
        let regions = RegionSelector.select([.range(range)], in: target.view)
        for max in [1, 10] {
            let report = try target.search(pattern, in: regions, max: max, chunkSize: 4096)
            #expect(report.hits.map(\.address) == [needle], "max \(max)")
            #expect(report.holes.isEmpty)
            #expect(report.truncated == (max == 1))
            #expect(report.scanned == (max == 1 ? 5 * 4096 : range.count), "max \(max)")
        }
    }

    /// A consumer that fails (a write error) at its second chunk stops the reader: the error
    /// is thrown, and the consumer saw nothing after it.
    @Test func aConsumerErrorStopsTheReader() throws {
        let fixture = try Fixtures.launch(.random, arguments: ["4"])
        defer { fixture.terminate() }
        let target = try Target(pid: fixture.pid)
        let range = try AddressRange(start: fixture.address("buf"), count: 4 << 20)
        var calls = 0
        #expect(throws: TargetError.file(path: "out", .failed(.noSpace))) {
            try target.transferOverlapped(range, policy: .skip, chunkSize: 4096) { _ throws(TargetError) in
                calls += 1
                if calls == 2 { throw .file(path: "out", .failed(.noSpace)) }
                return true
            }
        }
        #expect(calls == 2)
    }
}
