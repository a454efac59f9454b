/// An address in some process's address space. Always 64 bits wide, so that the
/// model can describe 32-bit and 64-bit targets alike.
public typealias Address = UInt64

/// A half-open range of addresses `start..<end`.
///
/// Unlike `Range<UInt64>`, constructing one never traps: an inverted or
/// overflowing range is a thrown ``VmIoError``, so that bad user input
/// (`0xffffffffffffff00 + 0x200`) becomes a clear error instead of a crash.
public struct AddressRange: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the range.
    public let start: Address
    /// The address just past the range (excluded).
    public let end: Address

    /// A range `start..<end`; throws ``VmIoError/invalidRange(start:end:)`` when `start > end`.
    public init(start: Address, end: Address) throws(VmIoError) {
        guard start <= end else { throw .invalidRange(start: start, end: end) }
        self.start = start
        self.end = end
    }

    /// A range of `count` bytes at `start`; throws ``VmIoError/addressOverflow(base:length:)``
    /// when `start + count` does not fit in 64 bits.
    public init(start: Address, count: UInt64) throws(VmIoError) {
        let (end, overflow) = start.addingReportingOverflow(count)
        guard !overflow else { throw .addressOverflow(base: start, length: count) }
        self.start = start
        self.end = end
    }

    /// For callers that have already established `start <= end`.
    init(uncheckedStart start: Address, end: Address) {
        self.start = start
        self.end = end
    }

    /// The range `0..<0`: no address.
    public static let empty = AddressRange(uncheckedStart: 0, end: 0)

    /// The number of addresses, `end - start`.
    public var count: UInt64 { end &- start }
    /// Whether the range holds no address.
    public var isEmpty: Bool { start >= end }
    /// Whether `start <= end`: true of every range made by the throwing initializers.
    public var isWellFormed: Bool { start <= end }

    /// Whether `address` lies in `start..<end`.
    public func contains(_ address: Address) -> Bool { start <= address && address < end }

    /// Exact half-open intersection: `a.start < b.end && b.start < a.end`.
    /// Empty ranges intersect nothing.
    public func intersects(_ other: AddressRange) -> Bool {
        !isEmpty && !other.isEmpty && start < other.end && other.start < end
    }

    /// Whether `other` lies wholly inside this range.
    public func contains(_ other: AddressRange) -> Bool {
        start <= other.start && other.end <= end
    }

    /// The common part of two ranges (empty, at `max(start)`, when they do not intersect).
    public func clamped(to other: AddressRange) -> AddressRange {
        let s = Swift.max(start, other.start)
        let e = Swift.min(end, other.end)
        return AddressRange(uncheckedStart: s, end: Swift.max(s, e))
    }

    public var description: String {
        "0x" + String(start, radix: 16) + "-0x" + String(end, radix: 16)
    }
}

extension Address {
    /// `self + offset`, or ``VmIoError/addressOverflow(base:length:)``.
    public func adding(_ offset: UInt64) throws(VmIoError) -> Address {
        let (sum, overflow) = addingReportingOverflow(offset)
        guard !overflow else { throw .addressOverflow(base: self, length: offset) }
        return sum
    }

    /// `self + offset`, or the largest address where that overflows (for bounds that are
    /// clamped afterwards anyway).
    public func saturatingAdding(_ offset: UInt64) -> Address {
        let (sum, overflow) = addingReportingOverflow(offset)
        return overflow ? .max : sum
    }

    /// `0x…` lowercase hex.
    public var hex: String { "0x" + String(self, radix: 16) }
}
