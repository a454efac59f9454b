import Glibc
import SystemPackage
import VmIO

/// One side of a diff: a dump directory (`vmio-ptrace dump`) or a live process.
public enum DiffSource {
    /// A dump directory and its manifest, read region file by region file.
    case dump(directory: String, manifest: DumpManifest)
    /// A live process, read through its `Target`.
    case live(Target)

    /// The regions `selectors` pick (every region of a dump, every readable mapping of a
    /// process but the kernel's pages, when there are none), in address order.
    public func regions(_ selectors: [RegionSelector]) -> [(mapping: Mapping, range: AddressRange)] {
        switch self {
        case .live(let target): return RegionSelector.select(selectors, in: target.view)
        case .dump:
            // A dump holds only what was chosen when it was written: all of it by default.
            return selectors.isEmpty ? view.mappings.map { ($0, $0.range) } : RegionSelector.select(selectors, in: view)
        }
    }

    /// The regions of this side as a view: a process's maps, a dump's regions (for labels).
    public var view: MemView {
        switch self {
        case .live(let target): return target.view
        case .dump(_, let manifest):
            // Every region of a dump was read: readable, whatever its permissions say now.
            let mappings = manifest.regions.compactMap { region in
                region.mapping.map { mapping in
                    var readable = mapping
                    readable.permissions.read = true
                    return readable
                }
            }
            // The manifest's regions ascend and never overlap (checked when it was loaded).
            return (try? MemView(mappings: mappings)) ?? .empty
        }
    }

    /// `DIR` or `pid N`, as messages name this side.
    public var name: String {
        switch self {
        case .dump(let directory, _): directory
        case .live(let target): "pid \(target.pid)"
        }
    }
}

/// Which side of a diff.
public enum DiffSide: String, Sendable {
    /// The first side, or the second.
    case a, b
}

/// A range of one side that could not be read (a hole of the dump, a fault of the process):
/// never compared, never counted as a change.
public struct DiffHole: Hashable, Sendable {
    /// The side that could not be read.
    public var side: DiffSide
    /// The range that could not be read.
    public var range: AddressRange
}

/// What a diff found besides the changed ranges (which it hands out as it finds them).
public struct DiffReport: Sendable {
    /// The regions as paired: compared (and resized), moved, in one side only.
    public var pairings: [RegionPairing] = []
    /// Changed ranges handed out.
    public var ranges: UInt64 = 0
    /// Bytes that differ, over all changed ranges.
    public var bytesChanged: UInt64 = 0
    /// Bytes compared (holes excluded).
    public var bytesCompared: UInt64 = 0
    /// Bytes of the paired ranges not compared because one side or both could not read them
    /// (a byte both sides miss counts once, unlike the sum of ``holes``).
    public var bytesNotCompared: UInt64 = 0
    /// The ranges of either side that could not be read, in the order found.
    public var holes: [DiffHole] = []
    /// The regions compared (resized ones included).
    public var regionsCompared: Int { pairings.count { if case .compared = $0 { true } else { false } } }
}

/// What to compare and how to show it.
public struct DiffOptions: Sendable {
    /// Changes are widened to multiples of this (the width of a typed value).
    public var alignment: UInt64 = 1
    /// Changes less than this many unchanged bytes apart are one range.
    public var join: UInt64 = 0
    /// The bytes of each side kept for each range.
    public var keep: Int = 256
    /// The bytes compared a window: each side's buffer holds this many.
    public var chunkSize: Int = 1 << 20
    /// The defaults: byte alignment, no join, 256 bytes kept, 1 MiB windows.
    public init() {}
}

extension DiffSource {
    /// Compares the regions `selectors` pick in `a` and `b`, window by window (each side
    /// read into a bounded buffer: a process's memory, a dump's data file), handing each changed range
    /// to `changed` as it is found (README.md, "diff"); `changed` returns false to end the diff
    /// there (the report then covers what was compared so far). Holes of either side are left
    /// out of the comparison and reported.
    ///
    /// Throws ``TargetError/file(path:_:)`` when a dump's region file cannot be opened or
    /// read (`open(2)`, `pread(2)`) or is shorter than its region (even when cut short while
    /// the diff reads it), ``TargetError/dump(_:)`` when a part compared lies in none of a
    /// dump's regions (it cannot: they are selected from its manifest), and
    /// ``TargetError/transferStopped(_:)`` when a process's read is cut short other than by a
    /// fault (the process gone).
    public static func diff(
        _ a: DiffSource, _ b: DiffSource, selectors: [RegionSelector], options: DiffOptions = DiffOptions(),
        progress: ((UInt64) -> Void)? = nil, changed: (ChangedRange) -> Bool
    ) throws(TargetError) -> DiffReport {
        var report = DiffReport()
        report.pairings = RegionPairing.pair(
            a.regions(selectors).map { ($0.range, $0.mapping.path) },
            b.regions(selectors).map { ($0.range, $0.mapping.path) })
        let readerA = DiffReader(a), readerB = DiffReader(b)
        // Each side's window is read into its buffer, page-aligned: the kernel's copies into a
        // buffer off a cache line split every line (README.md, "Benchmarks").
        let bufferA = UnsafeMutableRawBufferPointer.allocate(byteCount: options.chunkSize, alignment: 4096)
        let bufferB = UnsafeMutableRawBufferPointer.allocate(byteCount: options.chunkSize, alignment: 4096)
        defer {
            bufferA.deallocate()
            bufferB.deallocate()
        }
        var merger = ChangeMerger(alignment: options.alignment, join: options.join, keep: options.keep)
        var found: [ChangedRange] = []
        var done: UInt64 = 0
        for case .compared(let rangeA, let rangeB, _, let paired) in report.pairings {
            // Typed values are compared at their alignment: a range cut at an unaligned address
            // (`--region`) keeps its aligned values only, as a scan does.
            guard let common = paired.aligned(to: options.alignment) else { continue }
            var at = common.start
            while at < common.end {
                let window = AddressRange(clamping: at, min(common.end, at + UInt64(options.chunkSize)))
                let count = Int(window.count)
                let (oldBytes, holesA) = try readerA.bytes(
                    window, of: rangeA, buffer: UnsafeMutableRawBufferPointer(rebasing: bufferA[0..<count]))
                let (newBytes, holesB) = try readerB.bytes(
                    window, of: rangeB, buffer: UnsafeMutableRawBufferPointer(rebasing: bufferB[0..<count]))
                report.add(holesA, side: .a)
                report.add(holesB, side: .b)
                report.bytesNotCompared += window.count
                for piece in window.subtracting(holesA + holesB) {
                    report.bytesNotCompared -= piece.count
                    let lo = Int(piece.start - window.start), hi = Int(piece.end - window.start)
                    report.bytesCompared += piece.count
                    merger.compare(
                        old: UnsafeRawBufferPointer(rebasing: oldBytes[lo..<hi]),
                        new: UnsafeRawBufferPointer(rebasing: newBytes[lo..<hi]), at: piece.start
                    ) { found.append($0) }
                }
                for range in found {
                    report.ranges += 1
                    report.bytesChanged += range.bytesChanged
                    guard changed(range) else { return report }
                }
                found.removeAll(keepingCapacity: true)
                done += window.count
                progress?(done)
                at = window.end
            }
            // A region ends its last range: the next region is not its continuation.
            merger.finish { found.append($0) }
            for range in found {
                report.ranges += 1
                report.bytesChanged += range.bytesChanged
                guard changed(range) else { return report }
            }
            found.removeAll(keepingCapacity: true)
        }
        return report
    }
}

extension AddressRange {
    /// The range cut to whole `alignment`-aligned values (start rounded up, end down); nil
    /// when no value fits. A diff's and a scan's typed values (Scan.swift) both use it.
    func aligned(to alignment: UInt64) -> AddressRange? {
        let step = max(1, alignment)
        let last = end - end % step
        // `last` is aligned and past `start`: rounding `start` up cannot overflow.
        guard last > start else { return nil }
        let first = (start + step - 1) / step * step
        return first < last ? AddressRange(clamping: first, last) : nil
    }
}

extension DiffReport {
    /// Records holes of one side, merged with the one before when they touch.
    fileprivate mutating func add(_ ranges: [AddressRange], side: DiffSide) {
        for range in ranges {
            if let i = holes.lastIndex(where: { $0.side == side }), holes[i].range.end == range.start {
                holes[i].range = AddressRange(clamping: holes[i].range.start, range.end)
            } else {
                holes.append(DiffHole(side: side, range: range))
            }
        }
    }
}

/// Reads windows of one side: a dump's data files (kept open region by region; its holes
/// from the manifest) or a process's memory (its faults), into the side's buffer.
final class DiffReader {
    let source: DiffSource
    private var open: (region: AddressRange, fd: Int32, holes: [AddressRange], path: String)?

    init(_ source: DiffSource) { self.source = source }

    deinit {
        if let open { Sys.close(open.fd) }
    }

    /// The bytes of `window` (inside `region`, a region of this side or the part of one an
    /// address range selects), read into `buffer`, and the ranges that could not be read: a
    /// process's faults (zeroed), a dump's holes. A dump's file holds its whole region: it is
    /// read at the window's offset from the region's start as dumped, not from the part's.
    /// A dump's file is read with `pread(2)`, not mapped: a file another program truncates
    /// meanwhile is then an error, where its mapped pages would raise SIGBUS.
    func bytes(_ window: AddressRange, of region: AddressRange, buffer: UnsafeMutableRawBufferPointer)
        throws(TargetError) -> (bytes: UnsafeRawBufferPointer, holes: [AddressRange])
    {
        switch source {
        case .live(let target):
            return (UnsafeRawBufferPointer(buffer), try target.read(window, into: buffer))
        case .dump(let directory, let manifest):
            if open.map({ !$0.region.contains(region) }) ?? true {
                if let open { Sys.close(open.fd) }
                open = nil
                // The one region that holds it (the manifest's regions never overlap): the part
                // an address range clips out of a region is no region of the manifest itself.
                guard
                    let entry = manifest.regions.first(where: { $0.range.map { $0.contains(region) } ?? false }),
                    let dumped = entry.range
                else {
                    // The regions compared are the manifest's: a dump's bytes are never a hole.
                    throw .dump(.badManifest(directory + "/manifest.json", "no region holds \(region)"))
                }
                let path = directory + "/" + entry.file
                let fd: Int32
                do { fd = try Sys.open(path, O_RDONLY | O_NOFOLLOW) } catch { throw .file(path: path, .failed(error)) }
                let holes = entry.holes.compactMap { h -> AddressRange? in
                    parseNumber(h.address[...]).flatMap { try? AddressRange(start: $0, count: h.length) }
                }
                open = (dumped, fd, holes, path)
            }
            let (dumped, fd, holes, path) = open!
            let offset = window.start - dumped.start
            let got: Int
            do { got = try Files.read(fd, into: buffer, at: offset) } catch { throw .file(path: path, .failed(error)) }
            // The file ends before its region does (cut short, perhaps while this diff ran).
            guard got == buffer.count else { throw .file(path: path, .tooShort) }
            return (
                UnsafeRawBufferPointer(buffer), holes.filter { $0.intersects(window) }.map { $0.clamped(to: window) }
            )
        }
    }
}
