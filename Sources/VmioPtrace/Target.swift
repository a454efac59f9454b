import CVmio
import Glibc
import SystemPackage
import VmIO

/// A range of target memory that could not be accessed.
public struct Hole: Hashable, Sendable {
    public let address: Address
    public let length: UInt64
    public let kind: FaultKind
    public init(address: Address, length: UInt64, kind: FaultKind) {
        self.address = address
        self.length = length
        self.kind = kind
    }
}

/// What a bulk transfer did: bytes moved, holes stepped over, and the fault that
/// ended it early (nil when it ran to the end).
public struct TransferReport: Sendable {
    public var requested: UInt64
    public var moved: UInt64 = 0
    public var holes: [Hole] = []
    public var stop: PartialCopy?
    public init(requested: UInt64) { self.requested = requested }
    /// Every requested byte moved.
    public var isComplete: Bool { stop == nil && holes.isEmpty && moved == requested }
}

/// A live process: its maps (refreshed on demand, with a new generation each time),
/// an owner registry over its address space, its copy backend, and an optional
/// ``Tracer`` holding it stopped.
public final class Target {
    public let pid: Int32
    public private(set) var view: MemView
    public let registry = OwnerRegistry()
    public let backend = ProcessVMBackend()
    private var tracer: Tracer?
    /// Loaded on first use by ``symbols`` (SymbolTable.swift).
    var symbolTable: SymbolTable?

    /// Opens a target: checks it exists and reads its maps.
    public init(pid: Int32) throws(TargetError) {
        guard pid > 0 else { throw .noSuchProcess(pid: pid) }
        self.pid = pid
        self.view = try ProcessMaps.read(pid: pid, generation: 1)
    }

    deinit { tracer?.detach() }

    /// Reads the maps again; the new view carries the next generation.
    @discardableResult
    public func refresh() throws(TargetError) -> MemView {
        view = try ProcessMaps.read(pid: pid, generation: view.generation + 1)
        return view
    }

    /// Stops every thread (see ``Tracer``). Idempotent.
    public func stop(timeout: Duration = .seconds(5)) throws(TargetError) {
        guard tracer == nil else { return }
        tracer = try Tracer(pid: pid, timeout: timeout)
    }

    /// Starts `arguments[0]` (searched in PATH) traced and stopped at its first
    /// instruction; the target is held by this process until ``resume()``.
    public static func launchStopped(_ arguments: [String], nullStdin: Bool) throws(TargetError) -> Target {
        guard let file = arguments.first else { throw .system(call: "exec", errno: .invalidArgument) }
        var cArgs = arguments.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        let pid = vmio_spawn_traced(file, &cArgs, nullStdin ? 1 : 0)
        guard pid > 0 else { throw .system(call: "exec \(file)", errno: Errno(rawValue: vmio_errno())) }
        var status: Int32 = 0
        // The child stops with SIGTRAP as it finishes the exec.
        while waitpid(pid, &status, Int32(bitPattern: 0x4000_0000)) < 0 && errno == EINTR {}
        guard status & 0xff == 0x7f else { throw .noSuchProcess(pid: pid) }
        let target = try Target(pid: pid)
        target.tracer = Tracer(adoptingStoppedChild: pid)
        return target
    }

    /// Lets the target run again. Idempotent.
    public func resume() {
        tracer?.detach()
        tracer = nil
    }

    public var isStopped: Bool { tracer != nil }
    public var stoppedThreads: [Int32] { tracer?.threads ?? [] }

    /// Resolves an address expression against the current view; `sym:NAME` and
    /// `sym:FILE:NAME` against the ELF symbol tables of the mapped files (``symbols``).
    public func resolve(_ expression: AddressExpression) throws(TargetError) -> Address {
        do {
            return try expression.resolve(in: view) { (name, file) throws(VmIoError) -> Address in
                try self.symbols.address(of: name, in: file)
            }
        } catch { throw .model(error) }
    }

    /// A fault for a transfer that found `address` outside every mapping of the view.
    private func gapFault(at address: Address, copied: UInt64, requested: UInt64, side: CopySide) -> PartialCopy {
        PartialCopy(kind: .pageFault(address: address), copied: copied, requested: requested,
                    side: side, space: .remote(pid: pid))
    }

    /// The covered runs of `range` in the view, in order, with the gaps between them.
    func segments(of range: AddressRange) -> [(range: AddressRange, mapped: Bool)] {
        var out: [(AddressRange, Bool)] = []
        var next = range.start
        for m in view.mappings(intersecting: range) {
            if m.start > next { out.append((AddressRange(clamping: next, m.start), false)) }
            let s = max(next, m.start), e = min(range.end, m.end)
            if let last = out.last, last.1, last.0.end == s {
                out[out.count - 1] = (AddressRange(clamping: last.0.start, e), true)
            } else {
                out.append((AddressRange(clamping: s, e), true))
            }
            next = e
        }
        if next < range.end { out.append((AddressRange(clamping: next, range.end), false)) }
        return out
    }

    /// Streams `range` of target memory through one reused local buffer of `chunkSize`
    /// bytes, handing each chunk to `sink` with its address. Memory use stays flat for any
    /// length. Without `skipFaults` the first fault ends the stream (reported in `stop`);
    /// with it, each unreadable page or gap becomes a ``Hole`` and the stream goes on.
    public func stream(
        _ range: AddressRange, skipFaults: Bool, chunkSize: Int = 1 << 20,
        sink: (Address, UnsafeRawBufferPointer) throws -> Bool
    ) throws -> TransferReport {
        var report = TransferReport(requested: range.count)
        let buffer = LocalBuffer(count: Int(min(UInt64(chunkSize), max(range.count, 1))))
        for segment in segments(of: range) {
            guard segment.mapped else {
                if !skipFaults {
                    report.stop = gapFault(at: segment.range.start, copied: report.moved,
                                           requested: range.count, side: .source)
                    return report
                }
                report.addHole(Hole(address: segment.range.start, length: segment.range.count,
                                    kind: .pageFault(address: segment.range.start)))
                continue
            }
            let owner = try registry.acquire(.read, range: segment.range, view: view)
            defer { try? registry.release(owner) }
            var reader = try VmReader(remote: pid, owner: owner)
            while reader.remain > 0 {
                var writer = buffer.makeWriter()
                let at = reader.cursor
                do {
                    let n = try reader.readFallible(into: &writer, using: backend)
                    report.moved += n
                    if try !sink(at, UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<Int(n)])) { return report.finished() }
                } catch VmIoError.partialCopy(let p) {
                    report.moved += p.copied
                    if p.copied > 0,
                        try !sink(at, UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<Int(p.copied)]))
                    {
                        return report.finished()
                    }
                    guard skipFaults, case .pageFault(let fault) = p.kind else {
                        report.stop = PartialCopy(kind: p.kind, copied: report.moved, requested: range.count,
                                                  side: .source, space: .remote(pid: pid))
                        return report
                    }
                    // Resume at the next page (or the segment's end).
                    let resume = min(reader.end, (fault | 0xfff) &+ 1)
                    report.addHole(Hole(address: fault, length: resume - fault, kind: p.kind))
                    try reader.skip(resume - reader.cursor)
                }
            }
        }
        return report
    }

    /// Writes `bytes` at `address`. The whole range must lie in mappings of the view
    /// (bad input otherwise, and nothing is written). Mappings the target cannot write
    /// are refused unless `force`, which writes through `/proc/PID/mem`. With `verify`,
    /// the written range is handed back through the owner's write-to-read handover and
    /// read back; a mismatch is reported as the first differing address.
    public func write(_ bytes: [UInt8], at address: Address, force: Bool, verify: Bool) throws -> WriteReport {
        let range = try AddressRange(start: address, count: UInt64(bytes.count))
        if let gap = view.firstAddress(in: range) {
            throw TargetError.model(.rangeNotCovered(address: gap))
        }
        if !force, let locked = view.firstAddress(in: range, where: { $0.permissions.write }),
            let m = view.translate(locked)?.mapping
        {
            throw TargetError.permissionDenied(
                pid: pid, operation: "write",
                reason: "\(locked.hex) is in a \(m.permissions) mapping\(m.path.isEmpty ? "" : " (\(m.path))") the target cannot write; --force writes through /proc/\(pid)/mem")
        }
        let owner = try registry.acquire(.write, range: range, view: view)
        defer { try? registry.release(owner) }
        var writer = try VmWriter(remote: pid, owner: owner)
        var report = WriteReport(address: address, requested: UInt64(bytes.count))
        let through: any CopyBackend = force ? try ProcMemBackend(pid: pid, writable: true) : backend
        do {
            report.written = try bytes.withUnsafeBytes { raw in try writer.write(raw, using: through) }
        } catch VmIoError.partialCopy(let p) {
            report.written = p.copied
            throw VmIoError.partialCopy(p)
        }
        if verify {
            var reader = try writer.readBack()
            let back = try reader.collect(using: backend)
            report.verified = true
            report.mismatch = zip(back, bytes).enumerated().first(where: { $0.element.0 != $0.element.1 })
                .map { address + UInt64($0.offset) }
        }
        return report
    }

    /// Copies `count` bytes from `source` memory at `from` to this target at `to`
    /// (remote → remote through a bounded bounce buffer). With `skipFaults`, source
    /// pages that fault are stepped over (the destination's bytes there are left as
    /// they were) and reported as holes; a destination fault always stops the copy.
    public func copy(from source: Target, at from: Address, to: Address, count: UInt64, skipFaults: Bool) throws -> TransferReport {
        let srcRange = try AddressRange(start: from, count: count)
        let dstRange = try AddressRange(start: to, count: count)
        if let gap = view.firstAddress(in: dstRange) { throw TargetError.model(.rangeNotCovered(address: gap)) }
        var report = TransferReport(requested: count)
        for segment in source.segments(of: srcRange) {
            let delta = segment.range.start - from
            guard segment.mapped else {
                if !skipFaults {
                    report.stop = source.gapFault(at: segment.range.start, copied: report.moved,
                                                  requested: count, side: .source)
                    return report
                }
                report.addHole(Hole(address: segment.range.start, length: segment.range.count,
                                    kind: .pageFault(address: segment.range.start)))
                continue
            }
            let readOwner = try source.registry.acquire(.read, range: segment.range, view: source.view)
            defer { try? source.registry.release(readOwner) }
            let writeOwner = try registry.acquire(
                .write, range: AddressRange(start: to + delta, count: segment.range.count), view: view)
            defer { try? registry.release(writeOwner) }
            var reader = try VmReader(remote: source.pid, owner: readOwner)
            var writer = try VmWriter(remote: pid, owner: writeOwner)
            while reader.remain > 0 {
                do {
                    report.moved += try reader.readFallible(into: &writer, using: backend)
                } catch VmIoError.partialCopy(let p) {
                    report.moved += p.copied
                    guard skipFaults, p.side == .source, case .pageFault(let fault) = p.kind else {
                        report.stop = PartialCopy(kind: p.kind, copied: report.moved, requested: count,
                                                  side: p.side, space: p.space)
                        return report
                    }
                    let resume = min(reader.end, (fault | 0xfff) &+ 1)
                    report.addHole(Hole(address: fault, length: resume - fault, kind: p.kind))
                    try reader.skip(resume - reader.cursor)
                    try writer.skip(resume - fault)
                }
            }
        }
        return report
    }
}

/// What a write did.
public struct WriteReport: Sendable {
    public let address: Address
    public let requested: UInt64
    public var written: UInt64 = 0
    public var verified = false
    /// The first address whose read-back differs from what was written.
    public var mismatch: Address?
}

extension TransferReport {
    /// A stream the consumer ended early: what was asked is what it took.
    func finished() -> TransferReport {
        var done = self
        done.requested = moved + holes.reduce(0) { $0 + $1.length }
        return done
    }

    /// Records a hole, merging it with the previous one when they touch and agree in kind.
    mutating func addHole(_ hole: Hole) {
        if let last = holes.last, last.address + last.length == hole.address,
            case .pageFault = last.kind, case .pageFault = hole.kind
        {
            holes[holes.count - 1] = Hole(address: last.address, length: last.length + hole.length, kind: last.kind)
        } else {
            holes.append(hole)
        }
    }
}

extension AddressRange {
    /// `start..<end` for bounds already known to be ordered.
    init(clamping start: Address, _ end: Address) {
        self = (try? AddressRange(start: start, end: max(start, end))) ?? .empty
    }
}
