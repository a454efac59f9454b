// A read split between two threads (ProcessMemory.splitRead, HelperThread) moves exactly what
// one process_vm_readv call moves and stops where it stops, whatever pages are unreadable; a
// search that reads and matches each chunk in two halves at once finds every match once, in
// order, those that straddle the halves' edges and the chunks' included, and stops at --max.

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioTestSupport

@testable import VmioPtrace

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct SplitReadTests {
    /// 1 MiB of this process's memory with 0–3 pages made unreadable at random, read at random
    /// offsets and lengths (from under the split limit to the whole) both ways.
    @Test func aSplitReadMovesWhatOneCallMoves() throws {
        let page = 4096, pages = 256
        let size = page * pages
        let base = try #require(
            mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0).flatMap {
                $0 == MAP_FAILED ? nil : $0
            })
        defer { munmap(base, size) }
        var random = SplitMix64(seed: 11)
        for offset in stride(from: 0, to: size, by: 8) {
            base.storeBytes(of: random.next(), toByteOffset: offset, as: UInt64.self)
        }
        let helper = try #require(HelperThread())
        defer { helper.stop() }
        let one = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: page)
        let two = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: page)
        defer {
            one.deallocate()
            two.deallocate()
        }
        let address = Address(UInt(bitPattern: base))
        var splitsCutShort = 0
        for trial in 0..<300 {
            let holes = (0..<Int(random.next() % 4)).map { _ in Int(random.next() % UInt64(pages)) }
            for hole in holes { mprotect(base + hole * page, page, PROT_NONE) }
            let start = Int(random.next() % UInt64(size / 2))
            let count = min(size - start, ProcessMemory.splitReadLimit / 2 + Int(random.next() % UInt64(size)))
            let whole = ProcessMemory.processVMRead(
                pid: getpid(), at: address + Address(start), into: .init(rebasing: one[..<count]))
            let split = ProcessMemory.splitRead(
                pid: getpid(), at: address + Address(start), into: .init(rebasing: two[..<count]), helper: helper)
            for hole in holes { mprotect(base + hole * page, page, PROT_READ | PROT_WRITE) }
            #expect(split == whole, "trial \(trial): \(count) bytes at +\(start), unreadable pages \(holes)")
            #expect(memcmp(one.baseAddress!, two.baseAddress!, whole.moved) == 0, "trial \(trial)")
            if whole.moved > count / 2, whole.stop != nil { splitsCutShort += 1 }
        }
        // The draws must have cut some reads short in their second half, where the halves meet.
        #expect(splitsCutShort > 10)
    }

    /// The random fixture's 4 MiB, searched with 1 MiB chunks (each read and matched in two
    /// halves at once): its needle, 24 bytes taken across each half's and each chunk's edge,
    /// a frequent pattern against a naive search of the same bytes, and --max.
    @Test func aSearchInHalvesFindsEveryMatchInOrder() throws {
        let fixture = try Fixtures.launch(.random, arguments: ["4", "3"])
        defer { fixture.terminate() }
        let buf = fixture.address("buf")
        let size = 4 << 20
        let target = try Target(pid: fixture.pid)
        let regions = RegionSelector.select(
            [.range(try AddressRange(start: buf, count: UInt64(size)))], in: target.view)
        var content = [UInt8](repeating: 0, count: size)
        let read = content.withUnsafeMutableBytes { raw in
            ProcessVMBackend().read(pid: fixture.pid, at: buf, into: raw)
        }
        try #require(read.moved == size)

        let needle = try BytePattern(hex: fixture.facts["needle"]![1])
        let offset = fixture.number("needle", 0)
        #expect(
            try target.search(needle, in: regions, max: 10, chunkSize: 1 << 20).hits.map(\.address) == [buf + offset])

        for edge in [512 << 10, 1 << 20, 3 << 19, 2 << 20] {
            for before in [0, 1, 8, 23] {
                let at = edge - before
                let pattern = try BytePattern(bytes: Array(content[at..<at + 24]))
                let hits = try target.search(pattern, in: regions, max: 10, chunkSize: 1 << 20).hits.map {
                    Int($0.address - buf)
                }
                #expect(hits == naiveHits(pattern, content), "24 bytes at \(at), across \(edge)")
                #expect(hits.contains(at))
            }
        }

        let frequent = try BytePattern(hex: "5c ?? a7")
        let all = try target.search(frequent, in: regions, max: 1_000_000, chunkSize: 1 << 20)
        let expected = naiveHits(frequent, content)
        #expect(all.hits.map { Int($0.address - buf) } == expected)
        #expect(expected.count > 20)
        for max in [1, 2, expected.count / 2, expected.count - 1] {
            let some = try target.search(frequent, in: regions, max: max, chunkSize: 1 << 20)
            #expect(some.hits.map { Int($0.address - buf) } == Array(expected.prefix(max)), "--max \(max)")
            #expect(some.truncated)
        }
    }

    /// Every offset of `content` where `pattern` matches.
    func naiveHits(_ pattern: BytePattern, _ content: [UInt8]) -> [Int] {
        let (bytes, mask) = (pattern.bytes, pattern.mask)
        return content.withUnsafeBufferPointer { c in
            var hits: [Int] = []
            for s in 0...(c.count - bytes.count) where c[s] == bytes[0] {
                var k = 1
                while k < bytes.count, !mask[k] || c[s + k] == bytes[k] { k += 1 }
                if k == bytes.count { hits.append(s) }
            }
            return hits
        }
    }
}
