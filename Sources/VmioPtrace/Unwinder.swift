import CUnwind
import CVmio
import Glibc
import SystemPackage
import VmIO

/// A few whole pages of one target's memory, read with `process_vm_readv`, serving the
/// word-sized reads libunwind makes while it unwinds (each a `PTRACE_PEEKDATA` syscall
/// with libunwind's own `_UPT_access_mem`).
///
/// Valid only while the memory it caches cannot change: the unwinder empties it before
/// each thread, whose stack is then held still by the ptrace stop (code and unwind tables
/// do not change under a running program). A page that `process_vm_readv` refuses is
/// read word by word with `PTRACE_PEEKDATA` on ``tid`` instead (ptrace may read what the
/// mapping's permissions hide).
public final class PageCache {
    public static let pageSize = 4096
    public struct Stats: Hashable, Sendable {
        /// Words asked for (what `_UPT_access_mem` would make one syscall each).
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

    public let pid: Int32
    public let capacity: Int
    /// The thread in a ptrace stop that `PTRACE_PEEKDATA` falls back on.
    public var tid: Int32
    public private(set) var stats = Stats()
    /// A read found the target gone (`ESRCH`).
    public private(set) var sawTargetGone = false

    private let storage: UnsafeMutableRawPointer
    /// The page address held by each slot; `UInt64.max` for an empty slot.
    private var tags: [UInt64]
    private var lastSlot = 0
    private var victim = 0

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
        var local = iovec(iov_base: storage + slot * Self.pageSize, iov_len: Self.pageSize)
        var remote = iovec(iov_base: UnsafeMutableRawPointer(bitPattern: UInt(page)), iov_len: Self.pageSize)
        while true {
            let n = vmio_process_vm_readv(pid, &local, 1, &remote, 1)
            if n == Self.pageSize { break }
            if n < 0 && vmio_errno() == EINTR { continue }
            if n < 0 && vmio_errno() == ESRCH { sawTargetGone = true }
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
        var word: UInt64 = 0
        guard vmio_ptrace_peekdata(tid, address, &word) == 0 else {
            // ESRCH here may only mean "not stopped by us": not proof the target is gone.
            stats.failures += 1
            return nil
        }
        return word
    }
}

/// How libunwind reads the target's memory.
public enum UnwindMemoryAccess: String, Sendable, CaseIterable {
    /// Whole pages through `process_vm_readv`, kept in a ``PageCache``.
    case cached
    /// libunwind's own `_UPT_access_mem`: one `PTRACE_PEEKDATA` a word.
    case peekdata
}

/// One frame of a backtrace.
public struct StackFrame: Hashable, Sendable {
    /// Where the function name came from.
    public enum SymbolSource: String, Hashable, Sendable {
        /// `unw_get_proc_name`.
        case libunwind
        /// The ELF symbol tables of the mapped file (``SymbolTable``).
        case elf
    }

    /// 0 for the innermost frame.
    public var index: Int
    /// The instruction pointer: where the thread is (frame 0), else the return address.
    public var pc: Address
    /// The stack pointer of the frame.
    public var sp: Address
    public var function: String?
    /// How far `pc` is past the function's start.
    public var functionOffset: UInt64?
    public var symbolSource: SymbolSource?
    /// The path of the mapping holding `pc` (a file, `[vdso]`…), nil outside every mapping.
    public var module: String?
    /// `pc` − the start of the module's first mapping, so `MODULE+OFFSET` (with the module's
    /// basename) is an address the tool accepts.
    public var moduleOffset: UInt64?
    /// The frame of a signal handler's trampoline (libunwind's `unw_is_signal_frame`).
    public var isSignalFrame: Bool

    public init(
        index: Int, pc: Address, sp: Address, function: String? = nil, functionOffset: UInt64? = nil,
        symbolSource: SymbolSource? = nil, module: String? = nil, moduleOffset: UInt64? = nil,
        isSignalFrame: Bool = false
    ) {
        self.index = index
        self.pc = pc
        self.sp = sp
        self.function = function
        self.functionOffset = functionOffset
        self.symbolSource = symbolSource
        self.module = module
        self.moduleOffset = moduleOffset
        self.isSignalFrame = isSignalFrame
    }
}

/// Why an unwind stopped.
public enum UnwindEnd: Hashable, Sendable, CustomStringConvertible {
    /// libunwind found the outermost frame (`unw_step` returned 0), or the pc became 0.
    case endOfStack
    /// The depth limit was reached; the stack may go on.
    case depthLimit(Int)
    /// A frame repeated an earlier one's pc and sp: stepping on would go round forever.
    case loop(pc: Address, sp: Address)
    /// libunwind could not step further (no unwind info, a bad frame…): the frames so far stand.
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
    public var thread: ThreadInfo
    public var frames: [StackFrame]
    public var end: UnwindEnd
    public init(thread: ThreadInfo, frames: [StackFrame], end: UnwindEnd) {
        self.thread = thread
        self.frames = frames
        self.end = end
    }
}

/// Unwinds the stacks of one process's threads with libunwind-ptrace.
///
/// One libunwind address space serves every thread of the process (its cache of unwind
/// tables stays useful); each unwind makes its own `_UPT_create` cursor. Memory is read
/// through a ``PageCache`` (``UnwindMemoryAccess/cached``, the default) or through
/// libunwind's `_UPT_access_mem` (``UnwindMemoryAccess/peekdata``).
///
/// Unwinding stops cleanly at the end of the stack, at the depth limit, when a frame
/// repeats an earlier pc and sp, or at an unwind error (keeping the frames found so far);
/// a frame without symbols is kept with its pc and module. A target that dies during the
/// unwind is ``TargetError/noSuchProcess(pid:)``.
public final class Unwinder {
    public let pid: Int32
    public let access: UnwindMemoryAccess
    /// The page cache behind ``UnwindMemoryAccess/cached``.
    public let cache: PageCache?
    private let space: OpaquePointer
    private let cacheRetained: Unmanaged<PageCache>?
    /// Names already found, by [pc, lookup address]: `unw_get_proc_name` reads the target's
    /// maps and the module's file on every call, and a recursion repeats the same pcs.
    private var nameCache: [[UInt64]: (String?, UInt64?, StackFrame.SymbolSource?)] = [:]

    public init(pid: Int32, access: UnwindMemoryAccess = .cached, cachePages: Int = 16) throws(TargetError) {
        self.pid = pid
        self.access = access
        let space: OpaquePointer?
        switch access {
        case .cached:
            let cache = PageCache(pid: pid, pages: cachePages)
            let retained = Unmanaged.passRetained(cache)
            self.cache = cache
            cacheRetained = retained
            space = vmio_unw_create_space(readWord, retained.toOpaque())
        case .peekdata:
            cache = nil
            cacheRetained = nil
            space = vmio_unw_create_space(nil, nil)
        }
        guard let space else {
            cacheRetained?.release()
            throw .system(call: "unw_create_addr_space", errno: .noMemory)
        }
        self.space = space
    }

    deinit {
        vmio_unw_destroy_space(space)
        cacheRetained?.release()
    }

    /// Unwinds thread `tid`, which must be in a ptrace stop held by the calling thread, to
    /// at most `maxDepth` frames. `view` gives each frame its module; `symbols` names the
    /// frames `unw_get_proc_name` cannot. With `names` false no function names are looked up.
    public func unwind(
        tid: Int32, maxDepth: Int, view: MemView? = nil, symbols: SymbolTable? = nil, names: Bool = true
    ) throws(TargetError) -> (frames: [StackFrame], end: UnwindEnd) {
        cache?.invalidate()
        cache?.tid = tid
        var cursor: OpaquePointer?
        let initResult = vmio_unw_init(space, tid, &cursor)
        guard initResult == 0, let cursor else {
            if isGone(tid) { throw .noSuchProcess(pid: pid) }
            return ([], .error("unw_init_remote: \(Self.message(initResult))"))
        }
        defer { vmio_unw_destroy(cursor) }

        var frames: [StackFrame] = []
        var seen = Set<[UInt64]>()
        var calleeWasSignal = false
        let nameBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: 1024)
        defer { nameBuffer.deallocate() }
        while true {
            var pc: UInt64 = 0, sp: UInt64 = 0
            let ipResult = vmio_unw_get_ip(cursor, &pc), spResult = vmio_unw_get_sp(cursor, &sp)
            if ipResult < 0 || spResult < 0 {
                if isGone(tid) { throw .noSuchProcess(pid: pid) }
                return (frames, .error("unw_get_reg: \(Self.message(min(ipResult, spResult)))"))
            }
            if pc == 0 { return (frames, .endOfStack) }
            if !seen.insert([pc, sp]).inserted { return (frames, .loop(pc: pc, sp: sp)) }
            var frame = StackFrame(
                index: frames.count, pc: pc, sp: sp, isSignalFrame: vmio_unw_is_signal_frame(cursor) > 0)
            // A return address may lie just past the end of its call's function: look up pc − 1.
            let lookup = frame.index > 0 && !calleeWasSignal ? pc &- 1 : pc
            if names, let known = nameCache[[pc, lookup]] {
                (frame.function, frame.functionOffset, frame.symbolSource) = known
            } else if names {
                defer { nameCache[[pc, lookup]] = (frame.function, frame.functionOffset, frame.symbolSource) }
                var offset: UInt64 = 0
                let r = vmio_unw_get_proc_name(cursor, nameBuffer, 1024, &offset)
                if (r == 0 || r == -Int32(VMIO_UNW_ENOMEM)) && nameBuffer[0] != 0,
                    plausible(String(cString: nameBuffer), start: pc &- offset, lookup: lookup, symbols: symbols)
                {
                    frame.function = String(cString: nameBuffer)
                    frame.functionOffset = offset
                    frame.symbolSource = .libunwind
                } else if let match = symbols?.symbolize(lookup) {
                    frame.function = match.name
                    frame.functionOffset = match.offset + (pc - lookup)
                    frame.symbolSource = .elf
                }
            }
            if let view, let m = view.translate(lookup)?.mapping, !m.path.isEmpty {
                frame.module = m.path
                let base = view.mappings.first { $0.path == m.path }?.start ?? m.start
                frame.moduleOffset = pc - base
            }
            calleeWasSignal = frame.isSignalFrame
            frames.append(frame)
            if frames.count >= maxDepth { return (frames, .depthLimit(maxDepth)) }
            let step = vmio_unw_step(cursor)
            if step == 0 { return (frames, .endOfStack) }
            if step < 0 {
                if isGone(tid) { throw .noSuchProcess(pid: pid) }
                return (frames, .error("unw_step: \(Self.message(step))"))
            }
        }
    }

    /// Whether libunwind's name for a frame can be right. `unw_get_proc_name` answers with
    /// the nearest exported symbol below the pc, sizes ignored, so inside a local function
    /// of a stripped library it names the wrong one; when the ELF tables know that symbol's
    /// extent and it does not hold the pc, the name is refused (and the tables', which also
    /// read installed separate debug files, are used instead).
    private func plausible(_ name: String, start: Address, lookup: Address, symbols: SymbolTable?) -> Bool {
        guard let symbols, let extent = symbols.extent(of: name, inModuleAt: lookup) else { return true }
        guard extent.size > 0 else { return true }
        return extent.start == start && lookup >= extent.start && lookup - extent.start < extent.size
    }

    /// Whether the thread left our ptrace stop: a stopped tracee only leaves it by dying
    /// (SIGKILL), and then `PTRACE_GETREGS` fails with `ESRCH`.
    private func isGone(_ tid: Int32) -> Bool {
        if cache?.sawTargetGone == true { return true }
        var regs = user_regs_struct()
        return vmio_ptrace_getregs(tid, &regs) != 0 && vmio_errno() == ESRCH
    }

    static func message(_ code: Int32) -> String {
        String(cString: vmio_unw_strerror(code))
    }
}

/// libunwind's access_mem, through the C shim, into the page cache.
private let readWord: vmio_unw_read_word = { context, address, word in
    let cache = Unmanaged<PageCache>.fromOpaque(context!).takeUnretainedValue()
    guard let value = cache.word(at: address) else { return -1 }
    word!.pointee = value
    return 0
}
