/// Where two byte buffers of one length differ: whole 64-byte blocks are compared first (eight
/// 64-bit words, which the optimiser turns into vector compares), and only a block that
/// differs is looked at byte by byte, so equal memory goes by at memory speed.
public enum ByteCompare {
    /// The width of the blocks compared whole.
    public static let blockSize = 64

    /// Calls `changed` with each maximal run of offsets where `old` and `new` differ, in
    /// increasing order. Only the first `min(old.count, new.count)` bytes are compared.
    public static func differences(
        _ old: UnsafeRawBufferPointer, _ new: UnsafeRawBufferPointer, _ changed: (Range<Int>) -> Void
    ) {
        let count = min(old.count, new.count)
        guard count > 0, let a = old.baseAddress, let b = new.baseAddress else { return }
        var runStart: Int? = nil
        var i = 0
        while i < count {
            if i + blockSize <= count && blockEqual(a + i, b + i) {
                if let start = runStart {
                    changed(start..<i)
                    runStart = nil
                }
                i += blockSize
                continue
            }
            let blockEnd = min(i + blockSize, count)
            while i < blockEnd {
                let differs = a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self)
                if differs, runStart == nil {
                    runStart = i
                } else if !differs, let start = runStart {
                    changed(start..<i)
                    runStart = nil
                }
                i += 1
            }
        }
        if let start = runStart { changed(start..<count) }
    }

    /// Whether the 64 bytes at `a` and `b` are equal.
    @inline(__always)
    static func blockEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> Bool {
        var folded: UInt64 = 0
        for word in 0..<8 {
            folded |=
                a.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self)
                ^ b.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self)
        }
        return folded == 0
    }
}

/// One changed range of a comparison: where, how long, how many of its bytes differ (the
/// rest are the unchanged bytes merged in by alignment or `join`), and the first bytes of
/// each side (at most the merger's `keep`).
public struct ChangedRange: Hashable, Sendable {
    /// Where the range lies: its first changed byte to the end of its last, widened to the alignment.
    public var range: AddressRange
    /// How many bytes of ``range`` differ (the others were merged in).
    public var bytesChanged: UInt64
    /// The first bytes of the range on the old side (at most the merger's `keep`).
    public var old: [UInt8]
    /// The first bytes of the range on the new side (at most the merger's `keep`).
    public var new: [UInt8]
    /// Whether `old` and `new` hold the whole range.
    public var isWhole: Bool { UInt64(old.count) == range.count }
}

/// Turns chunk after chunk of two sides into changed ranges: runs of differing bytes
/// widened to `alignment` (typed values are compared whole, at their natural alignment)
/// and merged when less than `join` unchanged bytes lie between them (0: when they
/// touch). Chunks given at consecutive addresses continue each other; a chunk elsewhere
/// (after a hole, in another region) ends the range before it. Memory stays bounded:
/// each range keeps at most `keep` bytes of each side.
public struct ChangeMerger: Sendable {
    /// Changes are widened to multiples of this many bytes (at least 1).
    public let alignment: UInt64
    /// Changes less than this many unchanged bytes apart are one range.
    public let join: UInt64
    /// The bytes of each side a range keeps, at most.
    public let keep: Int
    /// The range being built: its start, the end of its last changed byte, the bytes of
    /// each side up to `covered` (the changed part plus the unchanged bytes seen after it).
    private var pending: ChangedRange?
    private var pendingEnd: Address = 0
    private var covered: Address = 0
    /// The end of the last chunk given.
    private var lastEnd: Address?

    /// A merger that widens changes to `alignment` (0 counts as 1), joins those less than `join`
    /// bytes apart and keeps the first `keep` bytes of each side.
    public init(alignment: UInt64 = 1, join: UInt64 = 0, keep: Int = 256) {
        self.alignment = max(1, alignment)
        self.join = join
        self.keep = keep
    }

    /// Compares one chunk at `address` (`old` and `new` of one length), handing each
    /// finished range to `emit`.
    public mutating func compare(
        old: UnsafeRawBufferPointer, new: UnsafeRawBufferPointer, at address: Address,
        emit: (ChangedRange) -> Void
    ) {
        let count = min(old.count, new.count)
        if lastEnd != address { finish(emit) }
        lastEnd = address + UInt64(count)
        let chunkEnd = address + UInt64(count)
        ByteCompare.differences(old, new) { run in
            // Widened to the alignment, within the chunk (chunks start at aligned addresses).
            let start = max(address, (address + UInt64(run.lowerBound)) / alignment * alignment)
            let rawEnd = address + UInt64(run.upperBound)
            let end = min(chunkEnd, (rawEnd + alignment - 1) / alignment * alignment)
            let changed = UInt64(run.count)
            if pending != nil, start <= pendingEnd || start - pendingEnd <= join {
                take(upTo: end, old, new, chunkStart: address)
                pendingEnd = max(pendingEnd, end)
                pending!.bytesChanged += changed
                pending!.range = AddressRange(uncheckedStart: pending!.range.start, end: pendingEnd)
            } else {
                emitPending(emit)
                pending = ChangedRange(
                    range: AddressRange(uncheckedStart: start, end: end), bytesChanged: changed, old: [], new: [])
                covered = start
                pendingEnd = end
                take(upTo: end, old, new, chunkStart: address)
            }
        }
        // The unchanged bytes after the range, which a change within `join` would merge in.
        if pending != nil, covered < chunkEnd {
            take(upTo: min(chunkEnd, pendingEnd + join), old, new, chunkStart: address)
        }
    }

    /// Ends the range being built (at the end of the input, or before a gap).
    public mutating func finish(_ emit: (ChangedRange) -> Void) {
        emitPending(emit)
        lastEnd = nil
    }

    private mutating func emitPending(_ emit: (ChangedRange) -> Void) {
        guard var done = pending else { return }
        let length = Int(done.range.count)
        if done.old.count > length {
            done.old.removeLast(done.old.count - length)
            done.new.removeLast(done.new.count - length)
        }
        emit(done)
        pending = nil
    }

    /// Appends the bytes from `covered` up to `end` (within this chunk) to the range's kept bytes.
    private mutating func take(
        upTo end: Address, _ old: UnsafeRawBufferPointer, _ new: UnsafeRawBufferPointer, chunkStart: Address
    ) {
        guard end > covered else { return }
        let room = keep - pending!.old.count
        if room > 0 {
            let from = Int(covered - chunkStart)
            let to = min(Int(end - chunkStart), from + room)
            pending!.old.append(contentsOf: old[from..<to])
            pending!.new.append(contentsOf: new[from..<to])
        }
        covered = end
    }
}
