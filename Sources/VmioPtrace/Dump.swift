import Foundation
import Glibc
import VmIO

/// The JSON manifest of a dump directory (`manifest.json`).
public struct DumpManifest: Codable, Sendable {
    public static let currentFormat = "vmio-dump/1"
    public var format: String
    public var pid: Int32
    /// Whether the target was stopped for the whole dump (a consistent snapshot).
    public var stopped: Bool
    /// Whether every byte of every region was saved (no holes).
    public var complete: Bool
    public var regions: [Region]

    public struct Region: Codable, Sendable {
        /// The data file, relative to the dump directory; holes read as zeros there.
        public var file: String
        public var start: String
        public var end: String
        public var perms: String
        public var offset: String
        public var device: String
        public var inode: UInt64
        public var path: String
        public var deleted: Bool
        public var bytesSaved: UInt64
        public var holes: [Hole]

        public var range: AddressRange? {
            guard let s = parseNumber(start[...]), let e = parseNumber(end[...]) else { return nil }
            return try? AddressRange(start: s, end: e)
        }

        enum CodingKeys: String, CodingKey {
            case file, start, end, perms, offset, device, inode, path, deleted, holes
            case bytesSaved = "bytes_saved"
        }
    }

    public struct Hole: Codable, Sendable {
        public var address: String
        public var length: UInt64
        public var reason: String
        /// The mechanism that failed there and its errno (the read ladder's provenance);
        /// absent in dumps written before they were recorded.
        public var mechanism: String?
        public var errno: Int32?
    }

    /// Reads and checks `DIR/manifest.json`.
    public static func load(from directory: String) throws -> DumpManifest {
        let path = directory + "/manifest.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DumpError.noManifest(path)
        }
        return try decode(data, path: path)
    }

    /// Decodes and checks the bytes of a manifest; `path` names it in errors.
    public static func decode(_ data: Data, path: String) throws -> DumpManifest {
        let manifest: DumpManifest
        do { manifest = try JSONDecoder().decode(DumpManifest.self, from: data) } catch {
            throw DumpError.badManifest(path, "\(error)")
        }
        guard manifest.format == currentFormat else {
            throw DumpError.badManifest(path, "format '\(manifest.format)' is not \(currentFormat)")
        }
        var previousEnd: Address = 0
        for (i, region) in manifest.regions.enumerated() {
            guard let range = region.range else {
                throw DumpError.badManifest(path, "region \(region.start)-\(region.end) is not a range")
            }
            // A dump is taken from one view, so its regions ascend and never overlap; restore
            // relies on that (its byte totals cannot overflow, no byte is written twice).
            guard i == 0 || range.start >= previousEnd else {
                throw DumpError.badManifest(
                    path, "region \(region.start)-\(region.end) overlaps or precedes the region before it")
            }
            previousEnd = range.end
            guard !region.file.isEmpty else {
                throw DumpError.badManifest(path, "region \(region.start)-\(region.end) names no data file")
            }
            guard !region.file.contains("/"), !region.file.hasPrefix(".") else {
                throw DumpError.badManifest(path, "data file name '\(region.file)' leaves the directory")
            }
        }
        return manifest
    }
}

/// Errors of dump and restore.
public enum DumpError: Error, CustomStringConvertible {
    case noManifest(String)
    case badManifest(String, String)
    case exists(String)
    case io(String, String)
    case layoutMismatch([String])

    public var description: String {
        switch self {
        case .noManifest(let p): "no dump manifest at \(p)"
        case .badManifest(let p, let why): "bad dump manifest \(p): \(why)"
        case .exists(let p): "\(p) already holds a dump; pass --force to replace it"
        case .io(let p, let why): "\(p): \(why)"
        case .layoutMismatch(let lines):
            "the target's maps no longer match the dump (pass --skip SEL for each, or --skip-mismatched):\n  "
                + lines.joined(separator: "\n  ")
        }
    }
}

/// Creates a file for writing without following a symlink at its name.
func createFile(_ path: String, exclusive: Bool) throws -> Int32 {
    let flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC)
    let fd = open(path, flags, 0o644)
    guard fd >= 0 else { throw DumpError.io(path, String(cString: strerror(errno))) }
    return fd
}

/// Writes all of `bytes` at `offset` with `pwrite(2)`.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64, path: String) throws {
    var done = 0
    while done < bytes.count {
        let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
        if n < 0 {
            if errno == EINTR { continue }
            throw DumpError.io(path, String(cString: strerror(errno)))
        }
        done += n
    }
}

extension Target {
    /// Dumps `regions` into `directory` as one data file a region plus `manifest.json`.
    ///
    /// Streaming through one bounded buffer, so memory stays flat for any size. Data
    /// files are written under temporary names (`.NAME.part`) and renamed when complete,
    /// and the manifest is renamed into place last, so an interrupted dump never looks
    /// complete. An existing dump in `directory` is refused unless `replace`.
    public func dump(
        _ regions: [(mapping: Mapping, range: AddressRange)], to directory: String, replace: Bool,
        progress: ((UInt64) -> Void)? = nil
    ) throws -> DumpManifest {
        try prepareDirectory(directory, replace: replace)
        var manifest = DumpManifest(
            format: DumpManifest.currentFormat, pid: pid, stopped: isStopped,
            complete: true, regions: [])
        var done: UInt64 = 0
        for (index, (mapping, range)) in regions.enumerated() {
            let name = String(format: "%04d-%llx-%llx.bin", index + 1, range.start, range.end)
            let part = directory + "/." + name + ".part"
            let fd = try createFile(part, exclusive: false)
            var closed = false
            defer { if !closed { close(fd); unlink(part) } }
            let report = try stream(range, skipFaults: true) { at, chunk in
                try writeAll(fd, chunk, at: at - range.start, path: part)
                done += UInt64(chunk.count)
                progress?(done)
                return true
            }
            // A region cut short (target gone…) is not renamed into place: the defer removes it.
            if let stop = report.stop { throw VmIoError.partialCopy(stop) }
            // Holes read as zeros: give the file its full length.
            guard ftruncate(fd, off_t(range.count)) == 0 else {
                throw DumpError.io(part, String(cString: strerror(errno)))
            }
            close(fd)
            closed = true
            guard rename(part, directory + "/" + name) == 0 else {
                throw DumpError.io(part, String(cString: strerror(errno)))
            }
            manifest.regions.append(
                DumpManifest.Region(
                    file: name, start: range.start.hex, end: range.end.hex, perms: mapping.permissions.description,
                    offset: (mapping.offset + (range.start - mapping.start)).hex, device: mapping.device.description,
                    inode: mapping.inode, path: mapping.path, deleted: mapping.isDeleted, bytesSaved: report.moved,
                    holes: report.holes.map {
                        .init(
                            address: $0.address.hex, length: $0.length, reason: $0.kind.description,
                            mechanism: $0.mechanism, errno: $0.errno)
                    }))
            if !report.holes.isEmpty { manifest.complete = false }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(manifest)
        let part = directory + "/.manifest.json.part"
        let fd = try createFile(part, exclusive: false)
        try data.withUnsafeBytes { try writeAll(fd, $0, at: 0, path: part) }
        fsync(fd)
        close(fd)
        guard rename(part, directory + "/manifest.json") == 0 else {
            throw DumpError.io(part, String(cString: strerror(errno)))
        }
        return manifest
    }

    private func prepareDirectory(_ directory: String, replace: Bool) throws {
        // Never write through a symlink planted at the directory's name.
        var st = stat()
        if lstat(directory, &st) == 0, st.st_mode & S_IFMT == S_IFLNK {
            throw DumpError.io(directory, "is a symbolic link; give the real directory")
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else { throw DumpError.io(directory, "exists and is not a directory") }
            let manifestPath = directory + "/manifest.json"
            if FileManager.default.fileExists(atPath: manifestPath) {
                guard replace else { throw DumpError.exists(directory) }
                // Take the old manifest away first, so a half-replaced dump never looks complete.
                let old = try? DumpManifest.load(from: directory)
                unlink(manifestPath)
                for region in old?.regions ?? [] { unlink(directory + "/" + region.file) }
            }
        } else if mkdir(directory, 0o755) != 0 {
            throw DumpError.io(directory, String(cString: strerror(errno)))
        }
    }
}

/// What restoring one region will do.
public enum RestoreAction: Sendable, Equatable {
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
    public var regions: [(region: DumpManifest.Region, action: RestoreAction, written: UInt64)] = []
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
                let p = Array(region.perms.utf8)
                let dumped = Permissions(
                    read: p.first == UInt8(ascii: "r"), write: p.dropFirst().first == UInt8(ascii: "w"),
                    execute: p.dropFirst(2).first == UInt8(ascii: "x"),
                    shared: p.dropFirst(3).first == UInt8(ascii: "s"))
                return view.mappings(intersecting: range).contains { sel.pick($0) != nil }
                    || sel.pick(Mapping(range: range, permissions: dumped, path: region.path)) != nil
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
    public func restore(
        _ manifest: DumpManifest, from directory: String, skip: [RegionSelector], skipMismatched: Bool,
        force: Bool, verify: Bool, progress: ((UInt64) -> Void)? = nil
    ) throws -> RestoreReport {
        let plan = restorePlan(manifest, skip: skip, force: force)
        let mismatches = plan.compactMap { if case .mismatch(let why) = $0.1 { why } else { nil } }
        if !mismatches.isEmpty && !skipMismatched { throw DumpError.layoutMismatch(mismatches) }
        // Every data file to be read must be there, a regular file, and long enough, before
        // anything is written: a bad dump leaves the target as it was.
        for (region, action) in plan where action == .write {
            let path = directory + "/" + region.file
            var st = stat()
            guard lstat(path, &st) == 0 else { throw DumpError.io(path, String(cString: strerror(errno))) }
            guard st.st_mode & S_IFMT == S_IFREG else {
                throw DumpError.io(path, "the data file is not a regular file")
            }
            guard UInt64(st.st_size) >= region.range!.count else { throw DumpError.io(path, "shorter than its region") }
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
            let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw DumpError.io(path, String(cString: strerror(errno))) }
            defer { close(fd) }
            let holes = region.holes.compactMap { h -> AddressRange? in
                parseNumber(h.address[...]).flatMap { try? AddressRange(start: $0, count: h.length) }
            }
            var written: UInt64 = 0
            var buffer = [UInt8](repeating: 0, count: chunk)
            var offset: UInt64 = 0
            while offset < range.count {
                let n = Int(min(UInt64(chunk), range.count - offset))
                let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, n, off_t(offset)) }
                guard got == n else {
                    throw DumpError.io(path, got < 0 ? String(cString: strerror(errno)) : "shorter than its region")
                }
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
