import VmIO

/// The bytes of an ELF core file (`ET_CORE`) other than the memory it carries: the ELF
/// header, the program headers and the notes, in the target's class (`ELFCLASS32` or
/// `ELFCLASS64`) and byte order. Pure: no system call, so every layout is testable as bytes.
/// The layouts are the System V gABI's and Linux's (`include/uapi/linux/elf.h`).
public struct CoreFormat: Hashable, Sendable {
    /// 4 for `ELFCLASS32`, 8 for `ELFCLASS64`.
    public let wordSize: Int
    /// The byte order of every field.
    public let byteOrder: TargetABI.ByteOrder
    /// `e_machine`: 62 x86-64, 3 i386.
    public let machine: UInt16

    /// A format of `wordSize` (4 or 8), `byteOrder` and `machine` (`e_machine`).
    public init(wordSize: Int, byteOrder: TargetABI.ByteOrder, machine: UInt16) {
        self.wordSize = wordSize
        self.byteOrder = byteOrder
        self.machine = machine
    }

    /// The format of a core of a process of this ABI.
    public init(_ abi: TargetABI) {
        self.init(wordSize: abi.pointerWidth, byteOrder: abi.byteOrder, machine: abi.machine)
    }

    /// Whether the core is `ELFCLASS64`.
    public var is64Bit: Bool { wordSize == 8 }
    /// The size of the ELF header.
    public var headerSize: Int { is64Bit ? 64 : 52 }
    /// The size of one program header.
    public var programHeaderSize: Int { is64Bit ? 56 : 32 }
    /// The size of one section header.
    public var sectionHeaderSize: Int { is64Bit ? 64 : 40 }

    /// `PN_XNUM`: `e_phnum` when the real count is in section header 0's `sh_info`.
    static let extendedNumbering = 0xffff

    /// The ELF header of a core with `programHeaders` program headers (they follow the
    /// header). With `PN_XNUM` or more, `e_phnum` is `PN_XNUM` and the count is in the one
    /// section header at `sectionHeaderOffset` (``extendedNumberingSection(programHeaders:)``).
    public func header(programHeaders: Int, sectionHeaderOffset: UInt64) -> [UInt8] {
        var out = ByteWriter(self)
        out.bytes([0x7f, 0x45, 0x4c, 0x46, is64Bit ? 2 : 1, byteOrder == .little ? 1 : 2, 1, 0])  // EI_*
        out.bytes([UInt8](repeating: 0, count: 8))
        out.u16(4)  // ET_CORE
        out.u16(machine)
        out.u32(1)  // EV_CURRENT
        out.word(0)  // e_entry
        out.word(UInt64(headerSize))  // e_phoff
        let extended = programHeaders >= Self.extendedNumbering
        out.word(extended ? sectionHeaderOffset : 0)  // e_shoff
        out.u32(0)  // e_flags
        out.u16(UInt16(headerSize))
        out.u16(UInt16(programHeaderSize))
        out.u16(UInt16(min(programHeaders, Self.extendedNumbering)))
        out.u16(extended ? UInt16(sectionHeaderSize) : 0)
        out.u16(extended ? 1 : 0)  // e_shnum
        out.u16(0)  // e_shstrndx: SHN_UNDEF
        return out.data
    }

    /// Section header 0 of a core with `PN_XNUM` or more program headers: `sh_info` holds their count.
    public func extendedNumberingSection(programHeaders: Int) -> [UInt8] {
        var out = ByteWriter(self)
        out.u32(0)  // sh_name
        out.u32(0)  // sh_type: SHT_NULL
        out.word(0)  // sh_flags
        out.word(0)  // sh_addr
        out.word(0)  // sh_offset
        out.word(0)  // sh_size
        out.u32(0)  // sh_link
        out.u32(UInt32(programHeaders))  // sh_info
        out.word(0)  // sh_addralign
        out.word(0)  // sh_entsize
        return out.data
    }

    /// A program header.
    public struct Segment: Hashable, Sendable {
        /// `PT_LOAD`: a segment of memory.
        public static let load: UInt32 = 1
        /// `PT_NOTE`: the notes.
        public static let note: UInt32 = 4
        /// `p_type`.
        public var type: UInt32
        /// `PF_R` 4, `PF_W` 2, `PF_X` 1.
        public var flags: UInt32
        /// `p_offset`: where its bytes start in the file.
        public var offset: UInt64
        /// `p_vaddr`: its address in the process.
        public var address: UInt64
        /// `p_filesz`: its bytes in the file.
        public var fileSize: UInt64
        /// `p_memsz`: its size in memory.
        public var memorySize: UInt64
        /// `p_align`.
        public var alignment: UInt64

        /// A program header with every field given.
        public init(
            type: UInt32, flags: UInt32, offset: UInt64, address: UInt64, fileSize: UInt64, memorySize: UInt64,
            alignment: UInt64
        ) {
            self.type = type
            self.flags = flags
            self.offset = offset
            self.address = address
            self.fileSize = fileSize
            self.memorySize = memorySize
            self.alignment = alignment
        }

        /// The `p_flags` of a mapping's permissions.
        public static func flags(of permissions: Permissions) -> UInt32 {
            (permissions.read ? 4 : 0) | (permissions.write ? 2 : 0) | (permissions.execute ? 1 : 0)
        }
    }

    /// One program header's bytes (the field order differs between the classes).
    public func programHeader(_ s: Segment) -> [UInt8] {
        var out = ByteWriter(self)
        out.u32(s.type)
        if is64Bit {
            out.u32(s.flags)
            out.word(s.offset)
            out.word(s.address)
            out.word(0)  // p_paddr
            out.word(s.fileSize)
            out.word(s.memorySize)
            out.word(s.alignment)
        } else {
            out.word(s.offset)
            out.word(s.address)
            out.word(0)
            out.word(s.fileSize)
            out.word(s.memorySize)
            out.u32(s.flags)
            out.word(s.alignment)
        }
        return out.data
    }

    /// One note: its header, its name (NUL-terminated) and its description, each padded to 4
    /// bytes (core notes are 4-aligned in both classes, as Linux writes them).
    public func note(name: String, type: UInt32, description: [UInt8]) -> [UInt8] {
        var out = ByteWriter(self)
        let nameBytes = Array(name.utf8) + [0]
        out.u32(UInt32(nameBytes.count))
        out.u32(UInt32(description.count))
        out.u32(type)
        out.bytes(nameBytes)
        out.align(4)
        out.bytes(description)
        out.align(4)
        return out.data
    }
}

/// The note types of a Linux core (`include/uapi/linux/elf.h`) and their names.
public enum CoreNoteType {
    /// `NT_PRSTATUS`: a thread's status and general registers.
    public static let prstatus: UInt32 = 1
    /// `NT_FPREGSET`: a thread's floating-point registers.
    public static let fpregset: UInt32 = 2
    /// `NT_PRPSINFO`: the process's facts.
    public static let prpsinfo: UInt32 = 3
    /// `NT_AUXV`: the auxiliary vector.
    public static let auxv: UInt32 = 6
    /// `NT_FILE`: the mapped files.
    public static let file: UInt32 = 0x4649_4c45
    /// `NT_SIGINFO`: the signal a thread stopped on.
    public static let siginfo: UInt32 = 0x5349_4749
    /// i386 only: the `fxsave` area (named `LINUX`).
    public static let prxfpreg: UInt32 = 0x46e6_2b7f
    /// i386 only: the thread's TLS descriptors (named `LINUX`).
    public static let i386TLS: UInt32 = 0x200
    /// The `xsave` area (named `LINUX`).
    public static let x86XState: UInt32 = 0x202

    /// The name a note of `type` carries: `LINUX` for the architecture's register sets, else `CORE`.
    public static func name(of type: UInt32) -> String {
        type == prxfpreg || type == i386TLS || type == x86XState ? "LINUX" : "CORE"
    }
}

/// Appends integers in a core's byte order and word size.
struct ByteWriter {
    let format: CoreFormat
    private(set) var data: [UInt8] = []

    init(_ format: CoreFormat) { self.format = format }

    mutating func bytes(_ b: some Sequence<UInt8>) { data.append(contentsOf: b) }

    mutating func integer(_ value: UInt64, width: Int) {
        for k in 0..<width {
            let shift = format.byteOrder == .little ? k : width - 1 - k
            data.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(shift))))
        }
    }

    mutating func u8(_ v: UInt8) { data.append(v) }
    mutating func u16(_ v: UInt16) { integer(UInt64(v), width: 2) }
    mutating func u32(_ v: UInt32) { integer(UInt64(v), width: 4) }
    mutating func i32(_ v: Int32) { integer(UInt64(UInt32(bitPattern: v)), width: 4) }
    /// A word of the core's class (`unsigned long`, an address): 4 or 8 bytes.
    mutating func word(_ v: UInt64) { integer(v, width: format.wordSize) }

    /// Zeros up to a multiple of `alignment`.
    mutating func align(_ alignment: Int) {
        while data.count % alignment != 0 { data.append(0) }
    }

    /// `count` bytes of `text`'s UTF-8, cut or padded with NULs (a C `char[count]`).
    mutating func fixedString(_ text: some Sequence<UInt8>, count: Int) {
        let cut = Array(text.prefix(count))
        data.append(contentsOf: cut)
        data.append(contentsOf: [UInt8](repeating: 0, count: count - cut.count))
    }
}
