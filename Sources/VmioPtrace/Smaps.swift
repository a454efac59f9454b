import SystemPackage
import VmIO

/// What a mapping costs in memory, from `/proc/PID/smaps`: its size, what of it is resident
/// (`Rss`), its proportional share (`Pss`: each resident page divided by the number of
/// processes that map it), the resident pages only this process has written
/// (`Private_Dirty`), and what is swapped out. Every figure is in bytes.
public struct MappingUsage: Hashable, Sendable {
    /// The mapping, from its smaps header line.
    public let mapping: Mapping
    /// `Size`, in bytes.
    public var size: UInt64 = 0
    /// `Rss`: resident, in bytes.
    public var rss: UInt64 = 0
    /// `Pss`: resident, shared pages divided among their users, in bytes.
    public var pss: UInt64 = 0
    /// `Private_Dirty`, in bytes.
    public var privateDirty: UInt64 = 0
    /// `Swap`, in bytes.
    public var swap: UInt64 = 0
    /// Anonymous pages (`Anonymous`): the private copies a file mapping made, or all the
    /// resident pages of anonymous memory.
    public var anonymous: UInt64 = 0
    /// The two-letter `VmFlags` (`rd`, `wr`, `sh`, `dd` for `MADV_DONTDUMP`, `ht` for hugetlb…).
    public var vmFlags: Set<String> = []

    /// A mapping's usage, every size given in bytes.
    public init(
        mapping: Mapping, size: UInt64 = 0, rss: UInt64 = 0, pss: UInt64 = 0, privateDirty: UInt64 = 0,
        swap: UInt64 = 0
    ) {
        self.mapping = mapping
        self.size = size
        self.rss = rss
        self.pss = pss
        self.privateDirty = privateDirty
        self.swap = swap
    }

    /// The sums over `usages` (the mapping is the first's, and meaningless).
    public static func total(_ usages: [MappingUsage]) -> (
        size: UInt64, rss: UInt64, pss: UInt64, privateDirty: UInt64, swap: UInt64
    ) {
        usages.reduce((0, 0, 0, 0, 0)) { t, u in
            (t.0 + u.size, t.1 + u.rss, t.2 + u.pss, t.3 + u.privateDirty, t.4 + u.swap)
        }
    }
}

/// Reads and parses `/proc/PID/smaps`.
public enum ProcessSmaps {
    /// Reads `/proc/PID/smaps` (the kernel walks the page tables for it: slower than the maps).
    /// Like a maps read it is not atomic, so lines that overlap or go backwards are read again.
    ///
    /// Throws ``TargetError/noSuchProcess(pid:)`` when the process is gone,
    /// ``TargetError/permissionDenied(pid:operation:reason:)`` when the file may not be read, and
    /// ``TargetError/model(_:)`` for text that does not parse or stays inconsistent.
    public static func read(pid: Int32) throws(TargetError) -> [MappingUsage] {
        var attempt = 0
        while true {
            let text: String
            do {
                text = try ProcFS.withContents(of: "/proc/\(pid)/smaps") { String(decoding: $0, as: UTF8.self) }
            } catch {
                throw Classification.error(error, pid: pid, operation: .readSmaps)
            }
            switch Result(catching: { () throws(VmIoError) in try parse(text) }) {
            case .success(let usages):
                if usages.isEmpty, !ProcFS.isAlive(pid) { throw .noSuchProcess(pid: pid) }
                return usages
            case .failure(let error):
                switch error {
                case .mappingsOverlap, .mappingsUnsorted: guard attempt < 8 else { throw .model(error) }
                default: throw .model(error)
                }
                attempt += 1
            }
        }
    }

    /// Parses smaps text: a maps line (see `MapsParser`) for each mapping, then its
    /// `Name:   N kB` fields and its `VmFlags:`. Fields this type does not keep (and other lines
    /// without `kB`, such as `THPeligible:`) are skipped; a field before the first mapping, a
    /// malformed number or mappings out of order are `VmIoError.mapsSyntax(line:column:reason:)`
    /// and `VmIoError.mappingsOverlap(index:)` / `VmIoError.mappingsUnsorted(index:)`.
    public static func parse(_ text: String) throws(VmIoError) -> [MappingUsage] {
        var usages: [MappingUsage] = []
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            guard !line.isEmpty else { continue }
            let firstWordEnd = line.firstIndex(of: " ") ?? line.endIndex
            guard line[line.index(before: firstWordEnd)] == ":" else {
                usages.append(MappingUsage(mapping: try MapsParser.parseLine(String(line), lineNumber: lineNumber)))
                continue
            }
            guard !usages.isEmpty else {
                throw .mapsSyntax(line: lineNumber, column: 1, reason: .fieldBeforeFirstMapping)
            }
            let words = line[firstWordEnd...].split(separator: " ")
            if line[..<firstWordEnd] == "VmFlags:" {
                usages[usages.count - 1].vmFlags = Set(words.map(String.init))
                continue
            }
            guard words.count == 2, words[1] == "kB" else { continue }
            guard let kib = UInt64(words[0]), kib <= UInt64.max >> 10 else {
                let column = line.distance(from: line.startIndex, to: words[0].startIndex) + 1
                throw .mapsSyntax(line: lineNumber, column: column, reason: .notKilobytes(String(words[0])))
            }
            let bytes = kib << 10
            switch line[..<firstWordEnd] {
            case "Size:": usages[usages.count - 1].size = bytes
            case "Rss:": usages[usages.count - 1].rss = bytes
            case "Pss:": usages[usages.count - 1].pss = bytes
            case "Private_Dirty:": usages[usages.count - 1].privateDirty = bytes
            case "Swap:": usages[usages.count - 1].swap = bytes
            case "Anonymous:": usages[usages.count - 1].anonymous = bytes
            default: break
            }
        }
        _ = try MemView(mappings: usages.map(\.mapping))  // sorted and disjoint, as the maps
        return usages
    }
}
