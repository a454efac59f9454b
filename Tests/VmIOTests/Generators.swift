import PropertyBased
import Testing
import VmioTestSupport

@testable import VmIO

// Generators for the property tests: random sorted, disjoint memory views (with gaps
// between some mappings, random permissions and paths), owners over covered
// sub-ranges of them, and cut points that hit the edges (n = 0, n = count, mapping
// boundaries) often.

/// The page size the generated layouts use.
let page: UInt64 = 0x1000

/// A small deterministic generator (SplitMix64), for values derived from one generated seed.
struct SplitMix: SeededRandomNumberGenerator {
    var state: UInt64
    init(_ seed: Int) { state = UInt64(bitPattern: Int64(seed)) &+ 0x9E37_79B9_7F4A_7C15 }
    init?(seed: UInt64) { state = seed }
    init() { self.init(0) }
    var currentSeed: UInt64 { state }
    mutating func next() -> UInt64 { SplitMix64.step(&state) }
}

/// `count` bytes from `seed` (eight at a time: debug builds are slow per byte).
func randomBytes(_ count: Int, seed: Int) -> [UInt8] {
    var rng = SplitMix(seed)
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { raw in
        var i = 0
        while i + 8 <= count {
            raw.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self)
            i += 8
        }
        var last = rng.next()
        while i < count {
            raw[i] = UInt8(truncatingIfNeeded: last)
            last >>= 8
            i += 1
        }
    }
    return out
}

/// Picks a value in `lo...hi` from the raw number `r`: a third of the time one of the
/// `edges` that lie in the interval (or `lo`/`hi` themselves), otherwise uniformly.
func pick(_ r: Int, _ lo: UInt64, _ hi: UInt64, edges: [UInt64] = []) -> UInt64 {
    precondition(lo <= hi)
    let r = r.magnitude
    if r % 3 == 0 {
        let candidates = [lo, hi] + edges.filter { $0 >= lo && $0 <= hi }
        return candidates[Int((r / 3) % UInt(candidates.count))]
    }
    let width = hi - lo
    if width == .max { return UInt64(r / 3) }
    return lo + UInt64(r / 3) % (width + 1)
}

/// How one generated mapping is laid out relative to the previous one.
struct MappingSpec: Sendable, CustomStringConvertible {
    /// Pages of gap before this mapping (0: adjacent to the previous one).
    var gapPages: UInt64
    var pages: UInt64
    /// Bits: 1 = r, 2 = w, 4 = x, 8 = shared.
    var perms: Int
    var pathKind: Int

    var description: String { "{gap \(gapPages), \(pages)p, perms \(perms), path \(pathKind)}" }

    static let samplePaths: [(String, Bool)] = [
        ("", false),
        ("/usr/lib/x86_64-linux-gnu/libc.so.6", false),
        ("/tmp/a file with spaces.bin", false),
        ("[heap]", false),
        ("[anon:scudo:primary]", false),
        ("/memfd:jit-cache", true),
        ("/tmp/odd\nname", false),
        ("[stack]", false),
    ]
}

/// A generated memory view and the maximal covered runs an owner may span.
struct Layout: Sendable, CustomStringConvertible {
    let view: MemView
    /// Maximal runs of adjacent mappings: every address in a run translates.
    let runs: [AddressRange]

    var mappings: [Mapping] { view.mappings }
    /// Every mapping start and end, ascending.
    var edges: [Address] { mappings.flatMap { [$0.start, $0.end] } }

    var description: String {
        "Layout(" + mappings.map { "\($0.range) \($0.permissions)" }.joined(separator: ", ") + ")"
    }

    /// Lays the mappings out from a base chosen by `baseKind` (address 0, typical, high, top
    /// of the 64-bit space).
    static func make(baseKind: Int, specs: [MappingSpec]) -> Layout {
        var specs = specs
        if specs.isEmpty { specs = [MappingSpec(gapPages: 0, pages: 1, perms: 3, pathKind: 0)] }
        let total = specs.enumerated().reduce(UInt64(0)) { acc, e in
            acc + (e.offset == 0 ? 0 : e.element.gapPages) * page + e.element.pages * page
        }
        let base: Address
        switch baseKind % 4 {
        case 0: base = 0  // the first mapping starts at address 0
        case 1: base = 0x5555_5555_4000
        case 2: base = 0x7fff_f7a0_0000
        default: base = 0xffff_ffff_ffff_f000 - total  // the last mapping ends at the last page
        }
        var mappings: [Mapping] = []
        var address = base
        for (i, s) in specs.enumerated() {
            if i > 0 { address += s.gapPages * page }
            let end = address + s.pages * page
            let (path, deleted) = MappingSpec.samplePaths[s.pathKind % MappingSpec.samplePaths.count]
            let fileBacked = !path.isEmpty && !path.hasPrefix("[")
            mappings.append(
                Mapping(
                    range: try! AddressRange(start: address, end: end),
                    permissions: Permissions(
                        read: s.perms & 1 != 0, write: s.perms & 2 != 0, execute: s.perms & 4 != 0,
                        shared: s.perms & 8 != 0),
                    offset: fileBacked ? UInt64(i) * page : 0,
                    device: fileBacked ? DeviceNumber(major: 0x103, minor: 2) : DeviceNumber(major: 0, minor: 0),
                    inode: fileBacked ? 1000 + UInt64(i) : 0,
                    path: path, isDeleted: deleted))
            address = end
        }
        let view = try! MemView(mappings: mappings, generation: UInt64(baseKind))
        var runs: [AddressRange] = []
        for m in mappings {
            if let last = runs.last, last.end == m.start {
                runs[runs.count - 1] = try! AddressRange(start: last.start, end: m.end)
            } else {
                runs.append(m.range)
            }
        }
        return Layout(view: view, runs: runs)
    }
}

/// The fields of an owner to make: owners are linear, so generators hand out how to
/// make one, and each test makes its own.
struct OwnerShape: Sendable, CustomStringConvertible {
    let range: AddressRange
    let isFallible: Bool
    let isKernel: Bool
    let memView: VmIoMemView?

    /// A fresh owner (fresh id) of this shape.
    func make() -> VmIoOwner {
        try! VmIoOwner(range: range, isFallible: isFallible, isKernel: isKernel, memView: memView)
    }

    var description: String {
        let kind = memView.map { $0.isRead ? "read" : "write" } ?? "none"
        return "\(range) view=\(kind)\(isFallible ? " fallible" : "")\(isKernel ? " kernel" : "")"
    }
}

/// An owner over a generated layout.
struct OwnerCase: Sendable, CustomStringConvertible {
    let layout: Layout
    let shape: OwnerShape
    /// A raw number for further choices (cut points, sampled addresses).
    let extra: Int

    var description: String { "owner \(shape) over \(layout) extra=\(extra)" }

    /// A fresh owner of the generated shape.
    func owner() -> VmIoOwner { shape.make() }

    /// Where the owner could be cut: 0, count and every mapping edge inside the range
    /// turn up often.
    var cut: UInt64 {
        let r = shape.range
        return pick(extra, 0, r.count, edges: layout.edges.filter { r.contains($0) }.map { $0 - r.start })
    }
}

/// Two owners over the same layout.
struct OwnerPair: Sendable, CustomStringConvertible {
    let layout: Layout
    let a: OwnerShape
    let b: OwnerShape
    var description: String { "\(a) and \(b) over \(layout)" }
}

/// Where to put an owner on a layout.
struct OwnerSpec: Sendable {
    var kind: Int
    var fallible: Bool
    var kernel: Bool
    var runPick: Int
    var startPick: Int
    var endPick: Int

    func owner(on layout: Layout) -> OwnerShape {
        let run = layout.runs[runPick % layout.runs.count]
        let start = pick(startPick, run.start, run.end, edges: layout.edges)
        let end = pick(endPick, start, run.end, edges: layout.edges)
        let view: VmIoMemView? =
            switch kind {
            case 0: .read(layout.view)
            case 1: .write(layout.view)
            default: nil
            }
        return OwnerShape(
            range: try! AddressRange(start: start, end: end), isFallible: fallible, isKernel: kernel, memView: view)
    }
}

/// Reference: whether two half-open ranges share a byte (an empty range shares none).
func referenceIntersects(_ a: AddressRange, _ b: AddressRange) -> Bool {
    max(a.start, b.start) < min(a.end, b.end)
}

/// Reference: the first address of `range` that lies in no mapping (linear scan, independent
/// of `MemView`'s binary search).
func referenceFirstGap(_ range: AddressRange, _ mappings: [Mapping]) -> Address? {
    var next = range.start
    while next < range.end {
        guard let m = mappings.first(where: { $0.start <= next && next < $0.end }) else { return next }
        next = m.end
    }
    return nil
}

/// Addresses of `range` at which a translation could change: its ends, every mapping
/// edge inside it (and the byte before each), and `randomCount` random ones.
func sampleAddresses(_ range: AddressRange, _ mappings: [Mapping], seed: Int, randomCount: Int = 8) -> [Address] {
    guard !range.isEmpty else { return [] }
    var out: Set<Address> = [range.start, range.end - 1]
    for m in mappings {
        for a in [m.start, m.end, m.start &- 1, m.end &- 1] where range.contains(a) { out.insert(a) }
    }
    var rng = SplitMix(seed)
    for _ in 0..<randomCount { out.insert(range.start + UInt64.random(in: 0..<range.count, using: &rng)) }
    return out.sorted()
}

enum Gens {
    static let mappingSpec = zip(
        Gen.int(in: 0...3).map { UInt64($0 <= 1 ? 0 : $0 - 1) },  // half the mappings are adjacent
        Gen.uint64(in: 1...6),
        Gen.int(in: 0...15),
        Gen.int(in: 0...15)
    ).map { MappingSpec(gapPages: $0, pages: $1, perms: $2, pathKind: $3) }

    /// Random sorted, disjoint views of 1–10 mappings.
    static let layout = zip(Gen.int(in: 0...3), mappingSpec.array(of: 1...10))
        .map { Layout.make(baseKind: $0, specs: $1) }

    /// How to place an owner on a layout: view kind (0 read, 1 write, 2 none), fallible,
    /// kernel, and raw picks for the run, the start and the end.
    static func ownerSpec(viewKinds: ClosedRange<Int> = 0...2) -> Generator<OwnerSpec, some SendableSequenceType> {
        zip(
            Gen.int(in: viewKinds), Gen.bool, Gen.bool,
            Gen.int(in: 0...Int(Int32.max)), Gen.int(in: 0...Int(Int32.max)), Gen.int(in: 0...Int(Int32.max))
        ).map { OwnerSpec(kind: $0, fallible: $1, kernel: $2, runPick: $3, startPick: $4, endPick: $5) }
    }

    /// An owner over a covered sub-range of a random layout (possibly empty, often
    /// starting or ending on a mapping edge).
    static func owner(viewKinds: ClosedRange<Int> = 0...2) -> Generator<OwnerCase, some SendableSequenceType> {
        zip(layout, ownerSpec(viewKinds: viewKinds), Gen.int(in: 0...Int(Int32.max)))
            .map { layout, spec, extra in OwnerCase(layout: layout, shape: spec.owner(on: layout), extra: extra) }
    }

    /// Two owners over the same layout.
    static var ownerPair: Generator<OwnerPair, some SendableSequenceType> {
        zip(layout, ownerSpec(), ownerSpec())
            .map { layout, a, b in OwnerPair(layout: layout, a: a.owner(on: layout), b: b.owner(on: layout)) }
    }

    /// An owner that carries a view (the precondition of `split` and `advance`).
    static var viewedOwner: Generator<OwnerCase, some SendableSequenceType> { owner(viewKinds: 0...1) }

    /// Any range, anywhere in the 64-bit space, often empty or at the very top.
    static let anyRange = zip(Gen.int(in: 0...4), Gen.uint64(), Gen.uint64(in: 0...0x3000))
        .map { kind, a, len -> AddressRange in
            switch kind {
            case 0: return try! AddressRange(start: a, count: 0)
            case 1: return try! AddressRange(start: UInt64.max - len, end: UInt64.max)
            case 2: return try! AddressRange(start: 0, count: len)
            default:
                return try! AddressRange(start: a, end: a.addingReportingOverflow(len).overflow ? UInt64.max : a + len)
            }
        }
}
