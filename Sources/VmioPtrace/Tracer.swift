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
    public let pid: Int32
    /// Threads held in a stop, with the signal to hand back at detach (0 for none).
    public private(set) var stoppedThreads: [Int32: Int32] = [:]
    private var detached = false
    /// The target's state before the attach (RunState.swift): restored, and checked, at detach.
    public private(set) var initialState: RunState
    /// What ``detach()`` found: whether the state before the attach holds again.
    public private(set) var restoreCheck: RunStateCheck?
    /// Called with one line when a target's run state could not be restored at detach
    /// (the CLI prints it as a warning).
    nonisolated(unsafe) public static var restoreWarning: ((String) -> Void)?
    /// Threads seized whose stop never came (a thread in uninterruptible sleep, `D`): they
    /// cannot be detached until they stop; ``releaseLingering()`` lets them go once they do,
    /// and the kernel lets them go when this process exits.
    nonisolated(unsafe) private static var lingering: Set<Int32> = []

    /// Seizes and stops every thread of `pid`, waiting at most `timeout` in all for the stops.
    /// With `threads`, only those of them that exist are stopped (one pass, no re-reading);
    /// the other threads run on. ``TargetError/noSuchProcess(pid:)`` when none could be held
    /// (or the process is a zombie), ``TargetError/alreadyTraced(pid:tracerPid:tracerName:)``
    /// when another tracer holds it, ``TargetError/attachTimeout(pid:tid:state:)`` naming a
    /// thread that did not stop in time (uninterruptible sleep) and its state. The state
    /// before the attach is recorded (``initialState``). On any failure every thread already
    /// held is let go before the error is thrown.
    public init(pid: Int32, threads: Set<Int32>? = nil, timeout: Duration = .seconds(5)) throws(TargetError) {
        self.pid = pid
        Self.installSignalHandlersOnce()
        Self.releaseLingering()
        initialState = RunState.of(pid: pid)
        if ProcFS.isKernelThread(pid) {
            throw .permissionDenied(
                pid: pid, operation: "attach to",
                reason:
                    "pid \(pid) (\(ProcFS.command(pid))) is a kernel thread: the kernel lets no process trace it, and it has no user memory"
            )
        }
        switch initialState.kind {
        case .gone: throw .noSuchProcess(pid: pid)
        case .zombie: throw .noSuchProcess(pid: pid)
        default: break
        }
        if initialState.tracerPid != 0 {
            // TracerPid names the tracing thread: one of ours means this process holds it already.
            let tracer = ProcFS.isOwnThread(initialState.tracerPid) ? getpid() : initialState.tracerPid
            throw .alreadyTraced(pid: pid, tracerPid: tracer, tracerName: ProcFS.command(tracer))
        }
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
        stoppedThreads[pid] = 0
        vmio_tracked_add(pid)
    }

    deinit { detach() }

    private func stopAll(timeout: Duration, only: Set<Int32>?) throws(TargetError) {
        // One deadline for the whole attach, however many threads there are.
        let deadline = ContinuousClock.now + timeout
        var known = Set<Int32>()
        while true {
            let tids: [Int32]
            do { tids = try ProcFS.threads(pid).filter { only?.contains($0) ?? true } } catch {
                throw known.isEmpty
                    ? Diagnose.accessError(error, pid: pid, operation: "list the threads of")
                    : .noSuchProcess(pid: pid)
            }
            let fresh = tids.filter { !known.contains($0) }
            if fresh.isEmpty { break }
            var seized: [Int32] = []
            for tid in fresh {
                known.insert(tid)
                if vmio_ptrace_seize(tid, 0) != 0 {
                    let err = Errno(rawValue: vmio_errno())
                    if err == .noSuchProcess { continue }  // the thread exited meanwhile
                    if err == .notPermitted, let status = try? ProcFS.status(pid),
                        let tracer = status["TracerPid"].flatMap({ Int32($0) }), tracer != 0
                    {
                        let holder = ProcFS.isOwnThread(tracer) ? getpid() : tracer
                        throw .alreadyTraced(pid: pid, tracerPid: holder, tracerName: ProcFS.command(holder))
                    }
                    throw Diagnose.accessError(err, pid: pid, operation: "attach to")
                }
                vmio_tracked_add(tid)
                stoppedThreads[tid] = 0
                seized.append(tid)
                _ = vmio_ptrace_interrupt(tid)
            }
            var late: [Int32] = []
            for tid in seized where !waitForStop(tid, deadline: deadline) { late.append(tid) }
            if let first = late.first {
                // These threads are seized but not stopped (uninterruptible sleep, most
                // likely): they cannot be detached before they stop. Keep them where a
                // later release, the signal handlers and the kernel (at exit) find them.
                for tid in late {
                    pending.insert(tid)
                    Self.lingering.insert(tid)
                }
                let others = late.dropFirst().map { "\($0) (\(ProcFS.threadStateText(pid: pid, tid: $0)))" }
                throw .attachTimeout(
                    pid: pid, tid: first,
                    state: ProcFS.threadStateText(pid: pid, tid: first)
                        + (others.isEmpty ? "" : "; also threads \(others.joined(separator: ", "))"))
            }
        }
        if stoppedThreads.isEmpty { throw .noSuchProcess(pid: pid) }
    }

    /// Seized threads whose stop did not come in time.
    private var pending: Set<Int32> = []

    /// Polls `waitpid(tid, __WALL | WNOHANG)` until the thread stops or exits (true), or the
    /// deadline passes (false).
    private func waitForStop(_ tid: Int32, deadline: ContinuousClock.Instant) -> Bool {
        let clock = ContinuousClock()
        var pause: UInt32 = 20
        while true {
            var status: Int32 = 0
            let r = waitpid(tid, &status, Int32(bitPattern: 0x4000_0000) | WNOHANG)  // __WALL
            if r == tid {
                if status & 0xff == 0x7f {  // stopped
                    let signal = (status >> 8) & 0xff
                    let event = status >> 16
                    // A group stop or our interrupt hands back nothing; any other signal is re-delivered.
                    let isEventStop = event == 128  // PTRACE_EVENT_STOP
                    stoppedThreads[tid] = isEventStop || signal == SIGTRAP ? 0 : signal
                    return true
                }
                forget(tid)  // exited or killed
                return true
            }
            if r < 0 {
                if errno == EINTR { continue }
                forget(tid)  // not ours any more: gone
                return true
            }
            if clock.now >= deadline {
                stoppedThreads[tid] = nil  // seized, but not held: see `pending`
                return false
            }
            usleep(pause)
            pause = min(pause * 2, 2_000)
        }
    }

    private func forget(_ tid: Int32) {
        stoppedThreads[tid] = nil
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
        for (tid, signal) in stoppedThreads {
            if vmio_ptrace_detach(tid, signal) != 0 && vmio_errno() == ESRCH {
                // Not in a stop yet (an interrupt still pending): collect the stop, briefly, then detach.
                for _ in 0..<100 {
                    var status: Int32 = 0
                    let r = waitpid(tid, &status, Int32(bitPattern: 0x4000_0000) | WNOHANG)
                    if r == tid {
                        if status & 0xff == 0x7f { _ = vmio_ptrace_detach(tid, 0) }
                        break
                    }
                    if r < 0 { break }
                    usleep(1_000)
                }
            }
            vmio_tracked_remove(tid)
        }
        stoppedThreads.removeAll()
        Self.releaseLingering()
        guard held else { return nil }
        let check = RunState.verify(pid: pid, expected: initialState)
        restoreCheck = check
        if !check.restored { Self.restoreWarning?(check.description) }
        return check
    }

    /// Lets go the seized threads whose stop came late (see `lingering`): each one that is
    /// in a stop now is detached; the others stay until they stop or this process exits.
    public static func releaseLingering() {
        for tid in lingering {
            var status: Int32 = 0
            let r = waitpid(tid, &status, Int32(bitPattern: 0x4000_0000) | WNOHANG)  // __WALL
            if r == tid, status & 0xff == 0x7f {
                // Our interrupt (or a group stop) hands back nothing; any other signal is re-delivered.
                let signal = (status >> 8) & 0xff, event = status >> 16
                _ = vmio_ptrace_detach(tid, event == 128 || signal == SIGTRAP ? 0 : signal)
            } else if r == 0 {
                continue  // still not stopped
            }
            // Detached, exited, or not ours any more.
            lingering.remove(tid)
            vmio_tracked_remove(tid)
        }
    }

    /// Threads seized whose stop has not come yet.
    public static var lingeringThreads: [Int32] { lingering.sorted() }

    /// The thread ids currently held.
    public var threads: [Int32] { stoppedThreads.keys.sorted() }

    nonisolated(unsafe) private static var handlersInstalled = false
    /// Whether the first tracer installs process-wide handlers for SIGINT, SIGTERM, SIGHUP,
    /// SIGQUIT and SIGPIPE that detach every held thread and then die of the signal
    /// (ignored signals stay ignored). On by default so that no exit path leaves a target
    /// stopped; a host program with its own handlers turns it off and calls ``detach()``
    /// from them instead (the kernel also lets tracees go when the tracer dies).
    nonisolated(unsafe) public static var installsSignalHandlers = true

    private static func installSignalHandlersOnce() {
        guard installsSignalHandlers, !handlersInstalled else { return }
        handlersInstalled = true
        vmio_install_detach_handlers()
    }
}
