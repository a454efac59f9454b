import CUnwind
import CVmio
import Glibc
import SystemPackage
import VmIO

/// A few whole pages of one target's memory, read with `process_vm_readv`, serving the
/// word-sized reads the unwinder makes (each a `PTRACE_PEEKDATA` syscall otherwise).
///
/// Valid only while the memory it caches cannot change: the unwinder empties it before
/// each thread, whose stack is then held still by the ptrace stop (code and unwind tables
/// do not change under a running program). A page that `process_vm_readv` refuses is
/// read word by word with `PTRACE_PEEKDATA` on ``tid`` instead (ptrace may read what the
/// mapping's permissions hide).
public final class PageCache {
    /// The size of a cached page.
    public static let pageSize = 4096
    /// What the cache has done, for tests and benchmarks.
    public struct Stats: Hashable, Sendable {
        /// Words asked for (what ``UnwindMemoryAccess/peekdata`` makes one syscall each).
        public var wordReads = 0
        /// Words served from a cached page.
        public var hits = 0
        /// `process_vm_readv` calls, one a page.
        public var pageReads = 0
        /// Words read with `PTRACE_PEEKDATA` after `process_vm_readv` refused their page.
        public var peeks = 0
        /// Reads that failed both ways.
        public var failures = 0
    }

    /// The process whose memory the cache reads.
    public let pid: Int32
    /// The most pages it keeps.
    public let capacity: Int
    /// The thread in a ptrace stop that `PTRACE_PEEKDATA` falls back on.
    public var tid: Int32
    /// What it has done since the last ``resetStats()``.
    public private(set) var stats = Stats()
    /// A read found the target gone (`ESRCH`).
    public private(set) var sawTargetGone = false

    private let storage: UnsafeMutableRawPointer
    /// The page address held by each slot; `UInt64.max` for an empty slot.
    private var tags: [UInt64]
    private var lastSlot = 0
    private var victim = 0

    /// A cache of at most `pages` pages of process `pid`'s memory.
    public init(pid: Int32, pages: Int = 16) {
        self.pid = pid
        self.tid = pid
        capacity = max(1, pages)
        storage = .allocate(byteCount: capacity * Self.pageSize, alignment: Self.pageSize)
        tags = Array(repeating: .max, count: capacity)
    }

    deinit { storage.deallocate() }

    /// Forgets every cached page.
    public func invalidate() {
        for i in tags.indices { tags[i] = .max }
        sawTargetGone = false
    }

    /// Sets every count of ``stats`` back to zero.
    public func resetStats() { stats = Stats() }

    /// The 8 bytes at `address` (any alignment, possibly across two pages); nil when unreadable.
    public func word(at address: UInt64) -> UInt64? {
        stats.wordReads += 1
        let page = address & ~UInt64(Self.pageSize - 1)
        let offset = Int(address - page)
        if offset <= Self.pageSize - 8 {
            if let slot = slot(for: page) {
                return (storage + slot * Self.pageSize + offset).loadUnaligned(as: UInt64.self)
            }
            return peek(address)
        }
        var bytes: UInt64 = 0
        let head = Self.pageSize - offset
        guard let first = slot(for: page) else { return peek(address) }
        withUnsafeMutableBytes(of: &bytes) { out in
            out.baseAddress!.copyMemory(from: storage + first * Self.pageSize + offset, byteCount: head)
        }
        guard let second = slot(for: page &+ UInt64(Self.pageSize)) else { return peek(address) }
        withUnsafeMutableBytes(of: &bytes) { out in
            (out.baseAddress! + head).copyMemory(from: storage + second * Self.pageSize, byteCount: 8 - head)
        }
        return bytes
    }

    /// The slot holding `page`, reading it in if needed; nil when it cannot be read.
    private func slot(for page: UInt64) -> Int? {
        if tags[lastSlot] == page {
            stats.hits += 1
            return lastSlot
        }
        if let i = tags.firstIndex(of: page) {
            stats.hits += 1
            lastSlot = i
            return i
        }
        let slot = victim
        victim = (victim + 1) % capacity
        tags[slot] = .max
        stats.pageReads += 1
        let local = UnsafeMutableRawBufferPointer(start: storage + slot * Self.pageSize, count: Self.pageSize)
        do {
            guard try Sys.processVMReadv(pid: pid, into: local, from: page) == Self.pageSize else { return nil }
        } catch {
            if error == .noSuchProcess { sawTargetGone = true }
            return nil
        }
        tags[slot] = page
        lastSlot = slot
        return slot
    }

    private func peek(_ address: UInt64) -> UInt64? {
        if sawTargetGone {
            stats.failures += 1
            return nil
        }
        stats.peeks += 1
        guard let word = try? Sys.ptracePeekData(tid, at: address) else {
            // ESRCH here may only mean "not stopped by us": not proof the target is gone.
            stats.failures += 1
            return nil
        }
        return word
    }
}

/// How the unwinder reads the target's memory.
public enum UnwindMemoryAccess: String, Sendable, CaseIterable {
    /// Whole pages through `process_vm_readv`, kept in a ``PageCache``.
    case cached
    /// One `PTRACE_PEEKDATA` a word.
    case peekdata
}

/// How a frame was found from the frame below it (README.md, "Backtraces").
public enum FrameSource: String, Hashable, Sendable, CaseIterable {
    /// Frame 0: the thread's registers.
    case registers
    /// The call frame information (CFI) of the callee's module, from its `.eh_frame`.
    case ehFrame = "cfi-eh-frame"
    /// The CFI of the callee's module, from its `.debug_frame` (in the file or its debug file).
    case debugFrame = "cfi-debug-frame"
    /// No CFI covers the callee's pc: the `rbp` frame-pointer chain, right only when the
    /// callee keeps a frame pointer.
    case framePointer = "frame-pointer"

    /// Found by the registers or by CFI; a frame-pointer frame may be wrong.
    public var isReliable: Bool { self != .framePointer }
}

/// One frame of a backtrace.
public struct StackFrame: Hashable, Sendable {
    /// Where the function name came from.
    public enum SymbolSource: String, Hashable, Sendable {
        /// libdw's `dwfl_module_addrinfo` (the module's `.symtab`, its debug file's, or `.dynsym`).
        case libdw
        /// The ELF symbol tables of the mapped file (``SymbolTable``).
        case elf
    }

    /// 0 for the innermost frame.
    public var index: Int
    /// The instruction pointer: where the thread is (frame 0), else the return address.
    public var pc: Address
    /// The stack pointer of the frame.
    public var sp: Address
    /// The function, demangled when its symbol is a mangled C++ name.
    public var function: String?
    /// The symbol as the ELF tables spell it, when it differs from ``function`` (a mangled name).
    public var mangledFunction: String?
    /// How far `pc` is past the function's start.
    public var functionOffset: UInt64?
    /// Where the function's name came from.
    public var symbolSource: SymbolSource?
    /// The path of the mapping holding `pc` (a file, `[vdso]`…), nil outside every mapping.
    public var module: String?
    /// `pc` − the start of the module's region (its first mapping).
    public var moduleOffset: UInt64?
    /// An address expression for `pc` that the tool resolves back to it (`MemView.label(of:)`).
    public var label: String?
    /// The frame of a signal handler's trampoline (its CFI carries the signal-frame mark).
    public var isSignalFrame: Bool
    /// How the frame was found.
    public var source: FrameSource
    /// Found by the registers or CFI, and so was every frame below it: a frame above a
    /// frame-pointer guess stands on that guess, whatever found it.
    public var isReliable: Bool

    /// A frame with every field given.
    public init(
        index: Int, pc: Address, sp: Address, function: String? = nil, mangledFunction: String? = nil,
        functionOffset: UInt64? = nil, symbolSource: SymbolSource? = nil, module: String? = nil,
        moduleOffset: UInt64? = nil, label: String? = nil, isSignalFrame: Bool = false,
        source: FrameSource = .registers, isReliable: Bool? = nil
    ) {
        self.index = index
        self.pc = pc
        self.sp = sp
        self.function = function
        self.mangledFunction = mangledFunction
        self.functionOffset = functionOffset
        self.symbolSource = symbolSource
        self.module = module
        self.moduleOffset = moduleOffset
        self.label = label
        self.isSignalFrame = isSignalFrame
        self.source = source
        self.isReliable = isReliable ?? source.isReliable
    }
}

/// Why an unwind stopped.
public enum UnwindEnd: Hashable, Sendable, CustomStringConvertible {
    /// The outermost frame, by the rules: its CFI leaves the return address undefined
    /// (glibc's `_start` and thread start, Go's `runtime.goexit`…).
    case endOfStack
    /// The depth limit was reached; the stack may go on.
    case depthLimit(Int)
    /// A frame repeated an earlier one's pc and sp: stepping on would go round forever.
    case loop(pc: Address, sp: Address)
    /// The unwinder could not find the next frame: the frames so far stand, but the stack
    /// may go on (no CFI and no frame-pointer chain, unreadable stack…).
    case error(String)

    public var description: String {
        switch self {
        case .endOfStack: "end of stack"
        case .depthLimit(let n): "depth limit \(n) reached"
        case .loop(let pc, let sp): "loop: pc \(pc.hex) with sp \(sp.hex) repeats"
        case .error(let message): "unwind error: \(message)"
        }
    }

    /// A short stable word for JSON: `end`, `depth-limit`, `loop`, `error`.
    public var kind: String {
        switch self {
        case .endOfStack: "end"
        case .depthLimit: "depth-limit"
        case .loop: "loop"
        case .error: "error"
        }
    }
}

/// The stack of one thread.
public struct ThreadBacktrace: Hashable, Sendable {
    /// The thread unwound.
    public var thread: ThreadInfo
    /// Its frames, innermost first.
    public var frames: [StackFrame]
    /// Why the unwind stopped.
    public var end: UnwindEnd
    /// The backtrace of `thread`: `frames`, ended by `end`.
    public init(thread: ThreadInfo, frames: [StackFrame], end: UnwindEnd) {
        self.thread = thread
        self.frames = frames
        self.end = end
    }
}

/// Unwinds the stacks of one process's threads with elfutils' libdw (the unwinder of
/// eu-stack): CFI from `.eh_frame`, then from `.debug_frame`, then the frame-pointer chain.
///
/// Made once per command and used for every thread, so nothing that does not change is
/// read twice (ARCHITECTURE.md, "Unwinder"): the modules are reported from the caller's
/// `MemView` (no maps read here; again only for a view of a new generation), each ELF
/// file with its CFI and symbol table is opened once, when a frame first needs it, and
/// each pc is symbolized once. Memory is read through a ``PageCache``
/// (``UnwindMemoryAccess/cached``, the default) or a word at a time with `PTRACE_PEEKDATA`
/// (``UnwindMemoryAccess/peekdata``).
///
/// Every frame says how it was found (``FrameSource``). Unwinding stops at the outermost
/// frame by the CFI rules, at the depth limit, when a frame repeats an earlier pc and sp,
/// or when the unwinder cannot go on (keeping the frames found so far); a frame without
/// symbols is kept with its pc and module. A target that dies during the unwind is
/// ``TargetError/noSuchProcess(pid:)``.
public final class Unwinder {
    /// The process unwound.
    public let pid: Int32
    /// How it reads the target's memory.
    public let access: UnwindMemoryAccess
    /// The page cache behind ``UnwindMemoryAccess/cached``.
    public let cache: PageCache?
    private let session: OpaquePointer
    private let cacheRetained: Unmanaged<PageCache>?
    /// The view the modules were reported from.
    private var reported: MemView?
    /// What was worked out for each pc (names, module, label), by [pc, lookup address];
    /// emptied with a new view.
    private var described: [PCKey: Description] = [:]

    /// What the unwinder has done, for tests and benchmarks.
    public struct Stats: Hashable, Sendable {
        /// Times the modules were reported (once per view generation).
        public var moduleReports = 0
        /// Modules in the last report.
        public var modules = 0
        /// Frames whose names and module were worked out (the others came from the cache).
        public var described = 0
    }
    /// What it has done, for tests and benchmarks.
    public private(set) var stats = Stats()

    /// An unwinder of process `pid`, reading memory by `access` (`cachePages` pages cached);
    /// ``TargetError/system(call:errno:)`` when libdw cannot start.
    public init(pid: Int32, access: UnwindMemoryAccess = .cached, cachePages: Int = 16) throws(TargetError) {
        self.pid = pid
        self.access = access
        let session: OpaquePointer?
        switch access {
        case .cached:
            let cache = PageCache(pid: pid, pages: cachePages)
            let retained = Unmanaged.passRetained(cache)
            self.cache = cache
            cacheRetained = retained
            session = vmio_unwinder_create(pid, readWord, retained.toOpaque())
        case .peekdata:
            cache = nil
            cacheRetained = nil
            session = vmio_unwinder_create(pid, nil, nil)
        }
        guard let session else {
            cacheRetained?.release()
            throw .system(call: "dwfl_begin", errno: .noMemory)
        }
        self.session = session
    }

    deinit {
        vmio_unwinder_destroy(session)
        cacheRetained?.release()
    }

    /// Unwinds thread `tid`, which must be in a ptrace stop held by the calling thread, to
    /// at most `maxDepth` frames. `view` gives the modules and each frame's module and label
    /// (without one, the maps are read once, on the first call); `symbols` names the frames
    /// libdw cannot. With `names` false no function names are looked up.
    ///
    /// Throws ``TargetError/noSuchProcess(pid:)`` when the thread or the process is gone, and
    /// (without `view`) what ``ProcessMaps/read(pid:generation:)`` throws.
    public func unwind(
        tid: Int32, maxDepth: Int, view: MemView? = nil, symbols: SymbolTable? = nil, names: Bool = true
    ) throws(TargetError) -> (frames: [StackFrame], end: UnwindEnd) {
        let view = try prepare(view)
        cache?.invalidate()
        cache?.tid = tid
        let collector = Collector(maxDepth: maxDepth)
        var regsErrno: Int32 = 0
        let result = withExtendedLifetime(collector) {
            vmio_unwinder_run(session, tid, frameCallback, Unmanaged.passUnretained(collector).toOpaque(), &regsErrno)
        }
        var end: UnwindEnd
        switch result {
        case 0: end = .endOfStack
        case 1: end = collector.end ?? .endOfStack
        default:
            if regsErrno == ESRCH || isGone(tid) { throw .noSuchProcess(pid: pid) }
            end = .error(failure(collector.raw.last, index: collector.raw.count - 1, view: view, regsErrno: regsErrno))
        }
        var frames: [StackFrame] = []
        frames.reserveCapacity(collector.raw.count)
        var reliable = true
        for (i, raw) in collector.raw.enumerated() {
            let source = FrameSource(raw.source)
            reliable = reliable && source.isReliable
            var frame = StackFrame(
                index: i, pc: raw.pc, sp: raw.has_sp != 0 ? raw.sp : 0, isSignalFrame: raw.is_signal_frame != 0,
                source: source, isReliable: reliable)
            // A return address may lie just past the end of its call's function: look up pc − 1.
            let lookup = raw.is_activation != 0 ? raw.pc : raw.pc &- 1
            let key = PCKey(pc: raw.pc, lookup: lookup, names: names)
            let description: Description
            if let known = described[key] {
                description = known
            } else {
                description = describe(
                    pc: raw.pc, lookup: lookup, view: view, symbols: names ? symbols : nil, names: names)
                described[key] = description
                stats.described += 1
            }
            description.apply(to: &frame)
            frames.append(frame)
        }
        return (frames, end)
    }

    /// The view to unwind with, its modules reported to libdw when it is new.
    private func prepare(_ given: MemView?) throws(TargetError) -> MemView {
        // One Target's views differ exactly when their generations do.
        if let given, let reported, given.generation == reported.generation,
            given.mappings.count == reported.mappings.count
        {
            return given
        }
        if given == nil, let reported { return reported }
        let view: MemView
        if let given { view = given } else { view = try ProcessMaps.read(pid: pid) }
        vmio_unwinder_report_begin(session)
        var count = 0
        for module in Self.modules(of: view, pid: pid) {
            if vmio_unwinder_report(session, module.name, module.start, module.end) == 0 { count += 1 }
        }
        guard vmio_unwinder_report_end(session) == 0 else {
            throw .system(
                call: "dwfl_attach_state (\(String(cString: vmio_unwinder_error())))", errno: .invalidArgument)
        }
        reported = view
        described.removeAll()
        stats.moduleReports += 1
        stats.modules = count
        return view
    }

    /// The ELF images of a view as libdw's own `/proc/PID/maps` reader would report them
    /// (consecutive mappings of one file form one module), named where this process can
    /// open them: `/proc/PID/root/PATH` (the file as the target sees it), the
    /// `/proc/PID/map_files/` entry of a deleted file, `[vdso: PID]` for the vDSO (read
    /// from the target's memory).
    static func modules(of view: MemView, pid: Int32) -> [(name: String, start: Address, end: Address)] {
        var out: [(name: String, start: Address, end: Address)] = []
        var last: (mapping: Mapping, end: Address)?
        func flush() {
            guard let (m, end) = last else { return }
            let name =
                m.isDeleted
                ? "/proc/\(pid)/map_files/\(String(m.start, radix: 16))-\(String(m.end, radix: 16))"
                : "/proc/\(pid)/root\(m.path)"
            out.append((name, m.start, end))
            last = nil
        }
        for m in view.mappings {
            if m.path == "[vdso]" {
                flush()
                out.append(("[vdso: \(pid)]", m.start, m.end))
                continue
            }
            guard m.isFileBacked, m.inode != 0 || m.device != DeviceNumber(major: 0, minor: 0) else { continue }
            if let (first, _) = last, first.inode == m.inode, first.device == m.device, first.path == m.path {
                last = (first, m.end)
            } else {
                flush()
                last = (m, m.end)
            }
        }
        flush()
        return out
    }

    /// Why the unwind could not find the caller of `frame`.
    private func failure(_ frame: vmio_frame?, index: Int, view: MemView, regsErrno: Int32) -> String {
        let reason = String(cString: vmio_unwinder_error())
        guard let frame else {
            if regsErrno != 0 { return "cannot read the registers: \(String(cString: strerror(regsErrno)))" }
            return reason
        }
        let place = view.label(of: frame.pc).map { "\(frame.pc.hex) (\($0))" } ?? frame.pc.hex
        if FrameSource(frame.caller_source) == .framePointer {
            return "no caller found for frame #\(index) at \(place): no CFI covers it and the frame-pointer chain ends"
        }
        return "no caller found for frame #\(index) at \(place): \(reason)"
    }

    /// The names, module and label of a pc.
    private func describe(pc: Address, lookup: Address, view: MemView, symbols: SymbolTable?, names: Bool)
        -> Description
    {
        var d = Description()
        if names {
            var offset: UInt64 = 0
            if let cName = vmio_unwinder_symbol(session, lookup, &offset) {
                let symbol = String(cString: cName)
                if let demangled = vmio_demangle(cName) {
                    defer { free(demangled) }
                    d.function = String(cString: demangled)
                    d.mangledFunction = symbol
                } else {
                    d.function = symbol
                }
                d.functionOffset = offset + (pc - lookup)
                d.symbolSource = .libdw
            } else if let match = symbols?.symbolize(lookup) {
                if let demangled = vmio_demangle(match.name) {
                    defer { free(demangled) }
                    d.function = String(cString: demangled)
                    d.mangledFunction = match.name
                } else {
                    d.function = match.name
                }
                d.functionOffset = match.offset + (pc - lookup)
                d.symbolSource = .elf
            }
        }
        if let m = view.translate(lookup)?.mapping, !m.path.isEmpty {
            d.module = m.path
            let region = view.regions(named: m.path).first { $0.start <= m.start && m.end <= $0.end }
            d.moduleOffset = pc - (region?.start ?? m.start)
        }
        d.label = view.label(of: pc)
        return d
    }

    /// Whether the thread left our ptrace stop: a stopped tracee only leaves it by dying
    /// (SIGKILL), and then `PTRACE_GETREGS` fails with `ESRCH`.
    private func isGone(_ tid: Int32) -> Bool {
        if cache?.sawTargetGone == true { return true }
        do {
            _ = try Sys.ptraceGetRegisters(tid)
            return false
        } catch {
            return error == .noSuchProcess
        }
    }
}

/// A pc as looked up: by itself or at pc − 1, with or without names.
private struct PCKey: Hashable {
    let pc: UInt64
    let lookup: UInt64
    let names: Bool
}

/// What a pc resolves to, cached by the unwinder.
private struct Description {
    var function: String?
    var mangledFunction: String?
    var functionOffset: UInt64?
    var symbolSource: StackFrame.SymbolSource?
    var module: String?
    var moduleOffset: UInt64?
    var label: String?

    func apply(to frame: inout StackFrame) {
        frame.function = function
        frame.mangledFunction = mangledFunction
        frame.functionOffset = functionOffset
        frame.symbolSource = symbolSource
        frame.module = module
        frame.moduleOffset = moduleOffset
        frame.label = label
    }
}

/// The frames of one unwind as libdw hands them over, and why it was stopped.
private final class Collector {
    let maxDepth: Int
    var raw: [vmio_frame] = []
    var seen = Set<PCKey>()
    var end: UnwindEnd?
    init(maxDepth: Int) { self.maxDepth = maxDepth }
}

extension FrameSource {
    init(_ source: Int32) {
        switch UInt32(bitPattern: source) {
        case VMIO_FRAME_EH_FRAME.rawValue: self = .ehFrame
        case VMIO_FRAME_DEBUG_FRAME.rawValue: self = .debugFrame
        case VMIO_FRAME_POINTER.rawValue: self = .framePointer
        default: self = .registers
        }
    }
}

/// The unwinder's frame callback, through the C shim: collects the frame, or stops the
/// unwind at a repeated frame, a null return address, or the depth limit.
private let frameCallback: vmio_frame_callback = { context, frame in
    let collector = Unmanaged<Collector>.fromOpaque(context!).takeUnretainedValue()
    let f = frame!.pointee
    if f.pc == 0 && !collector.raw.isEmpty {
        let how = FrameSource(f.source) == .framePointer ? " (read from the frame-pointer chain)" : ""
        collector.end = .error("frame #\(collector.raw.count) has a null return address\(how)")
        return 1
    }
    if !collector.seen.insert(PCKey(pc: f.pc, lookup: f.sp, names: false)).inserted {
        collector.end = .loop(pc: f.pc, sp: f.sp)
        return 1
    }
    collector.raw.append(f)
    if collector.raw.count >= collector.maxDepth {
        collector.end = .depthLimit(collector.maxDepth)
        return 1
    }
    return 0
}

/// The unwinder's memory reader, through the C shim, into the page cache.
private let readWord: vmio_read_word = { context, address, word in
    let cache = Unmanaged<PageCache>.fromOpaque(context!).takeUnretainedValue()
    guard let value = cache.word(at: address) else { return -1 }
    word!.pointee = value
    return 0
}
