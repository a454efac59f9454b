/// The owner a reader or writer holds, in the three parts a cursor makes of it: the
/// bytes behind the cursor (what ``VmIoOwner/advance(_:)`` handed back, joined), the
/// owner still ahead of it, and what ``VmReader/limit(_:)`` cut off the end.
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

    init(_ owner: consuming VmIoOwner) {
        ahead = owner
        behind = nil
        beyond = nil
    }

    /// Moves the cursor `n <= ahead.range.count` bytes forward; the part passed joins `behind`.
    mutating func advance(_ n: UInt64) throws(VmIoError) {
        let step = try ahead.advance(n)
        if let before = behind.take() {
            behind = before.appendingCut(step)
        } else {
            behind = consume step
        }
    }

    /// Cuts `ahead` down to its first `count` bytes; the rest joins `beyond`.
    mutating func limit(_ count: UInt64) throws(VmIoError) {
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
