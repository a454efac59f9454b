import Synchronization

/// Hands out owners over one address space and keeps them from conflicting:
/// no two live write owners over intersecting ranges, and no read owner
/// intersecting a live write owner. Readers may share.
///
/// Conflicts use the exact half-open intersection (`a.start < b.end && b.start < a.end`),
/// not the seed's inclusive ``VmIoOwner/overlaps(withRange:)``: with the inclusive test
/// the two halves of a split (which touch) could never both be live.
public final class OwnerRegistry: Sendable {
    public enum Access: String, Hashable, Sendable { case read, write }

    /// A live owner as the registry records it.
    public struct Lease: Hashable, Sendable {
        public let id: UInt64
        public let range: AddressRange
        public let access: Access
    }

    private let leases = Mutex<[UInt64: Lease]>([:])

    public init() {}

    /// A new owner (fresh id) over `range` with a view of `view`, or
    /// ``VmIoError/ownerConflict(requested:holder:holderRange:)`` naming the live owner in the way.
    public func acquire(
        _ access: Access, range: AddressRange, view: MemView, isFallible: Bool = true, isKernel: Bool = false
    ) throws(VmIoError) -> VmIoOwner {
        let memView: VmIoMemView = access == .read ? .read(view) : .write(view)
        let owner = try VmIoOwner(range: range, isFallible: isFallible, isKernel: isKernel, memView: memView)
        try leases.withLock { (leases: inout [UInt64: Lease]) throws(VmIoError) in
            if let clash = leases.values.filter({ Self.conflicts(access, range, $0) }).min(by: { $0.id < $1.id }) {
                throw .ownerConflict(requested: range, holder: clash.id, holderRange: clash.range)
            }
            leases[owner.id] = Lease(id: owner.id, range: range, access: access)
        }
        return owner
    }

    static func conflicts(_ access: Access, _ range: AddressRange, _ lease: Lease) -> Bool {
        guard range.intersects(lease.range) else { return false }
        return access == .write || lease.access == .write
    }

    /// Ends an owner's lease; ``VmIoError/unknownOwner(_:)`` if it is not live.
    public func release(_ owner: VmIoOwner) throws(VmIoError) {
        try release(id: owner.id)
    }

    public func release(id: UInt64) throws(VmIoError) {
        try leases.withLock { (leases: inout [UInt64: Lease]) throws(VmIoError) in
            guard leases.removeValue(forKey: id) != nil else { throw .unknownOwner(id) }
        }
    }

    /// Splits a live owner (``VmIoOwner/split(_:)``) and records both halves, so each
    /// can be released on its own.
    public func split(_ owner: inout VmIoOwner, at n: UInt64) throws(VmIoError) -> VmIoOwner {
        let id = owner.id
        guard let lease = leases.withLock({ $0[id] }) else { throw .unknownOwner(id) }
        let front = try owner.split(n)
        let back = owner.range
        leases.withLock { leases in
            leases[id] = Lease(id: id, range: back, access: lease.access)
            leases[front.id] = Lease(id: front.id, range: front.range, access: lease.access)
        }
        return front
    }

    /// The live leases, by id.
    public var live: [Lease] {
        leases.withLock { $0.values.sorted { $0.id < $1.id } }
    }
}
