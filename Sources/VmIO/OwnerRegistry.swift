/// Hands out owners over one address space and takes them back, and keeps them from
/// conflicting: no two live write owners over intersecting ranges, and no read owner
/// intersecting a live write owner. Readers may share.
///
/// Owners are linear (``VmIoOwner``): ``acquire(_:range:view:isFallible:isKernel:)``
/// records a lease and hands the owner out; ``release(_:)`` consumes it and ends the
/// lease. ``lend(_:to:)-(VmReader,_)`` does both around a piece of work, on every path.
///
/// ## Why the conflict test is not the seed's `disjoint`
///
/// Two leases conflict when one of them is a write and their ranges share a byte (the
/// exact half-open intersection `a.start < b.end && b.start < a.end`). The seed's
/// ``VmIoOwner/disjoint(_:)`` is coarser in two ways, and each would refuse work that
/// is safe and that the tool does:
/// - its range test is inclusive (``VmIoOwner/overlaps(withRange:)``): the two halves of
///   a ``split(_:at:)`` touch, so with it they could never both be live, and neither could
///   a copy to the bytes right after its source (`copy PID:A PID:A+N N`);
/// - its view test compares whole mappings (a line of `/proc/PID/maps`, not a page as in
///   the seed), so any two owners in one mapping — two halves of a heap — would conflict.
///
/// Within what the registry grants, `disjoint` still decides where it is exact: a copy
/// between two local owners (``VmReader/readFallible(into:using:)``) requires it.
public final class OwnerRegistry: Sendable {
    /// What a lease lets its owner do: read, or write.
    public enum Access: String, Hashable, Sendable {
        /// The owner reads its range.
        case read
        /// The owner writes its range.
        case write
    }

    /// A live owner as the registry records it.
    public struct Lease: Hashable, Sendable {
        /// The owner's id (``VmIoOwner/id``).
        public let id: UInt64
        /// The range the owner covers.
        public let range: AddressRange
        /// Read or write.
        public let access: Access
    }

    private let leases = Locked<[UInt64: Lease]>([:])

    /// An empty registry: no owner is live.
    public init() {}

    /// A new owner (fresh id) over `range` with a view of `view`, or
    /// ``VmIoError/ownerConflict(requested:holder:holderRange:)`` naming the oldest live
    /// owner in the way. Remote owners (fallible, not kernel) by default.
    public func acquire(
        _ access: Access, range: AddressRange, view: MemView, isFallible: Bool = true, isKernel: Bool = false
    ) throws(VmIoError) -> VmIoOwner {
        let memView: VmIoMemView = access == .read ? .read(view) : .write(view)
        let owner = try VmIoOwner(range: range, isFallible: isFallible, isKernel: isKernel, memView: memView)
        let id = owner.id
        try leases.withLock { (leases: inout [UInt64: Lease]) throws(VmIoError) in
            if let clash = leases.values.filter({ Self.conflicts(access, range, $0) }).min(by: { $0.id < $1.id }) {
                throw .ownerConflict(requested: range, holder: clash.id, holderRange: clash.range)
            }
            leases[id] = Lease(id: id, range: range, access: access)
        }
        return owner
    }

    /// Whether a new owner of `access` over `range` would conflict with `lease`: one of
    /// them writes and the ranges share a byte (see the type's documentation for why).
    static func conflicts(_ access: Access, _ range: AddressRange, _ lease: Lease) -> Bool {
        guard range.intersects(lease.range) else { return false }
        return access == .write || lease.access == .write
    }

    /// A reader over `range` of process `pid`: a new read owner, already checked.
    ///
    /// Throws what ``acquire(_:range:view:isFallible:isKernel:)`` throws:
    /// ``VmIoError/invariantViolated(owner:_:)`` when `view` does not cover `range`, and
    /// ``VmIoError/ownerConflict(requested:holder:holderRange:)`` when a live writer's range intersects it.
    public func reader(remote pid: Int32, range: AddressRange, view: MemView) throws(VmIoError) -> VmReader {
        VmReader(owner: try acquire(.read, range: range, view: view), space: .remote(pid: pid), storage: nil)
    }

    /// A writer over `range` of process `pid`: a new write owner, already checked.
    ///
    /// Throws what ``acquire(_:range:view:isFallible:isKernel:)`` throws:
    /// ``VmIoError/invariantViolated(owner:_:)`` when `view` does not cover `range`, and
    /// ``VmIoError/ownerConflict(requested:holder:holderRange:)`` when any live owner's range intersects it.
    public func writer(remote pid: Int32, range: AddressRange, view: MemView) throws(VmIoError) -> VmWriter {
        VmWriter(owner: try acquire(.write, range: range, view: view), space: .remote(pid: pid), storage: nil)
    }

    /// Takes an owner back and ends its lease; ``VmIoError/unknownOwner(_:)`` if it is not
    /// live here. The owner is consumed either way. Part of an owner (after `advance`
    /// without its passed views) ends the whole lease: the rest was dropped, which is safe.
    public func release(_ owner: consuming VmIoOwner) throws(VmIoError) {
        try release(id: owner.id)
    }

    /// Ends a lease by id: for the registry's own use, where the owner is gone with a throw.
    func release(id: UInt64) throws(VmIoError) {
        try leases.withLock { (leases: inout [UInt64: Lease]) throws(VmIoError) in
            guard leases.removeValue(forKey: id) != nil else { throw .unknownOwner(id) }
        }
    }

    /// Splits a live owner (``VmIoOwner/split(_:)``) and records both halves, so each
    /// can be released on its own.
    ///
    /// Throws ``VmIoError/unknownOwner(_:)`` when the registry holds no such owner, and what
    /// ``VmIoOwner/split(_:)`` throws.
    public func split(_ owner: inout VmIoOwner, at n: UInt64) throws(VmIoError) -> VmIoOwner {
        let id = owner.id
        guard let lease = leases.withLock({ $0[id] }) else { throw .unknownOwner(id) }
        let front = try owner.split(n)
        let (frontID, frontRange, backRange) = (front.id, front.range, owner.range)
        leases.withLock { leases in
            leases[id] = Lease(id: id, range: backRange, access: lease.access)
            leases[frontID] = Lease(id: frontID, range: frontRange, access: lease.access)
        }
        return front
    }

    /// Lends `reader` to `body` and takes its owner back (``release(_:)``) when `body`
    /// returns or throws. A reader whose owner is not live here has no lease to end.
    @inlinable  // specialized where it is called: unspecialized, a short read's generic metadata cost a tenth of it
    public func lend<Result, Failure: Error>(
        _ reader: consuming VmReader, to body: (inout VmReader) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try lend(reader, to: body, finish: { $0.finish() })
    }

    /// Lends `writer` to `body` and takes its owner back (``release(_:)``) when `body`
    /// returns or throws. A writer whose owner is not live here has no lease to end.
    @inlinable
    public func lend<Result, Failure: Error>(
        _ writer: consuming VmWriter, to body: (inout VmWriter) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try lend(writer, to: body, finish: { $0.finish() })
    }

    /// Lends `cursor` to `body`, then ends it with `finish` and releases the owner that gives
    /// back, whether `body` returned or threw.
    @inlinable
    func lend<Cursor: ~Copyable, Result, Failure: Error>(
        _ cursor: consuming Cursor, to body: (inout Cursor) throws(Failure) -> Result,
        finish: (consuming Cursor) -> VmIoOwner
    ) throws(Failure) -> Result {
        var cursor = cursor
        let outcome = Swift.Result { () throws(Failure) -> Result in try body(&cursor) }
        try? release(finish(cursor))
        return try outcome.get()
    }

    /// The live leases, by id.
    public var live: [Lease] {
        leases.withLock { $0.values.sorted { $0.id < $1.id } }
    }
}
