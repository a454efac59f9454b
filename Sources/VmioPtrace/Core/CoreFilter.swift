import VmIO

/// The bits of `/proc/PID/coredump_filter` (core(5)): which mappings a core carries the
/// contents of. The kernel's default is `0x33`.
public struct CoredumpFilter: OptionSet, Hashable, Sendable {
    /// The bits of `/proc/PID/coredump_filter`.
    public let rawValue: UInt32
    /// A filter of these bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Bit 0: private anonymous memory.
    public static let anonymousPrivate = CoredumpFilter(rawValue: 1 << 0)
    /// Bit 1: shared anonymous memory.
    public static let anonymousShared = CoredumpFilter(rawValue: 1 << 1)
    /// Bit 2: private file mappings.
    public static let filePrivate = CoredumpFilter(rawValue: 1 << 2)
    /// Bit 3: shared file mappings.
    public static let fileShared = CoredumpFilter(rawValue: 1 << 3)
    /// The first page of a private file mapping at offset 0 that holds an ELF header (its build id).
    public static let elfHeaders = CoredumpFilter(rawValue: 1 << 4)
    /// Bit 5: private huge pages.
    public static let hugePrivate = CoredumpFilter(rawValue: 1 << 5)
    /// Bit 6: shared huge pages.
    public static let hugeShared = CoredumpFilter(rawValue: 1 << 6)
    /// The kernel's default, `0x33`: anonymous memory, ELF headers and private huge pages.
    public static let kernelDefault = CoredumpFilter(rawValue: 0x33)
}

/// What a core carries of one mapping.
public enum CoreContent: Hashable, Sendable {
    /// Every byte.
    case whole
    /// Only the first page (an ELF header, for the build id).
    case firstPage
    /// Nothing: the segment is listed with its addresses and permissions only.
    case empty(EmptyReason)

    /// Why a mapping's segment carries nothing.
    public enum EmptyReason: String, Hashable, Sendable {
        /// `coredump_filter` (or `--filter`) leaves this kind of mapping out.
        case filter
        /// Marked `dd` in smaps (`MADV_DONTDUMP`, `VM_DONTDUMP`).
        case dontDump = "dont-dump"
        /// `[vvar]`: the kernel's data page, which no read can take.
        case kernelData = "kernel-data"
        /// Memory-mapped I/O (`io` in smaps).
        case io
        /// Without read permission (a guard page): nothing a debugger could use.
        case unreadable
        /// Private anonymous memory never written (no anonymous page): it reads as zeros.
        case untouched
    }
}

/// What the core decision needs of one mapping: its maps line and the smaps facts.
public struct CoreMappingFacts: Hashable, Sendable {
    /// The mapping's maps line.
    public var mapping: Mapping
    /// The two-letter `VmFlags` of smaps (`dd`, `ht`, `io`, `sh`…); empty when unknown.
    public var vmFlags: Set<String>
    /// Anonymous pages (`Anonymous` + `Swap`), in bytes; nil when smaps could not be read.
    public var anonymousBytes: UInt64?

    /// The facts of `mapping`: its smaps `VmFlags` and anonymous bytes, when known.
    public init(mapping: Mapping, vmFlags: Set<String> = [], anonymousBytes: UInt64? = nil) {
        self.mapping = mapping
        self.vmFlags = vmFlags
        self.anonymousBytes = anonymousBytes
    }

    /// What a core filtered by `filter` carries of this mapping, the way the kernel decides
    /// for its own cores (`vma_dump_size` in fs/binfmt_elf.c) from what smaps shows:
    /// `anon_vma` is "has anonymous pages", a file whose last link is gone (shared anonymous
    /// memory, memfd, SysV shm) is anonymous shared. `startsWithELFHeader` is asked only for a
    /// private file mapping at offset 0 that the filter would otherwise leave out.
    public func content(filter: CoredumpFilter, startsWithELFHeader: () -> Bool) -> CoreContent {
        let path = mapping.path
        if path == "[vvar]" || path == "[vvar_vclock]" { return .empty(.kernelData) }
        guard mapping.permissions.read else { return .empty(.unreadable) }
        if path == "[vdso]" || path == "[vsyscall]" { return .whole }
        if vmFlags.contains("dd") { return .empty(.dontDump) }
        let shared = mapping.permissions.shared || vmFlags.contains("sh")
        if vmFlags.contains("ht") {
            return filter.contains(shared ? .hugeShared : .hugePrivate) ? .whole : .empty(.filter)
        }
        if vmFlags.contains("io") { return .empty(.io) }
        let hasFile = mapping.inode != 0 || mapping.isFileBacked
        if shared {
            let anonymous = !hasFile || mapping.isDeleted
            return filter.contains(anonymous ? .anonymousShared : .fileShared) ? .whole : .empty(.filter)
        }
        let written = (anonymousBytes ?? 1) > 0
        if written && filter.contains(.anonymousPrivate) { return .whole }
        guard hasFile else { return written ? .empty(.filter) : .empty(.untouched) }
        if filter.contains(.filePrivate) { return .whole }
        if filter.contains(.elfHeaders), mapping.offset == 0, startsWithELFHeader() { return .firstPage }
        return .empty(.filter)
    }
}
