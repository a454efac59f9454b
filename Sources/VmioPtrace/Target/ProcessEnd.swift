import Glibc
import SystemPackage

/// How a process ended: its exit status, the signal that killed it, or — for a process
/// that is not this one's child, whose status goes to its own parent — only that it is gone.
public enum ProcessEnd: Hashable, Sendable, CustomStringConvertible {
    /// It exited with this status.
    case exited(status: Int32)
    /// A signal of this number killed it.
    case killed(signal: Int32)
    /// It is gone; its status went to its own parent.
    case gone

    /// From a `waitpid(2)` status that is an exit or a death by signal; nil for a stop.
    init?(_ status: WaitStatus) {
        switch status {
        case .exited(let code): self = .exited(status: code)
        case .signaled(let signal): self = .killed(signal: signal)
        case .stopped, .continued: return nil
        }
    }

    /// `exited with status 7`, `was killed by SIGSEGV`, `exited`.
    public var description: String {
        switch self {
        case .exited(let status): "exited with status \(status)"
        case .killed(let signal): "was killed by \(Self.signalName(signal))"
        case .gone: "exited"
        }
    }

    /// `SIGSEGV`, `SIGRTMIN+3`, or `signal 99`: the names of x86-64 Linux's signals.
    public static func signalName(_ signal: Int32) -> String {
        let names = [
            "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE",
            "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ",
            "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
        ]
        if signal >= 1 && Int(signal) <= names.count { return "SIG" + names[Int(signal) - 1] }
        if signal >= 34 && signal <= 64 { return "SIGRTMIN+\(signal - 34)" }
        return "signal \(signal)"
    }
}

/// Watching a process end.
public enum ProcessWatch {
    /// A child of this process that nothing traces: how it ended, once it has (it is then
    /// reaped, and its pid must no longer be used), else nil. `waitpid(2)` with `WNOHANG`.
    /// Not for a child held by a ``Tracer``: that would take the tracer's stop reports.
    public static func poll(child pid: Int32) -> ProcessEnd? {
        do {
            guard let status = try Sys.waitpid(pid, hang: false) else { return nil }
            return ProcessEnd(status)
        } catch {
            // No longer a child of ours (reaped by a tracer's wait): only its absence is known.
            return error == .noChildProcess && !ProcFS.isAlive(pid) ? .gone : nil
        }
    }

    /// Whether a child of this process has ended, without reaping it or taking any stop report
    /// (`waitid(2)` with `WEXITED | WNOHANG | WNOWAIT`): safe for a child a ``Tracer`` holds.
    public static func hasEnded(child pid: Int32) -> Bool {
        var info = siginfo_t()
        let options = WEXITED | WNOHANG | WNOWAIT | Int32(bitPattern: 0x4000_0000)  // __WALL
        guard Glibc.waitid(P_PID, id_t(pid), &info, options) == 0 else { return false }
        return info._sifields._sigchld.si_pid == pid
    }

    /// Waits until a child of this process that nothing traces has ended, and reaps it.
    /// `waitpid(2)`.
    public static func wait(child pid: Int32) -> ProcessEnd {
        while true {
            do {
                if let status = try Sys.waitpid(pid, hang: true), let end = ProcessEnd(status) { return end }
            } catch {
                return waitGone(pid)
            }
        }
    }

    /// Waits until a process that is not this one's child has ended (a zombie included: its
    /// parent has not collected it yet): `pidfd_open(2)` and `poll(2)`, else `/proc` every 10 ms.
    public static func waitGone(_ pid: Int32) -> ProcessEnd {
        while ProcFS.isAlive(pid) {
            if (try? Sys.waitForExit(pid, within: .seconds(1))) == nil { usleep(10_000) }
        }
        return .gone
    }
}
