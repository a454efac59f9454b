import SystemPackage
import VmIO

/// Errors of the Linux layer: what went wrong with a target process.
public enum TargetError: Error, Hashable, Sendable, CustomStringConvertible {
    /// No process with this pid exists (or it is a zombie with nothing left to read).
    case noSuchProcess(pid: Int32)
    /// The kernel refused `operation`; `reason` says why, and what would fix it.
    case permissionDenied(pid: Int32, operation: String, reason: String)
    /// Another tracer holds the process (`TracerPid` in `/proc/PID/status`).
    case alreadyTraced(pid: Int32, tracerPid: Int32, tracerName: String)
    /// A thread did not reach a ptrace stop in time.
    case attachTimeout(pid: Int32, tid: Int32, state: String)
    /// A system call failed in a way none of the above covers.
    case system(call: String, errno: Errno)
    /// A model error (bad range, partial copy, owner conflict…).
    case model(VmIoError)

    public var description: String {
        switch self {
        case .noSuchProcess(let pid): "no such process: \(pid)"
        case .permissionDenied(let pid, let op, let reason): "permission denied to \(op) pid \(pid): \(reason)"
        case .alreadyTraced(let pid, let tracer, let name):
            "pid \(pid) is already traced by pid \(tracer) (\(name)); detach that tracer first"
        case .attachTimeout(let pid, let tid, let state):
            "thread \(tid) of pid \(pid) did not stop in time (state \(state)); every thread was let go as it was"
        case .system(let call, let errno): "\(call) failed: \(errno)"
        case .model(let e): e.description
        }
    }
}
