import SystemPackage
import VmIO

/// A range of target memory that could not be accessed.
public struct Hole: Hashable, Sendable {
    /// The first address that could not be read.
    public let address: Address
    /// The bytes stepped over.
    public let length: UInt64
    /// Why they could not be read.
    public let kind: FaultKind
    /// The mechanism that failed there (``AccessMechanism/maps`` for an address in no
    /// mapping, where nothing was tried).
    public var mechanism: AccessMechanism?
    /// The errno of that failure (`EFAULT` for a fault `process_vm_readv` reports as a short count).
    public var errno: Int32?
    /// A hole of `length` bytes at `address`, for `kind`; `mechanism` and `errno` say what failed there.
    public init(
        address: Address, length: UInt64, kind: FaultKind, mechanism: AccessMechanism? = nil, errno: Int32? = nil
    ) {
        (self.address, self.length, self.kind, self.mechanism, self.errno) = (address, length, kind, mechanism, errno)
    }
}

/// A range of target memory that moved, and the mechanism that moved it.
public struct MovedRange: Hashable, Sendable {
    /// The first address of the range.
    public let address: Address
    /// Its length in bytes.
    public var length: UInt64
    /// The mechanism that moved it.
    public let mechanism: AccessMechanism
    /// `length` bytes at `address` moved by `mechanism`.
    public init(address: Address, length: UInt64, mechanism: AccessMechanism) {
        (self.address, self.length, self.mechanism) = (address, length, mechanism)
    }
}

/// What a bulk transfer did: bytes moved, holes stepped over, and the fault that
/// ended it early (nil when it ran to the end).
public struct TransferReport: Sendable {
    /// The bytes asked for (for a stream its consumer ended early: the bytes it took and the holes before).
    public var requested: UInt64
    /// The bytes that moved.
    public var moved: UInt64 = 0
    /// The ranges stepped over, in order; adjacent ones of one kind and mechanism merged.
    public var holes: [Hole] = []
    /// The fault that ended the transfer early; nil when it ran to its end.
    public var stop: PartialCopy?
    /// The ranges that moved, in order, each with the mechanism that moved it (contiguous
    /// ranges of one mechanism merged). Addresses are the source's.
    public var ranges: [MovedRange] = []
    /// The mechanism and errno of the failure in `stop`.
    public var stopMechanism: AccessMechanism?
    /// The errno of the failure in `stop`.
    public var stopErrno: Int32?
    /// An empty report of a transfer of `requested` bytes.
    public init(requested: UInt64) { self.requested = requested }
    /// Every requested byte moved.
    public var isComplete: Bool { stop == nil && holes.isEmpty && moved == requested }

    /// A stream the consumer ended early: what was asked is what it took.
    func finished() -> TransferReport {
        var done = self
        done.requested = moved + holes.reduce(0) { $0 + $1.length }
        return done
    }

    /// Records a hole, merging it with the previous one when they touch and agree in kind
    /// and mechanism.
    mutating func addHole(_ hole: Hole) {
        if let last = holes.last, last.address + last.length == hole.address,
            case .pageFault = last.kind, case .pageFault = hole.kind,
            last.mechanism == hole.mechanism, last.errno == hole.errno
        {
            holes[holes.count - 1] = Hole(
                address: last.address, length: last.length + hole.length, kind: last.kind,
                mechanism: last.mechanism, errno: last.errno)
        } else {
            holes.append(hole)
        }
    }

    /// Records `count` bytes at `address` moved by `mechanism`, merged with the previous
    /// range when they touch and agree.
    mutating func addMoved(_ address: Address, _ count: UInt64, _ mechanism: AccessMechanism) {
        guard count > 0 else { return }
        moved += count
        if let last = ranges.last, last.address + last.length == address, last.mechanism == mechanism {
            ranges[ranges.count - 1].length += count
        } else {
            ranges.append(MovedRange(address: address, length: count, mechanism: mechanism))
        }
    }

    /// Ends the transfer at `kind` after what moved, on `side` of `space`.
    mutating func stop(
        _ kind: FaultKind, side: CopySide, space: AddressSpace, mechanism: AccessMechanism?, errno: Int32?
    ) {
        stop = PartialCopy(kind: kind, copied: moved, requested: requested, side: side, space: space)
        stopMechanism = mechanism
        stopErrno = errno
    }
}

/// What a write did.
public struct WriteReport: Sendable {
    /// Where the write started.
    public let address: Address
    /// The bytes to write.
    public let requested: UInt64
    /// The bytes written.
    public var written: UInt64 = 0
    /// Whether the bytes were read back and compared (`verify`).
    public var verified = false
    /// The first address whose read-back differs from what was written.
    public var mismatch: Address?
}
