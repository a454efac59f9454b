import Testing

@testable import VmIO

// VmReader.readUntilFault: a fallible copy whose stop is a value, not a thrown error (the
// shape README.md's library examples use; "Known issues" says why).

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
    let outcome = try registry.lend(try registry.reader(remote: pid, range: range, view: view)) {
        reader throws(VmIoError) in
        var writer = buffer.makeWriter()
        return try reader.readUntilFault(into: &writer, using: backend)
    }
    return (Array(buffer.array[..<Int(outcome.copied)]), outcome.stop)
}

@Suite("readUntilFault")
struct ReadUntilFaultTests {
    @Test("all the bytes, or the prefix and the fault; the owner always goes back")
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

    @Test("the outcome is what readFallible throws: same count, same cursors, same stop")
    func sameAsReadFallible() throws {
        let base: Address = 0x7000_0000
        let contents = randomBytes(2 * 4096, seed: 9)
        let fake = FakeRemote([7: .init(base: base, bytes: contents, faulting: [base / 4096 + 1])])
        let view = try MemView(mappings: [
            Mapping(range: try AddressRange(start: base, count: 2 * 4096), permissions: .readWrite)
        ])
        let range = try AddressRange(start: base + 100, count: 5000)
        let registry = OwnerRegistry()
        var thrown: PartialCopy?
        var first = try registry.reader(remote: 7, range: range, view: view)
        let firstBuffer = LocalBuffer(count: 5000)
        var firstWriter = firstBuffer.makeWriter()
        do throws(VmIoError) {
            try first.readFallible(into: &firstWriter, using: fake)
        } catch {
            if case .partialCopy(let p) = error { thrown = p }
        }
        var second = try registry.reader(remote: 7, range: range, view: view)
        let secondBuffer = LocalBuffer(count: 5000)
        var secondWriter = secondBuffer.makeWriter()
        let outcome = try second.readUntilFault(into: &secondWriter, using: fake)
        #expect(thrown != nil && outcome.stop == thrown && outcome.copied == thrown?.copied)
        #expect(!outcome.isComplete && outcome.copied == 4096 - 100)
        #expect(first.cursor == second.cursor && firstWriter.cursor - firstBuffer.range.start == outcome.copied)
        #expect(firstBuffer.array == secondBuffer.array)
        try registry.release(first.finish())
        try registry.release(second.finish())
    }

    @Test("a mistake still throws: overlapping owners in one process")
    func overlapThrows() throws {
        let base: Address = 0x7000_0000
        let fake = FakeRemote([7: .init(base: base, bytes: randomBytes(4096, seed: 1), faulting: [])])
        let view = try MemView(mappings: [
            Mapping(range: try AddressRange(start: base, count: 4096), permissions: .readWrite)
        ])
        let registry = OwnerRegistry()
        var reader = try registry.reader(remote: 7, range: try AddressRange(start: base, count: 64), view: view)
        var writer = try VmWriter(
            remote: 7,
            owner: try VmIoOwner(
                range: try AddressRange(start: base + 32, count: 64), isFallible: true, isKernel: false,
                memView: .write(view)))
        #expect(throws: VmIoError.self) { try reader.readUntilFault(into: &writer, using: fake) }
    }
}
