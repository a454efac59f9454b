import Glibc
import SystemPackage
import VmIO

/// Why a scan state or a filter cannot be used (thrown as ``TargetError/scan(_:)``).
public enum ScanProblem: Hashable, Sendable, CustomStringConvertible {
    /// The state file at `path` cannot be used: not a state, or damaged.
    case state(path: String, ScanStateError)
    /// The state was made for another process.
    case otherProcess(path: String, statePID: Int32, pid: Int32)
    /// The state's process has the same pid but started at another time: it was restarted.
    case restarted(path: String, pid: Int32)
    /// A filter that compares with a given value, after a snapshot (the values are unknown).
    case needsComparison(String)
    /// A comparison of order on byte strings.
    case notNumeric(String)

    public var description: String {
        switch self {
        case .state(let path, let error): "\(path): \(error)"
        case .otherProcess(let path, let statePID, let pid):
            "\(path) is the scan state of pid \(statePID), not of pid \(pid)"
        case .restarted(let path, let pid):
            "\(path) is the scan state of an earlier process with pid \(pid) (it has been restarted)"
        case .needsComparison(let filter):
            "\(filter) needs known values: after --snapshot narrow with --changed, --unchanged, --increased, "
                + "--decreased, --increased-by or --decreased-by first"
        case .notNumeric(let filter):
            "\(filter) compares numbers; a string or hex scan takes --eq, --ne, "
                + "--changed or --unchanged"
        }
    }
}

/// What a scan pass did.
public struct ScanReport: Sendable {
    /// The type of the values followed.
    public var type: ScanType
    /// Candidates kept (after a snapshot: aligned slots kept).
    public var candidates: UInt64 = 0
    /// Candidates dropped in this pass because they could not be read.
    public var dropped: UInt64 = 0
    /// Bytes read.
    public var scanned: UInt64 = 0
    /// Whether the state is a snapshot (every slot a candidate).
    public var snapshot = false
    /// The first candidates with their current values (raw little-endian bytes).
    public var listed: [(address: Address, value: [UInt8])] = []
    /// The state file's size.
    public var stateBytes: UInt64 = 0
}

/// Writes a scan state: blocks as they fill, the header last (at offset 0), the file put in
/// place only when complete (a temporary name, renamed). Without a path it only counts and
/// lists (a listing changes no state). A struct, held in a local variable: its appends, once a
/// candidate, need no run-time exclusivity checks (a class's stored properties do).
struct ScanStateWriter {
    private let file: OutputFile?
    private var header: ScanState.Header
    private var offset = UInt64(ScanState.headerSize)
    private var addresses: [Address] = []
    private var values: [UInt8] = []
    private(set) var report: ScanReport
    private let list: Int

    init(path: String?, header: ScanState.Header, list: Int) throws(TargetError) {
        // The state file is the tool's own: replaced, but only when it is one.
        if let path, let kind = Files.kind(path), kind.type == S_IFREG {
            guard (try? ScanStateReader(path: path)) != nil else { throw .scan(.state(path: path, .notAState)) }
        }
        file = try path.map { (path) throws(TargetError) in try OutputFile(path: path, replace: true) }
        self.header = header
        self.list = list
        report = ScanReport(type: header.type, snapshot: header.snapshot)
    }

    /// Adds one candidate (addresses ascending) with its value (`width` bytes).
    mutating func append(_ address: Address, _ value: UnsafeRawBufferPointer) throws(TargetError) {
        addresses.append(address)
        values.append(contentsOf: value)
        note(address, value)
        if addresses.count == ScanState.blockCapacity { try flush() }
    }

    /// Adds the bytes at `start` as a snapshot block (every aligned slot a candidate).
    mutating func appendSnapshot(at start: Address, _ bytes: UnsafeRawBufferPointer) throws(TargetError) {
        try write(ScanState.encode(snapshotAt: start, bytes))
        let width = header.type.width
        var i = 0
        while report.listed.count < list && i + width <= bytes.count {
            report.listed.append((start + UInt64(i), Array(bytes[i..<i + width])))
            i += width
        }
        report.candidates += UInt64(bytes.count / width)
    }

    private mutating func note(_ address: Address, _ value: UnsafeRawBufferPointer) {
        report.candidates += 1
        if report.listed.count < list { report.listed.append((address, Array(value))) }
    }

    private mutating func flush() throws(TargetError) {
        guard !addresses.isEmpty else { return }
        try write(ScanState.encode(addresses: addresses, values: values))
        addresses.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
    }

    private mutating func write(_ bytes: [UInt8]) throws(TargetError) {
        guard let file else { return }
        try bytes.withBytes { raw throws(TargetError) in try file.write(raw, at: offset) }
        offset += UInt64(bytes.count)
    }

    /// Writes the last block and the header, and puts the file in place.
    mutating func finish(dropped: UInt64) throws(TargetError) -> ScanReport {
        try flush()
        header.count = report.candidates
        header.dropped = dropped
        let end = offset
        offset = 0
        try write(header.encoded())
        try file?.commit(durable: false)
        report.stateBytes = file == nil ? 0 : end
        return report
    }
}

/// Reads a scan state block by block: memory holds one block at a time.
public final class ScanStateReader {
    /// The state file's path.
    public let path: String
    /// The state's header, read when it was opened.
    public let header: ScanState.Header
    private let fd: Int32
    private var offset = UInt64(ScanState.headerSize)

    /// Opens `path` and reads its header.
    ///
    /// Throws ``TargetError/file(path:_:)`` when `path` cannot be opened (`open(2)` with
    /// `O_NOFOLLOW`: a symbolic link is refused) or read (`pread(2)`), and ``TargetError/scan(_:)``
    /// with ``ScanProblem/state(path:_:)`` when it is no scan state or its header is damaged.
    public init(path: String) throws(TargetError) {
        self.path = path
        do { fd = try Sys.open(path, O_RDONLY | O_NOFOLLOW) } catch { throw .file(path: path, .failed(error)) }
        let head: [UInt8]
        do { head = try Self.read(fd, ScanState.headerSize, at: 0, path: path) } catch {
            Sys.close(fd)
            throw error
        }
        do { header = try ScanState.Header(decoding: head) } catch {
            Sys.close(fd)
            throw .scan(.state(path: path, error))
        }
    }

    deinit { Sys.close(fd) }

    /// Refuses a state made for another process, or for an earlier one with the same pid.
    ///
    /// Throws ``TargetError/scan(_:)`` with ``ScanProblem/otherProcess(path:statePID:pid:)`` for
    /// another pid or ``ScanProblem/restarted(path:pid:)`` for another start time, and
    /// ``TargetError/noSuchProcess(pid:)`` when `target` is gone.
    public func check(for target: Target) throws(TargetError) {
        guard header.pid == target.pid else {
            throw .scan(.otherProcess(path: path, statePID: header.pid, pid: target.pid))
        }
        guard let started = ProcFS.startTime(target.pid) else { throw .noSuchProcess(pid: target.pid) }
        guard header.startTime == started else { throw .scan(.restarted(path: path, pid: target.pid)) }
    }

    /// The next block, or nil at the end.
    ///
    /// Throws ``TargetError/file(path:_:)`` when a read fails (`pread(2)`), and
    /// ``TargetError/scan(_:)`` with ``ScanProblem/state(path:_:)`` when a block is damaged or cut short.
    public func next() throws(TargetError) -> ScanState.Block? {
        let head = try Self.read(fd, ScanState.blockHeaderSize, at: offset, path: path, endOK: true)
        if head.isEmpty { return nil }
        let length: Int
        do { length = try ScanState.blockLength(head) } catch { throw .scan(.state(path: path, error)) }
        let body = try Self.read(fd, length, at: offset + UInt64(head.count), path: path)
        offset += UInt64(head.count + length)
        do { return try ScanState.decode(head: head, body: body, width: header.type.width) } catch {
            throw .scan(.state(path: path, error))
        }
    }

    /// `count` bytes at `offset`; empty at the end of the file when `endOK`.
    private static func read(_ fd: Int32, _ count: Int, at offset: UInt64, path: String, endOK: Bool = false)
        throws(TargetError) -> [UInt8]
    {
        var bytes = [UInt8](repeating: 0, count: count)
        let got = bytes.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in try Files.read(fd, into: raw, at: offset) }
        }
        let done: Int
        do { done = try got.get() } catch { throw .file(path: path, .failed(error)) }
        if done < count {
            if done == 0 && endOK { return [] }
            throw .scan(.state(path: path, .corrupt("cut short")))
        }
        return bytes
    }
}

extension Target {
    /// The first scan: every match of `value` (a `type` value's bytes, at its alignment)
    /// in `regions`, written to the state at `path` with the process's pid and start time.
    ///
    /// Throws ``TargetError/model(_:)`` when `value` is empty, ``TargetError/noSuchProcess(pid:)``
    /// when the process is gone at the start, ``TargetError/scan(_:)`` when `path` is a file but no
    /// scan state (only a state is replaced), ``TargetError/file(path:_:)`` when the state cannot be
    /// written, and ``TargetError/transferStopped(_:)`` when a read stops other than at a fault (the
    /// process gone).
    public func scan(
        for value: [UInt8], type: ScanType, in regions: [(mapping: Mapping, range: AddressRange)], to path: String,
        list: Int = 0, progress: ((UInt64) -> Void)? = nil
    ) throws(TargetError) -> ScanReport {
        var writer = try ScanStateWriter(path: path, header: try header(type, snapshot: false), list: list)
        var scanned: UInt64 = 0
        if case .bytes = type {
            // Byte strings may straddle chunks: search carries the bytes across.
            let pattern: BytePattern
            do { pattern = try BytePattern(bytes: value) } catch { throw .model(error) }
            let found = try search(pattern, in: regions, max: .max, progress: progress)
            try value.withBytes { raw throws(TargetError) in
                for hit in found.hits { try writer.append(hit.address, raw) }
            }
            scanned = found.scanned
        } else {
            let pattern: BytePattern
            do { pattern = try BytePattern(bytes: value, alignment: UInt64(type.width)) } catch { throw .model(error) }
            var failure: TargetError?
            let slots = Self.aligned(regions, to: type.alignment)
            scanned = try scanRegions(slots, progress: progress) { (at, chunk) throws(TargetError) in
                // Chunks start at aligned addresses (the ranges are made so, holes are
                // page-aligned): no aligned match straddles two.
                let completed = value.withUnsafeBytes { raw in
                    pattern.scan(chunk, base: at) { offset in
                        do throws(TargetError) { try writer.append(at + UInt64(offset), raw) } catch {
                            failure = error
                            return false
                        }
                        return true
                    }
                }
                if !completed, let failure { throw failure }
            }
        }
        var report = try writer.finish(dropped: 0)
        report.scanned = scanned
        return report
    }

    /// The first scan of an unknown value: a snapshot of `regions` (every aligned slot of
    /// `type` a candidate), which only the comparisons over time can narrow.
    ///
    /// Throws as ``scan(for:type:in:to:list:progress:)`` does, but for the value.
    public func snapshot(
        type: ScanType, in regions: [(mapping: Mapping, range: AddressRange)], to path: String,
        progress: ((UInt64) -> Void)? = nil
    ) throws(TargetError) -> ScanReport {
        var writer = try ScanStateWriter(path: path, header: try header(type, snapshot: true), list: 0)
        let width = type.width
        // A snapshot block's slots are counted from its start: every block starts aligned.
        let slots = Self.aligned(regions, to: type.alignment)
        let scanned = try scanRegions(slots, chunkSize: ScanState.snapshotBlockSize, progress: progress) {
            (at, chunk) throws(TargetError) in
            let whole = chunk.count / width * width
            if whole > 0 { try writer.appendSnapshot(at: at, UnsafeRawBufferPointer(rebasing: chunk[0..<whole])) }
        }
        var report = try writer.finish(dropped: 0)
        report.scanned = scanned
        return report
    }

    /// A narrowing pass: re-reads the candidates of the state `reader` holds (checked to be
    /// this process's) and writes those `keeps` accepts to `path` (which may be the state's
    /// own file: it is replaced whole, only when the pass is complete; nil writes nothing: a
    /// listing). `keeps` is given the
    /// old and the new value of each candidate; unreadable candidates are dropped and counted.
    ///
    /// Throws what ``ScanStateReader/check(for:)`` and ``ScanStateReader/next()`` throw for the
    /// state read, and what ``scan(for:type:in:to:list:progress:)`` throws for the state written
    /// and the reads of the process.
    public func narrow(
        _ reader: ScanStateReader, to path: String?, list: Int = 0, progress: ((UInt64) -> Void)? = nil,
        keeps: (UnsafeRawPointer, UnsafeRawPointer) -> Bool
    ) throws(TargetError) -> ScanReport {
        try reader.check(for: self)
        var header = reader.header
        header.snapshot = false
        var writer = try ScanStateWriter(path: path, header: header, list: list)
        let width = header.type.width
        let alignment = UInt64(header.type.alignment)
        var dropped = reader.header.dropped
        var scanned: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: ScanState.snapshotBlockSize + width)
        while let block = try reader.next() {
            switch block {
            case .snapshot(let start, let old):
                let window = AddressRange(clamping: start, start + UInt64(old.count))
                let holes = try buffer.withMutableBytes { raw throws(TargetError) in
                    try read(window, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<old.count]))
                }
                scanned += window.count
                try old.withBytes { oldRaw throws(TargetError) in
                    try buffer.withBytes { newRaw throws(TargetError) in
                        var slot = 0
                        var nextHole = 0
                        while slot + width <= old.count {
                            let address = start + UInt64(slot)
                            while nextHole < holes.count && holes[nextHole].end <= address { nextHole += 1 }
                            if nextHole < holes.count && holes[nextHole].start < address + UInt64(width) {
                                dropped += 1
                            } else if keeps(oldRaw.baseAddress! + slot, newRaw.baseAddress! + slot) {
                                try writer.append(
                                    address, UnsafeRawBufferPointer(rebasing: newRaw[slot..<slot + width]))
                            }
                            slot += Int(alignment)
                        }
                    }
                }
            case .candidates(let addresses, let values):
                var i = 0
                while i < addresses.count {
                    // One read for the candidates close together, at most a buffer long.
                    let first = addresses[i]
                    var j = i + 1
                    while j < addresses.count && addresses[j] - addresses[j - 1] <= 65536
                        && addresses[j] + UInt64(width) - first <= UInt64(ScanState.snapshotBlockSize)
                    {
                        j += 1
                    }
                    let span = AddressRange(clamping: first, addresses[j - 1] + UInt64(width))
                    let holes = try buffer.withMutableBytes { raw throws(TargetError) in
                        try read(span, into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<Int(span.count)]))
                    }
                    scanned += span.count
                    try values.withBytes { oldRaw throws(TargetError) in
                        try buffer.withBytes { newRaw throws(TargetError) in
                            for k in i..<j {
                                let address = addresses[k]
                                let here = AddressRange(clamping: address, address + UInt64(width))
                                if holes.contains(where: { $0.intersects(here) }) {
                                    dropped += 1
                                    continue
                                }
                                let at = Int(address - first)
                                if keeps(oldRaw.baseAddress! + k * width, newRaw.baseAddress! + at) {
                                    try writer.append(
                                        address, UnsafeRawBufferPointer(rebasing: newRaw[at..<at + width]))
                                }
                            }
                        }
                    }
                    i = j
                }
            }
            progress?(scanned)
        }
        var report = try writer.finish(dropped: dropped)
        report.dropped = dropped - reader.header.dropped
        report.scanned = scanned
        return report
    }

    /// Streams `regions` chunk by chunk through `body`; returns the bytes read. Holes are
    /// stepped over; a stream cut short otherwise (the target gone) throws. 4 MiB chunks, as
    /// search reads: fewer calls, and the scan of one chunk is far quicker than its read.
    private func scanRegions(
        _ regions: [(mapping: Mapping, range: AddressRange)], chunkSize: Int = 4 << 20,
        progress: ((UInt64) -> Void)?, _ body: (Address, UnsafeRawBufferPointer) throws(TargetError) -> Void
    ) throws(TargetError) -> UInt64 {
        var scanned: UInt64 = 0
        for (_, range) in regions {
            let report = try stream(range, policy: .skip, chunkSize: chunkSize) { (at, chunk) throws(TargetError) in
                try body(at, chunk)
                scanned += UInt64(chunk.count)
                progress?(scanned)
                return true
            }
            if let stop = report.stop { throw .transferStopped(stop) }
        }
        return scanned
    }

    /// `regions` cut to their aligned slots: each range from its first multiple of `alignment`
    /// to its last (an address range may start or end anywhere); a range that holds no slot is
    /// left out. (A numeric type's width is its alignment: a slot ends by the range's end.)
    static func aligned(_ regions: [(mapping: Mapping, range: AddressRange)], to alignment: Int)
        -> [(mapping: Mapping, range: AddressRange)]
    {
        regions.compactMap { region in
            region.range.aligned(to: UInt64(max(1, alignment))).map { (region.mapping, $0) }
        }
    }

    /// A state's header for this process.
    private func header(_ type: ScanType, snapshot: Bool) throws(TargetError) -> ScanState.Header {
        guard let started = ProcFS.startTime(pid) else { throw .noSuchProcess(pid: pid) }
        return ScanState.Header(pid: pid, startTime: started, type: type, snapshot: snapshot, count: 0, dropped: 0)
    }

    /// Fills `buffer` with `window` and returns the ranges that could not be read (zeros in
    /// the buffer); a read cut short otherwise (the target gone) throws.
    ///
    /// Throws ``TargetError/transferStopped(_:)`` when the read stops other than at a fault.
    public func read(_ window: AddressRange, into buffer: UnsafeMutableRawBufferPointer) throws(TargetError)
        -> [AddressRange]
    {
        // Read in place: the bytes go straight into `buffer`, copied once.
        let report = try transfer(window, policy: .skip, chunkSize: max(1, buffer.count), into: buffer) {
            _, _ throws(TargetError) in .more
        }
        if let stop = report.stop { throw .transferStopped(stop) }
        return report.holes.map { hole in
            let range = AddressRange(clamping: hole.address, hole.address + hole.length)
            let offset = Int(range.start - window.start)
            UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + Int(range.count)]).initializeMemory(
                as: UInt8.self, repeating: 0)
            return range
        }
    }
}

extension [UInt8] {
    /// `withUnsafeBytes` for a body that throws ``TargetError`` (the standard library's
    /// `rethrows` loses the type).
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(TargetError) -> R) throws(TargetError) -> R {
        try withUnsafeBytes { raw in Result { () throws(TargetError) in try body(raw) } }.get()
    }

    /// `withUnsafeMutableBytes` for a body that throws ``TargetError``.
    mutating func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws(TargetError) -> R)
        throws(TargetError) -> R
    {
        try withUnsafeMutableBytes { raw in Result { () throws(TargetError) in try body(raw) } }.get()
    }
}
