import Synchronization

/// A memory view carried by an owner: permission to read, or to write, the
/// mappings of a ``MemView``.
public enum VmIoMemView: Hashable, Sendable {
    case read(MemView)
    case write(MemView)

    public var memView: MemView {
        switch self {
        case .read(let v), .write(let v): v
        }
    }
    public var isRead: Bool { if case .read = self { true } else { false } }
    public var isWrite: Bool { if case .write = self { true } else { false } }

    /// The same kind of view over another snapshot.
    func withView(_ view: MemView) -> VmIoMemView {
        switch self {
        case .read: .read(view)
        case .write: .write(view)
        }
    }
}

/// Owner ids: unique for the life of the process, never reused (local buffers included).
private let ownerIDs = Atomic<UInt64>(1)

func freshOwnerID() -> UInt64 {
    ownerIDs.wrappingAdd(1, ordering: .relaxed).oldValue
}

/// The owner of a VM I/O operation: the range it still covers and the memory view
/// that lets it touch that range — the seed's `VmIoOwner`, field for field.
///
/// Every operation checks the seed's preconditions and throws a ``VmIoError`` when one
/// does not hold; the postconditions are asserted in debug builds.
public struct VmIoOwner: Hashable, Sendable, CustomStringConvertible {
    /// Unique for the life of the process.
    public let id: UInt64
    /// The addresses this owner still covers.
    public private(set) var range: AddressRange
    /// True for remote (target) memory, false for local buffers.
    public private(set) var isFallible: Bool
    /// True for the tool's own local buffers (the seed's kernel side).
    public let isKernel: Bool
    /// The view this owner reads or writes through, cut down to the mappings its range touches.
    public private(set) var memView: VmIoMemView?

    /// A new owner with a fresh id. The view is restricted to the mappings `range`
    /// touches; throws ``VmIoError/rangeNotCovered(address:)`` when some address of
    /// `range` lies in no mapping of the view.
    public init(range: AddressRange, isFallible: Bool, isKernel: Bool, memView: VmIoMemView?) throws(VmIoError) {
        guard range.isWellFormed else { throw .invalidRange(start: range.start, end: range.end) }
        if let view = memView, let gap = view.memView.firstAddress(in: range) {
            throw .rangeNotCovered(address: gap)
        }
        self.id = freshOwnerID()
        self.range = range
        self.isFallible = isFallible
        self.isKernel = isKernel
        self.memView = memView.map { $0.withView($0.memView.restricted(to: range)) }
        assert(inv)
    }

    /// An owner over target memory: fallible, not kernel.
    public static func remote(_ range: AddressRange, view: VmIoMemView) throws(VmIoError) -> VmIoOwner {
        try VmIoOwner(range: range, isFallible: true, isKernel: false, memView: view)
    }

    private init(id: UInt64, range: AddressRange, isFallible: Bool, isKernel: Bool, memView: VmIoMemView?) {
        self.id = id
        self.range = range
        self.isFallible = isFallible
        self.isKernel = isKernel
        self.memView = memView
    }

    // MARK: Invariant

    /// The seed's `inv`: the range is well formed; a view, if present, has disjoint
    /// mappings and translates every address of the range.
    public var inv: Bool { invariantFailure == nil }

    /// Throws ``VmIoError/invariantViolated(owner:reason:)`` naming what is broken.
    public func checkInvariant() throws(VmIoError) {
        if let reason = invariantFailure { throw .invariantViolated(owner: id, reason: reason) }
    }

    private var invariantFailure: String? {
        guard range.isWellFormed else { return "range start \(range.start.hex) is above its end \(range.end.hex)" }
        guard let view = memView?.memView else { return nil }
        guard view.mappingsAreDisjoint else { return "the view's mappings overlap or are unsorted" }
        if let gap = view.firstAddress(in: range) { return "address \(gap.hex) of the range is in no mapping" }
        return nil
    }

    // MARK: Queries

    public var hasReadView: Bool { memView?.isRead ?? false }
    public var hasWriteView: Bool { memView?.isWrite ?? false }
    /// Ready to serve as the readable side of a copy.
    public var canRead: Bool { hasReadView }
    /// Ready to serve as the writable side of a copy.
    public var canWrite: Bool { hasWriteView }

    /// Has a read view and every byte of the range lies in a readable mapping of it.
    /// (A local buffer's view is one readable mapping over the buffer, so this holds for it.)
    public var readViewInitialized: Bool {
        guard case .read(let view) = memView else { return false }
        return view.readable(range)
    }

    /// The seed's inclusive test: `start <= r.end && r.start <= end`. Touching ranges
    /// count as overlapping, and so does an empty range at either end.
    public func overlaps(withRange r: AddressRange) -> Bool {
        range.start <= r.end && r.start <= range.end
    }

    /// Not ``overlaps(withRange:)`` the other's range and, when both carry views,
    /// the two views share no mapping.
    public func disjoint(_ other: VmIoOwner) -> Bool {
        guard !overlaps(withRange: other.range) else { return false }
        if let mine = memView?.memView, let theirs = other.memView?.memView {
            return !mine.sharesMapping(with: theirs)
        }
        return true
    }

    /// The negation of ``disjoint(_:)``.
    public func overlaps(_ other: VmIoOwner) -> Bool { !disjoint(other) }

    /// Same range and same fallibility.
    public func paramsEqual(_ other: VmIoOwner) -> Bool {
        range == other.range && isFallible == other.isFallible
    }

    /// The read view's snapshot; ``VmIoError/notAReadView(owner:)`` when there is none.
    public func readView() throws(VmIoError) -> MemView {
        guard case .read(let view) = memView else { throw .notAReadView(owner: id) }
        return view
    }

    // MARK: Operations

    /// Requires `inv` and `fallible != isFallible`; after: `inv`, `isFallible == fallible`.
    public mutating func changeFallible(to fallible: Bool) throws(VmIoError) {
        try checkInvariant()
        guard fallible != isFallible else { throw .fallibilityUnchanged(fallible) }
        isFallible = fallible
        assert(inv && isFallible == fallible)
    }

    private func checkCut(_ n: UInt64) throws(VmIoError) -> VmIoMemView {
        try checkInvariant()
        guard let view = memView else { throw .noView(owner: id) }
        guard n <= range.count else { throw .lengthExceedsRange(requested: n, available: range.count) }
        return view
    }

    /// Moves the start of the range forward by `n` bytes and returns the view of the
    /// part advanced past. Requires `inv`, a view, `n <= range.count`.
    @discardableResult
    public mutating func advance(_ n: UInt64) throws(VmIoError) -> VmIoMemView {
        let view = try checkCut(n)
        let old = self
        let cut = range.start + n
        let passed = AddressRange(uncheckedStart: range.start, end: cut)
        range = AddressRange(uncheckedStart: cut, end: range.end)
        memView = view.withView(view.memView.restricted(to: range))
        assert(Self.advancePostcondition(old: old, new: self, n: n))
        return view.withView(view.memView.restricted(to: passed))
    }

    /// Splits off the first `n` bytes as a new owner (fresh id); `self` keeps the rest
    /// and its id. Requires `inv`, a view, `n <= range.count`.
    public mutating func split(_ n: UInt64) throws(VmIoError) -> VmIoOwner {
        let view = try checkCut(n)
        let old = self
        let cut = range.start + n
        let frontRange = AddressRange(uncheckedStart: range.start, end: cut)
        let front = VmIoOwner(
            id: freshOwnerID(), range: frontRange, isFallible: isFallible, isKernel: isKernel,
            memView: view.withView(view.memView.restricted(to: frontRange)))
        range = AddressRange(uncheckedStart: cut, end: range.end)
        memView = view.withView(view.memView.restricted(to: range))
        assert(Self.splitPostcondition(old: old, front: front, back: self, n: n))
        return front
    }

    /// Shrinks the range to its first `count` bytes (a reader's or writer's `limit`);
    /// start, id, flags and view kind are unchanged. Requires `inv`, a view, `count <= range.count`.
    public mutating func truncate(to count: UInt64) throws(VmIoError) {
        let view = try checkCut(count)
        range = AddressRange(uncheckedStart: range.start, end: range.start + count)
        memView = view.withView(view.memView.restricted(to: range))
        assert(inv)
    }

    /// Turns a write view into a read view of the same snapshot, so the range written
    /// can be handed back for read-back. Requires `inv` and a write view.
    public mutating func writeToRead() throws(VmIoError) {
        try checkInvariant()
        guard case .write(let view) = memView else { throw .notAWriteView(owner: id) }
        let old = self
        memView = .read(view)
        assert(
            inv && range == old.range && id == old.id && isFallible == old.isFallible
                && isKernel == old.isKernel && memView == .read(view))
    }

    public var description: String {
        let kind = memView.map { $0.isRead ? "read" : "write" } ?? "none"
        return "owner #\(id) \(range) view=\(kind)\(isFallible ? " fallible" : "")\(isKernel ? " kernel" : "")"
    }

    // MARK: Postconditions (checked by assert in debug builds, and by the property tests)

    /// The ensures-clauses of the seed's `advance`.
    public static func advancePostcondition(old: VmIoOwner, new: VmIoOwner, n: UInt64) -> Bool {
        guard new.inv, new.range.start == old.range.start + n, new.range.end == old.range.end,
            new.isFallible == old.isFallible, new.id == old.id, new.isKernel == old.isKernel
        else { return false }
        if old.hasReadView && !new.hasReadView { return false }
        if old.hasWriteView && !new.hasWriteView { return false }
        if old.readViewInitialized && !new.readViewInitialized { return false }
        if case .read(let before) = old.memView, case .read(let after) = new.memView {
            // Every remaining address translates exactly as before (sampled at mapping edges).
            for va in sampleAddresses(new.range, before) where before.translate(va) != after.translate(va) {
                return false
            }
        }
        return true
    }

    /// The ensures-clauses of the seed's `split`.
    public static func splitPostcondition(old: VmIoOwner, front: VmIoOwner, back: VmIoOwner, n: UInt64) -> Bool {
        guard front.inv, front.range.start == old.range.start, front.range.end == old.range.start + n,
            front.isFallible == old.isFallible, front.isKernel == old.isKernel, front.memView != nil,
            back.inv, back.range.start == old.range.start + n, back.range.end == old.range.end,
            back.isFallible == old.isFallible, back.id == old.id, back.isKernel == old.isKernel,
            back.memView != nil, front.id != old.id
        else { return false }
        if old.hasReadView && !(front.hasReadView && back.hasReadView) { return false }
        if old.hasWriteView && !(front.hasWriteView && back.hasWriteView) { return false }
        if old.readViewInitialized && !(front.readViewInitialized && back.readViewInitialized) { return false }
        return true
    }

    /// The range's ends and each mapping edge inside it: where a translation could change.
    static func sampleAddresses(_ range: AddressRange, _ view: MemView) -> [Address] {
        guard !range.isEmpty else { return [] }
        var out = [range.start, range.end - 1]
        for m in view.mappings(intersecting: range) {
            if range.contains(m.start) { out.append(m.start) }
            if m.end > range.start, range.contains(m.end - 1) { out.append(m.end - 1) }
        }
        return out
    }
}
