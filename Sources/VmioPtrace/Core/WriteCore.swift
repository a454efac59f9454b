import Glibc
import SystemPackage
import VmIO

/// How ``Target/writeCore(to:options:progress:)`` writes a core.
public struct CoreOptions: Hashable, Sendable {
    /// Which mappings carry their contents; nil for the target's own `/proc/PID/coredump_filter`.
    public var filter: CoredumpFilter?
    /// Leave all-zero pages as holes of the file (no disk blocks), not written zeros.
    public var sparse = false
    /// Replace an existing file at the path.
    public var replace = false
    /// Stop every thread while registers and memory are taken (a consistent snapshot). When
    /// false the memory is read while the target runs, and each thread is stopped alone, only
    /// for its registers.
    public var stop = true

    /// Options: the filter (nil: the target's own `coredump_filter`), sparse, replace, stop.
    public init(filter: CoredumpFilter? = nil, sparse: Bool = false, replace: Bool = false, stop: Bool = true) {
        self.filter = filter
        self.sparse = sparse
        self.replace = replace
        self.stop = stop
    }
}

/// One `PT_LOAD` of a core: the mapping, what the core carries of it, and where.
public struct CoreSegment: Hashable, Sendable {
    /// The mapping it covers.
    public var mapping: Mapping
    /// What the core carries of it.
    public var content: CoreContent
    /// Where its bytes start in the file, and how many there are (0 for ``CoreContent/empty(_:)``).
    public var fileOffset: UInt64
    /// The bytes it has in the file.
    public var fileSize: UInt64
}

/// What writing a core did.
public struct CoreReport: Sendable {
    /// The core file written.
    public var path: String
    /// The process it is a core of.
    public var pid: Int32
    /// Its ELF class, byte order and machine.
    public var format: CoreFormat
    /// Whether every thread was stopped for the whole core (a consistent snapshot).
    public var stopped: Bool
    /// The filter that decided what each mapping's segment carries.
    public var filter: CoredumpFilter
    /// The threads in the core, in note order (the target's namespace), the first selected first.
    public var threads: [Int32]
    /// One `PT_LOAD` a mapping, in address order.
    public var segments: [CoreSegment]
    /// Bytes of memory the core carries (holes included).
    public var memoryBytes: UInt64
    /// Ranges that could not be read: zeros in the core.
    public var holes: [Hole]
    /// The file's length, and what it takes on disk (`st_blocks`), which `--sparse` makes smaller.
    public var fileSize: UInt64
    /// What the file takes on disk (`st_blocks` × 512).
    public var diskBytes: UInt64
    /// Every byte of every segment that carries contents was read.
    public var isComplete: Bool { holes.isEmpty }
}

extension Target {
    /// Writes an ELF core file of the target at `path`: its threads' registers, its auxiliary
    /// vector, its mapped files and the contents of its mappings as `/proc/PID/coredump_filter`
    /// (or ``CoreOptions/filter``) selects them, in the target's ELF class and byte order.
    ///
    /// The file is written under a temporary name in its directory and renamed into place
    /// when complete (``OutputFile``): an interrupted core, or one of a target that exits,
    /// leaves nothing. Memory goes through a ring of four 1 MiB buffers (with
    /// ``FaultPolicy/skip``, written on a second thread while the next are read; on a tmpfs,
    /// and without `sparse`, the reading thread makes the file's next pages while it waits),
    /// so the tool's memory stays flat for any size; pages that cannot be read are zeros in
    /// the core and ``CoreReport/holes``. The target is stopped
    /// while it is taken unless it already is or `options.stop` is false, and let go after.
    /// ARCHITECTURE.md describes the path of a core.
    /// `progress` is told the bytes of memory written so far and the total, after each chunk.
    ///
    /// Throws what ``stop(timeout:)`` and ``refresh()`` throw, ``TargetError/file(path:_:)`` when
    /// the core cannot be created, written or renamed into place (``OutputFile``), the errors of
    /// reading the threads' registers (`ptrace(2)`) and the auxiliary vector, and
    /// ``TargetError/transferStopped(_:)`` when a read stops other than at a fault (the process gone).
    public func writeCore(
        to path: String, options: CoreOptions = CoreOptions(), progress: ((UInt64, UInt64) -> Void)? = nil
    ) throws(TargetError) -> CoreReport {
        let stoppedHere = options.stop && !isStopped
        if stoppedHere {
            try stop()
            try refresh()
        }
        defer { if stoppedHere { resume() } }
        let format = CoreFormat(abi)
        let filter = options.filter ?? Self.coredumpFilter(pid: pid)
        let facts = try mappingFacts()
        let threads = try threadFacts(format: format)
        let auxv = (try? ProcFS.readAll("/proc/\(pid)/auxv")) ?? []
        let notes = format.notes(
            process: processFacts(), threads: threads, auxv: auxv, files: Self.fileEntries(view.mappings))
        var segments = facts.map { fact in
            CoreSegment(
                mapping: fact.mapping,
                content: fact.content(filter: filter) { startsWithELFHeader(fact.mapping) },
                fileOffset: 0, fileSize: 0)
        }
        let layout = CoreLayout(format: format, segments: &segments, notesSize: UInt64(notes.count))
        let file = try OutputFile(path: path, replace: options.replace)
        try writeHead(file, layout: layout, segments: segments, notes: notes)
        var holes: [Hole] = []
        var done: UInt64 = 0
        let total = segments.reduce(0) { $0 + $1.fileSize }
        // On a tmpfs the reader makes the next pages while it waits (not where --sparse leaves holes).
        let pages = options.sparse ? nil : file.pagesAhead(length: layout.fileSize)
        for segment in segments where segment.fileSize > 0 {
            let range = AddressRange(clamping: segment.mapping.start, segment.mapping.start + segment.fileSize)
            let ahead = pages?.ahead(base: range.start, fileOffset: segment.fileOffset)
            // Written on a second thread while the next chunks are read.
            let report = try transferOverlapped(range, policy: .skip, chunkSize: 1 << 20, ahead: ahead) {
                (item) throws(TargetError) in
                guard case .bytes(let at, let chunk) = item else { return true }
                let offset = segment.fileOffset + (at - range.start)
                if options.sparse {
                    try Self.writeNonZeroPages(chunk, to: file, at: offset)
                } else {
                    try file.write(chunk, at: offset)
                }
                done += UInt64(chunk.count)
                progress?(done, total)
                return true
            }
            // A target gone mid-way (or any stop but a page fault) ends the core: nothing is kept.
            if let stop = report.stop { throw .transferStopped(stop) }
            holes += report.holes
        }
        try file.finish(length: layout.fileSize)
        // Not fsynced: the rename makes it complete or absent for every reader, and a flush of
        // gigabytes would cost seconds that neither the kernel's cores nor gdb's pay.
        try file.commit(durable: false)
        let status = try? Sys.fileStatus(path)
        return CoreReport(
            path: path, pid: pid, format: format, stopped: isStopped, filter: filter,
            threads: threads.map(\.ids.pid), segments: segments,
            memoryBytes: total, holes: holes, fileSize: layout.fileSize,
            diskBytes: status.map { UInt64($0.st_blocks) * 512 } ?? layout.fileSize)
    }

    /// The ELF header, the program headers and the notes, at the start of the file (and the
    /// one section header of extended numbering at its end).
    private func writeHead(_ file: OutputFile, layout: CoreLayout, segments: [CoreSegment], notes: [UInt8])
        throws(TargetError)
    {
        let format = layout.format
        var head = format.header(programHeaders: layout.programHeaders, sectionHeaderOffset: layout.sectionOffset)
        head += format.programHeader(
            .init(
                type: CoreFormat.Segment.note, flags: 0, offset: layout.notesOffset, address: 0,
                fileSize: UInt64(notes.count), memorySize: 0, alignment: 4))
        for s in segments {
            head += format.programHeader(
                .init(
                    type: CoreFormat.Segment.load, flags: CoreFormat.Segment.flags(of: s.mapping.permissions),
                    offset: s.fileOffset, address: s.mapping.start, fileSize: s.fileSize,
                    memorySize: s.mapping.range.count, alignment: CoreLayout.pageSize))
        }
        head += notes
        try head.withUnsafeBytes { raw in Result { () throws(TargetError) in try file.write(raw, at: 0) } }.get()
        if layout.programHeaders >= CoreFormat.extendedNumbering {
            let section = format.extendedNumberingSection(programHeaders: layout.programHeaders)
            try section.withUnsafeBytes { raw in
                Result { () throws(TargetError) in try file.write(raw, at: layout.sectionOffset) }
            }.get()
        }
    }

    /// Writes the pages of `chunk` that hold a non-zero byte; the others stay holes of the file.
    private static func writeNonZeroPages(_ chunk: UnsafeRawBufferPointer, to file: OutputFile, at offset: UInt64)
        throws(TargetError)
    {
        let page = Int(CoreLayout.pageSize)
        var runStart: Int?
        var at = 0
        while at <= chunk.count {
            let zero =
                at == chunk.count || isZero(UnsafeRawBufferPointer(rebasing: chunk[at..<min(at + page, chunk.count)]))
            if zero, let start = runStart {
                try file.write(UnsafeRawBufferPointer(rebasing: chunk[start..<at]), at: offset + UInt64(start))
                runStart = nil
            } else if !zero && runStart == nil {
                runStart = at
            }
            at += page
        }
    }

    /// Whether every byte of `bytes` (at most a page) is zero.
    private static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        return zeroPage.withUnsafeBytes { zeros in memcmp(base, zeros.baseAddress!, bytes.count) == 0 }
    }

    private static let zeroPage = [UInt8](repeating: 0, count: Int(CoreLayout.pageSize))

    // MARK: facts

    /// The target's coredump filter (`/proc/PID/coredump_filter`, hexadecimal); the kernel's
    /// default when it cannot be read.
    static func coredumpFilter(pid: Int32) -> CoredumpFilter {
        guard let text = try? ProcFS.readText("/proc/\(pid)/coredump_filter"),
            let bits = UInt32(text.trimmingCharacters(in: " \n"), radix: 16)
        else { return .kernelDefault }
        return CoredumpFilter(rawValue: bits)
    }

    /// The view's mappings with their smaps facts (`VmFlags`, anonymous pages); without them
    /// when smaps cannot be read.
    func mappingFacts() throws(TargetError) -> [CoreMappingFacts] {
        let usages: [MappingUsage]
        do { usages = try ProcessSmaps.read(pid: pid) } catch {
            if error.kind == .targetGone { throw error }
            usages = []
        }
        let byStart = Dictionary(usages.map { ($0.mapping.start, $0) }, uniquingKeysWith: { a, _ in a })
        return view.mappings.map { m in
            guard let u = byStart[m.start], u.mapping.end == m.end else { return CoreMappingFacts(mapping: m) }
            return CoreMappingFacts(mapping: m, vmFlags: u.vmFlags, anonymousBytes: u.anonymous + u.swap)
        }
    }

    /// Whether a mapping's first bytes are an ELF header's magic (read from the target).
    private func startsWithELFHeader(_ mapping: Mapping) -> Bool {
        var magic: [UInt8] = []
        let range = AddressRange(clamping: mapping.start, min(mapping.end, mapping.start + 4))
        _ = try? stream(range, policy: .stop) { (_, chunk) throws(TargetError) in
            magic += chunk
            return true
        }
        return magic == [0x7f, 0x45, 0x4c, 0x46]
    }

    /// `NT_FILE`'s entries: every mapping of a file, with the kernel's ` (deleted)` mark.
    static func fileEntries(_ mappings: [Mapping]) -> [CoreFileEntry] {
        mappings.filter { $0.isFileBacked && $0.inode != 0 }.map {
            CoreFileEntry(
                start: $0.start, end: $0.end, offset: $0.offset, name: $0.path + ($0.isDeleted ? " (deleted)" : ""))
        }
    }

    /// The process's `NT_PRPSINFO` facts, ids in its own pid namespace.
    func processFacts() -> CoreProcessFacts {
        var p = CoreProcessFacts()
        let status = (try? ProcFS.status(pid)) ?? [:]
        let fields = Self.statFields("/proc/\(pid)/stat")
        // The state from before this tool's stop (a core shows the process as it ran).
        p.state = tracer?.initialState.state.first ?? fields.first?.first ?? "R"
        p.flags = fields.count > 6 ? UInt64(fields[6]) ?? 0 : 0
        p.nice = fields.count > 16 ? Int32(fields[16]) ?? 0 : 0
        p.uid = status["Uid"].flatMap { UInt32($0.split(separator: "\t").first ?? "") } ?? 0
        p.gid = status["Gid"].flatMap { UInt32($0.split(separator: "\t").first ?? "") } ?? 0
        p.ids = Self.namespaceIDs(pid: pid, status: status)
        p.command = ProcFS.command(pid)
        p.arguments = (try? ProcFS.readAll("/proc/\(pid)/cmdline")) ?? []
        return p
    }

    /// The threads' facts, the main thread first; each thread's registers are taken in a
    /// ptrace stop (its own, alone, when the target is not stopped).
    func threadFacts(format: CoreFormat) throws(TargetError) -> [CoreThreadFacts] {
        var tids: [Int32]
        if let tracer {
            tids = tracer.threads
        } else {
            do { tids = try ProcFS.threads(pid) } catch {
                throw Classification.error(error, pid: pid, operation: .listThreads)
            }
        }
        tids.sort { ($0 == pid ? 0 : 1, $0) < ($1 == pid ? 0 : 1, $1) }
        let ticks = UInt64(max(Sys.clockTicksPerSecond, 1))
        var threads: [CoreThreadFacts] = []
        var lastFailure: TargetError?
        for tid in tids {
            var t = CoreThreadFacts()
            let taskPath = "/proc/\(pid)/task/\(tid)"
            let status = ProcFS.parseStatus((try? ProcFS.readText(taskPath + "/status")) ?? "")
            t.ids = Self.namespaceIDs(pid: tid, status: status)
            t.pendingSignals = status["SigPnd"].flatMap { UInt64($0, radix: 16) } ?? 0
            t.blockedSignals = status["SigBlk"].flatMap { UInt64($0, radix: 16) } ?? 0
            let fields = Self.statFields(taskPath + "/stat")
            t.times = (11...14).map { k in
                (fields.count > k ? UInt64(fields[k]) ?? 0 : 0) * 1_000_000 / ticks
            }
            let taken: Bool
            do {
                taken = try withThreadStopped(tid) { () throws(TargetError) -> Bool in
                    try takeRegisters(of: tid, into: &t, format: format)
                    return true
                }
            } catch {
                // A thread that exited meanwhile is left out, and so is one that did not stop in
                // time (uninterruptible sleep) while the target runs; the process gone ends the core.
                switch error {
                case .noSuchThread, .attachTimeout: lastFailure = error
                default: throw error
                }
                taken = false
            }
            if taken { threads.append(t) }
        }
        if threads.isEmpty { throw lastFailure ?? .noSuchProcess(pid: pid) }
        return threads
    }

    /// The register sets of a thread held in a ptrace stop, in the layout of its own ABI.
    private func takeRegisters(of tid: Int32, into t: inout CoreThreadFacts, format: CoreFormat) throws(TargetError) {
        do {
            t.generalRegisters = try Sys.ptraceGetRegisterSet(tid, type: CoreNoteType.prstatus, capacity: 512)
        } catch {
            if error == .noSuchProcess {
                throw ProcFS.isAlive(pid) ? .noSuchThread(pid: pid, tid: tid) : .noSuchProcess(pid: pid)
            }
            throw .system(call: "ptrace(PTRACE_GETREGSET, \(tid), NT_PRSTATUS)", errno: error)
        }
        // The other sets are optional: a kernel or CPU without one simply has none.
        var sets: [(UInt32, Int)] = [(CoreNoteType.fpregset, 512)]
        if !format.is64Bit { sets += [(CoreNoteType.prxfpreg, 512), (CoreNoteType.i386TLS, 256)] }
        sets.append((CoreNoteType.x86XState, 64 << 10))
        for (type, capacity) in sets {
            if let bytes = try? Sys.ptraceGetRegisterSet(tid, type: type, capacity: capacity), !bytes.isEmpty {
                t.registerSets.append(.init(type: type, bytes: bytes))
            }
        }
        let signal = tracer?.stoppedThreads[tid] ?? 0
        if signal != 0 {
            t.signal = signal
            t.signalInfo = try? Sys.ptraceGetSignalInfo(tid)
        }
    }

    /// The fields of a `stat` file after the command (`STATE PPID PGRP SESSION …`).
    static func statFields(_ path: String) -> [Substring] {
        guard let text = try? ProcFS.readText(path), let close = text.lastIndex(of: ")") else { return [] }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// The pid, parent, process group and session of `status`, in the task's own (innermost)
    /// pid namespace: the last of `NSpid`, `NSpgid`, `NSsid`; the parent's likewise, 0 when
    /// it lies outside that namespace.
    static func namespaceIDs(pid: Int32, status: [String: String]) -> CoreTaskIDs {
        func innermost(_ key: String, _ fallback: String) -> (Int32, Int) {
            let ids = (status[key] ?? status[fallback] ?? "").split(whereSeparator: { $0 == "\t" || $0 == " " })
            return (ids.last.flatMap { Int32($0) } ?? 0, ids.count)
        }
        let (own, depth) = innermost("NSpid", "Pid")
        let (group, _) = innermost("NSpgid", "Pgid")
        let (session, _) = innermost("NSsid", "Sid")
        let parentPid = Int32(status["PPid"] ?? "") ?? 0
        var parent = parentPid
        if depth > 1, parentPid > 0 {
            let ids = ProcFS.nspid(parentPid)
            parent = ids.count == depth ? ids[depth - 1] : 0
        }
        return CoreTaskIDs(pid: own == 0 ? pid : own, parent: parent, processGroup: group, session: session)
    }
}

/// Where each part of a core lies in the file: the ELF header, the program headers (the
/// notes' first, then one a mapping), the notes, then from the next page on the contents
/// of each segment that carries any, in address order, each page-aligned.
struct CoreLayout {
    static let pageSize: UInt64 = 4096
    let format: CoreFormat
    let programHeaders: Int
    let notesOffset: UInt64
    /// The section header of extended numbering (only with `PN_XNUM` program headers or more).
    let sectionOffset: UInt64
    let fileSize: UInt64

    /// Lays out `segments`, setting each one's file offset and size.
    init(format: CoreFormat, segments: inout [CoreSegment], notesSize: UInt64) {
        self.format = format
        programHeaders = segments.count + 1
        notesOffset = UInt64(format.headerSize + programHeaders * format.programHeaderSize)
        var offset = (notesOffset + notesSize + Self.pageSize - 1) / Self.pageSize * Self.pageSize
        for i in segments.indices {
            let size: UInt64
            switch segments[i].content {
            case .whole: size = segments[i].mapping.range.count
            case .firstPage: size = min(Self.pageSize, segments[i].mapping.range.count)
            case .empty: size = 0
            }
            segments[i].fileOffset = offset
            segments[i].fileSize = size
            offset += (size + Self.pageSize - 1) / Self.pageSize * Self.pageSize
        }
        sectionOffset = offset
        fileSize = offset + (programHeaders >= CoreFormat.extendedNumbering ? UInt64(format.sectionHeaderSize) : 0)
    }
}
