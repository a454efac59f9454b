import Glibc
import SystemPackage
import VmIO

/// The target's own ABI: its pointer width and byte order, from the ELF header of the
/// program it runs (`/proc/PID/exe`), so that a 32-bit process is read as 32-bit.
///
/// Typed reads decode in ``byteOrder``, `ptr` values are ``pointerWidth`` bytes wide,
/// and word-grouped hex dumps group by ``pointerWidth``.
public struct TargetABI: Hashable, Sendable, CustomStringConvertible {
    /// The order of a value's bytes in memory.
    public enum ByteOrder: String, Sendable {
        /// Least significant byte first (x86_64), or most significant first.
        case little, big
    }

    /// Where the ABI was learned.
    public enum Source: String, Sendable {
        /// The ELF header of `/proc/PID/exe`.
        case elfHeader = "elf-header"
        /// The executable could not be read (a kernel thread, a zombie, no access): this
        /// tool's own ABI is assumed.
        case assumed
    }

    /// Bytes in a pointer: 4 or 8.
    public let pointerWidth: Int
    /// The byte order of values in memory.
    public let byteOrder: ByteOrder
    /// `e_machine` of the ELF header (62 x86-64, 3 i386, 183 AArch64, 40 ARM…).
    public let machine: UInt16
    /// Where this was learned.
    public let source: Source

    /// An ABI of `pointerWidth` bytes, `byteOrder`, `machine`, learned from `source`.
    public init(pointerWidth: Int, byteOrder: ByteOrder, machine: UInt16, source: Source) {
        (self.pointerWidth, self.byteOrder) = (pointerWidth, byteOrder)
        (self.machine, self.source) = (machine, source)
    }

    /// This tool's own ABI.
    public static let host = TargetABI(
        pointerWidth: MemoryLayout<UInt>.size, byteOrder: 1.littleEndian == 1 ? .little : .big,
        machine: hostMachine, source: .assumed)

    #if arch(x86_64)
        private static let hostMachine: UInt16 = 62
    #elseif arch(arm64)
        private static let hostMachine: UInt16 = 183
    #else
        private static let hostMachine: UInt16 = 0
    #endif

    /// `x86_64`, `i386`, `x32` (an ELF32 x86-64 program), `aarch64`, `arm`…, or `machine N`.
    public var machineName: String {
        switch machine {
        case 3: "i386"
        case 62: pointerWidth == 4 ? "x32" : "x86_64"
        case 183: "aarch64"
        case 40: "arm"
        case 8: "mips"
        case 20: "ppc"
        case 21: "ppc64"
        case 22: "s390"
        case 243: "riscv"
        default: "machine \(machine)"
        }
    }

    /// Whether values are big-endian.
    public var isBigEndian: Bool { byteOrder == .big }

    /// `ELF32 little-endian i386`.
    public var description: String {
        "ELF\(pointerWidth * 8) \(byteOrder.rawValue)-endian \(machineName)"
    }

    /// The ABI from the first bytes of an ELF file; nil when they are not an ELF header.
    public static func parse(header bytes: [UInt8]) -> TargetABI? {
        guard bytes.count >= 20, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46 else {
            return nil
        }
        let width: Int
        switch bytes[4] {  // EI_CLASS
        case 1: width = 4
        case 2: width = 8
        default: return nil
        }
        let order: ByteOrder
        switch bytes[5] {  // EI_DATA
        case 1: order = .little
        case 2: order = .big
        default: return nil
        }
        let machine =
            order == .little
            ? UInt16(bytes[18]) | UInt16(bytes[19]) << 8
            : UInt16(bytes[18]) << 8 | UInt16(bytes[19])
        return TargetABI(pointerWidth: width, byteOrder: order, machine: machine, source: .elfHeader)
    }

    /// The ABI of process `pid`, from `/proc/PID/exe`; ``host`` (marked ``Source/assumed``)
    /// when that cannot be read.
    public static func of(pid: Int32) -> TargetABI {
        guard let header = readHeader(pid: pid) else { return host }
        return parse(header: header) ?? host
    }

    /// The first 64 bytes of `/proc/PID/exe` (`open(2)`, `pread(2)`); nil when it cannot be read.
    static func readHeader(pid: Int32) -> [UInt8]? {
        guard let fd = try? Sys.open("/proc/\(pid)/exe", O_RDONLY) else { return nil }
        defer { Sys.close(fd) }
        var header = [UInt8](repeating: 0, count: 64)
        guard let n = try? header.withUnsafeMutableBytes({ raw throws(Errno) in try Sys.pread(fd, into: raw, at: 0) }),
            n >= 20
        else { return nil }
        return Array(header[0..<n])
    }

    /// The unsigned value of `bytes` (at most 8) in this byte order.
    public func value(of bytes: some Collection<UInt8>) -> UInt64 {
        var raw: UInt64 = 0
        if byteOrder == .little {
            for (k, b) in bytes.enumerated() { raw |= UInt64(b) << (8 * UInt64(k)) }
        } else {
            for b in bytes { raw = raw << 8 | UInt64(b) }
        }
        return raw
    }

    /// `value` as `width` bytes in this byte order.
    public func bytes(of value: UInt64, width: Int) -> [UInt8] {
        let little = (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
        return byteOrder == .little ? little : little.reversed()
    }

    /// A pointer as `0x` and exactly `2 * pointerWidth` hex digits.
    public func pointerText(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, pointerWidth * 2 - digits.count)) + digits
    }
}

extension ProcFS {
    /// `NSpid` of `/proc/PID/status`: the pid in each pid namespace from this one inwards
    /// (`[host, …, innermost]`); `[pid]` when the kernel does not say.
    public static func nspid(_ pid: Int32) -> [Int32] {
        guard let field = (try? status(pid))?["NSpid"] else { return [pid] }
        let ids = Doctor.parseIDs(field).map { Int32(bitPattern: $0) }
        return ids.isEmpty ? [pid] : ids
    }
}
