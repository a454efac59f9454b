import PropertyBased

@testable import VmIO

/// A fake remote: processes simulated as byte arrays over page-aligned address ranges,
/// with a set of faulting pages each. It honours the ``CopyBackend`` contract the way
/// `process_vm_readv`/`process_vm_writev` do on Linux: a call moves a prefix, stops
/// exactly at the first inaccessible page (or at the start address when that page is
/// itself inaccessible), reports `.pageFault(address:)` with the first address that could
/// not be accessed, and touches nothing past the bytes it moved.
final class FakeRemote: CopyBackend {
    static let pageSize: UInt64 = 4096

    struct Process {
        /// Page-aligned base address of the simulated memory.
        var base: Address
        var bytes: [UInt8]
        /// Page numbers (`address / pageSize`) that fault.
        var faulting: Set<UInt64>

        var range: AddressRange { try! AddressRange(start: base, count: UInt64(bytes.count)) }

        func accessible(_ address: Address) -> Bool {
            range.contains(address) && !faulting.contains(address / FakeRemote.pageSize)
        }
    }

    var processes: [Int32: Process]
    /// Every call, for checks on how the model drives the backend.
    private(set) var calls: [(write: Bool, pid: Int32, address: Address, count: Int)] = []

    init(_ processes: [Int32: Process]) {
        self.processes = processes
    }

    /// The first address of `[address, address + count)` that faults in `pid`, or nil.
    func firstFault(pid: Int32, from address: Address, count: UInt64) -> Address? {
        guard let p = processes[pid] else { return count > 0 ? address : nil }
        var a = address
        let end = address + count
        while a < end {
            if !p.accessible(a) { return a }
            a = (a / Self.pageSize + 1) * Self.pageSize
        }
        return nil
    }

    /// The bytes of `pid` at `range` (which must lie inside its memory).
    func bytes(pid: Int32, _ range: AddressRange) -> [UInt8] {
        let p = processes[pid]!
        let lo = Int(range.start - p.base)
        return Array(p.bytes[lo..<lo + Int(range.count)])
    }

    func read(pid: Int32, at address: Address, into destination: UnsafeMutableRawBufferPointer) -> Transfer {
        calls.append((false, pid, address, destination.count))
        guard let p = processes[pid] else { return Transfer(moved: 0, stop: .targetGone) }
        let count = UInt64(destination.count)
        let fault = firstFault(pid: pid, from: address, count: count)
        let moved = Int((fault ?? address + count) - address)
        if moved > 0 {
            let lo = Int(address - p.base)
            p.bytes.withUnsafeBytes { src in
                destination.baseAddress!.copyMemory(from: src.baseAddress! + lo, byteCount: moved)
            }
        }
        return Transfer(moved: moved, stop: fault.map { .pageFault(address: $0) })
    }

    func write(pid: Int32, at address: Address, from source: UnsafeRawBufferPointer) -> Transfer {
        calls.append((true, pid, address, source.count))
        guard processes[pid] != nil else { return Transfer(moved: 0, stop: .targetGone) }
        let count = UInt64(source.count)
        let fault = firstFault(pid: pid, from: address, count: count)
        let moved = Int((fault ?? address + count) - address)
        if moved > 0 {
            let lo = Int(address - processes[pid]!.base)
            processes[pid]!.bytes.withUnsafeMutableBytes { dst in
                (dst.baseAddress! + lo).copyMemory(from: source.baseAddress!, byteCount: moved)
            }
        }
        return Transfer(moved: moved, stop: fault.map { .pageFault(address: $0) })
    }
}

/// One simulated remote region and a sub-range of it for an owner, generated.
struct RemoteCase: Sendable, CustomStringConvertible {
    let base: Address
    let contents: [UInt8]
    let faulting: Set<UInt64>
    /// The owner's range (inside the region).
    let range: AddressRange

    var region: AddressRange { try! AddressRange(start: base, count: UInt64(contents.count)) }
    var process: FakeRemote.Process { .init(base: base, bytes: contents, faulting: faulting) }

    /// A one-mapping `rw-p` view of the whole region: the view says "mapped"; the
    /// faulting pages are what the process did behind the snapshot's back.
    var view: MemView {
        try! MemView(mappings: [Mapping(range: region, permissions: .readWrite, path: "[anon:fake]")])
    }

    var description: String {
        let pages = faulting.map { ($0 * FakeRemote.pageSize).hex }.sorted()
        return "RemoteCase(region \(region), faulting pages \(pages), range \(range))"
    }

    /// `pageCount` pages at `base`, contents from `seed`; each page faults when its bit of
    /// `faultMask` is set (unless `clean`); the owner's range is picked with page boundaries
    /// as favoured edges.
    static func make(base: Address, pages: Int, faultMask: Int, clean: Bool, seed: Int, startPick: Int, endPick: Int)
        -> RemoteCase
    {
        let size = UInt64(pages) * FakeRemote.pageSize
        let contents = randomBytes(Int(size), seed: seed)
        var faulting: Set<UInt64> = []
        if !clean {
            for i in 0..<pages where faultMask & (1 << i) != 0 {
                faulting.insert(base / FakeRemote.pageSize + UInt64(i))
            }
        }
        let edges = (0...pages).map { base + UInt64($0) * FakeRemote.pageSize }
        let start = pick(startPick, base, base + size, edges: edges)
        let end = pick(endPick, start, base + size, edges: edges)
        return RemoteCase(
            base: base, contents: contents, faulting: faulting, range: try! AddressRange(start: start, end: end))
    }
}

extension RemoteCase {
    /// Where a region of `pages` pages starts, by `kind`: at address 0, at `typical`, or
    /// ending at the last page of the 64-bit space (`0xffff_ffff_ffff_f000`).
    static func base(kind: Int, pages: Int, typical: Address) -> Address {
        switch kind % 3 {
        case 0: 0
        case 1: typical
        default: 0xffff_ffff_ffff_f000 - UInt64(pages) * FakeRemote.pageSize
        }
    }
}

extension Gens {
    /// A remote region of 1–6 pages at the bottom, at `typical` or at the top of the address
    /// space, faulting on random pages (or none, a third of the time), with an owner's range
    /// inside it.
    static func remote(anywhere typical: Address) -> Generator<RemoteCase, some SendableSequenceType> {
        zip(
            Gen.int(in: 1...6), Gen.int(in: 0...63), Gen.bool(0.3), Gen.int(in: 0...Int(Int32.max)),
            Gen.int(in: 0...Int(Int32.max)), Gen.int(in: 0...Int(Int32.max)), Gen.int(in: 0...2)
        ).map { pages, mask, clean, seed, s, e, kind in
            RemoteCase.make(
                base: RemoteCase.base(kind: kind, pages: pages, typical: typical), pages: pages, faultMask: mask,
                clean: clean, seed: seed, startPick: s, endPick: e)
        }
    }

    /// A local buffer's size and the bytes the writer skips first, and a seed for its contents.
    static let localSide = zip(
        Gen.int(in: 0...30_000), Gen.int(in: 0...Int(Int32.max)), Gen.int(in: 0...Int(Int32.max))
    )
    .map { size, skipPick, seed in (size: size, skip: Int(pick(skipPick, 0, UInt64(size), edges: [0, 1])), seed: seed) }
}
