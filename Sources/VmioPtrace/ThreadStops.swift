import SystemPackage
import VmIO

/// A thread of a target: its id and its name (`/proc/PID/task/TID/comm`).
public struct ThreadInfo: Hashable, Sendable {
    /// The thread's id.
    public let tid: Int32
    /// Its name (`/proc/PID/task/TID/comm`).
    public let name: String
    /// Thread `tid`, named `name`.
    public init(tid: Int32, name: String) {
        self.tid = tid
        self.name = name
    }
}

/// The state recorded before the first of the threads a command stops one at a time
/// (``Target/withThreadStopped(_:timeout:_:)``), checked once when the command lets the
/// target go (``Target/resume()``).
struct ThreadStopBaseline {
    let state: RunState
    /// A stop signal was handed back to a thread when it was let go: the target is about to stop.
    var stopHandedBack = false
}

extension Target {
    /// The threads of the target, sorted by tid, with their names: `/proc/PID/task` listed
    /// once, one `comm` read a thread.
    ///
    /// Throws ``TargetError/noSuchProcess(pid:)`` when the process is gone, and
    /// ``TargetError/permissionDenied(pid:operation:reason:)`` when `/proc/PID/task` may not be listed.
    public func threadInfos() throws(TargetError) -> [ThreadInfo] {
        let tids: [Int32]
        do { tids = try ProcFS.threads(pid) } catch {
            throw Classification.error(error, pid: pid, operation: .listThreads)
        }
        if tids.isEmpty { throw .noSuchProcess(pid: pid) }
        return tids.map { ThreadInfo(tid: $0, name: ProcFS.threadName(pid: pid, tid: $0)) }
    }

    /// Runs `body` while thread `tid` is held in a ptrace stop by the calling thread.
    ///
    /// When the whole target is already stopped (``stop(timeout:)``) the thread is used as
    /// it is. Otherwise that thread alone is seized and stopped for the duration of `body`
    /// (tracked for the signal handlers, so it is let go on every path) and the other
    /// threads run on. The per-thread cost is the stop itself: nothing is listed, and the
    /// run state is recorded before the first such stop of a command and checked once, for
    /// the whole process, by ``resume()`` (or when the target is dropped).
    /// ``TargetError/noSuchThread(pid:tid:)`` when the thread is gone but the process lives,
    /// ``TargetError/noSuchProcess(pid:)`` when the process is gone.
    public func withThreadStopped<R>(
        _ tid: Int32, timeout: Duration? = nil, _ body: () throws(TargetError) -> R
    ) throws(TargetError) -> R {
        if let tracer {
            guard tracer.holds(tid) else { throw gone(tid) }
            return try body()
        }
        if threadStopBaseline == nil {
            Tracer.installSignalHandlersOnce()
            Tracer.releaseLingering()
            threadStopBaseline = ThreadStopBaseline(state: try Tracer.stateBeforeAttach(pid))
        }
        // Only a thread of this process (one stat, not a listing).
        guard (try? Sys.fileStatus("/proc/\(pid)/task/\(tid)")) != nil, try Tracer.seize(pid: pid, tid: tid) else {
            throw gone(tid)
        }
        let signal: Int32
        switch Tracer.waitForStop(tid, deadline: .now + (timeout ?? attachTimeout)) {
        case .stopped(let s): signal = s
        case .gone: throw gone(tid)
        case .late:
            Tracer.linger([tid])
            throw .attachTimeout(pid: pid, tid: tid, state: ProcFS.threadStateText(pid: pid, tid: tid))
        }
        if isStopSignal(signal) { threadStopBaseline?.stopHandedBack = true }
        defer { Tracer.release(tid, signal: signal) }
        return try body()
    }

    /// Checks, once for the whole process, that the threads stopped one at a time
    /// (``withThreadStopped(_:timeout:_:)``) left the target in its state from before the
    /// first (``lastRestore``; a ``Tracer/restoreWarning`` otherwise). A command that stops
    /// threads one at a time calls it after the last; ``resume()`` and the end of the
    /// target call it too. Nothing happens when no thread was stopped that way since.
    public func finishThreadStops() {
        guard let baseline = threadStopBaseline else { return }
        threadStopBaseline = nil
        let check = RunState.verify(
            pid: pid, expected: baseline.state, stopComing: baseline.stopHandedBack || stopSignalPending(pid))
        lastRestore = check
        if !check.restored { Tracer.warn(check.description) }
    }

    /// The error for a thread that could not be held: the process's, if it is gone too.
    func gone(_ tid: Int32) -> TargetError {
        ProcFS.isAlive(pid) ? .noSuchThread(pid: pid, tid: tid) : .noSuchProcess(pid: pid)
    }
}

extension ProcFS {
    /// A thread's name (`/proc/PID/task/TID/comm`), or `?` when it cannot be read.
    public static func threadName(pid: Int32, tid: Int32) -> String {
        ((try? readText("/proc/\(pid)/task/\(tid)/comm")) ?? "?").trimmingCharacters(in: "\n")
    }
}
