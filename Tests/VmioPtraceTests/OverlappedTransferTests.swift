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

    /// With a consumer slower than the reader, the reader hands `ahead` what it has not read
    /// yet while it waits: pieces in order, apart, inside the range, none before what the
    /// consumer has used nor farther past it than the limit; the consumer still gets every
    /// byte, in order.
    @Test func theReaderHandsAheadWhatIsNotReadYet() throws {
        let fixture = try Fixtures.launch(.random, arguments: ["4"])
        defer { fixture.terminate() }
        let target = try Target(pid: fixture.pid)
        let chunk = 64 << 10
        let range = try AddressRange(start: fixture.address("buf"), count: 4 << 20)
        let used = Locked(range.start)
        var pieces: [AddressRange] = []
        var outOfPlace: [String] = []
        var next = range.start
        let report = try target.transferOverlapped(
            range, policy: .stop, chunkSize: chunk,
            ahead: { piece in
                let consumed = used.withLock { $0 }
                if piece.start < consumed || piece.end > consumed + Target.aheadLimit + UInt64(chunk) {
                    outOfPlace.append("\(piece) with \(consumed.hex) used")
                }
                pieces.append(piece)
            }
        ) { item in
            guard case .bytes(let at, let bytes) = item else { return false }
            #expect(at == next)
            next = at + UInt64(bytes.count)
            usleep(300)
            used.withLock { $0 = at + UInt64(bytes.count) }
            return true
        }
        #expect(report.moved == range.count)
        #expect(next == range.end)
        #expect(outOfPlace == [])
        #expect(!pieces.isEmpty)
        for piece in pieces {
            #expect(!piece.isEmpty && range.contains(piece) && piece.count <= UInt64(chunk), "\(piece)")
        }
        for (a, b) in zip(pieces, pieces.dropFirst()) { #expect(a.end <= b.start, "\(a) then \(b)") }
    }

    /// A file on a tmpfs gets its length and, asked, its pages (counted in `st_blocks`), the
    /// last page too where the length ends inside it; a file elsewhere gets nothing.
    @Test func pagesAheadOnATmpfsOnly() throws {
        let shm = "/dev/shm/vmio-pages-\(getpid())"
        defer { unlink(shm) }
        let fd = try Files.create(shm, exclusive: true, readable: true)
        defer { close(fd) }
        let length: UInt64 = (1 << 20) + 100
        let pages = try #require(PagesAhead(fd: fd, length: length))
        var info = stat()
        fstat(fd, &info)
        #expect(UInt64(info.st_size) == length)
        #expect(info.st_blocks == 0)
        pages.allocate(offset: 4096, count: 8192)
        fstat(fd, &info)
        #expect(info.st_blocks == 16)
        pages.allocate(offset: length - 10, count: 4096)
        fstat(fd, &info)
        #expect(info.st_blocks == 24)
        #expect(UInt64(info.st_size) == length)

        let onDisk = FileManager.default.currentDirectoryPath + "/.vmio-pages-\(getpid())"
        defer { unlink(onDisk) }
        let other = try Files.create(onDisk, exclusive: true, readable: true)
        defer { close(other) }
        #expect(Files.isOnTmpfs(other) == false)
        #expect(PagesAhead(fd: other, length: length) == nil)
    }

    /// Dumps to a tmpfs through the ring, pages made ahead: 8 MiB of random bytes are the
    /// memory's, byte for byte, and the truncated mapping's hole reads as zeros after the
    /// page that was saved (its pages may have been made ahead: still zeros).
    @Test func aDumpToTmpfsIsTheMemorys() throws {
        let random = try Fixtures.launch(.random, arguments: ["8"])
        defer { random.terminate() }
        let truncated = try Fixtures.launch(.truncated)
        defer { truncated.terminate() }
        let dir = "/dev/shm/vmio-overlap-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }

        let target = try Target(pid: random.pid)
        let range = try AddressRange(start: random.address("buf"), count: 8 << 20)
        let mapping = try #require(target.view.translate(range.start)?.mapping)
        let manifest = try target.dump(
            [(mapping, range)], to: dir, replace: false, durable: false, chunkSize: 64 << 10, progress: nil)
        let region = try #require(manifest.regions.first)
        #expect(manifest.complete && region.bytesSaved == range.count)
        let data = try #require(FileManager.default.contents(atPath: dir + "/" + region.file))
        let memory = try #require(procMemory(random.pid, at: range.start, count: Int(range.count)))
        #expect(data == memory)

        let holed = try Target(pid: truncated.pid)
        let map = truncated.address("map")
        let short = try AddressRange(start: map, count: 16384)
        let shortMapping = try #require(holed.view.translate(map)?.mapping)
        let second = dir + "/holes"
        let holes = try holed.dump(
            [(shortMapping, short)], to: second, replace: false, durable: false, chunkSize: 4096, progress: nil)
        let file = try #require(holes.regions.first?.file)
        let bytes = try #require(FileManager.default.contents(atPath: second + "/" + file))
        #expect(bytes.count == 16384)
        #expect(bytes.prefix(4096).allSatisfy { $0 == 0x5c })
        #expect(bytes.dropFirst(4096).allSatisfy { $0 == 0 })
    }
}
