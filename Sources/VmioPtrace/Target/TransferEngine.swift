import Glibc
import SystemPackage
import VmIO

/// What a transfer does at an address it cannot read.
public enum FaultPolicy: Sendable, Hashable {
    /// End the transfer at the first fault (reported in ``TransferReport/stop``).
    case stop
    /// Step over each unreadable page (or gap between mappings), report it as a ``Hole``, go on.
    case skip
    /// As ``skip``, and hand each hole to the consumer as zeros, so it sees the whole range
    /// (best effort); the report still lists every hole.
    case fill

    /// The policy of the `skipFaults` / `fillHoles` flags (`fillHoles` implies `skipFaults`).
    public init(skipFaults: Bool, fillHoles: Bool = false) {
        self = fillHoles ? .fill : skipFaults ? .skip : .stop
    }
}

/// What the consumer of a transfer says after a chunk.
enum ChunkAnswer {
    /// It took the chunk and wants more.
    case more
    /// It took the chunk and wants no more (the transfer ends, finished).
    case enough
    /// It took only the first `taken` bytes, then `kind` stopped it (a copy's destination).
    case stopped(taken: Int, kind: FaultKind, space: AddressSpace, mechanism: AccessMechanism, errno: Int32)
}

/// The transfer engine: every read, copy, dump, search and restore of a target goes
/// through ``transfer(_:policy:chunkSize:consume:)`` (reads) or ``write(_:at:force:verify:)``.
/// A source range is read down the target's ``ProcessMemory`` one bounded chunk at a time,
/// under a read owner of the registry; each fault is classified once (Classification.swift)
/// and handled by the ``FaultPolicy``.
extension Target {
    /// Reads `range` chunk by chunk (at most `chunkSize` bytes of local memory, whatever the
    /// length) and hands each chunk, with its address, to `consume`; each hole, as it is
    /// found (before `.fill` hands its zeros), to `noteHole`. With `destination` (at least
    /// `range.count` bytes) each chunk is read straight to its place there, not into a buffer
    /// of its own, and handed on from there: a read into the caller's memory copies nothing twice.
    /// With `chunkBuffer` (at least `chunkSize` bytes, asked again after each chunk the consumer
    /// took) each chunk is read into the buffer it gives: a ring of buffers another thread drains.
    /// With `helper`, each large chunk is read in two halves at once (``HelperThread``).
    func transfer(
        _ range: AddressRange, policy: FaultPolicy, chunkSize: Int,
        into destination: UnsafeMutableRawBufferPointer? = nil,
        chunkBuffer: (() -> UnsafeMutableRawBufferPointer)? = nil,
        helper: HelperThread? = nil,
        hole noteHole: (Hole) -> Void = { _ in },
        consume: (Address, UnsafeRawBufferPointer) throws(TargetError) -> ChunkAnswer
    ) throws(TargetError) -> TransferReport {
        var report = TransferReport(requested: range.count)
        let chunk = Int(min(UInt64(max(chunkSize, 1)), max(range.count, 1)))
        precondition(destination.map { UInt64($0.count) >= range.count } ?? true, "destination shorter than the range")
        let buffer =
            destination == nil && chunkBuffer == nil
            ? UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096) : nil
        defer { buffer?.deallocate() }

        /// Where the `count` bytes at `address` go: their place in `destination`, or the buffer.
        func space(_ address: Address, _ count: Int) -> UnsafeMutableRawBufferPointer {
            guard let destination else {
                return UnsafeMutableRawBufferPointer(rebasing: (buffer ?? chunkBuffer!())[0..<count])
            }
            let offset = Int(address - range.start)
            return UnsafeMutableRawBufferPointer(rebasing: destination[offset..<offset + count])
        }

        /// Hands the `count` bytes at `address` (in ``space``) to the consumer; false when the transfer ends.
        func hand(_ address: Address, _ count: Int, _ mechanism: AccessMechanism?) throws(TargetError) -> Bool {
            switch try consume(address, UnsafeRawBufferPointer(space(address, count))) {
            case .more:
                if let mechanism { report.addMoved(address, UInt64(count), mechanism) }
                return true
            case .enough:
                if let mechanism { report.addMoved(address, UInt64(count), mechanism) }
                report = report.finished()
                return false
            case .stopped(let taken, let kind, let space, let failed, let errno):
                if let mechanism { report.addMoved(address, UInt64(taken), mechanism) }
                report.stop(kind, side: .destination, space: space, mechanism: failed, errno: errno)
                return false
            }
        }

        /// Records a hole and, with `.fill`, hands it on as zeros; false when the transfer ends.
        func hole(_ hole: Hole) throws(TargetError) -> Bool {
            report.addHole(hole)
            noteHole(hole)
            guard policy == .fill else { return true }
            var done: UInt64 = 0
            while done < hole.length {
                let n = Int(min(hole.length - done, UInt64(chunk)))
                space(hole.address + done, n).initializeMemory(as: UInt8.self, repeating: 0)
                guard try hand(hole.address + done, n, nil) else { return false }
                done += UInt64(n)
            }
            return true
        }

        // A view that may be stale is read again at its first gap or fault, once, and the
        // transfer goes on from there with the new one.
        var pending = range
        var retryAt: Address?
        while true {
            for segment in view.segments(of: pending) {
                guard segment.mapped else {
                    if viewMayBeStale {
                        retryAt = segment.range.start
                        break
                    }
                    let gap = Hole(
                        address: segment.range.start, length: segment.range.count,
                        kind: .pageFault(address: segment.range.start), mechanism: .maps, errno: EFAULT)
                    guard policy != .stop else {
                        report.stop(gap.kind, side: .source, space: .remote(pid: pid), mechanism: .maps, errno: EFAULT)
                        return report
                    }
                    guard try hole(gap) else { return report }
                    continue
                }
                let segmentReader: VmReader
                do { segmentReader = try registry.reader(remote: pid, range: segment.range, view: view) } catch {
                    throw .model(error)
                }
                // The reader's owner goes back to the registry when the segment ends, on every path.
                let goOn = try registry.lend(segmentReader) { (reader) throws(TargetError) -> Bool in
                    try readSegment(&reader)
                }
                guard goOn else {
                    if retryAt == nil { return report }  // the transfer ended
                    break
                }
            }
            guard let at = retryAt else { break }
            // Maps that cannot be read: the retry reports the fault through the old view.
            do { try refresh() } catch { viewMayBeStale = false }
            retryAt = nil
            pending = AddressRange(clamping: at, range.end)
        }
        // Faults stepped over in a target that then went away may be its memory being torn down.
        if report.holes.contains(where: { $0.mechanism != .maps }), !ProcFS.isAlive(pid) {
            report.stop(.targetGone, side: .source, space: .remote(pid: pid), mechanism: nil, errno: nil)
        }
        return report

        /// Reads one mapped segment; false when the transfer ends.
        func readSegment(_ reader: inout VmReader) throws(TargetError) -> Bool {
            while reader.remain > 0 {
                let at = reader.cursor
                let count = Int(min(reader.remain, UInt64(chunk)))
                let access = memory.read(
                    at: at, into: space(at, count), view: view, stoppedThread: peekThread, helper: helper)
                // The reader (and its owner) advances by exactly what moved.
                do throws(VmIoError) { try reader.skip(UInt64(access.moved)) } catch { throw .model(error) }
                if access.moved > 0, try !hand(at, access.moved, access.mechanism) { return false }
                guard let stop = access.stop else { continue }
                let faultAddress = at + Address(access.moved)
                if viewMayBeStale {
                    retryAt = faultAddress
                    return false
                }
                let kind = Classification.fault(stop, at: faultAddress, pid: pid)
                guard policy != .stop, case .pageFault = kind else {
                    report.stop(
                        settle(kind), side: .source, space: .remote(pid: pid), mechanism: stop.mechanism,
                        errno: stop.errno.rawValue)
                    return false
                }
                // Resume at the next page (or the segment's end).
                let resume = min(reader.end, (faultAddress | 0xfff) &+ 1)
                do throws(VmIoError) { try reader.skip(resume - faultAddress) } catch { throw .model(error) }
                let skipped = Hole(
                    address: faultAddress, length: resume - faultAddress, kind: kind, mechanism: stop.mechanism,
                    errno: stop.errno.rawValue)
                guard try hole(skipped) else { return false }
            }
            return true
        }
    }

    /// The fault that stops a transfer, settled: a page fault at an address the view maps
    /// may be the target exiting (a program frees its memory before it exits) or changing
    /// its mappings under the read. Gone when the target is gone; when the mapping has
    /// vanished from the maps, the target is given a moment (at most a second, ended by its
    /// exit) to show whether it is exiting. Other kinds are returned as they are.
    func settle(_ kind: FaultKind) -> FaultKind {
        guard case .pageFault(let address) = kind else { return kind }
        guard ProcFS.isAlive(pid) else { return .targetGone }
        guard view.translate(address) != nil else { return kind }  // never mapped: a plain fault
        do {
            if try ProcessMaps.read(pid: pid).translate(address) != nil { return kind }  // still mapped
        } catch {
            return error == .noSuchProcess(pid: pid) ? .targetGone : kind
        }
        let exited = (try? Sys.waitForExit(pid, within: .seconds(1))) ?? false
        return exited || !ProcFS.isAlive(pid) ? .targetGone : kind
    }

    /// Streams `range` of target memory through one reused local buffer of `chunkSize`
    /// bytes, handing each chunk to `sink` with its address (`sink` returns false to end the
    /// stream). Memory use stays flat for any length. Faults are handled by `policy`; the
    /// report says which mechanism moved each range (``TransferReport/ranges``) and which
    /// failed at each hole. Chunks of 256 KiB or more are read in two halves at once, the
    /// second on a helper thread that lives as long as the call (`sink` is always called on
    /// this thread).
    ///
    /// With `overlapped`, `sink` runs on a second thread while this one reads the next chunks
    /// into a ring of four buffers of `chunkSize` (so the time approaches the slower of reading
    /// and `sink`, not their sum); it is still called once a chunk, in order, never two at a
    /// time, and has returned for the last time when this returns. What `sink` throws ends the
    /// reading and is thrown here. A `sink` that saves a file this way writes while the target
    /// is read.
    public func stream(
        _ range: AddressRange, policy: FaultPolicy, chunkSize: Int = 1 << 20, overlapped: Bool = false,
        sink: (Address, UnsafeRawBufferPointer) throws(TargetError) -> Bool
    ) throws(TargetError) -> TransferReport {
        guard overlapped else {
            let splits = Swift.min(UInt64(chunkSize), range.count) >= UInt64(ProcessMemory.splitReadLimit)
            let helper = splits && !Self.oneThread ? HelperThread() : nil
            defer { helper?.stop() }
            return try transfer(range, policy: policy, chunkSize: chunkSize, helper: helper) {
                (at, chunk) throws(TargetError) in
                try sink(at, chunk) ? .more : .enough
            }
        }
        return try transferOverlapped(range, policy: policy, chunkSize: chunkSize) { (item) throws(TargetError) in
            guard case .bytes(let at, let chunk) = item else { return true }
            return try sink(at, chunk)
        }
    }

    /// ``stream(_:policy:chunkSize:overlapped:sink:)`` with the policy spelled as the command-line flags.
    ///
    /// Throws as ``stream(_:policy:chunkSize:overlapped:sink:)`` does.
    public func stream(
        _ range: AddressRange, skipFaults: Bool, fillHoles: Bool = false, chunkSize: Int = 1 << 20,
        sink: (Address, UnsafeRawBufferPointer) throws(TargetError) -> Bool
    ) throws(TargetError) -> TransferReport {
        try stream(
            range, policy: FaultPolicy(skipFaults: skipFaults, fillHoles: fillHoles), chunkSize: chunkSize, sink: sink)
    }

    /// Copies `count` bytes from `source` memory at `from` to this target at `to` (remote →
    /// remote through a bounded bounce buffer). The source is read under `policy`: with
    /// `.skip` the destination's bytes at a source hole are left as they were, with `.fill`
    /// they are overwritten with zeros. A destination fault always stops the copy. A
    /// destination the target cannot write is refused as a write is (`checkWritable`),
    /// unless `force`, which writes through `/proc/PID/mem`; otherwise writes fall back to
    /// `/proc/PID/mem` (the view says this target may write there).
    ///
    /// Throws ``TargetError/model(_:)`` when a range overflows 64 bits, or part of the destination
    /// range is in no mapping (`rangeNotCovered`) or held by another owner (`ownerConflict`);
    /// ``TargetError/permissionDenied(pid:operation:reason:)`` when a destination mapping is not
    /// writable and `force` is not given, or `/proc/PID/mem` does not open for writing (`open(2)`);
    /// and what reading the source throws (``stream(_:policy:chunkSize:overlapped:sink:)``). A fault that ends
    /// the copy is not thrown: the report's `stop` names it.
    public func copy(
        from source: Target, at from: Address, to: Address, count: UInt64, policy: FaultPolicy, force: Bool = false
    ) throws(TargetError) -> TransferReport {
        let sourceRange: AddressRange, destinationRange: AddressRange
        do {
            sourceRange = try AddressRange(start: from, count: count)
            destinationRange = try AddressRange(start: to, count: count)
        } catch { throw .model(error) }
        // As `write`: a destination the target cannot write is refused before anything moves.
        try checkCovered(destinationRange, writableUnless: force)
        let route: ProcessMemory.WriteRoute = force ? .forced : .fallback
        let destination: VmWriter
        do { destination = try registry.writer(remote: pid, range: destinationRange, view: view) } catch {
            throw .model(error)
        }
        // The writer's owner goes back to the registry when the copy ends, on every path.
        return try registry.lend(destination) { (writer) throws(TargetError) -> TransferReport in
            try copy(from: source, sourceRange, to: &writer, route: route, policy: policy)
        }
    }

    /// The copy of `range` of `source` through `writer` (over the destination range).
    private func copy(
        from source: Target, _ range: AddressRange, to writer: inout VmWriter, route: ProcessMemory.WriteRoute,
        policy: FaultPolicy
    ) throws(TargetError) -> TransferReport {
        let from = range.start, to = writer.cursor
        return try source.transfer(range, policy: policy, chunkSize: bounceBufferSize) {
            (at, chunk) throws(TargetError) -> ChunkAnswer in
            let destination = to + (at - from)
            // The writer (and its owner) steps over source holes left as they were.
            do throws(VmIoError) { try writer.skip(destination - writer.cursor) } catch { throw .model(error) }
            let access = memory.write(at: destination, from: chunk, route: route)
            do throws(VmIoError) { try writer.skip(UInt64(access.moved)) } catch { throw .model(error) }
            guard let stop = access.stop else { return .more }
            let kind = settle(Classification.fault(stop, at: destination + Address(access.moved), pid: pid))
            return .stopped(
                taken: access.moved, kind: kind, space: .remote(pid: pid), mechanism: stop.mechanism,
                errno: stop.errno.rawValue)
        }
    }

    /// ``copy(from:at:to:count:policy:force:)`` with the policy spelled as the command-line flags.
    ///
    /// Throws as ``copy(from:at:to:count:policy:force:)`` does.
    public func copy(
        from source: Target, at from: Address, to: Address, count: UInt64, skipFaults: Bool, fillHoles: Bool = false,
        force: Bool = false
    ) throws(TargetError) -> TransferReport {
        try copy(
            from: source, at: from, to: to, count: count,
            policy: FaultPolicy(skipFaults: skipFaults, fillHoles: fillHoles), force: force)
    }

    /// The checks of a write or a copy into this target: `range` lies in mappings of the view
    /// (else ``VmIoError/rangeNotCovered(address:)``), which the target can write unless
    /// `force` (``checkWritable(_:force:)``); a view that may be stale is read again before
    /// either refuses.
    func checkCovered(_ range: AddressRange, writableUnless force: Bool) throws(TargetError) {
        try withFreshViewOnFailure { () throws(TargetError) in
            if let gap = view.firstAddress(in: range) { throw .model(.rangeNotCovered(address: gap)) }
            try checkWritable(range, force: force)
        }
    }

    /// The one check of a write or a copy into this target: a mapping the target cannot
    /// write in `range` is refused (nothing written) unless `force`, whose `/proc/PID/mem`
    /// is then opened for writing.
    func checkWritable(_ range: AddressRange, force: Bool) throws(TargetError) {
        if !force, let locked = view.firstAddress(in: range, where: { $0.permissions.write }),
            let m = view.translate(locked)?.mapping
        {
            throw .permissionDenied(
                pid: pid, operation: .write,
                reason: "\(locked.hex) is in a \(m.permissions) mapping\(m.path.isEmpty ? "" : " (\(m.path))") "
                    + "the target cannot write; --force writes through /proc/\(pid)/mem")
        }
        if force {
            do { try memory.prepareForcedWrites() } catch {
                throw Classification.error(error, pid: pid, operation: .openMemory(pid: pid, writable: true))
            }
        }
    }

    /// Writes `bytes` at `address`. The whole range must lie in mappings of the view
    /// (bad input otherwise, and nothing is written). Mappings the target cannot write
    /// are refused unless `force`, which writes through `/proc/PID/mem`. With `verify`,
    /// the written range is handed back through the owner's write-to-read handover and
    /// read back; a mismatch is reported as the first differing address.
    ///
    /// Throws ``TargetError/model(_:)`` when the range overflows 64 bits, or part of it is in no
    /// mapping (`rangeNotCovered`) or held by another owner (`ownerConflict`);
    /// ``TargetError/permissionDenied(pid:operation:reason:)`` when a mapping is not writable and
    /// `force` is not given, or `/proc/PID/mem` does not open for writing; and
    /// ``TargetError/transferStopped(_:)`` when the write stops at a fault part-way (the bytes
    /// before it are written) or, with `verify`, the read-back does.
    public func write(_ bytes: [UInt8], at address: Address, force: Bool, verify: Bool) throws(TargetError)
        -> WriteReport
    {
        let range: AddressRange
        do { range = try AddressRange(start: address, count: UInt64(bytes.count)) } catch { throw .model(error) }
        try checkCovered(range, writableUnless: force)
        var writer: VmWriter
        do { writer = try registry.writer(remote: pid, range: range, view: view) } catch { throw .model(error) }
        var report = WriteReport(address: address, requested: UInt64(bytes.count))
        // Unforced writes may fall back to /proc/PID/mem: the view says the range is writable.
        let access = bytes.withUnsafeBytes { memory.write(at: address, from: $0, route: force ? .forced : .fallback) }
        do { try writer.skip(UInt64(access.moved)) } catch {
            try? registry.release(writer.finish())
            throw .model(error)
        }
        report.written = UInt64(access.moved)
        if let stop = access.stop {
            try? registry.release(writer.finish())
            let at = address + Address(access.moved)
            throw .transferStopped(
                PartialCopy(
                    kind: settle(Classification.fault(stop, at: at, pid: pid)), copied: report.written,
                    requested: report.requested, side: .destination, space: .remote(pid: pid)))
        }
        guard verify else {
            try? registry.release(writer.finish())
            return report
        }
        // The range comes back as a reader through the owner's write-to-read handover, and
        // then to the registry.
        let back = try registry.lend(writer.readBack()) { (reader) throws(TargetError) -> [UInt8] in
            try readBack(&reader, forced: force)
        }
        report.verified = true
        report.mismatch = zip(back, bytes).enumerated().first(where: { $0.element.0 != $0.element.1 })
            .map { address + UInt64($0.offset) }
        return report
    }

    /// Reads all that `reader` covers, the way written bytes went (a forced write may land
    /// where the target itself cannot read: a guard page), all or nothing.
    private func readBack(_ reader: inout VmReader, forced: Bool) throws(TargetError) -> [UInt8] {
        let at = reader.cursor, count = Int(reader.remain)
        var bytes = [UInt8](repeating: 0, count: count)
        let access = bytes.withUnsafeMutableBytes { raw in
            forced
                ? memory.readForced(at: at, into: raw)
                : memory.read(at: at, into: raw, view: view, stoppedThread: peekThread)
        }
        if let stop = access.stop {
            throw .transferStopped(
                PartialCopy(
                    kind: settle(Classification.fault(stop, at: at + Address(access.moved), pid: pid)),
                    copied: UInt64(access.moved), requested: UInt64(count), side: .source, space: .remote(pid: pid)))
        }
        do { try reader.skip(UInt64(access.moved)) } catch { throw .model(error) }
        return bytes
    }
}

extension MemView {
    /// The covered runs of `range` in the view, in order, with the gaps between them.
    func segments(of range: AddressRange) -> [(range: AddressRange, mapped: Bool)] {
        var out: [(AddressRange, Bool)] = []
        var next = range.start
        for m in mappings(intersecting: range) {
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
}

extension AddressRange {
    /// `start..<end` for bounds already known to be ordered.
    init(clamping start: Address, _ end: Address) {
        self = (try? AddressRange(start: start, end: max(start, end))) ?? .empty
    }
}
