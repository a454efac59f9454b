import CVmio
import Glibc
import SystemPackage
import VmIO

/// The ptrace requests the Linux layer makes (through the C shim: `ptrace` is variadic).
extension Sys {
    /// `ptrace(PTRACE_SEIZE, tid, 0, 0)`: traces the thread without stopping it.
    static func ptraceSeize(_ tid: Int32) throws(Errno) {
        _ = try retryingInterrupts { vmio_ptrace_seize(tid, 0) }
    }

    /// `ptrace(PTRACE_INTERRUPT, tid, 0, 0)`: asks a seized thread to stop (a `PTRACE_EVENT_STOP`).
    static func ptraceInterrupt(_ tid: Int32) throws(Errno) {
        _ = try retryingInterrupts { vmio_ptrace_interrupt(tid) }
    }

    /// `ptrace(PTRACE_DETACH, tid, 0, signal)`: lets a stopped thread go, handing it `signal`
    /// (0 for none). `ESRCH` when the thread is not in a ptrace stop (or is gone).
    static func ptraceDetach(_ tid: Int32, signal: Int32) throws(Errno) {
        _ = try retryingInterrupts { vmio_ptrace_detach(tid, signal) }
    }

    /// `ptrace(PTRACE_CONT, tid, 0, signal)`.
    static func ptraceContinue(_ tid: Int32, signal: Int32) throws(Errno) {
        _ = try retryingInterrupts { vmio_ptrace_cont(tid, signal) }
    }

    /// `ptrace(PTRACE_LISTEN, tid, 0, 0)`: a thread in a group stop stays stopped but reports
    /// the next event.
    static func ptraceListen(_ tid: Int32) throws(Errno) {
        _ = try retryingInterrupts { vmio_ptrace_listen(tid) }
    }

    /// `ptrace(PTRACE_PEEKDATA, tid, address, 0)`: the 8-byte word at `address` (the thread
    /// must be in a ptrace stop of the calling thread).
    static func ptracePeekData(_ tid: Int32, at address: Address) throws(Errno) -> UInt64 {
        var word: UInt64 = 0
        _ = try retryingInterrupts { vmio_ptrace_peekdata(tid, address, &word) }
        return word
    }

    /// `ptrace(PTRACE_GETREGS, tid, 0, &regs)`: the general registers of a stopped thread.
    static func ptraceGetRegisters(_ tid: Int32) throws(Errno) -> user_regs_struct {
        var regs = user_regs_struct()
        _ = try retryingInterrupts { vmio_ptrace_getregs(tid, &regs) }
        return regs
    }

    /// `ptrace(PTRACE_GETREGSET, tid, type, &iov)`: the register set `type` (`NT_PRSTATUS`,
    /// `NT_PRFPREG`, `NT_X86_XSTATE`…) of a stopped thread, in the layout of the thread's own
    /// ABI (a 32-bit thread's sets are the i386 ones), at most `capacity` bytes: the kernel
    /// says how many it filled.
    static func ptraceGetRegisterSet(_ tid: Int32, type: UInt32, capacity: Int) throws(Errno) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: capacity)
        var length = capacity
        let result = bytes.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in
                try retryingInterrupts { vmio_ptrace_getregset(tid, type, raw.baseAddress, &length) }
            }
        }
        _ = try result.get()
        return Array(bytes[0..<min(length, capacity)])
    }

    /// `ptrace(PTRACE_GETSIGINFO, tid, 0, &info)`: the 128-byte `siginfo_t` of the signal a
    /// stopped thread stopped on (this process's 64-bit layout).
    static func ptraceGetSignalInfo(_ tid: Int32) throws(Errno) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 128)
        let result = bytes.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in try retryingInterrupts { vmio_ptrace_getsiginfo(tid, raw.baseAddress) } }
        }
        _ = try result.get()
        return bytes
    }

    /// `ptrace(PTRACE_GETSIGINFO, tid, 0, &info)`, only `si_code`: how the signal a stopped
    /// thread stopped on was raised (``trapHardwareCode`` for a debug register's hit).
    static func ptraceSignalCode(_ tid: Int32) throws(Errno) -> Int32 {
        var code: Int32 = 0
        _ = try retryingInterrupts { vmio_ptrace_signal_code(tid, &code) }
        return code
    }

    /// `TRAP_HWBKPT`: the `si_code` of a `SIGTRAP` a debug register's hit raised.
    static var trapHardwareCode: Int32 { vmio_trap_hardware_code() }

    /// `TRAP_TRACE`: the `si_code` of a `SIGTRAP` a finished single step raised.
    static var trapTraceCode: Int32 { vmio_trap_trace_code() }

    /// `ptrace(PTRACE_SETOPTIONS, tid, 0, options)`: `PTRACE_O_TRACECLONE` and the others.
    static func ptraceSetOptions(_ tid: Int32, _ options: Int32) throws(Errno) {
        _ = try retryingInterrupts { vmio_ptrace_setoptions(tid, UInt(options)) }
    }

    /// `ptrace(PTRACE_GETEVENTMSG, tid, 0, &message)`: the new thread's or child's id of a
    /// clone or fork stop.
    static func ptraceEventMessage(_ tid: Int32) throws(Errno) -> UInt {
        var message: UInt = 0
        _ = try retryingInterrupts { vmio_ptrace_geteventmsg(tid, &message) }
        return message
    }

    /// `ptrace(PTRACE_SINGLESTEP, tid, 0, signal)`: one instruction, then a `SIGTRAP` stop.
    static func ptraceSingleStep(_ tid: Int32, signal: Int32) throws(Errno) {
        _ = try retryingInterrupts { vmio_ptrace_singlestep(tid, signal) }
    }

    /// `ptrace(PTRACE_PEEKUSER, tid, offset, 0)`: a word of the thread's `struct user` (a
    /// debug register, a general register).
    static func ptracePeekUser(_ tid: Int32, offset: UInt) throws(Errno) -> UInt64 {
        var word: UInt64 = 0
        _ = try retryingInterrupts { vmio_ptrace_peekuser(tid, offset, &word) }
        return word
    }

    /// `ptrace(PTRACE_POKEUSER, tid, offset, word)`: sets a word of the thread's `struct user`;
    /// the kernel checks debug register values (`EINVAL` for a bad DR7, `EIO` for an address
    /// out of the user range).
    static func ptracePokeUser(_ tid: Int32, offset: UInt, _ word: UInt64) throws(Errno) {
        _ = try retryingInterrupts { vmio_ptrace_pokeuser(tid, offset, word) }
    }

    /// The offset of debug register `n` (0–7) in `struct user`.
    static func debugRegisterOffset(_ n: Int) -> UInt { vmio_user_debugreg_offset() + UInt(8 * n) }

    /// The offset of `rip` in `struct user`.
    static var instructionPointerOffset: UInt { vmio_user_rip_offset() }

    /// The offset of `rsp` in `struct user`.
    static var stackPointerOffset: UInt { vmio_user_rsp_offset() }

    /// `waitid(P_ALL, WNOWAIT | __WALL | __WNOTHREAD)` once (the C shim's `vmio_wait_peek`;
    /// `WNOHANG` too unless `hang`): which tracee or child of the calling thread has news, left
    /// for ``waitpid(_:hang:interruptible:)`` to collect. Nil when none has news yet (`hang`
    /// false) or a signal interrupted the wait (`EINTR` is not retried here: the event loop's
    /// timer interrupts it on purpose, ``startTicks(milliseconds:)``).
    static func peekAnyChild(hang: Bool = true) throws(Errno) -> Int32? {
        let tid = vmio_wait_peek(hang ? 1 : 0)
        if tid < 0 {
            let failure = lastErrno
            if failure == .interrupted { return nil }
            throw failure
        }
        return tid == 0 ? nil : tid
    }

    /// Interrupts the calling thread's blocking calls every `milliseconds`
    /// (`timer_create(2)` with `SIGEV_THREAD_ID`; the C shim's `vmio_tick_start`).
    static func startTicks(milliseconds: Int32) throws(Errno) {
        if vmio_tick_start(milliseconds) != 0 { throw lastErrno }
    }

    /// `timer_delete(2)` of the timer ``startTicks(milliseconds:)`` made.
    static func stopTicks() { vmio_tick_stop() }

    /// While `on`, the tool's handlers only record SIGINT, SIGTERM, SIGHUP, SIGQUIT and
    /// SIGPIPE (``takeDeferredSignal()``) and return (`vmio_defer_fatal_signals`).
    static func deferFatalSignals(_ on: Bool) { vmio_defer_fatal_signals(on ? 1 : 0) }

    /// The fatal signal recorded while deferred, taken; nil for none.
    static func takeDeferredSignal() -> Int32? {
        let signal = vmio_take_deferred_signal()
        return signal == 0 ? nil : signal
    }

    /// Whether a fatal signal was recorded while deferred; it stays for
    /// ``takeDeferredSignal()`` (`vmio_deferred_signal`).
    static var deferredSignalPending: Bool { vmio_deferred_signal() != 0 }

    /// `signal(2)` back to its default action and `raise(3)` (`vmio_reraise`): the process dies
    /// of `signal` as it would have without the handler.
    static func reraise(_ signal: Int32) { vmio_reraise(signal) }
}

/// A `waitpid(2)` status, decoded the way the macros of `<sys/wait.h>` (which Swift cannot
/// import) decode it.
enum WaitStatus: Hashable, Sendable {
    /// `WIFEXITED`: the thread exited with this status.
    case exited(code: Int32)
    /// `WIFSIGNALED`: a signal killed it.
    case signaled(signal: Int32)
    /// `WIFSTOPPED`: it is in a stop. `signal` is `WSTOPSIG`; `event` the ptrace event of
    /// the stop (`status >> 16`), 0 for a plain signal-delivery stop.
    case stopped(signal: Int32, event: Int32)
    /// `WIFCONTINUED`.
    case continued

    /// The low byte of a stopped status (`__W_STOPCODE`'s `0x7f`).
    private static let stopMarker: Int32 = 0x7f
    /// The whole status of a continued child (`__W_CONTINUED`).
    private static let continuedStatus: Int32 = 0xffff

    init(_ raw: Int32) {
        if raw & 0xff == Self.stopMarker {
            self = .stopped(signal: (raw >> 8) & 0xff, event: raw >> 16)
        } else if raw == Self.continuedStatus {
            self = .continued
        } else if raw & 0x7f == 0 {
            self = .exited(code: (raw >> 8) & 0xff)
        } else {
            self = .signaled(signal: raw & 0x7f)
        }
    }

    /// The signal to hand back when a stopped thread is let go: none for the stop this tool
    /// asked for (`PTRACE_EVENT_STOP`: an interrupt or a group stop) or for the `SIGTRAP` of
    /// an exec; any other signal caught in the stop is re-delivered. Nil when not stopped.
    var signalToRedeliver: Int32? {
        guard case .stopped(let signal, let event) = self else { return nil }
        return event == vmio_ptrace_event_stop || signal == SIGTRAP ? 0 : signal
    }

    var isStopped: Bool {
        if case .stopped = self { true } else { false }
    }
}
