import Synchronization

/// A memory view carried by an owner: permission to read, or to write, the
/// mappings of a ``MemView``.
public enum VmIoMemView: Hashable, Sendable {
    /// Permission to read the mappings of the view.
    case read(MemView)
    /// Permission to write the mappings of the view.
    case write(MemView)

    /// The snapshot of mappings the view reads or writes through.
    public var memView: MemView {
        switch self {
        case .read(let v), .write(let v): v
        }
    }
    /// Whether this is a read view.
    public var isRead: Bool { if case .read = self { true } else { false } }
    /// Whether this is a write view.
    public var isWrite: Bool { if case .write = self { true } else { false } }

    /// The same kind of view over another snapshot.
    func withView(_ view: MemView) -> VmIoMemView {
        switch self {
        case .read: .read(view)
        case .write: .write(view)
        }
    }

    /// Both read or both write.
    func sameKind(as other: VmIoMemView) -> Bool { isRead == other.isRead }
}

/// Owner ids: unique for the life of the process, never reused (local buffers included).
private let ownerIDs = Atomic<UInt64>(1)

func freshOwnerID() -> UInt64 {
    ownerIDs.wrappingAdd(1, ordering: .relaxed).oldValue
}

/// The owner of a VM I/O operation: the range it still covers and the memory view
/// that lets it touch that range — the seed's `VmIoOwner`, field for field.
///
/// An owner is *linear* (`~Copyable`), as the seed's `tracked` owner is: it cannot be
/// copied, only moved, so one permission over a range is never held twice. `split` and
/// `advance` take the owner `inout` — the seed's `tracked &mut self`: the caller's owner
/// is consumed and the new one put back in its place, and a refused operation puts it
/// back unchanged. A reader or writer holds its owner and gives it back whole when it is
/// done (``VmReader/finish()``, ``VmWriter/finish()``, ``VmWriter/readBack()``), and an
/// ``OwnerRegistry`` takes it back with ``OwnerRegistry/release(_:)``.
///
/// Every operation checks the seed's preconditions, starting with ``inv``, and throws
/// a ``VmIoError`` when one does not hold; it never traps. The postconditions are the
/// property tests' assertions (Tests/VmIOTests/OwnerContractTests.swift).
public struct VmIoOwner: ~Copyable, Sendable {
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
    /// touches. Throws ``VmIoError/invalidRange(start:end:)`` for an inverted range,
    /// ``VmIoError/rangeNotCovered(address:)`` when some address of `range` lies in no
    /// mapping of the view, and ``VmIoError/invariantViolated(owner:_:)`` when the view
    /// itself is broken (its mappings overlap or are unsorted).
    public init(range: AddressRange, isFallible: Bool, isKernel: Bool, memView: VmIoMemView?) throws(VmIoError) {
        guard range.isWellFormed else { throw .invalidRange(start: range.start, end: range.end) }
        // Checked before the owner exists: a noncopyable value cannot be half made.
        let id = freshOwnerID()
        if let view = memView {
            // A broken view first: the search for a gap assumes sorted, disjoint mappings.
            guard view.memView.mappingsAreDisjoint else { throw .invariantViolated(owner: id, .mappingsNotDisjoint) }
            if let gap = view.memView.firstAddress(in: range) { throw .rangeNotCovered(address: gap) }
        }
        let restricted = memView.map { $0.withView($0.memView.restricted(to: range)) }
        if let failure = Self.invariantFailure(range, restricted) { throw .invariantViolated(owner: id, failure) }
        self.init(unchecked: id, range: range, isFallible: isFallible, isKernel: isKernel, memView: restricted)
    }

    /// An owner over target memory: fallible, not kernel.
    ///
    /// Throws ``VmIoError/invariantViolated(owner:_:)`` when the view does not cover `range`
    /// (the owner would not satisfy `inv`).
    public static func remote(_ range: AddressRange, view: VmIoMemView) throws(VmIoError) -> VmIoOwner {
        try VmIoOwner(range: range, isFallible: true, isKernel: false, memView: view)
    }

    /// An owner exactly as given, unchecked: for the module's own operations (which keep
    /// ``inv``) and for tests that build broken owners on purpose.
    init(unchecked id: UInt64, range: AddressRange, isFallible: Bool, isKernel: Bool, memView: VmIoMemView?) {
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

    /// Throws ``VmIoError/invariantViolated(owner:_:)`` naming what is broken.
    public func checkInvariant() throws(VmIoError) {
        if let failure = invariantFailure { throw .invariantViolated(owner: id, failure) }
    }

    /// The first clause of ``inv`` that does not hold, or nil.
    var invariantFailure: InvariantFailure? { Self.invariantFailure(range, memView) }

    static func invariantFailure(_ range: AddressRange, _ memView: VmIoMemView?) -> InvariantFailure? {
        guard range.isWellFormed else { return .rangeInverted(start: range.start, end: range.end) }
        guard let view = memView?.memView else { return nil }
        guard view.mappingsAreDisjoint else { return .mappingsNotDisjoint }
        if let gap = view.firstAddress(in: range) { return .addressNotCovered(gap) }
        return nil
    }

    // MARK: Queries

    /// The seed's `has_read_view`: the owner carries a read view.
    public var hasReadView: Bool { memView?.isRead ?? false }
    /// The seed's `has_write_view`: the owner carries a write view.
    public var hasWriteView: Bool { memView?.isWrite ?? false }
    /// Ready to serve as the readable side of a copy.
    public var canRead: Bool { hasReadView }
    /// Ready to serve as the writable side of a copy.
    public var canWrite: Bool { hasWriteView }

    /// Has a read view and every byte of the range lies in a readable mapping of it.
    /// (A local buffer's view is one readable mapping over the buffer, so this holds for it.)
    public var readViewInitialized: Bool { Self.readViewInitialized(range, memView) }

    static func readViewInitialized(_ range: AddressRange, _ memView: VmIoMemView?) -> Bool {
        guard case .read(let view) = memView else { return false }
        return view.readable(range)
    }

    /// The seed's inclusive test: `start <= r.end && r.start <= end`. Touching ranges
    /// count as overlapping, and so does an empty range at either end.
    public func overlaps(withRange r: AddressRange) -> Bool {
        range.start <= r.end && r.start <= range.end
    }

    /// The seed's `disjoint`: not ``overlaps(withRange:)`` the other's range and, when
    /// both carry views, the two views share no mapping.
    ///
    /// Both clauses are coarse on purpose (they are the seed's): touching ranges are not
    /// disjoint, and neither are two owners anywhere in one mapping. ``VmReader`` requires
    /// it of a local reader and writer; see ``OwnerRegistry`` for why the registry's
    /// conflict test is finer.
    public func disjoint(_ other: borrowing VmIoOwner) -> Bool {
        guard !overlaps(withRange: other.range) else { return false }
        if let mine = memView?.memView, let theirs = other.memView?.memView {
            return !mine.sharesMapping(with: theirs)
        }
        return true
    }

    /// The seed's `overlaps`: the negation of ``disjoint(_:)``.
    public func overlaps(_ other: borrowing VmIoOwner) -> Bool { !disjoint(other) }

    /// Same range and same fallibility.
    public func paramsEqual(_ other: borrowing VmIoOwner) -> Bool {
        range == other.range && isFallible == other.isFallible
    }

    /// The read view's snapshot; ``VmIoError/notAReadView(owner:)`` when there is none.
    public func readView() throws(VmIoError) -> MemView {
        try checkInvariant()
        guard case .read(let view) = memView else { throw .notAReadView(owner: id) }
        return view
    }

    /// A copyable record of the owner's fields, for reports, messages and assertions.
    /// It carries no permission: nothing can be read or written through it.
    public var snapshot: OwnerSnapshot {
        OwnerSnapshot(id: id, range: range, isFallible: isFallible, isKernel: isKernel, memView: memView)
    }

    /// The owner as messages show it: its id, range and flags (its ``snapshot``'s description).
    public var description: String { snapshot.description }

    // MARK: Operations (the seed's proof functions)

    /// The seed's `change_fallible`. Requires `inv` and `fallible != isFallible`;
    /// after: `inv`, `isFallible == fallible`.
    ///
    /// Throws ``VmIoError/invariantViolated(owner:_:)`` when `inv` does not hold, and
    /// ``VmIoError/fallibilityUnchanged(_:)`` when the owner is already `fallible`.
    public mutating func changeFallible(to fallible: Bool) throws(VmIoError) {
        try checkInvariant()
        guard fallible != isFallible else { throw .fallibilityUnchanged(fallible) }
        isFallible = fallible
    }

    /// The preconditions shared by `split` and `advance`: `inv`, a view, `n <= range.count`.
    private func checkCut(_ n: UInt64) throws(VmIoError) -> VmIoMemView {
        try checkInvariant()
        guard let view = memView else { throw .noView(owner: id) }
        guard n <= range.count else { throw .lengthExceedsRange(requested: n, available: range.count) }
        return view
    }

    /// The seed's `advance`: moves the start of the range forward by `n` bytes and hands
    /// back the permission for the part advanced past. Requires `inv`, a view,
    /// `n <= range.count`; after: `inv`, start moved by `n`, end, id and flags kept, the
    /// same kind of view, every remaining address translating as before.
    ///
    /// Throws ``VmIoError/invariantViolated(owner:_:)`` when `inv` does not hold,
    /// ``VmIoError/noView(owner:)`` without a view, and ``VmIoError/lengthExceedsRange(requested:available:)``
    /// when `n` is more than the range has.
    @discardableResult
    public mutating func advance(_ n: UInt64) throws(VmIoError) -> PassedView {
        let view = try checkCut(n)
        let cut = range.start + n
        let passed = AddressRange(uncheckedStart: range.start, end: cut)
        range = AddressRange(uncheckedStart: cut, end: range.end)
        memView = view.withView(view.memView.restricted(to: range))
        return PassedView(owner: id, range: passed, memView: view.withView(view.memView.restricted(to: passed)))
    }

    /// The seed's `split`: splits off the first `n` bytes as a new owner (fresh id);
    /// `self` keeps the rest and its id. Requires `inv`, a view, `n <= range.count`;
    /// after: both `inv`, front `[start, start + n)`, back `[start + n, end)`, flags and
    /// view kind on both sides as before.
    ///
    /// Throws as ``advance(_:)`` does.
    public mutating func split(_ n: UInt64) throws(VmIoError) -> VmIoOwner {
        let view = try checkCut(n)
        let cut = range.start + n
        let frontRange = AddressRange(uncheckedStart: range.start, end: cut)
        let front = VmIoOwner(
            unchecked: freshOwnerID(), range: frontRange, isFallible: isFallible, isKernel: isKernel,
            memView: view.withView(view.memView.restricted(to: frontRange)))
        range = AddressRange(uncheckedStart: cut, end: range.end)
        memView = view.withView(view.memView.restricted(to: range))
        return front
    }

    /// The seed's `write_to_read`: turns a write view into a read view of the same
    /// snapshot, so the range written can be handed back for read-back. Requires `inv`
    /// and a write view; range, id and flags are kept.
    ///
    /// Throws ``VmIoError/invariantViolated(owner:_:)`` when `inv` does not hold, and
    /// ``VmIoError/notAWriteView(owner:)`` when the view is not a write view.
    public mutating func writeToRead() throws(VmIoError) {
        try checkInvariant()
        guard case .write(let view) = memView else { throw .notAWriteView(owner: id) }
        memView = .read(view)
    }

    // MARK: Handing parts back (not in the seed; what readers and writers need to give
    // their owner back whole)

    /// Splits off the bytes from `count` on as a new owner (fresh id) and keeps the
    /// first `count` — `split` with the roles of the halves swapped, so a reader's or
    /// writer's ``VmReader/limit(_:)`` keeps its id. Same preconditions as `split`.
    mutating func splitTail(at count: UInt64) throws(VmIoError) -> VmIoOwner {
        let view = try checkCut(count)
        let cut = range.start + count
        let tailRange = AddressRange(uncheckedStart: cut, end: range.end)
        let tail = VmIoOwner(
            unchecked: freshOwnerID(), range: tailRange, isFallible: isFallible, isKernel: isKernel,
            memView: view.withView(view.memView.restricted(to: tailRange)))
        range = AddressRange(uncheckedStart: range.start, end: cut)
        memView = view.withView(view.memView.restricted(to: range))
        return tail
    }

    /// Puts back in front of the range the part that ``advance(_:)`` handed back: the
    /// inverse of `advance`. Requires `inv`, and a passed view of the same kind and
    /// snapshot ending where the range starts; id and flags are kept.
    mutating func rejoin(_ passed: consuming PassedView) throws(VmIoError) {
        try checkInvariant()
        let joined = try joinedView(passed.range, passed.memView, front: true)
        range = AddressRange(uncheckedStart: passed.range.start, end: range.end)
        memView = joined
    }

    /// Appends the owner that ``splitTail(at:)`` split off (it ends here). Requires
    /// `inv` on both, the same flags and the same kind of view over the same snapshot,
    /// and `tail` starting where the range ends; the tail's id ends with it.
    mutating func append(_ tail: consuming VmIoOwner) throws(VmIoError) {
        try checkInvariant()
        try tail.checkInvariant()
        guard tail.isFallible == isFallible, tail.isKernel == isKernel, let tailView = tail.memView else {
            throw .cannotRejoin(owner: id, .flagsDiffer)
        }
        let joined = try joinedView(tail.range, tailView, front: false)
        range = AddressRange(uncheckedStart: range.start, end: tail.range.end)
        memView = joined
    }

    /// ``rejoin(_:)`` for a part known to fit (cut from this owner by `advance`): what a
    /// reader or writer uses to give its owner back whole, which must not fail.
    mutating func rejoinCut(_ passed: consuming PassedView) {
        assert(passed.range.end == range.start && memView.map { $0.sameKind(as: passed.memView) } == true)
        range = AddressRange(uncheckedStart: passed.range.start, end: range.end)
        memView = memView.map { $0.withView($0.memView.union(passed.memView.memView) ?? $0.memView) }
        assert(inv)
    }

    /// ``append(_:)`` for a tail known to fit (cut from this owner by `splitTail`).
    mutating func appendCut(_ tail: consuming VmIoOwner) {
        assert(tail.range.start == range.end && tail.isFallible == isFallible)
        range = AddressRange(uncheckedStart: range.start, end: tail.range.end)
        let tailView = tail.memView
        memView = memView.map { mine in
            mine.withView(tailView.flatMap { mine.memView.union($0.memView) } ?? mine.memView)
        }
        assert(inv)
    }

    /// ``writeToRead()`` for an owner known to hold a write view and keep ``inv``.
    mutating func writeToReadCut() {
        if case .write(let view) = memView { memView = .read(view) }
    }

    /// This owner's view joined with `other` over the adjacent range `part`.
    private func joinedView(_ part: AddressRange, _ other: VmIoMemView, front: Bool) throws(VmIoError)
        -> VmIoMemView
    {
        guard let mine = memView, mine.sameKind(as: other) else { throw .cannotRejoin(owner: id, .viewKindDiffers) }
        guard front ? part.end == range.start : part.start == range.end else {
            throw .cannotRejoin(owner: id, .notAdjacent(part))
        }
        guard let union = mine.memView.union(other.memView) else {
            throw .cannotRejoin(owner: id, .viewsDiffer)
        }
        return mine.withView(union)
    }
}

/// What ``VmIoOwner/advance(_:)`` hands back: the permission for the bytes it moved past
/// (the seed's returned `VmIoMemView`). Linear like the owner, so a part advanced past
/// is put back (``VmWriter/readBack()`` rejoins it) or dropped, never held twice.
public struct PassedView: ~Copyable, Sendable {
    /// The id of the owner it was advanced from.
    public let owner: UInt64
    /// The addresses advanced past.
    public let range: AddressRange
    /// The view over them, of the owner's kind.
    public let memView: VmIoMemView

    /// `self` followed by `next`, which must start where `self` ends and be of the same
    /// kind over the same snapshot.
    consuming func appending(_ next: consuming PassedView) throws(VmIoError) -> PassedView {
        guard memView.sameKind(as: next.memView), range.end == next.range.start,
            let union = memView.memView.union(next.memView.memView)
        else { throw .cannotRejoin(owner: owner, .notAdjacent(next.range)) }
        return PassedView(
            owner: owner, range: AddressRange(uncheckedStart: range.start, end: next.range.end),
            memView: memView.withView(union))
    }

    /// ``appending(_:)`` for the next cut of the same owner, which must not fail.
    consuming func appendingCut(_ next: consuming PassedView) -> PassedView {
        assert(range.end == next.range.start && memView.sameKind(as: next.memView))
        return PassedView(
            owner: owner, range: AddressRange(uncheckedStart: range.start, end: next.range.end),
            memView: memView.withView(memView.memView.union(next.memView.memView) ?? memView.memView))
    }
}

/// A copyable record of an owner's fields (``VmIoOwner/snapshot``): for reports,
/// messages and the property tests' `old(self)`. It carries no permission.
public struct OwnerSnapshot: Hashable, Sendable, CustomStringConvertible {
    /// The owner's id.
    public let id: UInt64
    /// The range the owner covered.
    public let range: AddressRange
    /// Whether the owner was fallible (remote memory).
    public let isFallible: Bool
    /// Whether the owner was on the kernel side (a local buffer).
    public let isKernel: Bool
    /// The owner's view, if it carried one.
    public let memView: VmIoMemView?

    /// Whether the owner carried a read view.
    public var hasReadView: Bool { memView?.isRead ?? false }
    /// Whether the owner carried a write view.
    public var hasWriteView: Bool { memView?.isWrite ?? false }
    /// The owner's ``VmIoOwner/inv`` when the snapshot was taken.
    public var inv: Bool { VmIoOwner.invariantFailure(range, memView) == nil }
    /// The owner's ``VmIoOwner/readViewInitialized`` when the snapshot was taken.
    public var readViewInitialized: Bool { VmIoOwner.readViewInitialized(range, memView) }

    public var description: String {
        let kind = memView.map { $0.isRead ? "read" : "write" } ?? "none"
        return "owner #\(id) \(range) view=\(kind)\(isFallible ? " fallible" : "")\(isKernel ? " kernel" : "")"
    }
}

/// Which clause of an owner's ``VmIoOwner/inv`` does not hold.
public enum InvariantFailure: Hashable, Sendable, CustomStringConvertible {
    /// The range starts above its end.
    case rangeInverted(start: Address, end: Address)
    /// The view's mappings overlap or are unsorted.
    case mappingsNotDisjoint
    /// An address of the range lies in no mapping of the view.
    case addressNotCovered(Address)

    public var description: String {
        switch self {
        case .rangeInverted(let s, let e): "range start \(s.hex) is above its end \(e.hex)"
        case .mappingsNotDisjoint: "the view's mappings overlap or are unsorted"
        case .addressNotCovered(let a): "address \(a.hex) of the range is in no mapping"
        }
    }
}

/// Why a part could not be joined back to an owner.
public enum RejoinFailure: Hashable, Sendable, CustomStringConvertible {
    /// The part does not end where the owner starts (or start where it ends).
    case notAdjacent(AddressRange)
    /// A read part and a write owner, or the other way round.
    case viewKindDiffers
    /// The two views come from different snapshots, or do not agree on a mapping.
    case viewsDiffer
    /// Different fallibility or kernel flag, or no view.
    case flagsDiffer

    public var description: String {
        switch self {
        case .notAdjacent(let r): "\(r) is not adjacent"
        case .viewKindDiffers: "the views are of different kinds"
        case .viewsDiffer: "the views are of different snapshots"
        case .flagsDiffer: "the flags differ"
        }
    }
}
