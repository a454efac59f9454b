/// A cursor over an owner with a write view, in one address space. It holds its owner,
/// which is linear, so it is `~Copyable`: two writers of the same bytes would race.
///
/// Every write advances the owner with the cursor by exactly the bytes that moved.
/// ``finish()`` gives the owner back whole; ``readBack()`` gives it back as a reader.
public struct VmWriter: ~Copyable {
    /// The owner, its address space and the local buffer it writes (keeping it alive).
    var held: HeldOwner

    init(owner: consuming VmIoOwner, space: AddressSpace, storage: LocalBuffer?) {
        held = HeldOwner(owner, space: space, storage: storage)
    }

    /// A writer over target memory. The owner must keep ``VmIoOwner/inv``, carry a write
    /// view, and be a remote owner (fallible, not kernel): ``VmIoError/invariantViolated(owner:_:)``,
    /// ``VmIoError/notAWriteView(owner:)`` or ``VmIoError/wrongOwnerKind(owner:expected:)``
    /// otherwise. On a throw the owner is dropped; ``OwnerRegistry/writer(remote:range:view:)``
    /// makes writers that cannot be refused.
    public init(remote pid: Int32, owner: consuming VmIoOwner) throws(VmIoError) {
        try owner.checkCursorOwner(for: .write, buffer: nil)
        self.init(owner: owner, space: .remote(pid: pid), storage: nil)
    }

    /// A writer over part of a local buffer. The owner must keep ``VmIoOwner/inv``, carry a
    /// write view, be a local owner (infallible, kernel) and lie inside the buffer.
    ///
    /// Throws ``VmIoError/invariantViolated(owner:_:)`` when `inv` does not hold,
    /// ``VmIoError/notAWriteView(owner:)`` without a write view, ``VmIoError/wrongOwnerKind(owner:expected:)``
    /// for a remote owner, and ``VmIoError/outsideBuffer(owner:buffer:)`` when it lies outside `buffer`.
    public init(local buffer: LocalBuffer, owner: consuming VmIoOwner) throws(VmIoError) {
        try owner.checkCursorOwner(for: .write, buffer: buffer)
        self.init(owner: owner, space: .local, storage: buffer)
    }

    /// The part of the owner still ahead of the cursor (its id is the owner's id).
    public var owner: VmIoOwner {
        _read { yield held.ahead }
    }

    /// The address space the writer writes: local or a process's.
    public var space: AddressSpace { held.space }
    /// The next address to write.
    public var cursor: Address { held.cursor }
    /// The address just past the last byte to write.
    public var end: Address { held.end }
    /// Bytes of room left.
    public var avail: UInt64 { held.count }

    var endpoint: Endpoint { held.endpoint }

    /// Moves the cursor (and the owner) forward by `n <= avail` bytes without writing.
    ///
    /// Throws ``VmIoError/lengthExceedsRange(requested:available:)`` when `n` is more than
    /// ``avail``, and ``VmIoError/invariantViolated(owner:_:)`` when the owner's `inv` does not hold.
    public mutating func skip(_ n: UInt64) throws(VmIoError) {
        try held.advance(n)
    }

    /// Shrinks the end so that at most `max` bytes of room remain (the owner's part past
    /// it is kept aside and handed back by ``finish()`` and ``readBack()``).
    ///
    /// Throws ``VmIoError/invariantViolated(owner:_:)`` when the owner's `inv` does not hold.
    public mutating func limit(_ max: UInt64) throws(VmIoError) {
        try held.limit(max)
    }

    /// Writes `bytes` at the cursor; fallible like ``VmReader/readFallible(into:using:)``:
    /// requires `bytes.count <= avail`, advances by what moved, throws on a fault.
    @discardableResult
    public mutating func write(_ bytes: UnsafeRawBufferPointer, using backend: some CopyBackend) throws(VmIoError)
        -> UInt64
    {
        try owner.checkInvariant()
        let want = UInt64(bytes.count)
        guard want <= avail else { throw .lengthExceedsRange(requested: want, available: avail) }
        guard let base = bytes.baseAddress, want > 0 else { return 0 }
        let source = Endpoint(space: .local, address: Address(UInt(bitPattern: base)))
        let (moved, stop) = transfer(from: source, to: endpoint, count: want, backend: backend)
        try held.advance(moved)
        if let stop { throw endpoint.writeError(stop, copied: moved, requested: want) }
        return moved
    }

    /// Writes one value at the cursor, all or nothing for the cursor: on a fault it
    /// does not move. For a remote writer the first `copied` bytes of the value were
    /// written anyway — target memory cannot be un-written.
    ///
    /// Throws ``VmIoError/partialCopy(_:)`` when the backend stops at a fault,
    /// ``VmIoError/backendContract(_:)`` when it breaks its contract,
    /// ``VmIoError/lengthExceedsRange(requested:available:)`` when the value does not fit in ``avail``,
    /// and ``VmIoError/invariantViolated(owner:_:)`` when the owner's `inv` does not hold.
    public mutating func writeValue<T: BitwiseCopyable>(_ value: T, using backend: some CopyBackend) throws(VmIoError) {
        try owner.checkInvariant()
        let size = UInt64(MemoryLayout<T>.size)
        guard size <= avail else { throw .lengthExceedsRange(requested: size, available: avail) }
        let endpoint = self.endpoint
        var value = value
        let (moved, stop) = withUnsafeBytes(of: &value) { raw in
            let source = Endpoint(space: .local, address: Address(UInt(bitPattern: raw.baseAddress!)))
            return transfer(from: source, to: endpoint, count: size, backend: backend)
        }
        if let stop { throw endpoint.writeError(stop, copied: moved, requested: size) }
        try held.advance(size)
    }

    /// Fills all the room left with `byte`; fallible, advances by what moved.
    ///
    /// Throws ``VmIoError/partialCopy(_:)`` when the backend stops at a fault (the cursor has
    /// advanced by what moved), ``VmIoError/backendContract(_:)`` when it breaks its contract, and
    /// ``VmIoError/invariantViolated(owner:_:)`` when the owner's `inv` does not hold.
    @discardableResult
    public mutating func fill(_ byte: UInt8, using backend: some CopyBackend) throws(VmIoError) -> UInt64 {
        try fill(byte, count: avail, using: backend)
    }

    /// Writes `n <= avail` zero bytes; fallible, advances by what moved.
    ///
    /// Throws as ``fill(_:using:)`` does, and ``VmIoError/lengthExceedsRange(requested:available:)``
    /// when `n` is more than ``avail``.
    @discardableResult
    public mutating func fillZeros(_ n: UInt64, using backend: some CopyBackend) throws(VmIoError) -> UInt64 {
        guard n <= avail else { throw .lengthExceedsRange(requested: n, available: avail) }
        return try fill(0, count: n, using: backend)
    }

    /// Writes `total` copies of `byte` from a bounded pattern buffer.
    private mutating func fill(_ byte: UInt8, count total: UInt64, using backend: some CopyBackend) throws(VmIoError)
        -> UInt64
    {
        try owner.checkInvariant()
        guard total > 0 else { return 0 }
        let pattern = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(min(total, 64 << 10)), alignment: 16)
        defer { pattern.deallocate() }
        pattern.initializeMemory(as: UInt8.self, repeating: byte)
        var done: UInt64 = 0
        while done < total {
            let chunk = Int(min(total - done, UInt64(pattern.count)))
            do {
                done += try write(UnsafeRawBufferPointer(rebasing: pattern[0..<chunk]), using: backend)
            } catch .partialCopy(let p) {
                throw .partialCopy(
                    PartialCopy(
                        kind: p.kind, copied: done + p.copied, requested: total,
                        side: p.side, space: p.space))
            }
        }
        return done
    }

    /// Ends the writer and gives its owner back whole: the range it was made over, with
    /// its id and write view, whatever the cursor did.
    public consuming func finish() -> VmIoOwner {
        held.whole()
    }

    /// Ends the write phase: the writer is consumed and the whole range it was made over
    /// comes back as a reader — the parts that ``VmIoOwner/advance(_:)`` handed back are
    /// joined to the rest, and the owner's ``VmIoOwner/writeToRead()`` turns the view
    /// (same id, same range, same flags) — so the bytes can be read back and verified.
    public consuming func readBack() -> VmReader {
        let (space, storage) = (held.space, held.storage)
        var owner = held.whole()
        owner.writeToReadCut()
        return VmReader(owner: owner, space: space, storage: storage)
    }
}

extension Endpoint {
    /// The error for a write from local memory to this endpoint that stopped early.
    func writeError(_ stop: TransferStop, copied: UInt64, requested: UInt64) -> VmIoError {
        switch stop {
        case .fault(let kind, let side):
            .partialCopy(PartialCopy(kind: kind, copied: copied, requested: requested, side: side, space: space))
        case .broken(let violation): .backendContract(violation)
        }
    }
}
