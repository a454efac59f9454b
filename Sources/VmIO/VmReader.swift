/// A cursor over an owner with a read view, in one address space.
///
/// A reader holds its owner, and the owner is linear (`~Copyable`), so the reader is
/// `~Copyable` too: a copied reader would be a second holder of one permission, and each
/// copy would hand the owner back. To read the same bytes twice, read them into a
/// buffer, or take two read owners from an ``OwnerRegistry`` (readers may share).
///
/// The owner and the cursor move together: ``skip(_:)`` and every copy advance the
/// owner by exactly the bytes consumed, success or fault. ``finish()`` gives the owner
/// back whole.
public struct VmReader: ~Copyable {
    /// The owner, its address space and the local buffer it reads (keeping it alive).
    var held: HeldOwner

    init(owner: consuming VmIoOwner, space: AddressSpace, storage: LocalBuffer?) {
        held = HeldOwner(owner, space: space, storage: storage)
    }

    /// A reader over target memory. The owner must keep ``VmIoOwner/inv``, carry a read
    /// view, and be a remote owner (fallible, not kernel): ``VmIoError/invariantViolated(owner:_:)``,
    /// ``VmIoError/notAReadView(owner:)`` or ``VmIoError/wrongOwnerKind(owner:expected:)``
    /// otherwise. On a throw the owner is dropped; ``OwnerRegistry/reader(remote:range:view:)``
    /// makes readers that cannot be refused.
    public init(remote pid: Int32, owner: consuming VmIoOwner) throws(VmIoError) {
        try owner.checkCursorOwner(for: .read, buffer: nil)
        self.init(owner: owner, space: .remote(pid: pid), storage: nil)
    }

    /// A reader over part of a local buffer. The owner must keep ``VmIoOwner/inv``, carry a
    /// read view, be a local owner (infallible, kernel) and lie inside the buffer.
    ///
    /// Throws ``VmIoError/invariantViolated(owner:_:)`` when `inv` does not hold,
    /// ``VmIoError/notAReadView(owner:)`` without a read view, ``VmIoError/wrongOwnerKind(owner:expected:)``
    /// for a remote owner, and ``VmIoError/outsideBuffer(owner:buffer:)`` when it lies outside `buffer`.
    public init(local buffer: LocalBuffer, owner: consuming VmIoOwner) throws(VmIoError) {
        try owner.checkCursorOwner(for: .read, buffer: buffer)
        self.init(owner: owner, space: .local, storage: buffer)
    }

    /// The part of the owner still ahead of the cursor (its id is the owner's id).
    public var owner: VmIoOwner {
        _read { yield held.ahead }
    }

    /// The address space the reader reads: local or a process's.
    public var space: AddressSpace { held.space }
    /// The next address to read.
    public var cursor: Address { held.cursor }
    /// The address just past the last byte to read.
    public var end: Address { held.end }
    /// Bytes left to read.
    public var remain: UInt64 { held.count }

    /// Moves the cursor (and the owner) forward by `n <= remain` bytes.
    ///
    /// Throws ``VmIoError/lengthExceedsRange(requested:available:)`` when `n` is more than
    /// ``remain``, and ``VmIoError/invariantViolated(owner:_:)`` when the owner's `inv` does not hold.
    public mutating func skip(_ n: UInt64) throws(VmIoError) {
        try held.advance(n)
    }

    /// Shrinks the end so that at most `max` bytes remain (the owner's part past it is
    /// kept aside and handed back by ``finish()``).
    ///
    /// Throws ``VmIoError/invariantViolated(owner:_:)`` when the owner's `inv` does not hold.
    public mutating func limit(_ max: UInt64) throws(VmIoError) {
        try held.limit(max)
    }

    /// Ends the reader and gives its owner back whole: the range it was made over, with
    /// its id and view, whatever the cursor did.
    public consuming func finish() -> VmIoOwner {
        held.whole()
    }

    var endpoint: Endpoint { held.endpoint }

    /// Local → local: moves exactly `min(remain, writer.avail)` bytes; never fails.
    /// Throws ``VmIoError/addressSpaceMismatch(expected:got:)`` when either side is remote,
    /// and ``VmIoError/overlappingCopy(source:destination:)`` when the two owners are not
    /// ``VmIoOwner/disjoint(_:)`` (the seed's precondition of a copy).
    @discardableResult
    public mutating func read(into writer: inout VmWriter) throws(VmIoError) -> UInt64 {
        guard space == .local else { throw .addressSpaceMismatch(expected: .local, got: space) }
        guard writer.space == .local else { throw .addressSpaceMismatch(expected: .local, got: writer.space) }
        return try readFallible(into: &writer, using: LocalOnlyBackend())
    }

    /// Copies `min(remain, writer.avail)` bytes across any pair of address spaces.
    ///
    /// Returns the count on success. On a fault throws ``VmIoError/partialCopy(_:)``
    /// whose `copied` is the `k < min(remain, avail)` bytes that did move: those are at
    /// the destination, both cursors and owners advanced by exactly `k`, and nothing
    /// past `k` was touched. A backend that breaks its contract is
    /// ``VmIoError/backendContract(_:)``, the cursors advanced by what it accounted for.
    ///
    /// Within one address space the two owners must not overlap, or a chunked copy
    /// would read bytes it had already overwritten (``VmIoError/overlappingCopy(source:destination:)``):
    /// local owners must be ``VmIoOwner/disjoint(_:)``; in a target's memory, whose views
    /// are whole mappings, the ranges must share no byte (README.md, "The library").
    @discardableResult
    public mutating func readFallible(into writer: inout VmWriter, using backend: some CopyBackend) throws(VmIoError)
        -> UInt64
    {
        // A broken owner moves nothing (the checks after the copy would come too late).
        try owner.checkInvariant()
        try writer.owner.checkInvariant()
        if space == writer.space {
            let apart =
                space == .local
                ? owner.disjoint(writer.owner) || remain == 0 || writer.avail == 0
                : !owner.range.intersects(writer.owner.range)
            guard apart else { throw .overlappingCopy(source: owner.range, destination: writer.owner.range) }
        }
        let want = min(remain, writer.avail)
        let (moved, stop) = transfer(from: endpoint, to: writer.endpoint, count: want, backend: backend)
        try held.advance(moved)
        try writer.held.advance(moved)
        switch stop {
        case nil: return moved
        case .fault(let kind, let side)?:
            throw .partialCopy(
                PartialCopy(
                    kind: kind, copied: moved, requested: want, side: side,
                    space: side == .source ? space : writer.space))
        case .broken(let violation)?: throw .backendContract(violation)
        }
    }

    /// ``readFallible(into:using:)`` with the fault returned instead of thrown: a copy that
    /// stops early is an outcome a caller expects, not an error.
    ///
    /// Returns what moved and, when the copy stopped early, why (``CopyOutcome/stop``): the
    /// same `k` bytes, the same cursors and owners advanced by exactly `k`, as the
    /// ``VmIoError/partialCopy(_:)`` that ``readFallible(into:using:)`` throws. Throws only
    /// what is a mistake of the caller or of the backend: a broken owner, overlapping owners
    /// (``VmIoError/overlappingCopy(source:destination:)``), a backend that breaks its
    /// contract (``VmIoError/backendContract(_:)``). A caller needs no `catch` by pattern,
    /// which in top-level code can crash the Swift 6.3 compiler (README.md, "Known issues").
    public mutating func readUntilFault(into writer: inout VmWriter, using backend: some CopyBackend)
        throws(VmIoError) -> CopyOutcome
    {
        let result: Result<UInt64, VmIoError>
        do throws(VmIoError) {
            result = .success(try readFallible(into: &writer, using: backend))
        } catch {
            result = .failure(error)
        }
        switch result {
        case .success(let moved): return CopyOutcome(copied: moved, stop: nil)
        case .failure(.partialCopy(let stop)): return CopyOutcome(copied: stop.copied, stop: stop)
        case .failure(let error): throw error
        }
    }

    /// Reads one value of `T` at the cursor, all or nothing: on a fault the cursor does
    /// not move and ``VmIoError/partialCopy(_:)`` says how far the read got.
    public mutating func readValue<T: BitwiseCopyable>(_ type: T.Type = T.self, using backend: some CopyBackend)
        throws(VmIoError) -> T
    {
        try owner.checkInvariant()
        let size = UInt64(MemoryLayout<T>.size)
        guard size <= remain else { throw .lengthExceedsRange(requested: size, available: remain) }
        let endpoint = self.endpoint
        let result: Result<T, VmIoError> = withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { tmp in
            let local = Endpoint(space: .local, address: Address(UInt(bitPattern: tmp.baseAddress!)))
            let (moved, stop) = transfer(from: endpoint, to: local, count: size, backend: backend)
            if let stop { return .failure(endpoint.error(stop, copied: moved, requested: size)) }
            return .success(UnsafeRawPointer(tmp.baseAddress!).loadUnaligned(as: T.self))
        }
        let value = try result.get()
        try held.advance(size)
        return value
    }

    /// Reads everything that remains, all or nothing: on a fault the cursor does not move.
    ///
    /// Throws ``VmIoError/partialCopy(_:)`` when the backend stops at a fault (nothing is
    /// returned), ``VmIoError/backendContract(_:)`` when it breaks its contract,
    /// ``VmIoError/lengthExceedsRange(requested:available:)`` when more remains than an array can
    /// hold, and ``VmIoError/invariantViolated(owner:_:)`` when the owner's `inv` does not hold.
    public mutating func collect(using backend: some CopyBackend) throws(VmIoError) -> [UInt8] {
        try owner.checkInvariant()
        guard remain <= UInt64(Int.max) else {
            throw .lengthExceedsRange(requested: remain, available: UInt64(Int.max))
        }
        let count = remain
        let endpoint = self.endpoint
        // An empty array's storage is a global the initializer below would write a count to
        // (ThreadSanitizer reports two empty reads on two threads as a data race).
        guard count > 0 else {
            try held.advance(0)
            return []
        }
        var failure: VmIoError?
        let bytes = [UInt8](unsafeUninitializedCapacity: Int(count)) { buffer, initialized in
            let local = Endpoint(space: .local, address: Address(UInt(bitPattern: buffer.baseAddress)))
            let (moved, stop) = transfer(from: endpoint, to: local, count: count, backend: backend)
            if let stop { failure = endpoint.error(stop, copied: moved, requested: count) }
            // Only the bytes that moved are initialized; a failed read is discarded anyway.
            initialized = Int(moved)
        }
        if let failure { throw failure }
        try held.advance(count)
        return bytes
    }
}

extension Endpoint {
    /// The error for a read from this endpoint into local memory that stopped early.
    func error(_ stop: TransferStop, copied: UInt64, requested: UInt64) -> VmIoError {
        switch stop {
        case .fault(let kind, let side):
            .partialCopy(PartialCopy(kind: kind, copied: copied, requested: requested, side: side, space: space))
        case .broken(let violation): .backendContract(violation)
        }
    }
}
