import CVmio
import Glibc
import SystemPackage
import VmIO

/// Breakpoints and watchpoints in a live process, and the loop that waits for them
/// (ARCHITECTURE.md, "Traps"). The session holds every thread with ptrace
/// (`PTRACE_O_TRACECLONE`: threads created later are held too and get the debug registers;
/// `PTRACE_O_TRACEFORK`: a forked child has the `int3` bytes taken out of its copy and is let
/// go; `PTRACE_O_TRACEVFORK` and `VFORKDONE`: a vfork's child shares the text, so the bytes
/// are out of it from the vfork until the child execs or exits; `PTRACE_O_TRACEEXEC`: an
/// exec ends every trap). Signals the target receives are delivered to it; a `SIGTRAP` that
/// is not ours too. A group stop (SIGSTOP…) is listened to (`PTRACE_LISTEN`): the target
/// stays job-stopped until SIGCONT, and a target left so at the end stays so.
///
/// Nothing is left behind: ``end()`` stops every thread, puts back every original byte, clears
/// DR7 on every thread and reads both back before the threads are let go. It runs on every
/// exit path: from `deinit`, and on SIGINT, SIGTERM, SIGHUP, SIGQUIT and SIGPIPE, which the
/// tool's handlers only record while a session lives (``TrapEvent/Kind/interrupted``).
/// A killed tool (SIGKILL) cannot clean up: `doctor PID` finds what it left, and
/// `doctor PID --repair` removes it.
///
/// Like ``Tracer``, a session belongs to the thread that made it (ptrace ties a tracee to
/// its tracing thread). It finds its news with `waitid(P_ALL, WNOWAIT)` and collects only its
/// own threads' and fork children's: the calling thread's other children are left for their
/// owner to collect (a Foundation `Process`, a `waitpid` of the caller's).
public final class TrapSession {
    /// The process the session traps.
    public let target: Target
    /// The process's id.
    public var pid: Int32 { target.pid }
    /// Traps by id.
    public private(set) var traps: [Int: Trap] = [:]
    private var nextID = 1
    /// Each debug register's piece (nil: free).
    private var slots: [DebugPiece?] = Array(repeating: nil, count: DebugRegisters.slotCount)
    /// The trap of each slot.
    private var slotOwners: [Int?] = Array(repeating: nil, count: DebugRegisters.slotCount)
    /// Every `int3` byte in the target's text, with the byte it replaced.
    private var inserted: [Address: UInt8] = [:]
    /// The software trap at each inserted byte (internal ones, for `finish`, have none).
    private var softwareTraps: [Address: Int] = [:]
    /// Threads held in a stop, with the signal to deliver when each resumes.
    private var stopped: [Int32: Int32] = [:]
    /// Threads running (or listening in a group stop): each reports its next stop to us.
    private var running: Set<Int32> = []
    /// Threads stopped at a software breakpoint's address (their pc moved back onto it).
    private var atBreakpoint: [Int32: Address] = [:]
    /// The registers of each thread in ``atBreakpoint`` as its hit left them (nothing writes a
    /// held thread's registers but the step over the breakpoint).
    private var registersAtBreakpoint: [Int32: Registers] = [:]
    /// The instruction under each inserted byte, when it is one the session carries out itself
    /// instead of stepping over the breakpoint (``EmulatedInstruction``).
    private var emulated: [Address: EmulatedInstruction] = [:]
    /// Events found while stopping threads, reported before waiting again.
    private var queued: [TrapEvent] = []
    /// The last value read of each watchpoint.
    private var lastValues: [Int: [UInt8]] = [:]
    /// Children of a fork or vfork not let go yet.
    private var forkChildren: [Int32: ForkChild] = [:]
    /// Parents in a vfork whose child has not exec'd or exited: while there is one, every
    /// `int3` byte is out of the text the child shares (``inserted`` still lists them), and
    /// goes back at the parent's `PTRACE_EVENT_VFORK_DONE`.
    private var vforkParents: Set<Int32> = []
    /// Threads in a group stop (a stop signal's `PTRACE_EVENT_STOP`): let go with
    /// `PTRACE_LISTEN`, so they stay stopped until SIGCONT.
    private var groupStopped: Set<Int32> = []
    /// The process exited (or was killed), or exec'd.
    public private(set) var processEnd: ProcessEnd?
    /// Whether the process exec'd (its traps are gone with its old image).
    public private(set) var execed = false
    private var ended = false
    /// What ``end()`` found.
    public private(set) var cleanup: TrapCleanup?
    /// Signals passed through to the target.
    public private(set) var signalsDelivered = 0

    /// Whether a debug register was ever set: before, a `SIGTRAP` cannot be a hardware trap of
    /// ours, and neither its `siginfo` nor DR6 is read.
    private var debugRegistersUsed = false
    /// The one trap every debug register in use belongs to, while none was ever freed: a debug
    /// register's hit is then that trap's without reading DR6. Nil when several traps share
    /// the registers, or a freed register's hit may still be on its way.
    private var soleHardwareTrap: Int?
    /// Whether a debug register was freed (a trap removed) since the first was set.
    private var debugRegisterFreed = false
    /// Whether a thread or child came that the session may not have seen yet (a clone, fork
    /// or vfork event): from then on the event loop asks every child, not the one thread.
    private var tasksMayBeUnseen = false
    /// Until when the event loop polls without blocking (set as a thread is let go).
    private var pollUntil: ContinuousClock.Instant?

    /// How often the blocking wait is interrupted to look at the deadline and at deferred signals.
    static let tickMilliseconds: Int32 = 50
    /// How long the event loop polls (`WNOHANG`, yielding the processor between polls) after
    /// letting a thread go, before it blocks: a trap hit soon after costs no wake-up of an
    /// idle processor (ARCHITECTURE.md, "Traps").
    static let pollWindow = Duration.microseconds(200)

    /// Holds every thread of `target` (``Target/stop(timeout:)``) and sets the event options
    /// on each. The threads stay stopped until the first ``wait(timeout:)`` or ``run(timeout:_:)``.
    ///
    /// Throws what ``Target/stop(timeout:)`` throws, ``TargetError/noSuchProcess(pid:)`` when the
    /// target is gone, and ``TargetError/system(call:errno:)`` when `ptrace(2)` cannot set a
    /// thread's options or the tick timer cannot be made (`timer_create(2)`).
    public init(target: Target) throws(TargetError) {
        self.target = target
        Sys.deferFatalSignals(true)
        do throws(TargetError) {
            try target.stop()
            guard let tracer = target.tracer else { throw TargetError.noSuchProcess(pid: target.pid) }
            guard tracer.seized else {
                throw TargetError.trap(
                    "pid \(target.pid) is traced with PTRACE_TRACEME (started by run): breakpoints and "
                        + "watchpoints need a process this tool seized (session PID)")
            }
            stopped = tracer.stoppedThreads
            for tid in stopped.keys { try setOptions(tid) }
        } catch {
            let pending = Sys.takeDeferredSignal()
            Sys.deferFatalSignals(false)
            target.resume()
            if let pending { Sys.reraise(pending) }
            throw error
        }
    }

    deinit { end() }

    /// A child of a fork or vfork until it is let go: whether it shares the parent's memory
    /// (nil until the parent's event says), and whether its first stop came.
    private struct ForkChild {
        var vfork: Bool?
        var stopped = false
    }

    /// Runs `body` with the blocking waits interrupted every ``tickMilliseconds`` (only while
    /// the session waits: other verbs of a session must not see `EINTR`).
    private func ticking<T>(_ body: () throws(TargetError) -> T) throws(TargetError) -> T {
        do { try Sys.startTicks(milliseconds: Self.tickMilliseconds) } catch {
            throw TargetError.system(call: "timer_create", errno: error)
        }
        defer { Sys.stopTicks() }
        return try body()
    }
    private func setOptions(_ tid: Int32) throws(TargetError) {
        let options =
            vmio_ptrace_o_traceclone | vmio_ptrace_o_tracefork | vmio_ptrace_o_tracevfork | vmio_ptrace_o_traceexec
            | vmio_ptrace_o_tracevforkdone
        do { try Sys.ptraceSetOptions(tid, options) } catch {
            if error == .noSuchProcess { return forget(tid) }
            throw .system(call: "ptrace(PTRACE_SETOPTIONS, \(tid))", errno: error)
        }
    }

    /// The threads held or running.
    public var threads: [Int32] { (Array(stopped.keys) + running).sorted() }

    // MARK: adding and removing traps

    /// A software breakpoint (`int3` written through `/proc/PID/mem`, the original byte kept)
    /// or, `hardware`, an execution trap in a debug register. Returns it (its id).
    ///
    /// Throws ``TargetError/trap(_:)`` when the session has ended, a breakpoint is at `address`
    /// already, `address` is in no mapping or not in code, or (`hardware`) past user space or no
    /// debug register is free; and the errors of writing the `int3` byte
    /// (``Target/write(_:at:force:verify:)``) or of setting the debug registers (`ptrace(2)`,
    /// `PTRACE_POKEUSER`).
    @discardableResult
    public func addBreakpoint(at address: Address, hardware: Bool = false) throws(TargetError) -> Trap {
        try checkUsable()
        if softwareTraps[address] != nil || traps.values.contains(where: { $0.address == address && $0.isBreakpoint }) {
            throw .trap("there is a breakpoint at \(address.hex) already")
        }
        if hardware { return try addHardware(address: address, length: 1, access: .execute) }
        try insertByte(at: address)
        let trap = Trap(id: takeID(), kind: .software, address: address, length: 1)
        traps[trap.id] = trap
        softwareTraps[address] = trap.id
        return trap
    }

    /// A watchpoint on `length` bytes at `address` (up to 32, split over the debug
    /// registers in aligned pieces of 1, 2, 4 or 8 bytes).
    ///
    /// Throws ``TargetError/trap(_:)`` when the session has ended, `length` is 0, the range is
    /// not in user space or not in the target's mappings (`execute`: not in code), or the free
    /// debug registers cannot hold the pieces; and ``TargetError/system(call:errno:)`` when
    /// `ptrace(2)` (`PTRACE_POKEUSER`) cannot set them.
    @discardableResult
    public func addWatchpoint(at address: Address, length: Int, access: WatchAccess = .write) throws(TargetError)
        -> Trap
    {
        try checkUsable()
        guard length > 0 else { throw .trap("a watchpoint covers at least 1 byte") }
        guard access != .execute else { return try addHardware(address: address, length: 1, access: .execute) }
        let trap = try addHardware(address: address, length: length, access: access)
        lastValues[trap.id] = (try? readBytes(at: address, count: length)) ?? []
        return trap
    }

    private func addHardware(address: Address, length: Int, access: WatchAccess) throws(TargetError) -> Trap {
        // First where it is: a range past user space would overflow the pieces' arithmetic.
        guard DebugRegisters.holdsUserSpace(address: address, length: length) else {
            throw .trap("\(address.hex) is not a user-space address")
        }
        if access == .execute {
            try checkCode(at: address)
        } else {
            _ = try mapping(holding: address)
            _ = try mapping(holding: address + UInt64(length - 1))
        }
        let pieces = DebugRegisters.pieces(address: address, length: length, access: access)
        let free = slots.indices.filter { slots[$0] == nil }
        guard pieces.count <= free.count else {
            let what = pieces.count == 1 ? "1 debug register" : "\(pieces.count) debug registers"
            throw .trap(
                "\(length) byte(s) at \(address.hex) need \(what) (aligned pieces of 1, 2, 4 or 8 bytes) "
                    + "but \(free.count) of DR0-DR3 are free")
        }
        var trap = Trap(id: takeID(), kind: .hardware(access), address: address, length: length)
        debugRegistersUsed = true
        for (slot, piece) in zip(free, pieces) {
            slots[slot] = piece
            slotOwners[slot] = trap.id
            trap.slots.append(slot)
        }
        do { try applyDebugRegisters() } catch {
            for slot in trap.slots { (slots[slot], slotOwners[slot]) = (nil, nil) }
            try? applyDebugRegisters()
            slotsChanged(freeing: true)
            throw error
        }
        traps[trap.id] = trap
        slotsChanged(freeing: false)
        return trap
    }

    /// Removes trap `id`: its byte put back, its debug registers freed on every thread.
    ///
    /// Throws ``TargetError/trap(_:)`` for an unknown id, and the errors of putting the byte back
    /// or clearing the debug registers (`ptrace(2)`).
    public func remove(_ id: Int) throws(TargetError) {
        guard let trap = traps[id] else { throw .trap("no breakpoint or watchpoint \(id)") }
        try stopAllRunning()
        traps[id] = nil
        lastValues[id] = nil
        if trap.kind == .software {
            softwareTraps[trap.address] = nil
            try restoreByte(at: trap.address)
        } else {
            for slot in trap.slots { (slots[slot], slotOwners[slot]) = (nil, nil) }
            slotsChanged(freeing: true)
            try applyDebugRegisters()
        }
    }

    /// Recomputes ``soleHardwareTrap`` after debug registers were taken or freed.
    private func slotsChanged(freeing: Bool) {
        if freeing { debugRegisterFreed = true }
        let owners = Set(slotOwners.compactMap { $0 })
        soleHardwareTrap = !debugRegisterFreed && owners.count == 1 ? owners.first : nil
    }

    private func takeID() -> Int {
        defer { nextID += 1 }
        return nextID
    }

    private func checkUsable() throws(TargetError) {
        if ended { throw .trap("the session has ended") }
        if let processEnd { throw .trap("pid \(pid) \(processEnd)") }
        if execed { throw .trap("pid \(pid) ran exec: its breakpoints are gone") }
    }

    // MARK: the target's memory, through the model's owners

    private func readBytes(at address: Address, count: Int) throws(TargetError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let access = bytes.withUnsafeMutableBytes { target.memory.readForced(at: address, into: $0) }
        guard access.moved == count else {
            throw .trap("cannot read \(count) byte(s) at \(address.hex) of pid \(pid)")
        }
        return bytes
    }

    /// The mapping that holds `address` (the maps read again first when none does).
    private func mapping(holding address: Address) throws(TargetError) -> Mapping {
        if target.view.translate(address) == nil { try target.refresh() }
        guard let mapping = target.view.translate(address)?.mapping else {
            throw .trap("\(address.hex) is in no mapping of pid \(pid)")
        }
        return mapping
    }

    /// Refuses an address that is not in code: a breakpoint there could never fire.
    private func checkCode(at address: Address) throws(TargetError) {
        let mapping = try mapping(holding: address)
        guard mapping.permissions.execute else {
            throw .trap("\(address.hex) is not in code (its mapping \(mapping.path) is \(mapping.permissions))")
        }
    }

    private func insertByte(at address: Address) throws(TargetError) {
        if inserted[address] != nil { return }
        try checkCode(at: address)
        let original = try readBytes(at: address, count: 1)[0]
        try stopAllRunning()
        emulated[address] = EmulatedInstruction.decode(originalText(at: address, first: original))
        try plant(at: address)
        inserted[address] = original
    }

    /// Writes `int3` at `address`, unless a vfork's child shares the text now (then the
    /// parent's `PTRACE_EVENT_VFORK_DONE` writes it).
    private func plant(at address: Address) throws(TargetError) {
        guard vforkParents.isEmpty else { return }
        _ = try target.write([0xcc], at: address, force: true, verify: false)
    }

    /// The text at `address` as the target had it, up to ``EmulatedInstruction/longest`` bytes
    /// (fewer at the end of a mapping): our `int3` bytes read as the bytes they replaced.
    private func originalText(at address: Address, first: UInt8) -> [UInt8] {
        var text = [first]
        for count in stride(from: EmulatedInstruction.longest, to: 1, by: -1) {
            guard let bytes = try? readBytes(at: address, count: count) else { continue }
            text = bytes.enumerated().map {
                $0.offset == 0 ? first : inserted[address + Address($0.offset)] ?? $0.element
            }
            break
        }
        return text
    }

    private func restoreByte(at address: Address) throws(TargetError) {
        guard let original = inserted[address] else { return }
        _ = try target.write([original], at: address, force: true, verify: false)
        inserted[address] = nil
        emulated[address] = nil
        for (tid, at) in atBreakpoint where at == address { atBreakpoint[tid] = nil }
    }

    // MARK: debug registers

    /// Sets DR0–DR3 and DR7 on every held thread (the running ones are stopped first).
    private func applyDebugRegisters() throws(TargetError) {
        try stopAllRunning()
        for tid in stopped.keys.sorted() { try applyDebugRegisters(tid) }
    }

    /// DR7 off, the addresses, then DR7 on: the kernel checks each address as it is set.
    private func applyDebugRegisters(_ tid: Int32) throws(TargetError) {
        do {
            try Sys.ptracePokeUser(tid, offset: Sys.debugRegisterOffset(7), 0)
            for (slot, piece) in slots.enumerated() where piece != nil {
                try Sys.ptracePokeUser(tid, offset: Sys.debugRegisterOffset(slot), piece!.address)
            }
            let dr7 = DebugRegisters.control(slots)
            if dr7 != 0 { try Sys.ptracePokeUser(tid, offset: Sys.debugRegisterOffset(7), dr7) }
        } catch {
            if error == .noSuchProcess { return forget(tid) }
            throw .system(call: "ptrace(PTRACE_POKEUSER, \(tid), debug registers)", errno: error)
        }
    }

    // MARK: running and waiting

    /// Lets every held thread run (stepping a thread at a software breakpoint over it first)
    /// until the next event, which it returns; the other threads are then stopped too (any
    /// event they had is queued for the next wait). With queued events, the first is
    /// returned and nothing runs. `timeout` nil waits for ever (until a fatal signal).
    ///
    /// Throws ``TargetError/trap(_:)`` when the session has ended or its process has ended or run
    /// exec, and ``TargetError/system(call:errno:)`` when `ptrace(2)` or `waitid(2)` fails.
    public func wait(timeout: Duration? = nil) throws(TargetError) -> TrapEvent {
        if !queued.isEmpty { return queued.removeFirst() }
        try checkUsable()
        let deadline = timeout.map { ContinuousClock.now + $0 }
        try resumeAll()
        let event = try ticking { () throws(TargetError) in try nextEvent(deadline: deadline) }
        if !event.endsWaiting || event.kind == .timeout || event.kind == .interrupted { try stopAllRunning() }
        // The target's other verbs (regs, backtrace) see every thread held, new ones too.
        if processEnd == nil { target.tracer?.adopt(stopped) }
        return event
    }

    /// The logging loop: every thread runs; each event is handed to `body` while only its
    /// thread is stopped, and the thread goes on when `body` returns true (a signal is
    /// delivered). Returns the event that ended it: an exit, an exec, the timeout, a fatal
    /// signal sent to this tool, or the hit for which `body` returned false.
    ///
    /// Throws ``TargetError/trap(_:)`` when the session has ended or its process has ended or
    /// run exec, and the error of a `ptrace(2)` call that fails while threads are resumed.
    public func run(timeout: Duration? = nil, _ body: (TrapEvent) -> Bool) throws(TargetError) -> TrapEvent {
        try checkUsable()
        let deadline = timeout.map { ContinuousClock.now + $0 }
        try resumeAll()
        do { try Sys.startTicks(milliseconds: Self.tickMilliseconds) } catch {
            throw TargetError.system(call: "timer_create", errno: error)
        }
        defer { Sys.stopTicks() }
        while true {
            let event = queued.isEmpty ? try nextEvent(deadline: deadline) : queued.removeFirst()
            if event.endsWaiting { return event }
            if event.kind == .signal {
                try resume(event.tid)
                continue
            }
            guard body(event) else { return event }
            try resume(event.tid)
        }
    }

    /// Single-steps thread `tid` (held) over one instruction; the other threads stay held.
    ///
    /// Throws ``TargetError/trap(_:)`` when the session has ended or does not hold `tid`, and
    /// ``TargetError/system(call:errno:)`` when `ptrace(2)` (`PTRACE_SINGLESTEP`) fails.
    public func step(_ tid: Int32) throws(TargetError) -> TrapEvent {
        try checkUsable()
        guard stopped[tid] != nil else { throw .trap("thread \(tid) is not stopped by this session") }
        let restore = atBreakpoint[tid]
        if let restore, let original = inserted[restore] {
            _ = try target.write([original], at: restore, force: true, verify: false)
        }
        let result = try singleStep(tid)
        if let restore, inserted[restore] != nil { try plant(at: restore) }
        atBreakpoint[tid] = nil
        if let result { return result }
        let registers = try registers(of: tid)
        return TrapEvent(.step, tid: tid, pc: registers.rip, registers: registers)
    }

    /// Runs until thread `tid` returns from its current function (a hidden breakpoint at the
    /// return address, hit by that thread with its stack above where it was), or another
    /// event comes first, which is returned instead (the hidden breakpoint removed either way).
    ///
    /// Throws ``TargetError/trap(_:)`` when the session has ended, does not hold `tid`, or finds
    /// no caller to return to; and the errors of reading the thread's registers and stack and of
    /// waiting (``wait(timeout:)``).
    public func finish(_ tid: Int32) throws(TargetError) -> TrapEvent {
        try checkUsable()
        guard stopped[tid] != nil else { throw .trap("thread \(tid) is not stopped by this session") }
        let start = try registers(of: tid)
        let returnAddress = try self.returnAddress(of: tid, registers: start)
        let hadByte = inserted[returnAddress] != nil
        if !hadByte { try insertByte(at: returnAddress) }
        defer { if !hadByte && softwareTraps[returnAddress] == nil { try? restoreByte(at: returnAddress) } }
        while true {
            let event = try wait()
            guard event.kind == .breakpoint, event.tid == tid, event.pc == returnAddress,
                event.registers.map({ $0.rsp > start.rsp }) ?? false
            else {
                if event.kind == .breakpoint && event.trap == nil { continue }  // the hidden one, another frame
                return event
            }
            return TrapEvent(.finish, tid: tid, pc: event.pc, trap: nil, registers: event.registers)
        }
    }

    /// Where the current function of `tid` returns: the word at rsp at a function's first
    /// instruction, else the caller's pc from the unwinder.
    private func returnAddress(of tid: Int32, registers: Registers) throws(TargetError) -> Address {
        if let symbol = target.symbols.symbolize(registers.rip), symbol.offset == 0 {
            let bytes = try readBytes(at: registers.rsp, count: 8)
            return bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        let unwinder = try Unwinder(pid: pid)
        let (frames, _) = try unwinder.unwind(tid: tid, maxDepth: 2, view: target.view, symbols: target.symbols)
        guard frames.count > 1 else { throw .trap("thread \(tid): no caller found to finish into") }
        return frames[1].pc
    }

    /// The registers of a held thread.
    ///
    /// Throws what ``Registers/read(pid:tid:)`` throws.
    public func registers(of tid: Int32) throws(TargetError) -> Registers {
        try Registers.read(pid: pid, tid: tid)
    }

    private func resumeAll() throws(TargetError) {
        for tid in stopped.keys.sorted() { try resume(tid) }
    }

    /// Lets held thread `tid` run, delivering its pending signal; a thread at a software
    /// breakpoint is first stepped over it with the other threads held (then let go again,
    /// but those with an event queued).
    private func resume(_ tid: Int32) throws(TargetError) {
        guard stopped[tid] != nil else { return }
        if let address = atBreakpoint[tid], let original = inserted[address] {
            if try carryOut(tid, at: address) { return try proceed(tid) }
            try stopAllRunning()
            _ = try target.write([original], at: address, force: true, verify: false)
            let result = try singleStep(tid)
            if processEnd == nil { try plant(at: address) }
            atBreakpoint[tid] = nil
            if let result { queued.append(result) }
            if processEnd != nil { return }
            for other in stopped.keys.sorted() where other != tid && !queued.contains(where: { $0.tid == other }) {
                try proceed(other)
            }
            if result != nil { return }
        }
        try proceed(tid)
    }

    /// Carries out the instruction under the breakpoint at `address` for held thread `tid`, when
    /// it is one of ``EmulatedInstruction``: the pushed word written to the stack
    /// (`process_vm_writev`), then rsp and rip (`PTRACE_POKEUSER`). False, with nothing changed,
    /// when the session must step over it instead: another instruction, a push while a
    /// watchpoint is set (the hardware would not see the session's write to the stack), or a
    /// stack the write cannot reach (the step then meets the fault the target would).
    private func carryOut(_ tid: Int32, at address: Address) throws(TargetError) -> Bool {
        guard let instruction = emulated[address], let registers = registersAtBreakpoint[tid],
            registers.rip == address
        else { return false }
        if case .push(let register, _) = instruction {
            guard !traps.values.contains(where: { !$0.isBreakpoint }), let value = registers[register] else {
                return false
            }
            let word = withUnsafeBytes(of: value.littleEndian) { Array($0) }
            let top = registers.rsp &- 8
            guard (try? target.write(word, at: top, force: false, verify: false)) != nil else { return false }
            do { try Sys.ptracePokeUser(tid, offset: Sys.stackPointerOffset, top) } catch {
                if error == .noSuchProcess { return true }  // gone: proceed collects its end
                throw .system(call: "ptrace(PTRACE_POKEUSER, \(tid), rsp)", errno: error)
            }
        }
        do {
            try Sys.ptracePokeUser(tid, offset: Sys.instructionPointerOffset, address + Address(instruction.length))
        } catch {
            if error == .noSuchProcess { return true }
            throw .system(call: "ptrace(PTRACE_POKEUSER, \(tid), rip)", errno: error)
        }
        atBreakpoint[tid] = nil
        return true
    }

    /// `PTRACE_CONT` of held thread `tid` with its pending signal.
    private func proceed(_ tid: Int32) throws(TargetError) {
        guard let signal = stopped[tid] else { return }
        atBreakpoint[tid] = nil
        if groupStopped.contains(tid) {
            // Still in the group stop: it stays stopped, and reports when SIGCONT comes.
            stopped[tid] = nil
            do { try Sys.ptraceListen(tid) } catch { return forget(tid) }
            running.insert(tid)
            target.viewMayBeStale = true
            return
        }
        do { try Sys.ptraceContinue(tid, signal: signal) } catch {
            if error == .noSuchProcess {
                stopped[tid] = nil
                running.insert(tid)  // its end is still to be collected
                return
            }
            throw .system(call: "ptrace(PTRACE_CONT, \(tid))", errno: error)
        }
        if signal != 0 { signalsDelivered += 1 }
        stopped[tid] = nil
        running.insert(tid)
        pollUntil = .now + Self.pollWindow
        // It runs, and may map or unmap memory: the target's view is read again when it fails
        // a request (it does not see this run, as the target stays traced).
        target.viewMayBeStale = true
    }

    /// One instruction of held thread `tid`. A signal that arrives instead is kept for the
    /// thread's next resume and the step made again. Nil when the step finished; the event
    /// when the process ended meanwhile.
    private func singleStep(_ tid: Int32) throws(TargetError) -> TrapEvent? {
        target.viewMayBeStale = true  // one instruction may be a system call that maps memory
        for _ in 0..<64 {
            do { try Sys.ptraceSingleStep(tid, signal: 0) } catch {
                if error == .noSuchProcess { break }
                throw .system(call: "ptrace(PTRACE_SINGLESTEP, \(tid))", errno: error)
            }
            // One instruction: its stop comes at once (or the thread's end), so the wait blocks,
            // after a poll: the stop comes within microseconds, a wake-up costs more.
            let status: WaitStatus
            do { status = try waitSoon(tid) } catch {
                forget(tid)
                return nil
            }
            switch status {
            case .stopped(let signal, let event) where event == 0 && signal == SIGTRAP:
                // The stepped instruction may have hit a watchpoint too: that hit is the event.
                // DR6 says so after the step's debug exception (`TRAP_TRACE`), which fills it
                // afresh; another SIGTRAP (the instruction was an `int3`) leaves it as it was.
                guard debugRegistersUsed, (try? Sys.ptraceSignalCode(tid)) == Sys.trapTraceCode else { return nil }
                let dr6 = (try? Sys.ptracePeekUser(tid, offset: Sys.debugRegisterOffset(6))) ?? 0
                if dr6 & DebugRegisters.hitMask != 0 { return try debugRegisterHit(tid, trap: trap(hitIn: dr6)) }
                return nil
            case .stopped(let signal, let event):
                if event == 0 && signal != 0 { stopped[tid] = signal }
            case .exited, .signaled:
                forget(tid)
                return tid == pid ? ended(ProcessEnd(status)!, tid: tid) : nil
            case .continued: break
            }
        }
        return nil
    }

    /// The next status of `tid`, expected soon: polled (`WNOHANG`, yielding between polls)
    /// for ``pollWindow``, then waited for.
    private func waitSoon(_ tid: Int32) throws(Errno) -> WaitStatus {
        let until = ContinuousClock.now + Self.pollWindow
        repeat {
            if let status = try Sys.waitpid(tid, hang: false) { return status }
            Sys.yieldProcessor()
        } while ContinuousClock.now < until
        return try Sys.waitpid(tid, hang: true) ?? .exited(code: 0)
    }

    /// Polls `waitpid(tid, __WALL | WNOHANG)` until a status or the deadline.
    private func waitFor(_ tid: Int32, deadline: ContinuousClock.Instant) -> WaitStatus? {
        var pause: UInt32 = 5
        while true {
            let status: WaitStatus?
            do { status = try Sys.waitpid(tid, hang: false) } catch { return .exited(code: 0) }
            if let status { return status }
            if ContinuousClock.now >= deadline { return nil }
            Sys.pause(microseconds: pause)
            pause = min(pause * 2, 1_000)
        }
    }

    /// Stops every running thread (`PTRACE_INTERRUPT`, then its stop collected); an event a
    /// thread had on its way (a trap hit, a signal) is queued.
    private func stopAllRunning() throws(TargetError) {
        guard !running.isEmpty else { return }
        let tids = running.sorted()
        for tid in tids { try? Sys.ptraceInterrupt(tid) }
        let deadline = ContinuousClock.now + target.attachTimeout
        for tid in tids where running.contains(tid) {
            guard let status = waitFor(tid, deadline: deadline) else {
                throw .attachTimeout(pid: pid, tid: tid, state: ProcFS.threadStateText(pid: pid, tid: tid))
            }
            running.remove(tid)
            if let event = try handle(tid, status, known: true, interrupting: true) { queued.append(event) }
        }
        try settlePendingTraps(tids)
    }

    /// A thread stopped by our interrupt may have a `SIGTRAP` of ours still pending (the trap
    /// fired, and the interrupt's stop was reported first): let go with it pending, the thread
    /// would die of it. Each such thread runs on to that signal's stop, which is handled (an
    /// `int3`'s pc moved back, the event queued) and not delivered.
    private func settlePendingTraps(_ tids: [Int32]) throws(TargetError) {
        let trapBit: UInt64 = 1 << UInt64(SIGTRAP - 1)
        for tid in tids where stopped[tid] == 0 {
            guard let text = try? ProcFS.readText("/proc/\(pid)/task/\(tid)/status"),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("SigPnd:") }),
                let pending = UInt64(line.dropFirst("SigPnd:".count).trimmingCharacters(in: " \t"), radix: 16),
                pending & trapBit != 0
            else { continue }
            do { try Sys.ptraceContinue(tid, signal: 0) } catch { continue }
            guard let status = waitFor(tid, deadline: .now + .seconds(2)) else {
                running.insert(tid)
                stopped[tid] = nil
                continue
            }
            if let event = try handle(tid, status, known: true, interrupting: true) {
                if event.kind == .signal && event.signal == SIGTRAP && stopped[tid] == SIGTRAP {
                    queued.append(event)  // the target's own: delivered when it resumes
                } else if event.kind != .signal {
                    queued.append(event)
                }
            }
        }
    }

    /// Waits for the next event the caller sees (housekeeping stops — a new thread, a fork,
    /// an interrupt's stop left over — are dealt with here and the thread let go).
    private func nextEvent(deadline: ContinuousClock.Instant?) throws(TargetError) -> TrapEvent {
        while true {
            if let signal = Sys.takeDeferredSignal() { return TrapEvent(.interrupted, signal: signal) }
            if let deadline, ContinuousClock.now >= deadline { return TrapEvent(.timeout) }
            let polling = pollUntil.map { ContinuousClock.now < $0 } ?? false
            if !polling { pollUntil = nil }
            if let only = onlyThreadToAsk {
                let status: WaitStatus?
                do { status = try Sys.waitpid(only, hang: !polling, interruptible: true) } catch {
                    if error == .noChildProcess { return ended(.gone, tid: pid) }
                    throw .system(call: "waitpid", errno: error)
                }
                guard let status else {
                    if polling { Sys.yieldProcessor() }
                    continue
                }
                running.remove(only)
                if let event = try handle(only, status, known: true, interrupting: false) { return event }
                if stopped[only] != nil, !queued.contains(where: { $0.tid == only }) { try resume(only) }
                continue
            }
            let next: Int32?
            do { next = try Sys.peekAnyChild(hang: !polling) } catch {
                if error == .noChildProcess { return ended(.gone, tid: pid) }
                throw .system(call: "waitid", errno: error)
            }
            guard let next else {
                if polling { Sys.yieldProcessor() }
                continue
            }
            let got: (tid: Int32, status: WaitStatus)?
            if running.contains(next) || stopped[next] != nil || isNew(next) {
                got = (try? Sys.waitpid(next, hang: false)).map { (next, $0) }
            } else {
                // The caller's own child, ended or stopped: its owner collects it (and a peek
                // finds it first until then), so ours are asked one by one meanwhile.
                got = ownNews()
                if got == nil { Sys.pause(microseconds: 1_000) }
            }
            guard let (tid, status) = got else { continue }
            let known = running.contains(tid) || stopped[tid] != nil
            running.remove(tid)
            if let event = try handle(tid, status, known: known, interrupting: false) { return event }
            if stopped[tid] != nil, !queued.contains(where: { $0.tid == tid }) { try resume(tid) }
        }
    }

    /// The one thread whose news are all there can be, when the process has one thread, it
    /// runs, and no clone or fork happened: `waitpid` on it alone then finds each event with
    /// one call (no `waitid` peek first). Its exit is reported to that `waitpid` too.
    private var onlyThreadToAsk: Int32? {
        guard running.count == 1, stopped.isEmpty, forkChildren.isEmpty, !tasksMayBeUnseen,
            running.contains(pid)
        else { return nil }
        return pid
    }

    /// One of our threads or fork children with news, asked one by one (`waitpid(tid, __WALL |
    /// WNOHANG)`), the target's threads not seen yet included.
    private func ownNews() -> (tid: Int32, status: WaitStatus)? {
        let tasks = (try? ProcFS.threads(pid)) ?? []
        for tid in running.union(stopped.keys).union(forkChildren.keys).union(tasks) {
            guard running.contains(tid) || stopped[tid] != nil || isNew(tid) else { continue }
            if let status = try? Sys.waitpid(tid, hang: false) { return (tid, status) }
        }
        return nil
    }

    /// A thread or child this session has not seen yet: a new thread of the target (its
    /// clone event may come after its first stop), or a child of a fork.
    private func isNew(_ tid: Int32) -> Bool {
        if forkChildren[tid] != nil { return true }
        if (try? Sys.fileStatus("/proc/\(pid)/task/\(tid)")) != nil { return true }
        let parent = (try? ProcFS.status(tid))?["PPid"].flatMap { Int32($0) }
        if parent == pid || parent.map({ threads.contains($0) }) == true {
            forkChildren[tid] = ForkChild()
            return true
        }
        return false
    }

    /// What a stop, an exit or a death of `tid` means. Returns the event the caller sees, or
    /// nil for housekeeping; the thread is left held (in ``stopped``) unless it is gone or was
    /// let go here (a fork's child, a group stop listened to).
    private func handle(_ tid: Int32, _ status: WaitStatus, known: Bool, interrupting: Bool) throws(TargetError)
        -> TrapEvent?
    {
        switch status {
        case .exited, .signaled:
            forget(tid)
            return tid == pid ? ended(ProcessEnd(status)!, tid: tid) : nil
        case .continued:
            running.insert(tid)
            return nil
        case .stopped(let signal, let event):
            if var child = forkChildren[tid] {
                // A child's first stop: let go once its parent's event says fork or vfork.
                if let vfork = child.vfork {
                    releaseChild(tid, vfork: vfork)
                    return nil
                }
                child.stopped = true
                forkChildren[tid] = child
                return nil
            }
            stopped[tid] = stopped[tid] ?? 0
            if !known && event == vmio_ptrace_event_stop {
                // A new thread's first stop: our debug registers, and the handlers' list.
                vmio_tracked_add(tid)
                try applyDebugRegisters(tid)
                return nil
            }
            switch event {
            case 0:
                return try handleSignalStop(tid, signal: signal)
            case vmio_ptrace_event_clone:
                tasksMayBeUnseen = true
                return nil  // the new thread's first stop comes on its own (before or after this)
            case vmio_ptrace_event_fork, vmio_ptrace_event_vfork:
                tasksMayBeUnseen = true
                guard let message = try? Sys.ptraceEventMessage(tid) else { return nil }
                let child = Int32(truncatingIfNeeded: message)
                let vfork = event == vmio_ptrace_event_vfork
                if vfork { try vforkStarted(parent: tid) }
                var state = forkChildren[child] ?? ForkChild()
                state.vfork = vfork
                forkChildren[child] = state
                if state.stopped { releaseChild(child, vfork: vfork) }
                return nil
            case vmio_ptrace_event_vfork_done:
                try vforkDone(parent: tid)
                return nil
            case vmio_ptrace_event_exec:
                return execHappened(tid)
            case vmio_ptrace_event_stop where isStopSignal(signal):
                // A group stop (SIGSTOP…) is in effect (also when our interrupt reported it): the
                // thread stays stopped, listened to, and reports when SIGCONT ends the stop.
                groupStopped.insert(tid)
                guard !interrupting else { return nil }
                try proceed(tid)
                return nil
            default:
                groupStopped.remove(tid)  // our interrupt's stop, or SIGCONT ended the group stop
                return nil
            }
        }
    }

    /// A signal-delivery stop: a trap of ours (a debug register's hit, `si_code`
    /// `TRAP_HWBKPT`: the trap holding every register in use, or the one DR6 names; or an
    /// `int3` of ours just before pc, which is moved back onto it), or a signal to deliver.
    private func handleSignalStop(_ tid: Int32, signal: Int32) throws(TargetError) -> TrapEvent? {
        guard signal == SIGTRAP else {
            stopped[tid] = signal
            return TrapEvent(.signal, tid: tid, signal: signal)
        }
        if debugRegistersUsed, (try? Sys.ptraceSignalCode(tid)) == Sys.trapHardwareCode {
            let trap =
                soleHardwareTrap.map { traps[$0] }
                ?? trap(hitIn: try? Sys.ptracePeekUser(tid, offset: Sys.debugRegisterOffset(6)))
            return try debugRegisterHit(tid, trap: trap)
        }
        let registers = try registers(of: tid)
        let address = registers.rip &- 1
        if inserted[address] != nil {
            do { try Sys.ptracePokeUser(tid, offset: Sys.instructionPointerOffset, address) } catch {
                throw .system(call: "ptrace(PTRACE_POKEUSER, \(tid), rip)", errno: error)
            }
            atBreakpoint[tid] = address
            let moved = registers.movingInstructionPointer(to: address)
            registersAtBreakpoint[tid] = moved
            let trap = softwareTraps[address].flatMap { traps[$0] }
            return TrapEvent(.breakpoint, tid: tid, pc: address, trap: trap, registers: moved)
        }
        stopped[tid] = SIGTRAP  // not ours: the target's own
        return TrapEvent(.signal, tid: tid, signal: SIGTRAP)
    }

    /// The event of a debug register's hit in held thread `tid`, nil for a register since freed
    /// (the hit of a trap that is gone, not the target's own).
    private func debugRegisterHit(_ tid: Int32, trap: Trap?) throws(TargetError) -> TrapEvent? {
        guard let trap else { return nil }
        let registers = try registers(of: tid)
        if trap.isBreakpoint {
            return TrapEvent(.breakpoint, tid: tid, pc: registers.rip, trap: trap, registers: registers)
        }
        let new = (try? readBytes(at: trap.address, count: trap.length)) ?? []
        let old = lastValues[trap.id]
        lastValues[trap.id] = new
        return TrapEvent(.watchpoint, tid: tid, pc: registers.rip, trap: trap, old: old, new: new, registers: registers)
    }

    /// The trap whose debug register DR6 names (the lowest hit bit), nil when none or freed.
    /// The kernel fills DR6 afresh at each debug exception and leaves it as it was at any
    /// other stop, so it is read only after one (`si_code` `TRAP_HWBKPT` or `TRAP_TRACE`):
    /// the session never clears it.
    private func trap(hitIn dr6: UInt64?) -> Trap? {
        guard let dr6, let slot = (0..<DebugRegisters.slotCount).first(where: { dr6 & (1 << UInt64($0)) != 0 }),
            let id = slotOwners[slot]
        else { return nil }
        return traps[id]
    }

    /// A vfork began in thread `parent`: its child shares the text and runs before the parent
    /// goes on, so every `int3` byte comes out until ``vforkDone(parent:)`` (hits of the
    /// parent's other threads meanwhile are not seen; the child does not die of them).
    private func vforkStarted(parent: Int32) throws(TargetError) {
        if vforkParents.isEmpty {
            for (address, original) in inserted {
                _ = try target.write([original], at: address, force: true, verify: false)
            }
        }
        vforkParents.insert(parent)
    }

    /// The child of `parent`'s vfork has exec'd or exited: the bytes go back.
    private func vforkDone(parent: Int32) throws(TargetError) {
        guard vforkParents.remove(parent) != nil, vforkParents.isEmpty else { return }
        for address in inserted.keys { try plant(at: address) }
    }

    /// A fork's child: the `int3` bytes taken out of its copy of the text (a vfork's child
    /// shares the parent's memory, whose bytes are out until it execs or exits), then let go.
    private func releaseChild(_ child: Int32, vfork: Bool) {
        forkChildren[child] = nil
        if !vfork && !inserted.isEmpty, let copy = try? Target(pid: child) {
            for (address, original) in inserted {
                _ = try? copy.write([original], at: address, force: true, verify: false)
            }
        }
        _ = try? Sys.ptracePokeUser(child, offset: Sys.debugRegisterOffset(7), 0)
        try? Sys.ptraceDetach(child, signal: 0)
    }

    private func execHappened(_ tid: Int32) -> TrapEvent {
        execed = true
        // The new program has none of our bytes, and exec cleared the debug registers.
        inserted.removeAll()
        emulated.removeAll()
        softwareTraps.removeAll()
        atBreakpoint.removeAll()
        vforkParents.removeAll()
        slots = Array(repeating: nil, count: DebugRegisters.slotCount)
        slotOwners = Array(repeating: nil, count: DebugRegisters.slotCount)
        soleHardwareTrap = nil
        traps.removeAll()
        // Every other thread is gone; the thread that exec'd has the leader's id.
        for other in threads where other != pid { forget(other) }
        running.remove(pid)
        stopped[pid] = 0
        _ = tid
        return TrapEvent(.exec, tid: pid, pc: (try? registers(of: pid).rip) ?? 0)
    }

    private func ended(_ end: ProcessEnd, tid: Int32) -> TrapEvent {
        processEnd = end
        return TrapEvent(.exit, tid: tid, end: end)
    }

    private func forget(_ tid: Int32) {
        stopped[tid] = nil
        running.remove(tid)
        groupStopped.remove(tid)
        vforkParents.remove(tid)
        atBreakpoint[tid] = nil
        vmio_tracked_remove(tid)
    }

    // MARK: the end

    /// Puts everything back and lets the target go: every thread stopped, every original byte
    /// written back and read back, DR7 (and DR0–DR3, DR6) cleared on every thread and read
    /// back 0, then every thread detached and the run state checked. Idempotent; also run from
    /// `deinit`. A fatal signal recorded meanwhile is left for ``pendingSignal()``.
    @discardableResult
    public func end() -> TrapCleanup {
        if let cleanup { return cleanup }
        ended = true
        var report = TrapCleanup()
        if processEnd == nil {
            do { try stopAllRunning() } catch { report.problems.append("\(error)") }
            queued.removeAll()
            for (address, original) in inserted.sorted(by: { $0.key < $1.key }) {
                do {
                    _ = try target.write([original], at: address, force: true, verify: false)
                    let back = try readBytes(at: address, count: 1)
                    if back == [original] {
                        report.bytesRestored += 1
                        inserted[address] = nil
                    } else {
                        report.problems.append("the byte at \(address.hex) reads back \(UInt64(back[0]).hex)")
                    }
                } catch {
                    report.problems.append("the byte at \(address.hex) could not be put back: \(error)")
                }
            }
            for tid in stopped.keys.sorted() {
                if let problem = clearDebugRegisters(tid) {
                    report.problems.append(problem)
                } else {
                    report.threadsCleared += 1
                }
            }
            for tid in running.sorted() {
                report.problems.append("thread \(tid) did not stop: its debug registers could not be cleared")
            }
        }
        // Children whose parent's event never came: out of our bytes, and let go.
        for (child, state) in forkChildren where state.stopped { releaseChild(child, vfork: state.vfork ?? false) }
        // A target the user stopped (SIGSTOP, Ctrl-Z) during the session stays stopped: it is
        // in a group stop, or a stop signal not delivered yet goes back with the detach.
        let userStopped = !groupStopped.isEmpty || stopped.values.contains(where: isStopSignal)
        target.tracer?.adopt(stopped, jobStopped: userStopped)
        stopped.removeAll()
        running.removeAll()
        target.resume()
        report.runState = target.lastRestore
        cleanup = report
        Sys.deferFatalSignals(false)
        return report
    }

    /// DR7 off, DR0–DR3 and DR6 zeroed, DR7 read back. A problem's line, or nil.
    private func clearDebugRegisters(_ tid: Int32) -> String? {
        do {
            try Sys.ptracePokeUser(tid, offset: Sys.debugRegisterOffset(7), 0)
            for n in [0, 1, 2, 3, 6] { try Sys.ptracePokeUser(tid, offset: Sys.debugRegisterOffset(n), 0) }
            let dr7 = try Sys.ptracePeekUser(tid, offset: Sys.debugRegisterOffset(7))
            return dr7 == 0 ? nil : "thread \(tid): DR7 reads \(dr7.hex) after clearing"
        } catch {
            if error == .noSuchProcess { return nil }  // gone: nothing of it is left
            return "thread \(tid): debug registers not cleared: \(error)"
        }
    }

    /// The fatal signal (SIGINT…) this tool received while the session lived, taken; the
    /// caller re-raises it (``reraise(_:)``) after its own output.
    public static func pendingSignal() -> Int32? { Sys.takeDeferredSignal() }

    /// Dies of `signal` as if no handler had caught it.
    public static func reraise(_ signal: Int32) { Sys.reraise(signal) }
}

extension Tracer {
    /// Holds exactly `threads` (each in a ptrace stop of the calling thread, with the signal
    /// to hand back at ``detach()``): a ``TrapSession`` gives its threads back this way.
    /// `jobStopped`: the process is in a group stop that began while the session held it
    /// (the user stopped it): it is expected to stay job-stopped after the detach.
    func adopt(_ threads: [Int32: Int32], jobStopped: Bool = false) {
        stoppedThreads = threads
        if jobStopped && initialState.kind == .running {
            initialState = RunState(kind: .jobStopped, state: "T (stopped)", tracerPid: 0)
        }
    }
}
