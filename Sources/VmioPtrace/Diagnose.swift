import Glibc
import SystemPackage
import VmIO

/// Turns a bare errno into a reason a person can act on.
public enum Diagnose {
    /// Maps the errno of a failed access to `pid` into a ``TargetError``.
    /// A `/proc` entry that is missing while the process exists (`kill(pid, 0)` finds it)
    /// is hidden by `hidepid`: a permission problem, explained as one.
    public static func accessError(_ errno: Errno, pid: Int32, operation: String) -> TargetError {
        let wanted: DoctorOperation =
            operation.contains("attach") ? .stop : operation.contains("write") ? .write : .read
        switch errno {
        case .noSuchFileOrDirectory, .noSuchProcess:
            if errno == .noSuchFileOrDirectory, kill(pid, 0) == 0 || Glibc.errno == EPERM,
                let reason = Doctor.examine(pid: pid, for: wanted).reason
            {
                return .permissionDenied(pid: pid, operation: operation, reason: reason)
            }
            return .noSuchProcess(pid: pid)
        case .permissionDenied, .notPermitted:
            return .permissionDenied(
                pid: pid, operation: operation, reason: permissionReason(pid: pid, operation: wanted))
        default: return .system(call: operation, errno: errno)
        }
    }

    /// Whether this process holds `CAP_SYS_PTRACE` in its effective set.
    public static var hasPtraceCapability: Bool {
        guard let status = try? ProcFS.status(getpid()), let hex = status["CapEff"],
            let caps = UInt64(hex, radix: 16)
        else { return geteuid() == 0 }
        return caps & (1 << 19) != 0
    }

    /// `kernel.yama.ptrace_scope`, or nil when Yama is not built in.
    public static var ptraceScope: Int? {
        (try? ProcFS.readText("/proc/sys/kernel/yama/ptrace_scope")).flatMap {
            Int($0.trimmingCharacters(in: " \n"))
        }
    }

    /// The likeliest reason the kernel refuses to let this process do `operation` to `pid`:
    /// the first failing check of the doctor (Doctor.swift), what it found, and its fix.
    public static func permissionReason(pid: Int32, operation: DoctorOperation = .read) -> String {
        let report = Doctor.examine(pid: pid, for: operation)
        if let reason = report.reason { return reason }
        return
            "the kernel refused it and none of the doctor's checks explains why (an LSM such as SELinux or AppArmor?); `vmio-ptrace doctor \(pid)` lists what was checked"
    }
}
