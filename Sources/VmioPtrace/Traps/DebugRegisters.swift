import VmIO

/// What a hardware trap fires on: a write, any access (read or write), or the execution of
/// the instruction at its address.
public enum WatchAccess: String, Sendable, CaseIterable {
    /// `write`: a write to the bytes; `access`: a read or a write; `execute`: the instruction at the address.
    case write, access, execute

    /// The two R/W bits of DR7 for this kind (Intel SDM vol. 3, 18.2.4).
    var dr7Bits: UInt64 {
        switch self {
        case .execute: 0b00
        case .write: 0b01
        case .access: 0b11
        }
    }
}

/// One debug register's worth of a trap: an aligned piece of 1, 2, 4 or 8 bytes.
public struct DebugPiece: Hashable, Sendable {
    /// The first byte watched, aligned to `length`.
    public let address: Address
    /// The bytes watched: 1, 2, 4 or 8.
    public let length: Int
    /// What fires the register.
    public let access: WatchAccess

    /// A piece watching `length` bytes at `address` for `access` (not checked: see ``DebugRegisters``).
    public init(address: Address, length: Int, access: WatchAccess) {
        (self.address, self.length, self.access) = (address, length, access)
    }

    /// The two LEN bits of DR7 for this piece's length.
    var dr7LengthBits: UInt64 {
        switch length {
        case 2: 0b01
        case 4: 0b11
        case 8: 0b10
        default: 0b00
        }
    }
}

/// The x86-64 debug registers as this tool uses them: DR0–DR3 hold addresses, DR6 says which
/// fired, DR7 enables each (local enable bits) with its kind and length. Pure: the ptrace
/// requests that read and write them are in Sys (System/Ptrace.swift).
public enum DebugRegisters {
    /// DR0–DR3.
    public static let slotCount = 4
    /// DR6's bits B0–B3: which slot fired.
    static let hitMask: UInt64 = 0xf
    /// DR6's BS bit: a single step finished.
    static let singleStepBit: UInt64 = 1 << 14

    /// Where user space ends for a debug register: the kernel refuses an address at or past
    /// its `TASK_SIZE_MAX` (`EINVAL` from `PTRACE_POKEUSER`), 2^47 − 4096 with four levels of
    /// page tables.
    public static let userSpaceEnd: Address = 0x7fff_ffff_f000

    /// Whether `length` (at least 1) bytes at `address` lie below ``userSpaceEnd`` (without
    /// overflowing near 2^64).
    public static func holdsUserSpace(address: Address, length: Int) -> Bool {
        length >= 1 && address < userSpaceEnd && UInt64(length) <= userSpaceEnd - address
    }

    /// `length` bytes at `address` as aligned pieces of 1, 2, 4 or 8 bytes, largest first
    /// where the alignment allows: `[4 at 0x1004, 8 at 0x1008]` for 12 bytes at 0x1004. An
    /// execution trap is one piece of length 1. The range must not wrap past 2^64
    /// (``holdsUserSpace(address:length:)`` checks first).
    public static func pieces(address: Address, length: Int, access: WatchAccess) -> [DebugPiece] {
        if access == .execute { return [DebugPiece(address: address, length: 1, access: .execute)] }
        var pieces: [DebugPiece] = []
        var at = address
        var left = length
        while left > 0 {
            let size = [8, 4, 2, 1].first { at % UInt64($0) == 0 && $0 <= left }!
            pieces.append(DebugPiece(address: at, length: size, access: access))
            at += UInt64(size)
            left -= size
        }
        return pieces
    }

    /// DR7 for the pieces held in each slot (nil: the slot is free): the local enable bit of
    /// each used slot, its R/W and LEN bits.
    public static func control(_ slots: [DebugPiece?]) -> UInt64 {
        var dr7: UInt64 = 0
        for (slot, piece) in slots.enumerated() {
            guard let piece else { continue }
            dr7 |= 1 << UInt64(2 * slot)
            dr7 |= piece.access.dr7Bits << UInt64(16 + 4 * slot)
            dr7 |= piece.dr7LengthBits << UInt64(18 + 4 * slot)
        }
        return dr7
    }

    /// The slots DR7 enables (either enable bit, local or global).
    public static func enabledSlots(_ dr7: UInt64) -> [Int] {
        (0..<slotCount).filter { dr7 & (0b11 << UInt64(2 * $0)) != 0 }
    }
}
