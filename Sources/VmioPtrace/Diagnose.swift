import Glibc
import SystemPackage
import VmIO

/// Turns a bare errno into a reason a person can act on.
public enum Diagnose {
    /// Maps the errno of a failed access to `pid` into a ``TargetError``.
    public static func accessError(_ errno: Errno, pid: Int32, operation: String) -> TargetError {
        switch errno {
        case .noSuchFileOrDirectory, .noSuchProcess: .noSuchProcess(pid: pid)
        case .permissionDenied, .notPermitted:
            .permissionDenied(pid: pid, operation: operation, reason: permissionReason(pid: pid))
        default: .system(call: operation, errno: errno)
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

    /// The likeliest reason the kernel refuses to let this process trace or access `pid`.
    public static func permissionReason(pid: Int32) -> String {
        let me = geteuid()
        let privileged = hasPtraceCapability
        let status = try? ProcFS.status(pid)
        let targetUID = status?["Uid"].flatMap { $0.split(whereSeparator: { $0 == "\t" || $0 == " " }).first }
            .flatMap { UInt32($0) }
        if !privileged, let uid = targetUID, uid != me {
            return "not privileged: this tool runs as uid \(me) without CAP_SYS_PTRACE and the target runs as uid \(uid); run it as root (sudo) or as uid \(uid)"
        }
        if let scope = ptraceScope {
            switch scope {
            case 3:
                return "kernel.yama.ptrace_scope is 3: ptrace is disabled for everyone until the next reboot"
            case 2 where !privileged:
                return "kernel.yama.ptrace_scope is 2: only CAP_SYS_PTRACE may attach; run as root"
            case 1 where !privileged:
                return "kernel.yama.ptrace_scope is 1: only a parent may attach; run as root, or `sysctl kernel.yama.ptrace_scope=0`"
            default: break
            }
        }
        if let tracer = status?["TracerPid"].flatMap({ Int32($0) }), tracer != 0, tracer != getpid() {
            return "already traced by pid \(tracer) (\(ProcFS.command(tracer))); detach that tracer first"
        }
        if status == nil {
            return "the target's /proc entry cannot be read (hidepid on /proc?)"
        }
        if !privileged {
            return "the target is not dumpable (setuid, or PR_SET_DUMPABLE 0); run as root"
        }
        return "the kernel refused the access (a seccomp or LSM policy?)"
    }
}
