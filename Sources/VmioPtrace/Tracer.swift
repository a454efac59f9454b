import CVmio
import Glibc
import SystemPackage
import VmIO

/// Holds every thread of a process in a ptrace stop, and lets them all go again.
///
/// Attaching is `PTRACE_SEIZE` + `PTRACE_INTERRUPT` on each thread of `/proc/PID/task`,
/// re-reading the list until no new thread appears (a stopped thread cannot create
/// another, so the list settles). Every wait for a stop is bounded by a timeout.
/// The target is never left stopped: ``detach()`` runs on every exit path (explicitly,
/// from `deinit`, and — through the C shim — from SIGINT, SIGTERM and SIGHUP handlers).
///
/// ptrace ties a tracee to the tracing *thread*: use a tracer from the thread that made it.
public final class Tracer {
    /// The process whose threads this tracer holds: the pid it was made with, or the thread
    /// the process is reached through when its main thread has exited
    /// (``Target/reachableID(of:)``).
    public let pid: Int32
    /// Threads held in a stop, with the signal to hand back at detach (0 for none).
    public internal(set) var stoppedThreads: [Int32: Int32] = [:]
    private var detached = false
    /// Seized threads whose stop did not come in time.
    private var pending: Set<Int32> = []
    /// The target's state before the attach (RunState.swift): restored, and checked, at detach.
    public internal(set) var initialState: RunState
    /// Whether the threads were seized (`PTRACE_SEIZE`, which `PTRACE_INTERRUPT` and
    /// `PTRACE_LISTEN` need), not adopted from `PTRACE_TRACEME`.
    public private(set) var seized = true
    /// What ``detach()`` found: whether the state before the attach holds again.
    public private(set) var restoreCheck: RunStateCheck?

    /// Seizes and stops every thread of `pid`, waiting at most `timeout` in all for the stops.
    /// With `threads`, only those of them that exist are stopped (one pass, no re-reading);
    /// the other threads run on. ``TargetError/noSuchProcess(pid:)`` when none could be held,
    /// ``TargetError/zombie(pid:command:parent:parentCommand:)`` for a zombie,
    /// ``TargetError/kernelThread(pid:command:)`` for a kernel thread,
    /// ``TargetError/alreadyTraced(pid:tracerPid:tracerName:)`` when another tracer holds it,
    /// ``TargetError/attachTimeout(pid:tid:state:)`` naming a thread that did not stop in time
    /// (uninterruptible sleep) and its state. The state before the attach is recorded
    /// (``initialState``). On any failure every thread already held is let go before the
    /// error is thrown.
    public init(pid: Int32, threads: Set<Int32>? = nil, timeout: Duration = .seconds(5)) throws(TargetError) {
        self.pid = try Target.reachableID(of: pid)
        Self.installSignalHandlersOnce()
        Self.releaseLingering()
        initialState = try Self.stateBeforeAttach(self.pid)
        do { try stopAll(timeout: timeout, only: threads) } catch {
            detach()
            throw error
        }
    }

    /// Takes over a child that is already traced and stopped (started with
    /// `PTRACE_TRACEME`, stopped at its exec): its one thread is held as if seized.
    public init(adoptingStoppedChild pid: Int32) {
        self.pid = pid
        Self.installSignalHandlersOnce()
        initialState = RunState(kind: .running, state: "R (running)", tracerPid: 0)
        seized = false
        stoppedThreads[pid] = 0
        vmio_tracked_add(pid)
    }

    deinit { detach() }

    /// The state of `pid` (an id ``Target/reachableID(of:)`` gave: a live user thread) before
    /// an attach, refusing what cannot be attached now: a process that is gone or became a
    /// zombie since, a process another tracer holds.
    static func stateBeforeAttach(_ pid: Int32) throws(TargetError) -> RunState {
        let state = RunState.of(pid: pid)
        switch state.kind {
        case .gone: throw .noSuchProcess(pid: pid)
        case .zombie:
            _ = try Target.reachableID(of: pid)  // names the parent
            throw .noSuchProcess(pid: pid)
        default: break
        }
        if state.tracerPid != 0 { throw alreadyTraced(pid, by: state.tracerPid) }
        return state
    }

    /// The error for `pid` traced by `tracer`. `TracerPid` names the tracing thread: one of
    /// ours means this process holds it already.
    static func alreadyTraced(_ pid: Int32, by tracer: Int32) -> TargetError {
        let holder = ProcFS.isOwnThread(tracer) ? Sys.processID : tracer
        return .alreadyTraced(pid: pid, tracerPid: holder, tracerName: ProcFS.command(holder))
    }

    private func stopAll(timeout: Duration, only: Set<Int32>?) throws(TargetError) {
        // One deadline for the whole attach, however many threads there are.
        let deadline = ContinuousClock.now + timeout
        var known = Set<Int32>()
        while true {
            let tids: [Int32]
            do { tids = try ProcFS.threads(pid).filter { only?.contains($0) ?? true } } catch {
                throw known.isEmpty
                    ? Classification.error(error, pid: pid, operation: .listThreads)
                    : .noSuchProcess(pid: pid)
            }
            let fresh = tids.filter { !known.contains($0) }
            if fresh.isEmpty { break }
            var seized: [Int32] = []
            for tid in fresh {
                known.insert(tid)
                guard try Self.seize(pid: pid, tid: tid) else { continue }  // the thread exited meanwhile
                stoppedThreads[tid] = 0
                seized.append(tid)
            }
            var late: [Int32] = []
            for tid in seized {
                switch Self.waitForStop(tid, deadline: deadline) {
                case .stopped(let signal): stoppedThreads[tid] = signal
                case .gone: stoppedThreads[tid] = nil
                case .late:
                    stoppedThreads[tid] = nil  // seized, but not held: see `pending`
                    late.append(tid)
                }
            }
            if let first = late.first {
                // These threads are seized but not stopped (uninterruptible sleep, most
                // likely): they cannot be detached before they stop. Keep them where a
                // later release, the signal handlers and the kernel (at exit) find them.
                pending.formUnion(late)
                Self.linger(late)
                let others = late.dropFirst().map { "\($0) (\(ProcFS.threadStateText(pid: pid, tid: $0)))" }
                throw .attachTimeout(
                    pid: pid, tid: first,
                    state: ProcFS.threadStateText(pid: pid, tid: first)
                        + (others.isEmpty ? "" : "; also threads \(others.joined(separator: ", "))"))
            }
        }
        if stoppedThreads.isEmpty { throw .noSuchProcess(pid: pid) }
    }

    /// Seizes thread `tid` of `pid` and asks it to stop (`PTRACE_SEIZE`, `PTRACE_INTERRUPT`);
    /// it is then tracked for the signal handlers. False when the thread no longer exists.
    static func seize(pid: Int32, tid: Int32) throws(TargetError) -> Bool {
        do { try Sys.ptraceSeize(tid) } catch {
            if error == .noSuchProcess { return false }
            if error == .notPermitted {
                // The kernel refuses a thread that has exited but is still listed (a zombie or
                // dead thread) with EPERM too, not ESRCH: a process that starts and ends
                // threads all the time hands us one now and then. It is gone, not traced.
                let thread = ProcFS.threadStatus(pid: pid, tid: tid)
                guard let state = thread?["State"]?.first, !"ZXx".contains(state) else { return false }
                let tracer = thread?["TracerPid"].flatMap { Int32($0) } ?? 0
                if tracer != 0 { throw alreadyTraced(pid, by: tracer) }
            }
            throw Classification.error(error, pid: pid, operation: .attach)
        }
        vmio_tracked_add(tid)
        try? Sys.ptraceInterrupt(tid)
        return true
    }

    /// How a wait for a seized thread's stop ended.
    enum StopWait {
        /// In a stop; `signal` is what to hand back at detach.
        case stopped(signal: Int32)
        /// Exited, or not ours any more (no longer tracked).
        case gone
        /// The deadline passed first.
        case late
    }

    /// Polls `waitpid(tid, __WALL | WNOHANG)` until the thread stops or exits, or the
    /// deadline passes; the pauses between polls grow from 20 µs to 2 ms.
    static func waitForStop(_ tid: Int32, deadline: ContinuousClock.Instant) -> StopWait {
        var pause: UInt32 = 20
        while true {
            let status: WaitStatus?
            do { status = try Sys.waitpid(tid, hang: false) } catch {
                vmio_tracked_remove(tid)  // not ours any more: gone
                return .gone
            }
            if let status {
                if let signal = status.signalToRedeliver { return .stopped(signal: signal) }
                vmio_tracked_remove(tid)  // exited or killed
                return .gone
            }
            if ContinuousClock.now >= deadline { return .late }
            Sys.pause(microseconds: pause)
            pause = min(pause * 2, 2_000)
        }
    }

    /// Lets a held thread go (`PTRACE_DETACH`, handing back `signal`). A thread not in a stop
    /// yet (its interrupt still pending) has its stop collected first, briefly.
    static func release(_ tid: Int32, signal: Int32) {
        do { try Sys.ptraceDetach(tid, signal: signal) } catch {
            guard error == .noSuchProcess else { return vmio_tracked_remove(tid) }
            let deadline = ContinuousClock.now + .milliseconds(100)
            if case .stopped = waitForStop(tid, deadline: deadline) { try? Sys.ptraceDetach(tid, signal: 0) }
        }
        vmio_tracked_remove(tid)
    }

    /// Lets every thread go (`PTRACE_DETACH`, re-delivering any signal caught while stopped),
    /// then checks from `/proc/PID/status` that the target is in the state it was in before
    /// the attach — running, or job-stopped (a job-stopped target the detach let run is
    /// stopped again). The result is kept in ``restoreCheck``; when the state could not be
    /// restored, ``restoreWarning`` is told. Idempotent.
    @discardableResult
    public func detach() -> RunStateCheck? {
        guard !detached else { return restoreCheck }
        detached = true
        let held = !stoppedThreads.isEmpty
        // Read while every thread is held (none can take a signal): whether it is about to stop.
        let stopComing = held && (stopSignalPending(pid) || stoppedThreads.values.contains(where: isStopSignal))
        for (tid, signal) in stoppedThreads { Self.release(tid, signal: signal) }
        stoppedThreads.removeAll()
        Self.releaseLingering()
        guard held else { return nil }
        let check = RunState.verify(pid: pid, expected: initialState, stopComing: stopComing)
        restoreCheck = check
        if !check.restored { Self.warn(check.description) }
        return check
    }

    /// Whether this tracer holds `tid` in a stop.
    func holds(_ tid: Int32) -> Bool { stoppedThreads[tid] != nil }

    /// The thread ids currently held.
    public var threads: [Int32] { stoppedThreads.keys.sorted() }

    // MARK: process-wide state

    /// Threads seized whose stop never came (a thread in uninterruptible sleep, `D`): they
    /// cannot be detached until they stop; ``releaseLingering()`` lets them go once they do,
    /// and the kernel lets them go when this process exits. Shared by every tracer of the
    /// process (a later command may find an earlier one's), so behind a lock.
    private static let lingering = Locked<Set<Int32>>([])

    static func linger(_ tids: [Int32]) {
        lingering.withLock { $0.formUnion(tids) }
    }

    /// Lets go the seized threads whose stop came late: each one that is in a stop now is
    /// detached; the others stay until they stop or this process exits.
    public static func releaseLingering() {
        lingering.withLock { lingering in
            for tid in lingering {
                let status: WaitStatus?
                do { status = try Sys.waitpid(tid, hang: false) } catch {
                    status = .exited(code: 0)  // not ours any more
                }
                guard let status else { continue }  // still not stopped
                if let signal = status.signalToRedeliver { try? Sys.ptraceDetach(tid, signal: signal) }
                // Detached, exited, or not ours any more.
                lingering.remove(tid)
                vmio_tracked_remove(tid)
            }
        }
    }

    /// Threads seized whose stop has not come yet.
    public static var lingeringThreads: [Int32] { lingering.withLock { $0.sorted() } }

    private static let warning = Locked<(@Sendable (String) -> Void)?>(nil)

    /// Called with one line when a target's run state could not be restored at detach (the
    /// CLI prints it as a warning). Process-wide, so behind a lock.
    public static var restoreWarning: (@Sendable (String) -> Void)? {
        get { warning.withLock { $0 } }
        set { warning.withLock { $0 = newValue } }
    }

    static func warn(_ line: String) {
        restoreWarning?(line)
    }

    private static let handlers = Locked<(wanted: Bool, installed: Bool)>((true, false))

    /// Whether the first tracer installs process-wide handlers for SIGINT, SIGTERM, SIGHUP,
    /// SIGQUIT and SIGPIPE that detach every held thread and then die of the signal
    /// (ignored signals stay ignored). On by default so that no exit path leaves a target
    /// stopped; a host program with its own handlers turns it off and calls ``detach()``
    /// from them instead (the kernel also lets tracees go when the tracer dies).
    public static var installsSignalHandlers: Bool {
        get { handlers.withLock { $0.wanted } }
        set { handlers.withLock { $0.wanted = newValue } }
    }

    static func installSignalHandlersOnce() {
        handlers.withLock { state in
            guard state.wanted, !state.installed else { return }
            state.installed = true
            vmio_install_detach_handlers()
        }
    }
}

/// Whether `signal` is one that stops a process (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU).
func isStopSignal(_ signal: Int32) -> Bool {
    signal == SIGSTOP || signal == SIGTSTP || signal == SIGTTIN || signal == SIGTTOU
}
