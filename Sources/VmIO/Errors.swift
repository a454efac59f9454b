/// Which address space a reader, writer or fault belongs to.
public enum AddressSpace: Hashable, Sendable, CustomStringConvertible {
    /// The tool's own memory (the seed's "kernel" side: copies never fail).
    case local
    /// Another process's memory (the seed's "user" side: every access may fault).
    case remote(pid: Int32)

    public var description: String {
        switch self {
        case .local: "local"
        case .remote(let pid): "pid \(pid)"
        }
    }
}

/// Why a fallible copy stopped early.
public enum FaultKind: Hashable, Sendable, CustomStringConvertible {
    /// The page at `address` could not be accessed (`EFAULT`): unmapped, a guard page, or protected.
    case pageFault(address: Address)
    /// The process is gone (`ESRCH`).
    case targetGone
    /// The kernel refused the access (`EPERM`/`EACCES`); `reason` says why when known.
    case permission(reason: String)
    /// A signal interrupted the copy (`EINTR`).
    case interrupted
    /// Anything else, with its errno and message.
    case other(errno: Int32, message: String)

    public var description: String {
        switch self {
        case .pageFault(let a): "page fault at \(a.hex)"
        case .targetGone: "target gone"
        case .permission(let reason): "permission refused: \(reason)"
        case .interrupted: "interrupted"
        case .other(let errno, let message): "\(message) (errno \(errno))"
        }
    }
}

/// The two kinds of owner: over a target's memory (fallible, not kernel: the seed's
/// user side) or over the tool's own buffers (infallible, kernel).
public enum OwnerKind: String, Hashable, Sendable, CustomStringConvertible {
    /// `local`: over the tool's own buffers; `remote`: over a target's memory.
    case local, remote
    public var description: String { rawValue }
    /// The flags an owner of this kind has.
    public var flags: String { self == .remote ? "fallible, not kernel" : "infallible, kernel" }
}

/// How a ``CopyBackend`` broke its contract (`moved` in `0...count`, `stop` nil exactly
/// when all moved).
public enum BackendViolation: Hashable, Sendable, CustomStringConvertible {
    /// It reported more bytes (or fewer than zero) than it was asked to move.
    case movedOutOfBounds(moved: Int, requested: UInt64)
    /// It moved fewer bytes than asked and gave no reason.
    case stoppedWithoutCause(moved: UInt64, requested: UInt64)

    public var description: String {
        switch self {
        case .movedOutOfBounds(let m, let r): "reported \(m) bytes moved of \(r) asked"
        case .stoppedWithoutCause(let m, let r): "stopped after \(m) of \(r) bytes without a cause"
        }
    }
}

/// Which side of a copy faulted.
public enum CopySide: String, Hashable, Sendable {
    /// The side read from, or the side written to.
    case source, destination
}

/// A fallible copy that moved fewer bytes than asked: `copied` bytes did move (and
/// both cursors advanced by exactly that many), then `kind` stopped it.
///
/// The one description of a short copy in the project: thrown as
/// ``VmIoError/partialCopy(_:)`` (it is not an `Error` of its own, so there is one way to
/// catch it) and kept as the `stop` of a transfer's report.
public struct PartialCopy: Hashable, Sendable, CustomStringConvertible {
    /// Why the copy stopped.
    public let kind: FaultKind
    /// The bytes that moved before the stop: at the destination, both cursors advanced by this many.
    public let copied: UInt64
    /// The bytes the copy was asked to move.
    public let requested: UInt64
    /// Which side faulted: the source (a read) or the destination (a write).
    public let side: CopySide
    /// The address space of the side that faulted.
    public let space: AddressSpace

    /// A copy of `requested` bytes that moved `copied`, then stopped for `kind` on `side` in `space`.
    public init(kind: FaultKind, copied: UInt64, requested: UInt64, side: CopySide, space: AddressSpace) {
        self.kind = kind
        self.copied = copied
        self.requested = requested
        self.side = side
        self.space = space
    }

    /// The first address that could not be accessed, when the stop was a page fault.
    public var faultAddress: Address? {
        if case .pageFault(let a) = kind { return a }
        return nil
    }

    public var description: String {
        "partial copy: \(copied) of \(requested) bytes moved; \(side) (\(space)) \(kind)"
    }
}

/// What a fallible copy did (``VmReader/readUntilFault(into:using:)``): the bytes that
/// moved, and the fault that stopped it early, if any.
public struct CopyOutcome: Hashable, Sendable, CustomStringConvertible {
    /// The bytes that moved: at the destination, both cursors and owners advanced by this many.
    public let copied: UInt64
    /// Why the copy stopped before it moved all it was asked to; nil when it moved everything.
    public let stop: PartialCopy?

    /// An outcome of `copied` bytes that `stop` ended (nil: the copy ran to its end).
    public init(copied: UInt64, stop: PartialCopy?) {
        self.copied = copied
        self.stop = stop
    }

    /// Whether the copy moved everything it was asked to.
    public var isComplete: Bool { stop == nil }

    public var description: String { stop?.description ?? "\(copied) bytes moved" }
}

/// Every error of the model. Each violated precondition of the seed's contracts is
/// one of these, never a trap.
public enum VmIoError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A range whose start is above its end.
    case invalidRange(start: Address, end: Address)
    /// An address plus a length that does not fit in 64 bits.
    case addressOverflow(base: Address, length: UInt64)
    /// An operation met an owner whose ``VmIoOwner/inv`` does not hold.
    case invariantViolated(owner: UInt64, InvariantFailure)
    /// An operation that needs a memory view met an owner that carries none.
    case noView(owner: UInt64)
    /// A reader was made over an owner whose view is not a read view.
    case notAReadView(owner: UInt64)
    /// A writer was made over an owner whose view is not a write view.
    case notAWriteView(owner: UInt64)
    /// A split or advance by more bytes than the owner has left.
    case lengthExceedsRange(requested: UInt64, available: UInt64)
    /// ``VmIoOwner/changeFallible(to:)`` asked for the fallibility the owner already has.
    case fallibilityUnchanged(Bool)
    /// The owner's range is not covered by its view: `address` is in no mapping.
    case rangeNotCovered(address: Address)
    /// A view's mapping at `index` overlaps the one before it.
    case mappingsOverlap(index: Int)
    /// A view's mapping at `index` starts below the one before it.
    case mappingsUnsorted(index: Int)
    /// A line of `/proc/PID/maps` that does not parse, at `line` and `column` (1-based).
    case mapsSyntax(line: Int, column: Int, reason: MapsProblem)
    /// A registry refused an owner that would intersect a live one.
    case ownerConflict(requested: AddressRange, holder: UInt64, holderRange: AddressRange)
    /// A registry was given an owner id it does not hold.
    case unknownOwner(UInt64)
    /// An operation that needs a particular address space got another.
    case addressSpaceMismatch(expected: OwnerKind, got: AddressSpace)
    /// A reader or writer was made over the wrong kind of owner: remote memory needs a
    /// fallible, non-kernel owner; a local buffer an infallible, kernel one.
    case wrongOwnerKind(owner: UInt64, expected: OwnerKind)
    /// A local buffer's reader or writer over an owner outside the buffer.
    case outsideBuffer(owner: UInt64, buffer: AddressRange)
    /// A part handed back to an owner did not fit it.
    case cannotRejoin(owner: UInt64, RejoinFailure)
    /// A copy within one address space whose two owners are not ``VmIoOwner/disjoint(_:)``
    /// (local memory) or whose ranges intersect (a target's memory): chunked copying would
    /// read bytes it had already overwritten.
    case overlappingCopy(source: AddressRange, destination: AddressRange)
    /// A ``CopyBackend`` broke its contract; nothing past what it could account for is trusted.
    case backendContract(BackendViolation)
    /// A fallible copy stopped short: what moved, and why it stopped.
    case partialCopy(PartialCopy)
    /// An address expression that does not parse or does not resolve.
    case badAddress(String, reason: AddressProblem)
    /// A region selector that does not parse (reported as a bad address, as before).
    case badSelector(String, reason: SelectorProblem)
    /// A byte pattern or hex bytes that do not parse.
    case badPattern(String, reason: PatternProblem)
    /// No mapping has this name.
    case unknownRegion(String)
    /// A mapping name that denotes several separate regions (each described).
    case ambiguousRegion(String, candidates: [String])
    /// No symbol has this name.
    case unknownSymbol(String, reason: String)

    public var description: String {
        switch self {
        case .invalidRange(let s, let e): "invalid range: start \(s.hex) is above end \(e.hex)"
        case .addressOverflow(let b, let l): "address overflow: \(b.hex) + \(l.hex) does not fit in 64 bits"
        case .invariantViolated(let id, let failure): "owner #\(id) breaks its invariant: \(failure)"
        case .noView(let id): "owner #\(id) carries no memory view"
        case .notAReadView(let id): "owner #\(id) carries no read view"
        case .notAWriteView(let id): "owner #\(id) carries no write view"
        case .lengthExceedsRange(let n, let a): "length \(n) exceeds the \(a) bytes remaining"
        case .fallibilityUnchanged(let f): "owner is already \(f ? "fallible" : "infallible")"
        case .rangeNotCovered(let a): "address \(a.hex) is in no mapping"
        case .mappingsOverlap(let i): "mapping \(i + 1) overlaps the one before it"
        case .mappingsUnsorted(let i): "mapping \(i + 1) starts below the one before it"
        case .mapsSyntax(let line, let column, let reason): "maps line \(line), column \(column): \(reason)"
        case .ownerConflict(let r, let id, let hr): "range \(r) intersects \(hr), held by owner #\(id)"
        case .unknownOwner(let id): "no live owner #\(id)"
        case .addressSpaceMismatch(let expected, let got): "expected \(expected) memory, got \(got)"
        case .wrongOwnerKind(let id, let expected): "owner #\(id) is not a \(expected) owner (\(expected.flags))"
        case .outsideBuffer(let id, let buffer): "owner #\(id) lies outside the local buffer \(buffer)"
        case .cannotRejoin(let id, let failure): "cannot join a part back to owner #\(id): \(failure)"
        case .overlappingCopy(let s, let d): "copy source \(s) and destination \(d) overlap"
        case .backendContract(let v): "copy backend broke its contract: \(v)"
        case .partialCopy(let p): p.description
        case .badAddress(let text, let reason): "bad address '\(text)': \(reason)"
        case .badSelector(let text, let reason): "bad address '\(text)': \(reason)"
        case .badPattern(let text, let reason): "bad address '\(text)': \(reason)"
        case .unknownRegion(let name): "no mapping named '\(name)'"
        case .ambiguousRegion(let name, let candidates):
            "'\(name)' names \(candidates.count) separate regions: \(candidates.joined(separator: ", "));"
                + " name one by its full path or by address"
        case .unknownSymbol(let name, let reason): "unknown symbol '\(name)': \(reason)"
        }
    }
}
