import CUnwind
import Glibc
import VmIO

/// A symbol found for an address: `name+offset` in `module`.
public struct SymbolMatch: Hashable, Sendable, CustomStringConvertible {
    /// The symbol's name (demangled when it is a C++ name).
    public let name: String
    /// The symbol's address in the target (load bias applied).
    public let address: Address
    /// How far past the symbol's start the looked-up address is.
    public let offset: UInt64
    /// The path of the mapped file that defines it.
    public let module: String

    public var description: String { offset == 0 ? name : "\(name)+\(offset.hex)" }
}

/// Name → address and address → name over the ELF symbol tables (`.symtab` and `.dynsym`)
/// of the files a process maps, read with libelf.
///
/// Each file's table is read once, when first needed, from the file as the target sees it
/// (`/proc/PID/root/PATH`, then `/proc/PID/map_files/…` for a deleted file, then `PATH`).
/// Its load bias comes from the maps: bias = start of a mapping of the file − the page-aligned
/// `p_vaddr` of the `PT_LOAD` segment whose page-aligned file offset is that mapping's offset.
/// That is 0 for a non-PIE executable (linked at its run address) and the load address for
/// PIE executables and shared libraries.
public final class SymbolTable {
    /// The process whose mapped files the table reads.
    public let pid: Int32
    /// The view the modules were taken from (``update(view:)`` replaces it).
    public private(set) var view: MemView
    /// Loaded images by path; nil for a file that could not be read as ELF.
    private var images: [String: ElfImage?] = [:]
    private static let pageMask = ~UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 4096) - 1)

    /// A table over the ELF files mapped in `view` of process `pid`; each file is read when a lookup first needs it.
    public init(pid: Int32, view: MemView) {
        self.pid = pid
        self.view = view
    }

    /// Follows a refreshed view; files already read stay loaded (their load biases are
    /// worked out again, in case a file was mapped anew elsewhere).
    public func update(view: MemView) {
        self.view = view
        for case let image? in images.values { image.bias = nil }
    }

    /// The file-backed modules of the view, in address order (each path once, at its lowest mapping).
    public var modules: [String] {
        var seen = Set<String>()
        return view.mappings.compactMap { m in
            guard m.isFileBacked, seen.insert(m.path).inserted else { return nil }
            return m.path
        }
    }

    /// The address of `name`, searched in `file` (a mapped file's full path or basename), or
    /// in every mapped file in address order (the executable first, as a rule). Within a file,
    /// a global symbol wins over a weak one, and a weak one over a local one.
    /// `VmIoError.unknownSymbol(_:reason:)` when no table has it.
    public func address(of name: String, in file: String? = nil) throws(VmIoError) -> Address {
        var candidates = modules
        if let file {
            candidates = candidates.filter { $0 == file || Self.basename($0) == file }
            guard !candidates.isEmpty else {
                throw .unknownSymbol(name, reason: "pid \(pid) maps no file named '\(file)'")
            }
        }
        var unreadable: [String] = []
        for path in candidates {
            guard let image = image(path) else {
                unreadable.append(path)
                continue
            }
            if let symbol = image.byName[name], let bias = bias(of: path, image: image) {
                return symbol.value &+ bias
            }
        }
        var reason =
            file != nil
            ? "not in the .symtab or .dynsym of \(candidates.joined(separator: ", "))"
            : "not in the .symtab or .dynsym of any of the \(candidates.count) files mapped by pid \(pid)"
        if !unreadable.isEmpty {
            reason += " (\(unreadable.count) could not be read as ELF: \(unreadable.joined(separator: ", ")))"
        }
        throw .unknownSymbol(name, reason: reason)
    }

    /// The symbol whose extent holds `address` (a sized function or object of the file
    /// mapped there), or one that starts exactly at it; nil when there is none.
    ///
    /// Besides a file's own mappings, two places have symbols: the `[vdso]` (an ELF image the
    /// kernel maps, read from the target's memory), and the anonymous mapping right after a
    /// file's last one, where the part of its `.bss` past the file's pages lies (inside a
    /// segment's `p_memsz`, beyond its `p_filesz`).
    public func symbolize(_ address: Address) -> SymbolMatch? {
        guard let index = view.index(containing: address) else { return nil }
        let m = view.mappings[index]
        var module = m
        if !m.isFileBacked && m.path.isEmpty && index > 0 {
            module = view.mappings[index - 1]
        }
        guard module.isFileBacked || module.path == Self.vdsoName, module.end == m.end || module.end == m.start,
            let image = image(module.path), let bias = bias(of: module.path, image: image)
        else { return nil }
        let vaddr = address &- bias
        // Past the file's mappings, only what a segment's memory size covers is the file's.
        if module.start != m.start, !image.loads.contains(where: { vaddr &- $0.vaddr < $0.memorySize }) {
            return nil
        }
        guard let symbol = image.symbol(containing: vaddr) else { return nil }
        return SymbolMatch(
            name: symbol.name, address: symbol.value &+ bias, offset: vaddr - symbol.value, module: module.path)
    }

    /// The name the maps give the kernel's vDSO.
    static let vdsoName = "[vdso]"

    /// The address and size of `name` in the file mapped at `address`, if its tables have it.
    public func extent(of name: String, inModuleAt address: Address) -> (start: Address, size: UInt64)? {
        guard let m = view.translate(address)?.mapping, m.isFileBacked, let image = image(m.path),
            let bias = bias(of: m.path, image: image), let symbol = image.byName[name]
        else { return nil }
        return (symbol.value &+ bias, symbol.size)
    }

    /// The load bias of the file at `path`: see the type's documentation.
    public func bias(of path: String) -> UInt64? {
        image(path).flatMap { bias(of: path, image: $0) }
    }

    private func bias(of path: String, image: ElfImage) -> UInt64? {
        if let cached = image.bias { return cached }
        for m in view.mappings where m.path == path {
            let matching = image.loads.filter { $0.offset & Self.pageMask == m.offset }
            // Two segments can share a page-aligned offset; the permissions tell them apart.
            let load =
                matching.first { $0.executable == m.permissions.execute && $0.writable == m.permissions.write }
                ?? matching.first
            if let load {
                image.bias = m.start &- (load.vaddr & Self.pageMask)
                return image.bias
            }
        }
        return nil
    }

    private func image(_ path: String) -> ElfImage? {
        if let loaded = images[path] { return loaded }
        var loaded: ElfImage?
        if path == Self.vdsoName {
            loaded = vdsoImage()
            images[path] = .some(loaded)
            return loaded
        }
        for candidate in fileCandidates(path) {
            if let image = ElfImage.load(candidate, root: "/proc/\(pid)/root") {
                loaded = image
                break
            }
        }
        images[path] = .some(loaded)
        return loaded
    }

    /// The target's vDSO, read from its memory (one small mapping, read whole).
    private func vdsoImage() -> ElfImage? {
        guard let m = view.mappings.first(where: { $0.path == Self.vdsoName }), m.end - m.start <= 1 << 20 else {
            return nil
        }
        var bytes = [UInt8](repeating: 0, count: Int(m.end - m.start))
        let moved = bytes.withUnsafeMutableBytes { ProcessVMBackend().read(pid: pid, at: m.start, into: $0).moved }
        guard moved == bytes.count else { return nil }
        return ElfImage.load(image: bytes)
    }

    /// Where the target's file can be opened from here.
    private func fileCandidates(_ path: String) -> [String] {
        var out = ["/proc/\(pid)/root\(path)"]
        if let m = view.mappings.first(where: { $0.path == path }) {
            out.append("/proc/\(pid)/map_files/\(String(m.start, radix: 16))-\(String(m.end, radix: 16))")
        }
        out.append(path)
        return out
    }

    static func basename(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// One ELF file's defined symbols and `PT_LOAD` segments.
final class ElfImage {
    struct Symbol {
        let name: String
        let value: UInt64
        let size: UInt64
        let isFunction: Bool
        /// 0 local, 1 weak, 2 global: higher wins a name clash.
        let rank: Int
    }
    struct Load {
        let vaddr: UInt64
        /// `p_memsz`: with the `.bss`, more than the file holds.
        let memorySize: UInt64
        let offset: UInt64
        let executable: Bool
        let writable: Bool
    }

    let loads: [Load]
    let byName: [String: Symbol]
    /// Symbols by value, for address lookups.
    let sorted: [Symbol]
    /// Filled in once computed against a view.
    var bias: UInt64?

    private init(loads: [Load], symbols: [Symbol]) {
        self.loads = loads
        var byName: [String: Symbol] = [:]
        for s in symbols where !s.name.isEmpty {
            // `name@@VERSION` (a versioned definition in a .symtab) also answers to `name`.
            let plain = s.name.firstIndex(of: "@").map { String(s.name[..<$0]) }
            for key in [s.name] + (plain.map { [$0] } ?? []) where !key.isEmpty {
                if let old = byName[key], old.rank >= s.rank { continue }
                byName[key] = s
            }
        }
        self.byName = byName
        // By value; equal values keep their table order (the first of equals wins a tie).
        self.sorted = symbols.enumerated().sorted { ($0.element.value, $0.offset) < ($1.element.value, $1.offset) }
            .map(\.element)
    }

    /// The symbol holding `vaddr` (`value <= vaddr < value + size`, or a sizeless one starting
    /// exactly there), searched among the 64 nearest below it: a function is preferred, then a
    /// global over a weak over a local one, then the smaller (innermost) extent, then the
    /// first in table order (as elfutils' `dwfl_module_addrsym` chooses).
    func symbol(containing vaddr: UInt64) -> Symbol? {
        var lo = 0, hi = sorted.count  // first index whose value is > vaddr
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid].value <= vaddr { lo = mid + 1 } else { hi = mid }
        }
        func better(_ a: Symbol, than b: Symbol) -> Bool {
            if a.isFunction != b.isFunction { return a.isFunction }
            if a.rank != b.rank { return a.rank > b.rank }
            return a.size < b.size
        }
        var best: Symbol?
        for s in sorted[max(0, lo - 64)..<lo]
        where vaddr - s.value < s.size || (s.size == 0 && s.value == vaddr) {
            if best == nil || better(s, than: best!) { best = s }
        }
        return best
    }

    /// libelf's one-time set-up, run once whatever thread loads first (a lazy static is
    /// initialised once, under a lock).
    private static let libelfReady: Void = { _ = elf_version(UInt32(EV_CURRENT)) }()

    /// Reads `path` with libelf; nil when it cannot be opened or is not ELF. When the file
    /// has no `.symtab` (a stripped library) and a separate debug file is installed for its
    /// build id (`/usr/lib/debug/.build-id/xx/yyyy.debug`, from `-dbg`/`-dbgsym` packages,
    /// looked for here and under `root`), that file's `.symtab` is read too.
    static func load(_ path: String, root: String? = nil) -> ElfImage? {
        guard let (loads, symbols, hasSymtab, buildID) = read(path) else { return nil }
        var all = symbols
        if !hasSymtab, let id = buildID, id.count > 1 {
            let hex = id.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            let relative = "/usr/lib/debug/.build-id/\(hex.prefix(2))/\(hex.dropFirst(2)).debug"
            for candidate in [relative] + (root.map { [$0 + relative] } ?? []) {
                if let (_, debugSymbols, _, debugID) = read(candidate), debugID == id {
                    all += debugSymbols
                    break
                }
            }
        }
        return ElfImage(loads: loads, symbols: all)
    }

    /// An image read from an ELF file's bytes in memory (the vDSO); nil when they are not ELF.
    static func load(image bytes: [UInt8]) -> ElfImage? {
        _ = libelfReady
        var copy = bytes
        // elf_memory reads the buffer in place: it lives until elf_end, inside this call.
        let parsed = copy.withUnsafeMutableBytes { raw -> ([Load], [Symbol], Bool, [UInt8]?)? in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: CChar.self),
                let elf = elf_memory(base, raw.count)
            else { return nil }
            defer { elf_end(elf) }
            return read(elf)
        }
        guard let (loads, symbols, _, _) = parsed else { return nil }
        return ElfImage(loads: loads, symbols: symbols)
    }

    /// ``read(_:)-(OpaquePointer)`` of the file at `path`.
    private static func read(_ path: String) -> ([Load], [Symbol], Bool, [UInt8]?)? {
        _ = libelfReady
        guard let fd = try? Sys.open(path, O_RDONLY) else { return nil }
        defer { Sys.close(fd) }
        guard let elf = elf_begin(fd, ELF_C_READ_MMAP, nil) else { return nil }
        defer { elf_end(elf) }
        return read(elf)
    }

    /// The `PT_LOAD` segments, the defined symbols of `.symtab` and `.dynsym` (in table
    /// order), whether there was a `.symtab`, and the GNU build id of one ELF image.
    private static func read(_ elf: OpaquePointer) -> ([Load], [Symbol], Bool, [UInt8]?)? {
        guard elf_kind(elf) == ELF_K_ELF else { return nil }

        var loads: [Load] = []
        var phnum = 0
        if elf_getphdrnum(elf, &phnum) == 0 {
            for i in 0..<phnum {
                var ph = GElf_Phdr()
                guard gelf_getphdr(elf, Int32(i), &ph) != nil, ph.p_type == UInt32(PT_LOAD) else { continue }
                loads.append(
                    Load(
                        vaddr: ph.p_vaddr, memorySize: ph.p_memsz, offset: ph.p_offset,
                        executable: ph.p_flags & UInt32(PF_X) != 0, writable: ph.p_flags & UInt32(PF_W) != 0))
            }
        }

        var symbols: [Symbol] = []
        var hasSymtab = false
        var buildID: [UInt8]?
        var scn: OpaquePointer? = nil
        while let section = elf_nextscn(elf, scn) {
            scn = section
            var sh = GElf_Shdr()
            guard gelf_getshdr(section, &sh) != nil else { continue }
            if sh.sh_type == UInt32(SHT_NOTE), buildID == nil, let data = elf_getdata(section, nil) {
                buildID = gnuBuildID(data)
                continue
            }
            guard sh.sh_type == UInt32(SHT_SYMTAB) || sh.sh_type == UInt32(SHT_DYNSYM), sh.sh_entsize > 0,
                let data = elf_getdata(section, nil)
            else { continue }
            if sh.sh_type == UInt32(SHT_SYMTAB) { hasSymtab = true }
            let count = Int(sh.sh_size / sh.sh_entsize)
            symbols.reserveCapacity(symbols.count + count)
            for j in 0..<count {
                var sym = GElf_Sym()
                guard gelf_getsym(data, Int32(j), &sym) != nil else { continue }
                let type = sym.st_info & 0xf, bind = sym.st_info >> 4
                // Defined, relocatable code and data: no TLS offsets, sections, files or absolutes.
                guard sym.st_shndx != UInt16(SHN_UNDEF), sym.st_shndx < UInt16(SHN_LORESERVE),
                    type == UInt8(STT_FUNC) || type == UInt8(STT_OBJECT) || type == UInt8(STT_NOTYPE)
                        || type == UInt8(STT_GNU_IFUNC),
                    sym.st_value != 0,
                    let cname = elf_strptr(elf, Int(sh.sh_link), Int(sym.st_name))
                else { continue }
                let rank = bind == UInt8(STB_GLOBAL) ? 2 : bind == UInt8(STB_WEAK) ? 1 : 0
                symbols.append(
                    Symbol(
                        name: String(cString: cname), value: sym.st_value, size: sym.st_size,
                        isFunction: type == UInt8(STT_FUNC) || type == UInt8(STT_GNU_IFUNC), rank: rank))
            }
        }
        return (loads, symbols, hasSymtab, buildID)
    }

    /// The descriptor of the `NT_GNU_BUILD_ID` note in a note section's data.
    private static func gnuBuildID(_ data: UnsafeMutablePointer<Elf_Data>) -> [UInt8]? {
        guard let base = data.pointee.d_buf else { return nil }
        var offset = 0
        while true {
            var header = GElf_Nhdr()
            var nameOffset = 0, descOffset = 0
            let next = gelf_getnote(data, offset, &header, &nameOffset, &descOffset)
            if next == 0 { return nil }
            if header.n_type == UInt32(NT_GNU_BUILD_ID), header.n_namesz == 4,
                memcmp(base + nameOffset, "GNU", 4) == 0
            {
                let desc = UnsafeRawBufferPointer(start: base + descOffset, count: Int(header.n_descsz))
                return Array(desc)
            }
            offset = next
        }
    }
}

extension Target {
    /// The symbol tables of the files the target maps, loaded on first use and kept in step
    /// with ``view`` (files already read stay loaded across a refresh).
    public var symbols: SymbolTable {
        if let table = symbolTable {
            if table.view.generation != view.generation { table.update(view: view) }
            return table
        }
        let table = SymbolTable(pid: pid, view: view)
        symbolTable = table
        return table
    }
}
