import CVmio
import Glibc
import SystemPackage
import VmIO

/// A range of target memory that could not be accessed.
public struct Hole: Hashable, Sendable {
    public let address: Address
    public let length: UInt64
    public let kind: FaultKind
    /// The mechanism that failed there (``AccessMechanism``'s raw value: `process_vm_readv`,
    /// `pread`, `peekdata`…, or `maps` for an address in no mapping, where nothing was tried).
    public var mechanism: String?
    /// The errno of that failure (`EFAULT` for a fault `process_vm_readv` reports as a short count).
    public var errno: Int32?
    public init(address: Address, length: UInt64, kind: FaultKind, mechanism: String? = nil, errno: Int32? = nil) {
        self.address = address
        self.length = length
        self.kind = kind
        self.mechanism = mechanism
        self.errno = errno
    }
}

/// A range of target memory that moved, and the mechanism that moved it.
public struct MovedRange: Hashable, Sendable {
    public let address: Address
    public var length: UInt64
    public let mechanism: String
    public init(address: Address, length: UInt64, mechanism: String) {
        self.address = address
        self.length = length
        self.mechanism = mechanism
    }
}

/// What a bulk transfer did: bytes moved, holes stepped over, and the fault that
/// ended it early (nil when it ran to the end).
public struct TransferReport: Sendable {
    public var requested: UInt64
    public var moved: UInt64 = 0
    public var holes: [Hole] = []
    public var stop: PartialCopy?
    /// The ranges that moved, in order, each with the mechanism that moved it (contiguous
    /// ranges of one mechanism merged). Addresses are the source's.
    public var ranges: [MovedRange] = []
    /// The mechanism and errno of the failure in `stop`.
    public var stopMechanism: String?
    public var stopErrno: Int32?
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
    /// Reads go down the ladder (ReadLadder.swift): process_vm_readv, then pread on
    /// /proc/PID/mem, then PTRACE_PEEKDATA while stopped.
    public let ladder: ReadLadder
    /// How long ``stop(timeout:)`` and ``withThreadStopped(_:timeout:_:)`` wait for each
    /// attach when no timeout is given.
    public var attachTimeout: Duration = .seconds(5)
    /// What the last ``resume()`` found: whether the target is back in its state from
    /// before the attach (RunState.swift).
    public private(set) var lastRestore: RunStateCheck?
    /// The target's pointer width and byte order (TargetABI.swift), read on first use.
    public private(set) lazy var abi: TargetABI = TargetABI.of(pid: pid)
    private var tracer: Tracer?
    /// Loaded on first use by ``symbols`` (SymbolTable.swift).
    var symbolTable: SymbolTable?

    /// Opens a target: checks it exists and reads its maps.
    public init(pid: Int32) throws(TargetError) {
        guard pid > 0 else { throw .noSuchProcess(pid: pid) }
        self.pid = pid
        self.ladder = ReadLadder(pid: pid)
        self.view = try ProcessMaps.read(pid: pid, generation: 1)
        ladder.peekThread = { [weak self] in
            guard let tracer = self?.tracer else { return nil }
            return tracer.stoppedThreads[pid] != nil ? pid : tracer.threads.first
        }
        ladder.readableLength = { [weak self] address, count in
            self?.readablePrefix(address, count) ?? count
        }
    }

    deinit {
        tracer?.detach()
        Tracer.releaseLingering()
    }

    /// Reads the maps again; the new view carries the next generation.
    @discardableResult
    public func refresh() throws(TargetError) -> MemView {
        view = try ProcessMaps.read(pid: pid, generation: view.generation + 1)
        return view
    }

    /// Stops every thread (see ``Tracer``), waiting at most `timeout` (default
    /// ``attachTimeout``) for the stops. Idempotent.
    public func stop(timeout: Duration? = nil) throws(TargetError) {
        guard tracer == nil else { return }
        tracer = try Tracer(pid: pid, timeout: timeout ?? attachTimeout)
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
    /// The state from before the attach is restored and checked (``lastRestore``).
    public func resume() {
        if let tracer { lastRestore = tracer.detach() }
        tracer = nil
        Tracer.releaseLingering()
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
        PartialCopy(
            kind: .pageFault(address: address), copied: copied, requested: requested,
            side: side, space: .remote(pid: pid))
    }

    /// How many of the `count` bytes at `address` lie in readable mappings of the view, without a gap.
    func readablePrefix(_ address: Address, _ count: Int) -> Int {
        guard let range = try? AddressRange(start: address, count: UInt64(count)) else { return 0 }
        var next = address
        for m in view.mappings(intersecting: range) {
            guard m.start <= next, m.permissions.read else { break }
            next = min(range.end, m.end)
            if next == range.end { break }
        }
        return Int(next - address)
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
    ///
    /// Reads go down the ``ladder``; the report says which mechanism moved each range
    /// (``TransferReport/ranges``) and which failed at each hole. With `fillHoles` (best
    /// effort; implies `skipFaults`) each hole is handed to `sink` as zeros, so the consumer
    /// sees the whole range; the report still lists every hole.
    public func stream(
        _ range: AddressRange, skipFaults: Bool, fillHoles: Bool = false, chunkSize: Int = 1 << 20,
        sink: (Address, UnsafeRawBufferPointer) throws -> Bool
    ) throws -> TransferReport {
        let skipFaults = skipFaults || fillHoles
        var report = TransferReport(requested: range.count)
        let buffer = LocalBuffer(count: Int(min(UInt64(chunkSize), max(range.count, 1))))
        /// Hands a hole to the sink as zeros; false when the sink wants no more.
        func zeros(_ at: Address, _ count: UInt64) throws -> Bool {
            guard fillHoles else { return true }
            let block = [UInt8](repeating: 0, count: Int(min(count, UInt64(buffer.count))))
            var done: UInt64 = 0
            while done < count {
                let n = Int(min(count - done, UInt64(block.count)))
                let more = try block.withUnsafeBytes {
                    try sink(at + done, UnsafeRawBufferPointer(rebasing: $0[0..<n]))
                }
                if !more { return false }
                done += UInt64(n)
            }
            return true
        }
        for segment in segments(of: range) {
            guard segment.mapped else {
                if !skipFaults {
                    report.stop = gapFault(
                        at: segment.range.start, copied: report.moved,
                        requested: range.count, side: .source)
                    report.stopMechanism = AccessMechanism.maps.rawValue
                    report.stopErrno = EFAULT
                    return report
                }
                report.addHole(
                    Hole(
                        address: segment.range.start, length: segment.range.count,
                        kind: .pageFault(address: segment.range.start),
                        mechanism: AccessMechanism.maps.rawValue, errno: EFAULT))
                if try !zeros(segment.range.start, segment.range.count) { return report.finished() }
                continue
            }
            // The reader's owner goes back to the registry when the closure ends, on every path.
            let stopped: TransferReport? = try registry.lend(
                try registry.reader(remote: pid, range: segment.range, view: view)
            ) { reader in
                while reader.remain > 0 {
                    var writer = buffer.makeWriter()
                    let at = reader.cursor
                    do {
                        let n = try reader.readFallible(into: &writer, using: ladder)
                        report.moved += n
                        report.addMoved(at, n, ladder.lastMechanism)
                        if try !sink(at, UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<Int(n)])) {
                            return report.finished()
                        }
                    } catch VmIoError.partialCopy(let p) {
                        report.moved += p.copied
                        report.addMoved(at, p.copied, ladder.lastMechanism)
                        if p.copied > 0,
                            try !sink(at, UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<Int(p.copied)]))
                        {
                            return report.finished()
                        }
                        guard skipFaults, case .pageFault(let fault) = p.kind else {
                            report.stop = PartialCopy(
                                kind: p.kind, copied: report.moved, requested: range.count,
                                side: .source, space: .remote(pid: pid))
                            report.stopMechanism = ladder.lastMechanism.rawValue
                            report.stopErrno = ladder.lastErrno
                            return report
                        }
                        // Resume at the next page (or the segment's end).
                        let resume = min(reader.end, (fault | 0xfff) &+ 1)
                        report.addHole(
                            Hole(
                                address: fault, length: resume - fault, kind: p.kind,
                                mechanism: ladder.lastMechanism.rawValue, errno: ladder.lastErrno))
                        try reader.skip(resume - reader.cursor)
                        if try !zeros(fault, resume - fault) { return report.finished() }
                    }
                }
                return nil
            }
            if let stopped { return stopped }
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
                reason:
                    "\(locked.hex) is in a \(m.permissions) mapping\(m.path.isEmpty ? "" : " (\(m.path))") the target cannot write; --force writes through /proc/\(pid)/mem"
            )
        }
        var writer = try registry.writer(remote: pid, range: range, view: view)
        var report = WriteReport(address: address, requested: UInt64(bytes.count))
        // Unforced writes go through the ladder: the view says the range is writable, so a
        // process_vm_writev refused as a whole may be retried through /proc/PID/mem.
        ladder.writeFallback = true
        defer { ladder.writeFallback = false }
        let through: any CopyBackend
        do { through = force ? try ProcMemBackend(pid: pid, writable: true) : ladder } catch {
            try? registry.release(writer.finish())
            throw error
        }
        do {
            report.written = try bytes.withUnsafeBytes { raw in try writer.write(raw, using: through) }
        } catch VmIoError.partialCopy(let p) {
            report.written = p.copied
            try? registry.release(writer.finish())
            throw VmIoError.partialCopy(p)
        } catch {
            try? registry.release(writer.finish())
            throw error
        }
        guard verify else {
            try? registry.release(writer.finish())
            return report
        }
        // The owner comes back whole as a reader (write_to_read), and then to the registry.
        let back = try registry.lend(writer.readBack()) { reader in
            // Read back the way the bytes went: a forced write may land where the target
            // itself cannot read (a guard page).
            let readBack: any CopyBackend = force ? through : ladder
            return try reader.collect(using: readBack)
        }
        report.verified = true
        report.mismatch = zip(back, bytes).enumerated().first(where: { $0.element.0 != $0.element.1 })
            .map { address + UInt64($0.offset) }
        return report
    }

    /// Copies `count` bytes from `source` memory at `from` to this target at `to`
    /// (remote → remote through a bounded bounce buffer). With `skipFaults`, source
    /// pages that fault are stepped over (the destination's bytes there are left as
    /// they were) and reported as holes; a destination fault always stops the copy.
    ///
    /// The source is read down its ``ladder``. With `fillHoles` (best effort; implies
    /// `skipFaults`) the destination bytes of each source hole are overwritten with zeros.
    public func copy(
        from source: Target, at from: Address, to: Address, count: UInt64, skipFaults: Bool, fillHoles: Bool = false
    ) throws -> TransferReport {
        let skipFaults = skipFaults || fillHoles
        let srcRange = try AddressRange(start: from, count: count)
        let dstRange = try AddressRange(start: to, count: count)
        if let gap = view.firstAddress(in: dstRange) { throw TargetError.model(.rangeNotCovered(address: gap)) }
        // Writes fall back to /proc/PID/mem only where the view says the target may write.
        ladder.writeFallback = view.firstAddress(in: dstRange, where: { $0.permissions.write }) == nil
        defer { ladder.writeFallback = false }
        let route = CopyRoute(reader: source.ladder, writer: ladder)
        var report = TransferReport(requested: count)
        for segment in source.segments(of: srcRange) {
            let delta = segment.range.start - from
            guard segment.mapped else {
                if !skipFaults {
                    report.stop = source.gapFault(
                        at: segment.range.start, copied: report.moved,
                        requested: count, side: .source)
                    return report
                }
                report.addHole(
                    Hole(
                        address: segment.range.start, length: segment.range.count,
                        kind: .pageFault(address: segment.range.start),
                        mechanism: AccessMechanism.maps.rawValue, errno: EFAULT))
                if fillHoles, let kind = writeZeros(at: to + delta, count: segment.range.count) {
                    report.stop = PartialCopy(
                        kind: kind, copied: report.moved, requested: count,
                        side: .destination, space: .remote(pid: pid))
                    return report
                }
                continue
            }
            let reader = try source.registry.reader(remote: source.pid, range: segment.range, view: source.view)
            let stopped: TransferReport? = try source.registry.lend(reader) { reader in
                let writer = try registry.writer(
                    remote: pid, range: AddressRange(start: to + delta, count: segment.range.count), view: view)
                return try registry.lend(writer) { writer in
                    try copySegment(
                        &reader, &writer, source: source, from: from, to: to, skipFaults: skipFaults,
                        fillHoles: fillHoles, route: route, report: &report)
                }
            }
            if let stopped { return stopped }
        }
        return report
    }

    /// The loop of ``copy(from:at:to:count:skipFaults:fillHoles:)`` over one mapped source
    /// segment; the report to return when the copy stops, or nil to go on.
    private func copySegment(
        _ reader: inout VmReader, _ writer: inout VmWriter, source: Target, from: Address, to: Address,
        skipFaults: Bool, fillHoles: Bool, route: CopyRoute, report: inout TransferReport
    ) throws -> TransferReport? {
        let count = report.requested
        while reader.remain > 0 {
            let at = reader.cursor
            // The fault, if any, is taken out of the catch before it is handled (keeps
            // the typed-throws catch simple).
            var fault: PartialCopy?
            do {
                let n = try reader.readFallible(into: &writer, using: route)
                report.moved += n
                report.addMoved(at, n, source.ladder.lastMechanism)
            } catch {
                guard case .partialCopy(let p) = error else { throw error }
                fault = p
            }
            guard let p = fault else { continue }
            report.moved += p.copied
            report.addMoved(at, p.copied, source.ladder.lastMechanism)
            guard skipFaults, p.side == .source, case .pageFault(let faultAddress) = p.kind else {
                report.stop = PartialCopy(
                    kind: p.kind, copied: report.moved, requested: count,
                    side: p.side, space: p.space)
                report.stopMechanism =
                    p.side == .source
                    ? source.ladder.lastMechanism.rawValue
                    : ladder.lastWriteMechanism.rawValue
                report.stopErrno = p.side == .source ? source.ladder.lastErrno : ladder.lastWriteErrno
                return report
            }
            let resume = min(reader.end, (faultAddress | 0xfff) &+ 1)
            report.addHole(
                Hole(
                    address: faultAddress, length: resume - faultAddress, kind: p.kind,
                    mechanism: source.ladder.lastMechanism.rawValue, errno: source.ladder.lastErrno))
            try reader.skip(resume - reader.cursor)
            try writer.skip(resume - faultAddress)
            if fillHoles, let kind = writeZeros(at: to + (faultAddress - from), count: resume - faultAddress) {
                report.stop = PartialCopy(
                    kind: kind, copied: report.moved, requested: count,
                    side: .destination, space: .remote(pid: pid))
                return report
            }
        }
        return nil
    }
}

extension Target {
    /// Overwrites `count` bytes at `address` with zeros (best-effort copies fill the
    /// destination of a source hole); the fault that stopped it, if any.
    func writeZeros(at address: Address, count: UInt64) -> FaultKind? {
        let block = [UInt8](repeating: 0, count: Int(min(count, UInt64(bounceBufferSize))))
        var done: UInt64 = 0
        while done < count {
            let n = Int(min(count - done, UInt64(block.count)))
            let t = block.withUnsafeBytes {
                backend.write(pid: pid, at: address + done, from: UnsafeRawBufferPointer(rebasing: $0[0..<n]))
            }
            if let stop = t.stop { return stop }
            done += UInt64(n)
        }
        return nil
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

    /// Records a hole, merging it with the previous one when they touch and agree in kind
    /// and mechanism.
    mutating func addHole(_ hole: Hole) {
        if let last = holes.last, last.address + last.length == hole.address,
            case .pageFault = last.kind, case .pageFault = hole.kind,
            last.mechanism == hole.mechanism, last.errno == hole.errno
        {
            holes[holes.count - 1] = Hole(
                address: last.address, length: last.length + hole.length, kind: last.kind,
                mechanism: last.mechanism, errno: last.errno)
        } else {
            holes.append(hole)
        }
    }

    /// Records `count` bytes at `address` moved by `mechanism`, merged with the previous
    /// range when they touch and agree.
    mutating func addMoved(_ address: Address, _ count: UInt64, _ mechanism: AccessMechanism) {
        guard count > 0 else { return }
        if let last = ranges.last, last.address + last.length == address, last.mechanism == mechanism.rawValue {
            ranges[ranges.count - 1].length += count
        } else {
            ranges.append(MovedRange(address: address, length: count, mechanism: mechanism.rawValue))
        }
    }
}

extension AddressRange {
    /// `start..<end` for bounds already known to be ordered.
    init(clamping start: Address, _ end: Address) {
        self = (try? AddressRange(start: start, end: max(start, end))) ?? .empty
    }
}
