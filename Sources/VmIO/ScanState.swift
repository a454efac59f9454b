/// The state file of `scan` (README.md, "scan"): a header, then blocks. A candidate block
/// holds up to ``ScanState/blockCapacity`` candidates: their count, the addresses sorted
/// and delta-encoded (LEB128: the first whole, then each one's distance from the one
/// before), then the values, `width` bytes each. A snapshot block (`--snapshot`) holds a
/// start address and the bytes there: every aligned slot is a candidate. All numbers are
/// little-endian.
public enum ScanState {
    /// The first 8 bytes of a state file.
    public static let magic: [UInt8] = Array("VMIOSCN1".utf8)
    /// The bytes of the header.
    public static let headerSize = 48
    /// The candidates a candidate block holds at most.
    public static let blockCapacity = 4096
    /// Snapshot blocks hold at most this many bytes, so a reader needs only that much.
    public static let snapshotBlockSize = 1 << 20
    static let candidateKind: UInt8 = 0x43  // "C"
    static let snapshotKind: UInt8 = 0x53  // "S"
    /// A block starts with its kind and the length of its body.
    public static let blockHeaderSize = 5

    /// What a state file is about, and how much it holds.
    public struct Header: Hashable, Sendable {
        /// The process the state is about.
        public var pid: Int32
        /// The process's start time (`/proc/PID/stat`, field 22): a restarted process with
        /// the same pid has another.
        public var startTime: UInt64
        /// The type of the values followed.
        public var type: ScanType
        /// Whether the blocks are snapshots (every aligned slot a candidate).
        public var snapshot: Bool
        /// The candidates (for a snapshot, its aligned slots).
        public var count: UInt64
        /// Candidates dropped so far because they could not be read.
        public var dropped: UInt64

        /// A header with these fields.
        public init(pid: Int32, startTime: UInt64, type: ScanType, snapshot: Bool, count: UInt64, dropped: UInt64) {
            (self.pid, self.startTime, self.type, self.snapshot) = (pid, startTime, type, snapshot)
            (self.count, self.dropped) = (count, dropped)
        }

        /// The header as the file stores it: ``ScanState/headerSize`` bytes, little-endian.
        public func encoded() -> [UInt8] {
            var out = ScanState.magic
            out.appendLittleEndian(UInt32(bitPattern: pid))
            out.append(type.code)
            out.append(snapshot ? 1 : 0)
            out.appendLittleEndian(UInt16(type.width))
            out.appendLittleEndian(startTime)
            out.appendLittleEndian(count)
            out.appendLittleEndian(dropped)
            out.appendLittleEndian(UInt64(0))  // reserved
            return out
        }

        /// Decodes the header at the start of `bytes`. Throws ``ScanStateError/notAState`` when they
        /// are too short or do not start with ``ScanState/magic``, ``ScanStateError/corrupt(_:)`` when a
        /// field is out of range (flags, the value type).
        public init(decoding bytes: some Collection<UInt8>) throws(ScanStateError) {
            let b = Array(bytes)
            guard b.count >= ScanState.headerSize, Array(b[0..<8]) == ScanState.magic else { throw .notAState }
            pid = Int32(bitPattern: UInt32(b.littleEndian(at: 8, 4)))
            let code = b[12]
            guard b[13] <= 1 else { throw .corrupt("bad flags") }
            snapshot = b[13] == 1
            let width = Int(b.littleEndian(at: 14, 2))
            guard let type = ScanType(code: code, width: width) else { throw .corrupt("unknown value type") }
            self.type = type
            startTime = b.littleEndian(at: 16, 8)
            count = b.littleEndian(at: 24, 8)
            dropped = b.littleEndian(at: 32, 8)
        }
    }

    /// One block of a state file.
    public enum Block: Hashable, Sendable {
        /// Sorted addresses and their values (`width` bytes each, in order).
        case candidates(addresses: [Address], values: [UInt8])
        /// The bytes at `start`: each aligned slot a candidate.
        case snapshot(start: Address, bytes: [UInt8])
    }

    /// A candidate block, whole (header and body). `addresses` ascend strictly.
    public static func encode(addresses: [Address], values: [UInt8]) -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(addresses.count * 2 + values.count + 4)
        body.appendLittleEndian(UInt32(addresses.count))
        var previous: Address = 0
        for address in addresses {
            body.appendVarint(address &- previous)
            previous = address
        }
        body.append(contentsOf: values)
        return blockHeader(candidateKind, body.count) + body
    }

    /// A snapshot block, whole (at most ``snapshotBlockSize`` bytes).
    public static func encode(snapshotAt start: Address, _ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out = blockHeader(snapshotKind, bytes.count + 8)
        out.appendLittleEndian(start)
        out.append(contentsOf: bytes)
        return out
    }

    private static func blockHeader(_ kind: UInt8, _ length: Int) -> [UInt8] {
        var out = [kind]
        out.appendLittleEndian(UInt32(length))
        return out
    }

    /// The kind and body length in a block's first ``blockHeaderSize`` bytes.
    ///
    /// Throws ``ScanStateError/corrupt(_:)`` when `head` is not a block's head (another length or
    /// kind) or gives a length beyond what a block can hold.
    public static func blockLength(_ head: some Collection<UInt8>) throws(ScanStateError) -> Int {
        let b = Array(head)
        guard b.count == blockHeaderSize, b[0] == candidateKind || b[0] == snapshotKind else {
            throw .corrupt("bad block header")
        }
        let length = Int(b.littleEndian(at: 1, 4))
        let limit = max(snapshotBlockSize + 8, blockCapacity * (10 + 4096) + 4)
        guard length <= limit else { throw .corrupt("block of \(length) bytes") }
        return length
    }

    /// Decodes a block: `head` (its first ``blockHeaderSize`` bytes) and its body.
    ///
    /// Throws ``ScanStateError/corrupt(_:)`` when `body` is shorter than its kind needs, holds no
    /// candidate or more than ``blockCapacity``, its addresses do not ascend, or its values do not
    /// fill it (`width` bytes each).
    public static func decode(head: some Collection<UInt8>, body: [UInt8], width: Int) throws(ScanStateError) -> Block {
        let kind = head.first
        if kind == snapshotKind {
            guard body.count >= 8 else { throw .corrupt("short snapshot block") }
            return .snapshot(start: body.littleEndian(at: 0, 8), bytes: Array(body[8...]))
        }
        guard body.count >= 4 else { throw .corrupt("short candidate block") }
        let n = Int(body.littleEndian(at: 0, 4))
        guard n > 0, n <= blockCapacity else { throw .corrupt("block of \(n) candidates") }
        var addresses: [Address] = []
        addresses.reserveCapacity(n)
        var at = 4
        var previous: Address = 0
        for i in 0..<n {
            guard let (delta, next) = body.varint(at: at) else { throw .corrupt("cut-short address") }
            let (address, overflow) = previous.addingReportingOverflow(delta)
            guard !overflow, i == 0 || delta > 0 else { throw .corrupt("addresses out of order") }
            addresses.append(address)
            previous = address
            at = next
        }
        guard body.count - at == n * width else { throw .corrupt("values do not fill the block") }
        return .candidates(addresses: addresses, values: Array(body[at...]))
    }

    /// Whether the `width` bytes at `a` and `b` are equal (byte strings).
    public static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, width: Int) -> Bool {
        (0..<width).allSatisfy {
            a.load(fromByteOffset: $0, as: UInt8.self) == b.load(fromByteOffset: $0, as: UInt8.self)
        }
    }

    /// The raw value (little-endian, up to 8 bytes) at index `i` of `values`.
    @inline(__always)
    public static func value(_ values: UnsafeRawBufferPointer, _ i: Int, width: Int) -> UInt64 {
        loadValue(values.baseAddress! + i * width, width: width)
    }

    /// The raw value of `width` bytes (1, 2, 4 or 8) at `p`; byte strings give their first 8 bytes.
    @inline(__always)
    public static func loadValue(_ p: UnsafeRawPointer, width: Int) -> UInt64 {
        switch width {
        case 1: UInt64(p.load(as: UInt8.self))
        case 2: UInt64(UInt16(littleEndian: p.loadUnaligned(as: UInt16.self)))
        case 4: UInt64(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
        case 8: UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
        default: (0..<min(width, 8)).reduce(0) { $0 | UInt64(p.load(fromByteOffset: $1, as: UInt8.self)) << ($1 * 8) }
        }
    }
}

/// A state file that cannot be used.
public enum ScanStateError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Not a scan state: too short, or another file's first bytes.
    case notAState
    /// A scan state whose header or a block is damaged, with what is wrong.
    case corrupt(String)

    public var description: String {
        switch self {
        case .notAState: "not a vmio-ptrace scan state"
        case .corrupt(let why): "damaged scan state (\(why))"
        }
    }
}

extension [UInt8] {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        append(UInt8(v))
    }

    func littleEndian(at offset: Int, _ count: Int) -> UInt64 {
        (0..<count).reduce(0) { $0 | UInt64(self[offset + $1]) << ($1 * 8) }
    }

    /// The LEB128 number at `offset` and the offset after it; nil when cut short or too long.
    func varint(at offset: Int) -> (UInt64, Int)? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        var i = offset
        while i < count, shift < 64 {
            let byte = self[i]
            value |= UInt64(byte & 0x7f) << shift
            i += 1
            if byte & 0x80 == 0 { return (value, i) }
            shift += 7
        }
        return nil
    }
}
