/// A cursor over an owner with a read view, in one address space. Copyable: two
/// readers of the same bytes do no harm.
///
/// The owner and the cursor move together: ``skip(_:)`` and every copy advance the
/// owner by exactly the bytes consumed, success or fault.
public struct VmReader: Sendable {
    public let space: AddressSpace
    public private(set) var owner: VmIoOwner
    /// Keeps local memory alive while the reader exists.
    let storage: LocalBuffer?

    init(owner: VmIoOwner, space: AddressSpace, storage: LocalBuffer?) {
        self.owner = owner
        self.space = space
        self.storage = storage
    }

    /// A reader over target memory; the owner must carry a read view.
    public init(remote pid: Int32, owner: VmIoOwner) throws(VmIoError) {
        guard owner.canRead else { throw .notAReadView(owner: owner.id) }
        try owner.checkInvariant()
        self.init(owner: owner, space: .remote(pid: pid), storage: nil)
    }

    public var cursor: Address { owner.range.start }
    public var end: Address { owner.range.end }
    /// Bytes left to read.
    public var remain: UInt64 { owner.range.count }

    /// Moves the cursor (and the owner) forward by `n <= remain` bytes.
    public mutating func skip(_ n: UInt64) throws(VmIoError) {
        try owner.advance(n)
    }

    /// Shrinks the end so that at most `max` bytes remain (the owner shrinks too).
    public mutating func limit(_ max: UInt64) throws(VmIoError) {
        if max < remain { try owner.truncate(to: max) }
    }

    var endpoint: Endpoint { Endpoint(space: space, address: cursor) }

    /// Local → local: moves exactly `min(remain, writer.avail)` bytes; never fails.
    /// Throws ``VmIoError/addressSpaceMismatch(expected:got:)`` when either side is remote.
    @discardableResult
    public mutating func read(into writer: inout VmWriter) throws(VmIoError) -> UInt64 {
        guard space == .local else { throw .addressSpaceMismatch(expected: "local", got: space) }
        guard writer.space == .local else { throw .addressSpaceMismatch(expected: "local", got: writer.space) }
        return try readFallible(into: &writer, using: LocalOnlyBackend())
    }

    /// Copies `min(remain, writer.avail)` bytes across any pair of address spaces.
    ///
    /// Returns the count on success. On a fault throws ``VmIoError/partialCopy(_:)``
    /// whose `copied` is the `k < min(remain, avail)` bytes that did move: those are at
    /// the destination, both cursors and owners advanced by exactly `k`, and nothing
    /// past `k` was touched.
    @discardableResult
    public mutating func readFallible(into writer: inout VmWriter, using backend: some CopyBackend) throws(VmIoError)
        -> UInt64
    {
        let want = min(remain, writer.avail)
        let (moved, stop) = transfer(from: endpoint, to: writer.endpoint, count: want, backend: backend)
        try owner.advance(moved)
        try writer.advanceOwner(moved)
        if let (kind, side) = stop {
            throw .partialCopy(
                PartialCopy(
                    kind: kind, copied: moved, requested: want, side: side,
                    space: side == .source ? space : writer.space))
        }
        return moved
    }

    /// Reads one value of `T` at the cursor, all or nothing: on a fault the cursor does
    /// not move and ``VmIoError/partialCopy(_:)`` says how far the read got.
    public mutating func readValue<T: BitwiseCopyable>(_ type: T.Type = T.self, using backend: some CopyBackend)
        throws(VmIoError) -> T
    {
        let size = UInt64(MemoryLayout<T>.size)
        guard size <= remain else { throw .lengthExceedsRange(requested: size, available: remain) }
        let endpoint = self.endpoint
        let result: Result<T, VmIoError> = withUnsafeTemporaryAllocation(of: T.self, capacity: 1) { tmp in
            let local = Endpoint(space: .local, address: Address(UInt(bitPattern: tmp.baseAddress!)))
            let (moved, stop) = transfer(from: endpoint, to: local, count: size, backend: backend)
            if let (kind, side) = stop {
                return .failure(
                    .partialCopy(
                        PartialCopy(
                            kind: kind, copied: moved, requested: size,
                            side: side, space: endpoint.space)))
            }
            return .success(UnsafeRawPointer(tmp.baseAddress!).loadUnaligned(as: T.self))
        }
        let value = try result.get()
        try owner.advance(size)
        return value
    }

    /// Reads everything that remains, all or nothing (the cursor rolls back on a fault).
    public mutating func collect(using backend: some CopyBackend) throws(VmIoError) -> [UInt8] {
        guard remain <= UInt64(Int.max) else {
            throw .lengthExceedsRange(requested: remain, available: UInt64(Int.max))
        }
        let buffer = LocalBuffer(count: Int(remain))
        var writer = buffer.makeWriter()
        var attempt = self
        _ = try attempt.readFallible(into: &writer, using: backend)
        self = attempt
        return buffer.array
    }
}
