/// What a reader or writer holds, the cursor they share: the owner in the three parts a
/// cursor makes of it — the bytes behind the cursor (what ``VmIoOwner/advance(_:)`` handed
/// back, joined), the owner still ahead of it, and what ``VmReader/limit(_:)`` cut off the
/// end — with its address space and, over local memory, the buffer.
///
/// Nothing is copied and nothing is dropped, so ``whole()`` gives the owner back as it
/// was handed in — same id, same range, same view — by joining the parts again. That is
/// how ``VmWriter/readBack()`` works without keeping a saved copy of the owner.
struct HeldOwner: ~Copyable {
    /// The part ahead of the cursor; its id is the owner's id.
    private(set) var ahead: VmIoOwner
    /// The part behind the cursor.
    private var behind: PassedView?
    /// The part past the limit.
    private var beyond: VmIoOwner?
    let space: AddressSpace
    /// Keeps local memory alive while the reader or writer exists.
    let storage: LocalBuffer?

    init(_ owner: consuming VmIoOwner, space: AddressSpace, storage: LocalBuffer?) {
        ahead = owner
        behind = nil
        beyond = nil
        (self.space, self.storage) = (space, storage)
    }

    var cursor: Address { ahead.range.start }
    var end: Address { ahead.range.end }
    /// Bytes left ahead of the cursor.
    var count: UInt64 { ahead.range.count }
    var endpoint: Endpoint { Endpoint(space: space, address: cursor) }

    /// Moves the cursor `n <= ahead.range.count` bytes forward; the part passed joins `behind`.
    mutating func advance(_ n: UInt64) throws(VmIoError) {
        let step = try ahead.advance(n)
        if let before = behind.take() {
            behind = before.appendingCut(step)
        } else {
            behind = consume step
        }
    }

    /// Shrinks the end so that at most `max` bytes remain ahead; the rest joins `beyond`.
    mutating func limit(_ max: UInt64) throws(VmIoError) {
        try ahead.checkInvariant()
        if max < count { try cut(max) }
    }

    /// Cuts `ahead` down to its first `count` bytes; the rest joins `beyond`.
    private mutating func cut(_ count: UInt64) throws(VmIoError) {
        var tail = try ahead.splitTail(at: count)
        if let after = beyond.take() { tail.appendCut(after) }
        beyond = consume tail
    }

    /// The owner as handed in: `behind`, `ahead` and `beyond` joined again.
    consuming func whole() -> VmIoOwner {
        var owner = ahead
        if let before = behind.take() { owner.rejoinCut(before) }
        if let after = beyond.take() { owner.appendCut(after) }
        return owner
    }
}

extension VmIoOwner {
    /// The checks of the public initialisers of ``VmReader`` and ``VmWriter``: the owner keeps
    /// ``inv``, carries the view `access` needs, and is a local owner (infallible, kernel) that
    /// lies inside `buffer`, or with no buffer a remote owner (fallible, not kernel).
    func checkCursorOwner(for access: OwnerRegistry.Access, buffer: LocalBuffer?) throws(VmIoError) {
        try checkInvariant()
        switch access {
        case .read: guard canRead else { throw .notAReadView(owner: id) }
        case .write: guard canWrite else { throw .notAWriteView(owner: id) }
        }
        let expected: OwnerKind = buffer == nil ? .remote : .local
        guard kind == expected else { throw .wrongOwnerKind(owner: id, expected: expected) }
        if let buffer, !buffer.range.contains(range) { throw .outsideBuffer(owner: id, buffer: buffer.range) }
    }

    /// The kind of owner this is by its flags; nil for the two mixes neither kind has.
    var kind: OwnerKind? {
        switch (isFallible, isKernel) {
        case (true, false): .remote
        case (false, true): .local
        default: nil
        }
    }
}
