/// One place a region name denotes: consecutive mappings of one path (`[heap]` split in
/// two by an `mprotect`, a library's text, data and `.bss`), with no mapping of another
/// name between them (anonymous mappings may lie between).
public struct NamedRegion: Hashable, Sendable, CustomStringConvertible {
    /// The path (or special name) of its mappings.
    public let path: String
    /// Its mappings in address order.
    public let mappings: [Mapping]
    /// The start of its first mapping: what `NAME` resolves to.
    public var start: Address { mappings[0].start }
    /// The address just past the region's last mapping.
    public var end: Address { mappings[mappings.count - 1].end }
    public var description: String { "\(path) at \(start.hex)-\(end.hex)" }
}

extension MemView {
    /// The regions `name` denotes: the mappings whose path is `name`, or (for a file) whose
    /// basename is `name`, grouped into ``NamedRegion``s.
    public func regions(named name: String) -> [NamedRegion] {
        var regions: [NamedRegion] = []
        var current: [Mapping] = []
        /// Another named mapping lies between the last of `current` and the next candidate.
        var interrupted = false
        for m in mappings {
            let matches = m.path == name || (m.isFileBacked && m.basename == name)
            if matches {
                if let last = current.last, last.path == m.path, !interrupted {
                    current.append(m)
                } else {
                    if !current.isEmpty { regions.append(NamedRegion(path: current[0].path, mappings: current)) }
                    current = [m]
                }
                interrupted = false
            } else if !m.path.isEmpty {
                interrupted = true
            }
        }
        if !current.isEmpty { regions.append(NamedRegion(path: current[0].path, mappings: current)) }
        return regions
    }

    /// What the region name `name` resolves to: the start of the one region it denotes.
    /// ``VmIoError/unknownRegion(_:)`` when it denotes none,
    /// ``VmIoError/ambiguousRegion(_:candidates:)`` (listing them) when it denotes several:
    /// never a silent pick.
    public func regionStart(named name: String) throws(VmIoError) -> Address {
        let found = regions(named: name)
        guard let first = found.first else { throw .unknownRegion(name) }
        guard found.count == 1 else { throw .ambiguousRegion(name, candidates: found.map(\.description)) }
        return first.start
    }

    /// A label for `address` that is itself an address expression resolving to `address`
    /// in this view: `NAME+0xOFF`, counted from the start of the region NAME resolves to
    /// (the basename of a file, else its full path, else a special name such as `[heap]`);
    /// `0xSTART+0xOFF` (the mapping's start) for anonymous memory and where no name is
    /// unambiguous. Nil outside every mapping.
    public func label(of address: Address) -> String? {
        labelBase(of: address).map { "\($0.name)+\((address - $0.start).hex)" }
    }

    /// The two halves of ``label(of:)``: the name, and the address it resolves to.
    public func labelBase(of address: Address) -> (name: String, start: Address)? {
        guard let m = translate(address)?.mapping else { return nil }
        let names = m.path.isEmpty ? [] : m.isFileBacked && m.basename != m.path ? [m.basename, m.path] : [m.path]
        for name in names {
            guard let start = try? regionStart(named: name), start <= address else { continue }
            // The name must also read back as a region name (not a number or a sym:).
            if (try? AddressExpression(parsing: "\(name)+\((address - start).hex)").resolve(in: self)) == address {
                return (name, start)
            }
        }
        return (m.start.hex, m.start)
    }
}
