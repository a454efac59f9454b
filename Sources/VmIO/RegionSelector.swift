/// Picks mappings of a view for bulk work (`dump`, `search`, `restore --skip`).
///
/// Forms: `0xSTART-0xEND` (an address range; mappings are clipped to it),
/// `perm:FLAGS` (mappings having every flag of `rwxsp` listed), `anon` (anonymous
/// memory), or a name: `[heap]`, `[stack]`, `[anon:NAME]`, a file's basename or full path.
public enum RegionSelector: Hashable, Sendable, CustomStringConvertible {
    /// `0xSTART-0xEND`: the mappings in the range, clipped to it.
    case range(AddressRange)
    /// `perm:FLAGS`: the mappings having every flag listed.
    case permissions(String)
    /// `anon`: anonymous memory.
    case anonymous
    /// A mapping by name: `[heap]`, `[stack]`, `[anon:NAME]`, a file's basename or full path.
    case name(String)

    /// Parses a selector; ``VmIoError/badSelector(_:reason:)`` says what does not parse.
    public init(parsing text: String) throws(VmIoError) {
        let t = text.trimmingSpaces()
        guard !t.isEmpty else { throw .badSelector(text, reason: .empty) }
        if t.hasPrefix("perm:") {
            let flags = String(t.dropFirst(5))
            guard !flags.isEmpty, flags.allSatisfy({ "rwxsp".contains($0) }) else {
                throw .badSelector(text, reason: .permissionLetters)
            }
            self = .permissions(flags)
        } else if t == "anon" {
            self = .anonymous
        } else if let dash = t.firstIndex(of: "-"), let s = parseNumber(t[..<dash]),
            let e = parseNumber(t[t.index(after: dash)...])
        {
            self = .range(try AddressRange(start: s, end: e))
        } else if t.first?.isNumber == true && t.contains("-") {
            throw .badSelector(text, reason: .rangeForm)
        } else {
            self = .name(t)
        }
    }

    /// The part of `mapping` this selector picks, or nil.
    public func pick(_ mapping: Mapping) -> AddressRange? {
        switch self {
        case .range(let r):
            let c = mapping.range.clamped(to: r)
            return c.isEmpty ? nil : c
        case .permissions(let flags):
            let p = mapping.permissions
            let ok = flags.allSatisfy { f in
                switch f {
                case "r": p.read
                case "w": p.write
                case "x": p.execute
                case "s": p.shared
                default: !p.shared
                }
            }
            return ok ? mapping.range : nil
        case .anonymous:
            return mapping.path.isEmpty || mapping.path.hasPrefix("[anon:") ? mapping.range : nil
        case .name(let n):
            return mapping.path == n || (mapping.isFileBacked && mapping.basename == n) ? mapping.range : nil
        }
    }

    public var description: String {
        switch self {
        case .range(let r): r.description
        case .permissions(let f): "perm:" + f
        case .anonymous: "anon"
        case .name(let n): n
        }
    }

    /// Kernel pages that are readable in name only: skipped unless selected by name or range.
    static let kernelPages: Set<String> = ["[vvar]", "[vvar_vclock]", "[vsyscall]"]

    /// The readable parts of `view` that `selectors` pick (all readable mappings except
    /// `[vvar]`, `[vvar_vclock]` and `[vsyscall]` when there are none), in address order.
    public static func select(_ selectors: [RegionSelector], in view: MemView) -> [(
        mapping: Mapping, range: AddressRange
    )] {
        var out: [(Mapping, AddressRange)] = []
        for m in view.mappings where m.permissions.read && !m.range.isEmpty {
            if selectors.isEmpty {
                if !kernelPages.contains(m.path) { out.append((m, m.range)) }
                continue
            }
            // Kernel pages only by name or range: `perm:r` must not pick [vvar] (it faults).
            let picks = selectors.compactMap { sel -> AddressRange? in
                if kernelPages.contains(m.path), case .permissions = sel { return nil }
                return sel.pick(m)
            }.sorted { $0.start < $1.start }
            guard var current = picks.first else { continue }
            for p in picks.dropFirst() {
                if p.start <= current.end {
                    current = AddressRange(uncheckedStart: current.start, end: max(current.end, p.end))
                } else {
                    out.append((m, current))
                    current = p
                }
            }
            out.append((m, current))
        }
        return out
    }
}
