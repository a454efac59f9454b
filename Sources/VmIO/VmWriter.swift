/// A cursor over an owner with a write view, in one address space. Unique
/// (`~Copyable`): two writers of the same bytes would race.
///
/// Every write advances the owner with the cursor by exactly the bytes that moved.
public struct VmWriter: ~Copyable {
    public let space: AddressSpace
    public private(set) var owner: VmIoOwner
    /// The owner as it was when the writer was made: what ``readBack()`` hands over.
    let origin: VmIoOwner
    let storage: LocalBuffer?

    init(owner: VmIoOwner, space: AddressSpace, storage: LocalBuffer?) {
        self.owner = owner
        self.origin = owner
        self.space = space
        self.storage = storage
    }

    /// A writer over target memory; the owner must carry a write view.
    public init(remote pid: Int32, owner: VmIoOwner) throws(VmIoError) {
        guard owner.canWrite else { throw .notAWriteView(owner: owner.id) }
        try owner.checkInvariant()
        self.init(owner: owner, space: .remote(pid: pid), storage: nil)
    }

    public var cursor: Address { owner.range.start }
    public var end: Address { owner.range.end }
    /// Bytes of room left.
    public var avail: UInt64 { owner.range.count }

    var endpoint: Endpoint { Endpoint(space: space, address: cursor) }

    mutating func advanceOwner(_ n: UInt64) throws(VmIoError) {
        try owner.advance(n)
    }

    /// Moves the cursor (and the owner) forward by `n <= avail` bytes without writing.
    public mutating func skip(_ n: UInt64) throws(VmIoError) {
        try owner.advance(n)
    }

    /// Shrinks the end so that at most `max` bytes of room remain (the owner shrinks too).
    public mutating func limit(_ max: UInt64) throws(VmIoError) {
        if max < avail { try owner.truncate(to: max) }
    }

    /// Writes `bytes` at the cursor; fallible like ``VmReader/readFallible(into:using:)``:
    /// requires `bytes.count <= avail`, advances by what moved, throws on a fault.
    @discardableResult
    public mutating func write(_ bytes: UnsafeRawBufferPointer, using backend: some CopyBackend) throws(VmIoError)
        -> UInt64
    {
        let want = UInt64(bytes.count)
        guard want <= avail else { throw .lengthExceedsRange(requested: want, available: avail) }
        guard let base = bytes.baseAddress, want > 0 else { return 0 }
        let source = Endpoint(space: .local, address: Address(UInt(bitPattern: base)))
        let (moved, stop) = transfer(from: source, to: endpoint, count: want, backend: backend)
        try owner.advance(moved)
        if let (kind, side) = stop {
            throw .partialCopy(PartialCopy(kind: kind, copied: moved, requested: want, side: side, space: space))
        }
        return moved
    }

    /// Writes one value at the cursor, all or nothing for the cursor: on a fault it
    /// does not move. For a remote writer the first `copied` bytes of the value were
    /// written anyway — target memory cannot be un-written.
    public mutating func writeValue<T: BitwiseCopyable>(_ value: T, using backend: some CopyBackend) throws(VmIoError) {
        let size = UInt64(MemoryLayout<T>.size)
        guard size <= avail else { throw .lengthExceedsRange(requested: size, available: avail) }
        let endpoint = self.endpoint
        var value = value
        let stop: (UInt64, (FaultKind, CopySide)?) = withUnsafeBytes(of: &value) { raw in
            let source = Endpoint(space: .local, address: Address(UInt(bitPattern: raw.baseAddress!)))
            return transfer(from: source, to: endpoint, count: size, backend: backend)
        }
        if let (kind, side) = stop.1 {
            throw .partialCopy(PartialCopy(kind: kind, copied: stop.0, requested: size, side: side, space: space))
        }
        try owner.advance(size)
    }

    /// Fills all the room left with `byte`; fallible, advances by what moved.
    @discardableResult
    public mutating func fill(_ byte: UInt8, using backend: some CopyBackend) throws(VmIoError) -> UInt64 {
        try fill(byte, count: avail, using: backend)
    }

    /// Writes `n <= avail` zero bytes; fallible, advances by what moved.
    @discardableResult
    public mutating func fillZeros(_ n: UInt64, using backend: some CopyBackend) throws(VmIoError) -> UInt64 {
        guard n <= avail else { throw .lengthExceedsRange(requested: n, available: avail) }
        return try fill(0, count: n, using: backend)
    }

    /// Writes `total` copies of `byte` from a bounded pattern buffer.
    private mutating func fill(_ byte: UInt8, count total: UInt64, using backend: some CopyBackend) throws(VmIoError)
        -> UInt64
    {
        guard total > 0 else { return 0 }
        let pattern = LocalBuffer(count: Int(min(total, 64 << 10)))
        pattern.bytes.initializeMemory(as: UInt8.self, repeating: byte)
        var done: UInt64 = 0
        while done < total {
            let chunk = min(total - done, UInt64(pattern.count))
            do {
                done += try write(UnsafeRawBufferPointer(rebasing: pattern.bytes[0..<Int(chunk)]), using: backend)
            } catch .partialCopy(let p) {
                throw .partialCopy(
                    PartialCopy(
                        kind: p.kind, copied: done + p.copied, requested: total,
                        side: p.side, space: p.space))
            }
        }
        return done
    }

    /// Ends the write phase: the writer is consumed and the whole range it was made
    /// over comes back as a reader, through the owner's ``VmIoOwner/writeToRead()``
    /// (same id, same range, same flags), so the bytes can be read back and verified.
    public consuming func readBack() throws(VmIoError) -> VmReader {
        var owner = origin
        try owner.writeToRead()
        return VmReader(owner: owner, space: space, storage: storage)
    }
}
