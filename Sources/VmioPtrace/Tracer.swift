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

    /// Seizes and stops every thread of `pid`, waiting at most `timeout` for each stop.
    /// With `threads`, only those of them that exist are stopped (one pass, no re-reading);
    /// the other threads run on. ``TargetError/noSuchProcess(pid:)`` when none could be held.
    /// On any failure every thread already seized is let go before the error is thrown.
    public init(pid: Int32, threads: Set<Int32>? = nil, timeout: Duration = .seconds(5)) throws(TargetError) {
        self.pid = pid
        Self.installSignalHandlersOnce()
        if let status = try? ProcFS.status(pid), let tracer = status["TracerPid"].flatMap({ Int32($0) }),
            tracer != 0, tracer != getpid()
        {
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
        stoppedThreads[pid] = 0
        vmio_tracked_add(pid)
    }

    deinit { detach() }

    private func stopAll(timeout: Duration, only: Set<Int32>?) throws(TargetError) {
        var known = Set<Int32>()
        while true {
            let tids: [Int32]
            do { tids = try ProcFS.threads(pid).filter { only?.contains($0) ?? true } } catch {
                throw known.isEmpty ? Diagnose.accessError(error, pid: pid, operation: "list the threads of")
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
                        throw .alreadyTraced(pid: pid, tracerPid: tracer, tracerName: ProcFS.command(tracer))
                    }
                    throw Diagnose.accessError(err, pid: pid, operation: "attach to")
                }
                vmio_tracked_add(tid)
                stoppedThreads[tid] = 0
                seized.append(tid)
                _ = vmio_ptrace_interrupt(tid)
            }
            for tid in seized { try waitForStop(tid, timeout: timeout) }
        }
        if stoppedThreads.isEmpty { throw .noSuchProcess(pid: pid) }
    }

    /// Polls `waitpid(tid, __WALL | WNOHANG)` until the thread stops or exits, or time runs out.
    private func waitForStop(_ tid: Int32, timeout: Duration) throws(TargetError) {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
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
                    return
                }
                forget(tid)  // exited or killed
                return
            }
            if r < 0 {
                if errno == EINTR { continue }
                forget(tid)  // not ours any more: gone
                return
            }
            if clock.now >= deadline {
                throw .attachTimeout(pid: pid, tid: tid, state: ProcFS.threadState(pid: pid, tid: tid))
            }
            usleep(pause)
            pause = min(pause * 2, 2_000)
        }
    }

    private func forget(_ tid: Int32) {
        stoppedThreads[tid] = nil
        vmio_tracked_remove(tid)
    }

    /// Lets every thread go (`PTRACE_DETACH`, re-delivering any signal caught while stopped).
    /// Idempotent.
    public func detach() {
        guard !detached else { return }
        detached = true
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
    }

    /// The thread ids currently held.
    public var threads: [Int32] { stoppedThreads.keys.sorted() }

    nonisolated(unsafe) private static var handlersInstalled = false
    private static func installSignalHandlersOnce() {
        guard !handlersInstalled else { return }
        handlersInstalled = true
        vmio_install_detach_handlers()
    }
}
