/// Where an address lands in a ``MemView``: the mapping holding it and the offset into that mapping.
public struct Translation: Hashable, Sendable {
    /// The mapping that holds the address.
    public let mapping: Mapping
    /// The address's offset from the start of that mapping.
    public let offset: UInt64
}

/// A snapshot of a process's mappings: sorted by address and pairwise disjoint.
///
/// A view is a snapshot and may go stale (the target can `mmap`/`munmap` while we
/// look). It is used to refuse obviously bad requests early and to split work at
/// mapping boundaries, never as proof that an access will succeed.
public struct MemView: Hashable, Sendable {
    /// The mappings, sorted by address and disjoint.
    public let mappings: [Mapping]
    /// Increases each time the view is read anew from the same process.
    public let generation: UInt64

    /// Builds a view; throws ``VmIoError/mappingsOverlap(index:)`` or
    /// ``VmIoError/mappingsUnsorted(index:)`` (naming the offending mapping) instead of
    /// silently repairing text that breaks the model.
    public init(mappings: [Mapping], generation: UInt64 = 0) throws(VmIoError) {
        for (i, m) in mappings.enumerated() {
            guard m.range.isWellFormed else { throw .invalidRange(start: m.start, end: m.end) }
            if i > 0 {
                let prev = mappings[i - 1]
                if m.start < prev.start { throw .mappingsUnsorted(index: i) }
                if m.start < prev.end { throw .mappingsOverlap(index: i) }
            }
        }
        self.mappings = mappings
        self.generation = generation
        mappingsAreDisjoint = true
    }

    init(uncheckedMappings mappings: [Mapping], generation: UInt64) {
        self.mappings = mappings
        self.generation = generation
        mappingsAreDisjoint = Self.disjoint(mappings)
    }

    /// A view with no mapping: it translates no address.
    public static let empty = MemView(uncheckedMappings: [], generation: 0)

    /// Sorted and pairwise disjoint (the invariant's `mappings_are_disjoint`). Worked out
    /// once, when the view is built: every owner checks it, and a view may hold 10,000 mappings.
    public let mappingsAreDisjoint: Bool

    private static func disjoint(_ mappings: [Mapping]) -> Bool {
        var i = 1
        while i < mappings.count {
            if mappings[i].start < mappings[i - 1].end || !mappings[i].range.isWellFormed { return false }
            i += 1
        }
        return mappings.first?.range.isWellFormed ?? true
    }

    /// Index of the first mapping whose end is above `address` (binary search).
    func firstIndex(endingAbove address: Address) -> Int {
        var lo = 0, hi = mappings.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if mappings[mid].end <= address { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// The index of the mapping holding `address`, or nil in a gap.
    public func index(containing address: Address) -> Int? {
        let i = firstIndex(endingAbove: address)
        return i < mappings.count && mappings[i].start <= address ? i : nil
    }

    /// The mapping holding `address` and the offset into it; nil in a gap.
    public func translate(_ address: Address) -> Translation? {
        guard let i = index(containing: address) else { return nil }
        return Translation(mapping: mappings[i], offset: address - mappings[i].start)
    }

    /// The mappings that intersect `range` (half-open), in order.
    public func mappings(intersecting range: AddressRange) -> ArraySlice<Mapping> {
        guard !range.isEmpty else { return mappings[0..<0] }
        let lo = firstIndex(endingAbove: range.start)
        var hi = lo
        while hi < mappings.count && mappings[hi].start < range.end { hi += 1 }
        return mappings[lo..<hi]
    }

    /// The first address of `range` that lies in no mapping satisfying `accept`, or nil.
    public func firstAddress(in range: AddressRange, where accept: (Mapping) -> Bool = { _ in true }) -> Address? {
        var next = range.start
        for m in mappings(intersecting: range) {
            if m.start > next || !accept(m) { return next }
            next = m.end
            if next >= range.end { return nil }
        }
        return next < range.end ? next : nil
    }

    /// Every byte of `range` translates (no gap). An empty range is covered.
    public func covers(_ range: AddressRange) -> Bool { firstAddress(in: range) == nil }

    /// Covers `range`, and every mapping touched is readable.
    public func readable(_ range: AddressRange) -> Bool {
        firstAddress(in: range, where: { $0.permissions.read }) == nil
    }

    /// Covers `range`, and every mapping touched is writable.
    public func writable(_ range: AddressRange) -> Bool {
        firstAddress(in: range, where: { $0.permissions.write }) == nil
    }

    /// The same snapshot cut down to the mappings that intersect `range` (not clipped,
    /// so every address of `range` translates exactly as before).
    public func restricted(to range: AddressRange) -> MemView {
        MemView(uncheckedMappings: Array(mappings(intersecting: range)), generation: generation)
    }

    /// The mappings of both views, for two cuts of one snapshot (as ``restricted(to:)``
    /// makes them); nil when the generations differ or the two do not agree (a mapping
    /// of one overlaps a different mapping of the other).
    func union(_ other: MemView) -> MemView? {
        guard generation == other.generation else { return nil }
        var merged: [Mapping] = []
        merged.reserveCapacity(mappings.count + other.mappings.count)
        var (i, j) = (0, 0)
        while i < mappings.count || j < other.mappings.count {
            let next: Mapping
            if j == other.mappings.count || (i < mappings.count && mappings[i].start <= other.mappings[j].start) {
                next = mappings[i]
                i += 1
            } else {
                next = other.mappings[j]
                j += 1
            }
            if merged.last == next { continue }
            if let last = merged.last, next.start < last.end { return nil }
            merged.append(next)
        }
        return MemView(uncheckedMappings: merged, generation: generation)
    }

    /// Whether the two views hold a mapping in common (the seed's `mappings.disjoint` negated).
    public func sharesMapping(with other: MemView) -> Bool {
        let (small, large) = mappings.count <= other.mappings.count ? (self, other) : (other, self)
        guard !small.mappings.isEmpty else { return false }
        let set = Set(small.mappings)
        return large.mappings.contains(where: set.contains)
    }

    /// The first mapping whose basename (or special name) equals `name`.
    public func firstMapping(named name: String) -> Mapping? {
        mappings.first { $0.path == name || ($0.isFileBacked && $0.basename == name) }
    }
}
