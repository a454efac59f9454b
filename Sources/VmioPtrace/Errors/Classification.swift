import SystemPackage
import VmIO

/// Where failures become errors: the one place a refusal is explained (by the doctor's
/// first failing check for the operation) and a failure of a process that has begun to
/// exit becomes "target gone". Backends and the system-call wrappers only report errnos.
enum Classification {
    /// The error for a failed access to `pid` (a `/proc` file, a ptrace request).
    /// A `/proc` entry that is missing while the process exists (`kill(pid, 0)` finds it)
    /// is hidden by `hidepid`: a permission problem, explained as one.
    static func error(_ errno: Errno, pid: Int32, operation: AccessOperation) -> TargetError {
        switch errno {
        case .noSuchFileOrDirectory, .noSuchProcess:
            if errno == .noSuchFileOrDirectory, ProcFS.exists(pid),
                let reason = Doctor.examine(pid: pid, for: operation.doctorOperation).reason
            {
                return .permissionDenied(pid: pid, operation: operation, reason: reason)
            }
            return .noSuchProcess(pid: pid)
        case .permissionDenied, .notPermitted:
            return .permissionDenied(
                pid: pid, operation: operation, reason: permissionReason(pid: pid, operation: operation.doctorOperation)
            )
        default: return .system(call: operation.description, errno: errno)
        }
    }

    /// The likeliest reason the kernel refuses this process `operation` on `pid`: the first
    /// failing check of the doctor, what it found, and its fix.
    static func permissionReason(pid: Int32, operation: DoctorOperation) -> String {
        if let reason = Doctor.examine(pid: pid, for: operation).reason { return reason }
        return "the kernel refused it and none of the doctor's checks explains why (an LSM such as SELinux "
            + "or AppArmor?); `vmio-ptrace doctor \(pid)` lists what was checked"
    }

    /// The fault of an access to `pid` that stopped at `address`. A refusal of a process that
    /// is no longer alive (exited, exiting, a zombie) is the target gone: its memory is being
    /// torn down, and every access fails. A plain fault is left as it is here (a transfer that
    /// skips faults meets many, and must not read `/proc` for each); ``Target`` settles the
    /// one that stops a transfer (TransferEngine.swift).
    static func fault(_ stop: AccessStop, at address: Address, pid: Int32) -> FaultKind {
        switch stop.failure {
        case .gone: return .targetGone
        case .fault: return .pageFault(address: address)
        case .refused:
            guard ProcFS.isAlive(pid) else { return .targetGone }
            let operation: DoctorOperation = stop.mechanism.writes ? .write : .read
            return .permission(reason: permissionReason(pid: pid, operation: operation))
        case .notStopped:
            guard ProcFS.isAlive(pid) else { return .targetGone }
            return .other(errno: stop.errno.rawValue, message: "\(stop.mechanism): the thread is not in a ptrace stop")
        case .other:
            return .other(errno: stop.errno.rawValue, message: "\(stop.mechanism): \(stop.errno)")
        }
    }
}
