import CVmio
import Foundation
import Glibc
import SystemPackage
import VmIO

/// The JSON manifest of a dump directory (`manifest.json`).
public struct DumpManifest: Codable, Sendable {
    /// The format this version writes and reads.
    public static let currentFormat = "vmio-dump/1"
    /// The manifest's format (``currentFormat``).
    public var format: String
    /// The process dumped.
    public var pid: Int32
    /// Whether the target was stopped for the whole dump (a consistent snapshot).
    public var stopped: Bool
    /// Whether every byte of every region was saved (no holes).
    public var complete: Bool
    /// The regions saved, in address order.
    public var regions: [Region]

    /// One region saved: its maps line, its data file and its holes.
    public struct Region: Codable, Sendable {
        /// The data file, relative to the dump directory; holes read as zeros there.
        public var file: String
        /// Its first address, `0x` hex.
        public var start: String
        /// The address just past it, `0x` hex.
        public var end: String
        /// Its permissions as maps shows them (`rw-p`).
        public var perms: String
        /// Its file offset, `0x` hex.
        public var offset: String
        /// Its device, `major:minor`.
        public var device: String
        /// Its file's inode (0 for anonymous memory).
        public var inode: UInt64
        /// Its file's path, or special name (`[heap]`); empty for anonymous memory.
        public var path: String
        /// Whether the mapped file was deleted.
        public var deleted: Bool
        /// The bytes saved (holes excluded).
        public var bytesSaved: UInt64
        /// The ranges that could not be read: zeros in the data file.
        public var holes: [Hole]

        /// `start..<end`, or nil when they do not parse.
        public var range: AddressRange? {
            guard let s = parseNumber(start[...]), let e = parseNumber(end[...]) else { return nil }
            return try? AddressRange(start: s, end: e)
        }

        /// The region as it was mapped when dumped (its range, permissions, path).
        public var mapping: Mapping? {
            guard let range else { return nil }
            let p = Array(perms.utf8)
            let permissions = Permissions(
                read: p.first == UInt8(ascii: "r"), write: p.dropFirst().first == UInt8(ascii: "w"),
                execute: p.dropFirst(2).first == UInt8(ascii: "x"), shared: p.dropFirst(3).first == UInt8(ascii: "s"))
            return Mapping(range: range, permissions: permissions, path: path, isDeleted: deleted)
        }

        enum CodingKeys: String, CodingKey {
            case file, start, end, perms, offset, device, inode, path, deleted, holes
            case bytesSaved = "bytes_saved"
        }
    }

    /// A range that could not be read.
    public struct Hole: Codable, Sendable {
        /// Its first address, `0x` hex.
        public var address: String
        /// Its length in bytes.
        public var length: UInt64
        /// Why: the fault, as text.
        public var reason: String
        /// The mechanism that failed there and its errno (the read ladder's provenance);
        /// absent in dumps written before they were recorded.
        public var mechanism: String?
        /// The errno of the failure, when recorded.
        public var errno: Int32?
    }

    /// Reads and checks `DIR/manifest.json`.
    ///
    /// Throws ``TargetError/dump(_:)``: `noManifest` when the file cannot be read, or the error
    /// of a manifest that does not decode or whose regions overlap or do not ascend.
    public static func load(from directory: String) throws(TargetError) -> DumpManifest {
        let path = directory + "/manifest.json"
        guard let bytes = try? Files.contents(of: path) else { throw .dump(.noManifest(path)) }
        do { return try decode(Data(bytes), path: path) } catch { throw .dump(error) }
    }

    /// Decodes and checks the bytes of a manifest; `path` names it in errors.
    public static func decode(_ data: Data, path: String) throws(DumpError) -> DumpManifest {
        let manifest: DumpManifest
        do { manifest = try JSONDecoder().decode(DumpManifest.self, from: data) } catch {
            throw .badManifest(path, explain(error))
        }
        guard manifest.format == currentFormat else {
            throw .badManifest(path, "format '\(manifest.format)' is not \(currentFormat)")
        }
        var previousEnd: Address = 0
        for (i, region) in manifest.regions.enumerated() {
            guard let range = region.range else {
                throw .badManifest(path, "region \(region.start)-\(region.end) is not a range")
            }
            // A dump is taken from one view, so its regions ascend and never overlap; restore
            // relies on that (its byte totals cannot overflow, no byte is written twice).
            guard i == 0 || range.start >= previousEnd else {
                throw .badManifest(
                    path, "region \(region.start)-\(region.end) overlaps or precedes the region before it")
            }
            previousEnd = range.end
            guard !region.file.isEmpty else {
                throw .badManifest(path, "region \(region.start)-\(region.end) names no data file")
            }
            guard !region.file.contains("/"), !region.file.hasPrefix(".") else {
                throw .badManifest(path, "data file name '\(region.file)' leaves the directory")
            }
        }
        return manifest
    }
}

/// Errors of dump and restore (thrown as ``TargetError/dump(_:)``).
public enum DumpError: Error, Hashable, Sendable, CustomStringConvertible {
    /// There is no manifest at this path.
    case noManifest(String)
    /// The manifest at this path cannot be used, and why.
    case badManifest(String, String)
    /// The directory already holds a dump.
    case exists(String)
    /// The target's maps no longer match the dump, one line a region.
    case layoutMismatch([String])
    /// A directory that holds files a dump does not write (their names).
    case notADump(String, [String])

    public var description: String {
        switch self {
        case .noManifest(let p): "no dump manifest at \(p)"
        case .badManifest(let p, let why): "bad dump manifest \(p): \(why)"
        case .exists(let p): "\(p) already holds a dump; pass --force to replace it"
        case .notADump(let p, let names):
            "\(p) is not empty and holds no dump (\(names.prefix(3).joined(separator: ", "))"
                + (names.count > 3 ? ", …" : "") + "): dump into a new or empty directory"
        case .layoutMismatch(let lines):
            "the target's maps no longer match the dump (pass --skip SEL for each, or --skip-mismatched):\n  "
                + lines.joined(separator: "\n  ")
        }
    }
}

extension Target {
    /// Dumps `regions` into `directory` as one data file a region plus `manifest.json`.
    ///
    /// Streaming through a small ring of buffers (`transferOverlapped`: one thread reads the
    /// target while another writes the file), so memory stays flat for any size. Data
    /// files are written under temporary names (`.NAME.part`) and renamed when complete,
    /// and the manifest is renamed into place last, so an interrupted dump never looks
    /// complete. An existing dump in `directory` is refused unless `replace`. `durable`
    /// flushes each data file and the manifest to disk (`fsync`) before its rename, and the
    /// directory at the end, so the dump is complete or absent across a crash too; without
    /// it the kernel writes the files back when it will (README.md, "Output files").
    ///
    /// Throws ``TargetError/dump(_:)`` when `directory` holds a dump and `replace` is not given,
    /// ``TargetError/file(path:_:)`` when `directory` or a file in it cannot be made, written
    /// (`pwrite(2)`, `ftruncate(2)`, `fsync(2)`) or renamed (`rename(2)`), and
    /// ``TargetError/transferStopped(_:)`` when a read stops other than at a fault (the process
    /// gone). What it wrote of an unfinished dump is removed.
    public func dump(
        _ regions: [(mapping: Mapping, range: AddressRange)], to directory: String, replace: Bool,
        durable: Bool = true, progress: ((UInt64) -> Void)? = nil
    ) throws(TargetError) -> DumpManifest {
        try dump(regions, to: directory, replace: replace, durable: durable, chunkSize: 1 << 20, progress: progress)
    }

    /// ``dump(_:to:replace:durable:progress:)`` reading `chunkSize` bytes at a time (the tests' small chunks).
    ///
    /// A dump that replaces another is written beside it (`.NAME.PID.new`) and swapped in only
    /// once complete (`renameat2` with `RENAME_EXCHANGE`), so an interrupted replacement
    /// leaves the old dump as it was; the old one is then removed.
    func dump(
        _ regions: [(mapping: Mapping, range: AddressRange)], to directory: String, replace: Bool,
        durable: Bool, chunkSize: Int, progress: ((UInt64) -> Void)?
    ) throws(TargetError) -> DumpManifest {
        if replace, let (parent, name) = Self.replaceableDump(directory) {
            // A dump killed by SIGKILL left its staging directory behind; none that a live dump holds.
            Files.removeLeftovers(of: name, in: parent + "/", suffixes: ["new", "old"]) { Self.removeDump(at: $0) }
            let staging = "\(parent)/.\(name).\(Sys.processID).new"
            let manifest = try dump(
                regions, into: staging, replace: false, durable: durable, chunkSize: chunkSize, progress: progress)
            // Held again until it is swapped in (the dump held it while it wrote).
            let held = try? Sys.open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
            defer { if let held { Sys.close(held) } }
            if let held { Files.holdAsWriter(held) }
            do throws(Errno) {
                do { try Sys.exchange(staging, directory) } catch {
                    guard error == .invalidArgument else { throw error }
                    // A file system without the exchange: the old dump aside, the new one in.
                    let old = "\(parent)/.\(name).\(Sys.processID).old"
                    try Sys.rename(directory, to: old)
                    try Sys.rename(staging, to: directory)
                    Self.removeDump(at: old)
                    return manifest
                }
            } catch {
                Self.removeDump(at: staging)
                throw .file(path: directory, .failed(error))
            }
            // The old dump now has the staging name.
            Self.removeDump(at: staging)
            if durable { try? Files.syncDirectory(parent.isEmpty ? "/" : parent) }
            return manifest
        }
        return try dump(
            regions, into: directory, replace: replace, durable: durable, chunkSize: chunkSize, progress: progress)
    }

    /// A directory that holds a complete dump, and only a dump's files (`--force` replaces it):
    /// its parent and name; nil for anything else (then the dump is made in place, or refused).
    private static func replaceableDump(_ directory: String) -> (parent: String, name: String)? {
        var path = directory
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        let slash = path.lastIndex(of: "/")
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let parent = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        guard !name.isEmpty, name != ".", name != "..", Files.kind(path)?.type == S_IFDIR,
            let names = try? Sys.directoryEntries(path), names.contains("manifest.json"),
            names.allSatisfy({ $0 == "manifest.json" || vmio_is_dump_file_name($0) != 0 })
        else { return nil }
        return (parent == "/" ? "" : parent, name)
    }

    /// Removes a dump directory: its manifest first (it no longer looks complete), its other
    /// files, then the directory. Best effort.
    private static func removeDump(at directory: String) {
        try? Sys.unlink(directory + "/manifest.json")
        for name in (try? Sys.directoryEntries(directory)) ?? [] { try? Sys.unlink(directory + "/" + name) }
        try? Sys.rmdir(directory)
    }

    /// The dump itself, into `directory` (made ready by ``prepareDirectory(_:replace:)``).
    private func dump(
        _ regions: [(mapping: Mapping, range: AddressRange)], into directory: String, replace: Bool,
        durable: Bool, chunkSize: Int, progress: ((UInt64) -> Void)?
    ) throws(TargetError) -> DumpManifest {
        let created = try prepareDirectory(directory, replace: replace)
        // Held while it is written (``Files/removeLeftovers(of:in:suffixes:remove:)`` leaves it alone).
        let held = try? Sys.open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
        defer { if let held { Sys.close(held) } }
        if let held { Files.holdAsWriter(held) }
        // Every exit path but success removes what this dump wrote: a thrown error here, a
        // fatal signal in the handlers (which detach the target too).
        Tracer.installSignalHandlersOnce()
        Sys.armDumpCleanup(directory, created: created)
        var finished = false
        var written: [String] = []
        defer {
            Sys.disarmDumpCleanup()
            if !finished {
                for name in written { try? Sys.unlink(directory + "/" + name) }
                if created { try? Sys.rmdir(directory) }
            }
        }
        var manifest = DumpManifest(
            format: DumpManifest.currentFormat, pid: pid, stopped: isStopped,
            complete: true, regions: [])
        var done: UInt64 = 0
        for (index, (mapping, range)) in regions.enumerated() {
            let name = String(format: "%04d-%llx-%llx.bin", index + 1, range.start, range.end)
            let part = directory + "/." + name + ".part"
            let fd: Int32
            do { fd = try Files.create(part, exclusive: false, readable: true) } catch {
                throw .file(path: part, .failed(error))
            }
            var closed = false
            defer {
                if !closed {
                    Sys.close(fd)
                    try? Sys.unlink(part)
                }
            }
            // Written on a second thread while the next chunks are read; a write that fails
            // stops the reading and is thrown here. A durable dump starts the write-back of
            // every few MiB as they are written, so the disk works while the target is read
            // and the closing fsync has little left to wait for.
            var writeback = Writeback()
            // On a tmpfs the reader, while it waits, makes the file's next pages.
            let ahead = PagesAhead(fd: fd, length: range.count)?.ahead(base: range.start, fileOffset: 0)
            let report = try transferOverlapped(range, policy: .skip, chunkSize: chunkSize, ahead: ahead) {
                (item) throws(TargetError) in
                guard case .bytes(let at, let chunk) = item else { return true }
                let offset = at - range.start
                do throws(Errno) { try Files.write(fd, chunk, at: offset) } catch {
                    throw .file(path: part, .failed(error))
                }
                if durable { writeback.wrote(fd, upTo: offset + UInt64(chunk.count)) }
                done += UInt64(chunk.count)
                progress?(done)
                return true
            }
            // A region cut short (target gone…) is not renamed into place: the defer removes it.
            if let stop = report.stop { throw .transferStopped(stop) }
            do {
                // Holes read as zeros: give the file its full length.
                try Sys.ftruncate(fd, length: range.count)
                if durable { try Sys.fsync(fd) }
                Sys.close(fd)
                closed = true
                try Sys.rename(part, to: directory + "/" + name)
                written.append(name)
            } catch { throw .file(path: part, .failed(error)) }
            manifest.regions.append(
                DumpManifest.Region(
                    file: name, start: range.start.hex, end: range.end.hex, perms: mapping.permissions.description,
                    offset: (mapping.offset + (range.start - mapping.start)).hex, device: mapping.device.description,
                    inode: mapping.inode, path: mapping.path, deleted: mapping.isDeleted, bytesSaved: report.moved,
                    holes: report.holes.map {
                        .init(
                            address: $0.address.hex, length: $0.length, reason: $0.kind.description,
                            mechanism: $0.mechanism?.rawValue, errno: $0.errno)
                    }))
            if !report.holes.isEmpty { manifest.complete = false }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // The manifest holds strings and numbers only: encoding it cannot fail.
        let data = (try? encoder.encode(manifest)) ?? Data()
        let part = directory + "/.manifest.json.part"
        do throws(Errno) {
            let fd = try Files.create(part, exclusive: false)
            defer { Sys.close(fd) }
            try data.withUnsafeBytes { raw in Result { () throws(Errno) in try Files.write(fd, raw, at: 0) } }.get()
            if durable { try Sys.fsync(fd) }
            try Sys.rename(part, to: directory + "/manifest.json")
        } catch {
            try? Sys.unlink(part)
            throw .file(path: part, .failed(error))
        }
        if durable {
            // The renames reach the disk only with their directory; until then the dump is not finished.
            do throws(Errno) { try Files.syncDirectory(directory) } catch {
                try? Sys.unlink(directory + "/manifest.json")
                throw .file(path: directory, .failed(error))
            }
        }
        finished = true
        return manifest
    }

    /// Makes `directory` ready for a dump; true when this made it. An existing directory
    /// may hold only a dump's files: a dump (its manifest), replaced only when `replace`,
    /// or the leftovers of one that was killed outright (no manifest), removed. Anything
    /// else in it is refused, `replace` or not: it is no dump, and nothing of it is touched.
    private func prepareDirectory(_ directory: String, replace: Bool) throws(TargetError) -> Bool {
        switch Files.kind(directory)?.type {
        case nil:
            do { try Sys.mkdir(directory, mode: 0o755) } catch { throw .file(path: directory, .failed(error)) }
            return true
        // Never write through a symlink planted at the directory's name.
        case S_IFLNK: throw .file(path: directory, .isSymbolicLink)
        case S_IFDIR:
            let names: [String]
            do { names = try Sys.directoryEntries(directory) } catch { throw .file(path: directory, .failed(error)) }
            let foreign = names.filter { $0 != "manifest.json" && vmio_is_dump_file_name($0) == 0 }.sorted()
            guard foreign.isEmpty else { throw .dump(.notADump(directory, foreign)) }
            if names.contains("manifest.json") {
                guard replace else { throw .dump(.exists(directory)) }
                // Take the old manifest away first, so a half-replaced dump never looks complete.
                try? Sys.unlink(directory + "/manifest.json")
            }
            // The old dump's files, or the leftovers of one killed outright (SIGKILL).
            for name in names where name != "manifest.json" { try? Sys.unlink(directory + "/" + name) }
            return false
        default: throw .file(path: directory, .notADirectory)
        }
    }
}

/// What restoring one region will do.
public enum RestoreAction: Sendable, Equatable {
    /// Written back as dumped.
    case write
    /// Left out on request (`--skip`).
    case skipped
    /// The target maps it read-only; `--force` writes through /proc/PID/mem.
    case readOnly
    /// The target's maps no longer hold this region as dumped.
    case mismatch(String)
}

/// What a restore did, region by region.
public struct RestoreReport: Sendable {
    /// Each region of the plan: what was done with it, and the bytes written.
    public var regions: [(region: DumpManifest.Region, action: RestoreAction, written: UInt64)] = []
    /// The bytes written in all.
    public var written: UInt64 { regions.reduce(0) { $0 + $1.written } }
    /// The first address whose read-back differed, with `verify`.
    public var mismatch: Address?
}

extension Target {
    /// Decides, region by region, what restoring `manifest` into this target does.
    public func restorePlan(_ manifest: DumpManifest, skip: [RegionSelector], force: Bool) -> [(
        DumpManifest.Region, RestoreAction
    )] {
        manifest.regions.map { region in
            let range = region.range!
            if skip.contains(where: { sel in
                if case .range(let r) = sel { return r.intersects(range) }
                // The region as dumped (its own permissions), for a target that no longer maps it so.
                return view.mappings(intersecting: range).contains { sel.pick($0) != nil }
                    || region.mapping.map { sel.pick($0) != nil } ?? false
            }) {
                return (region, .skipped)
            }
            let touched = view.mappings(intersecting: range)
            guard view.covers(range) else {
                return (region, .mismatch("\(region.start)-\(region.end) \(region.path): no longer mapped"))
            }
            if let m = touched.first(where: { $0.path != region.path }) {
                return (
                    region, .mismatch("\(region.start)-\(region.end): now maps '\(m.path)', dumped '\(region.path)'")
                )
            }
            if !force && touched.contains(where: { !$0.permissions.write }) { return (region, .readOnly) }
            return (region, .write)
        }
    }

    /// Writes the regions of a dump back. Every region must still be mapped as dumped
    /// (or be skipped), else nothing is written. Holes of the dump are not written.
    /// With `verify`, each chunk is read back through the write-to-read handover.
    ///
    /// Throws ``TargetError/dump(_:)`` with `layoutMismatch` when a region is no longer mapped as
    /// dumped (unless `skipMismatched`), ``TargetError/file(path:_:)`` when a data file is missing,
    /// not a regular file, shorter than its region or cannot be read (`pread(2)`), and what
    /// ``write(_:at:force:verify:)`` throws.
    public func restore(
        _ manifest: DumpManifest, from directory: String, skip: [RegionSelector], skipMismatched: Bool,
        force: Bool, verify: Bool, progress: ((UInt64) -> Void)? = nil
    ) throws(TargetError) -> RestoreReport {
        let plan = restorePlan(manifest, skip: skip, force: force)
        let mismatches = plan.compactMap { if case .mismatch(let why) = $0.1 { why } else { nil } }
        if !mismatches.isEmpty && !skipMismatched { throw .dump(.layoutMismatch(mismatches)) }
        // Every data file to be read must be there, a regular file, and long enough, before
        // anything is written: a bad dump leaves the target as it was.
        for (region, action) in plan where action == .write {
            let path = directory + "/" + region.file
            let file: stat
            do { file = try Sys.linkStatus(path) } catch { throw .file(path: path, .failed(error)) }
            guard file.st_mode & S_IFMT == S_IFREG else { throw .file(path: path, .notARegularFile) }
            guard UInt64(file.st_size) >= region.range!.count else { throw .file(path: path, .tooShort) }
        }
        var report = RestoreReport()
        var done: UInt64 = 0
        let chunk = 1 << 20
        for (region, action) in plan {
            guard action == .write else {
                report.regions.append((region, action, 0))
                continue
            }
            let range = region.range!
            let path = directory + "/" + region.file
            let fd: Int32
            do { fd = try Sys.open(path, O_RDONLY | O_NOFOLLOW) } catch { throw .file(path: path, .failed(error)) }
            defer { Sys.close(fd) }
            let holes = region.holes.compactMap { h -> AddressRange? in
                parseNumber(h.address[...]).flatMap { try? AddressRange(start: $0, count: h.length) }
            }
            var written: UInt64 = 0
            var buffer = [UInt8](repeating: 0, count: chunk)
            var offset: UInt64 = 0
            while offset < range.count {
                let n = Int(min(UInt64(chunk), range.count - offset))
                let got: Int
                let read = buffer.withUnsafeMutableBytes { raw in
                    Result { () throws(Errno) in
                        try Sys.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<n]), at: offset)
                    }
                }
                do { got = try read.get() } catch { throw .file(path: path, .failed(error)) }
                guard got == n else { throw .file(path: path, .tooShort) }
                // Write the parts of this chunk that are not holes of the dump.
                let piece = AddressRange(clamping: range.start + offset, range.start + offset + UInt64(n))
                for part in piece.subtracting(holes) {
                    let lo = Int(part.start - piece.start), hi = Int(part.end - piece.start)
                    let r = try write(Array(buffer[lo..<hi]), at: part.start, force: force, verify: verify)
                    written += r.written
                    if let bad = r.mismatch, report.mismatch == nil { report.mismatch = bad }
                }
                offset += UInt64(n)
                done += UInt64(n)
                progress?(done)
            }
            report.regions.append((region, action, written))
        }
        return report
    }
}

extension AddressRange {
    /// This range less `holes`, as sorted disjoint pieces.
    func subtracting(_ holes: [AddressRange]) -> [AddressRange] {
        var pieces = [self]
        for h in holes where h.intersects(self) {
            pieces = pieces.flatMap { p -> [AddressRange] in
                guard p.intersects(h) else { return [p] }
                var out: [AddressRange] = []
                if p.start < h.start { out.append(AddressRange(clamping: p.start, h.start)) }
                if h.end < p.end { out.append(AddressRange(clamping: h.end, p.end)) }
                return out
            }
        }
        return pieces
    }
}
