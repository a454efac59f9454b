import Glibc
import SystemPackage
import VmIO

/// What a process was doing, from `/proc/PID/stat` and `/proc/PID/status`: recorded before
/// an attach so that exactly that state can be restored (and checked) afterwards.
public struct RunState: Hashable, Sendable, CustomStringConvertible {
    /// What the state means for after the attach.
    public enum Kind: String, Sendable {
        /// Running or sleeping (`R`, `S`, `D`, `I`…): it must run on afterwards.
        case running
        /// Stopped by a signal (`T`: SIGSTOP, SIGTSTP, `kill -STOP`, a shell's Ctrl-Z): it
        /// must stay stopped afterwards.
        case jobStopped = "job-stopped"
        /// In a ptrace stop (`t`) of some tracer.
        case traceStopped = "trace-stopped"
        /// Exited, not yet reaped by its parent (`Z`, `X`).
        case zombie
        /// No such process.
        case gone
    }

    /// Running, job-stopped, trace-stopped, zombie, or gone.
    public let kind: Kind
    /// The `State:` line of `/proc/PID/status`, e.g. `T (stopped)`; empty when gone.
    public let state: String
    /// `TracerPid` (0 when nobody traces it).
    public let tracerPid: Int32

    /// A state of `kind`, with its `State:` line and `TracerPid`.
    public init(kind: Kind, state: String, tracerPid: Int32) {
        (self.kind, self.state, self.tracerPid) = (kind, state, tracerPid)
    }

    /// The state's letter (`R`, `S`, `D`, `T`, `t`, `Z`…).
    public var letter: Character { state.first ?? "?" }

    /// The kind of a state letter.
    public static func kind(ofLetter letter: Character) -> Kind {
        switch letter {
        case "T": .jobStopped
        case "t": .traceStopped
        case "Z", "X", "x": .zombie
        default: .running
        }
    }

    /// The current state of `pid`.
    public static func of(pid: Int32) -> RunState {
        guard let status = try? ProcFS.status(pid), let state = status["State"], let letter = state.first else {
            return RunState(kind: .gone, state: "", tracerPid: 0)
        }
        let tracer = status["TracerPid"].flatMap { Int32($0) } ?? 0
        return RunState(kind: kind(ofLetter: letter), state: state, tracerPid: tracer)
    }

    public var description: String {
        switch kind {
        case .running: "running (\(state))"
        case .jobStopped: "job-stopped (\(state))"
        case .traceStopped: "in a ptrace stop (\(state))"
        case .zombie: "a zombie (\(state))"
        case .gone: "gone"
        }
    }
}

/// What was found when a target was let go: the state recorded before the attach, the
/// state seen afterwards, and whether they agree.
public struct RunStateCheck: Sendable, CustomStringConvertible {
    /// The process checked.
    public let pid: Int32
    /// Its state before the attach.
    public let before: RunState
    /// Its state after the detach.
    public let after: RunState
    /// The state recorded before the attach holds again (or the target is gone, which no
    /// one could prevent).
    public let restored: Bool
    /// What was done to restore it (`re-stopped with SIGSTOP`), if anything.
    public let action: String?

    public var description: String {
        if restored {
            return "pid \(pid) is \(after.kind.rawValue) again, as before the attach"
                + (action.map { " (\($0))" } ?? "")
        }
        var text = "pid \(pid) was \(before) before the attach but is \(after) now; it could not be restored"
        if before.kind == .running && after.kind == .jobStopped {
            text += " (a stop signal arrived while it was held: `kill -CONT \(pid)` lets it run)"
        }
        return text + (action.map { " (\($0))" } ?? "")
    }
}

extension RunState {
    /// Checks, after a detach, that `pid` is back in `expected`'s kind (`running` or
    /// `jobStopped`), re-stopping a job-stopped target that resumed, and reports what it
    /// found. `stopComing` says whether a stop signal was pending, or handed back, while the
    /// threads were held: then the target is about to stop, and the check waits (at most
    /// `timeout`) to see it. Otherwise a running target is believed at once: nothing this
    /// tool did can stop it. The waits poll the state each millisecond until it is what
    /// they wait for; none sleeps for a fixed time.
    static func verify(
        pid: Int32, expected: RunState, stopComing: Bool, timeout: Duration = .milliseconds(500)
    ) -> RunStateCheck {
        let clock = ContinuousClock()
        var deadline = clock.now + timeout
        var action: String?
        var now = RunState.of(pid: pid)
        func check(_ restored: Bool) -> RunStateCheck {
            RunStateCheck(pid: pid, before: expected, after: now, restored: restored, action: action)
        }
        while true {
            switch (expected.kind, now.kind) {
            case (_, .gone), (_, .zombie): return check(true)
            case (.running, .running) where !stopComing: return check(true)
            case (.running, .jobStopped): return check(false)  // a stop signal arrived while it was held
            case (.jobStopped, .jobStopped): return check(true)
            case (.jobStopped, .running) where action == nil:
                // A job-stopped target the detach let run: stop it again, as it was.
                try? Sys.kill(pid, SIGSTOP)
                action = "re-stopped with SIGSTOP"
                deadline = clock.now + timeout
            default:
                break  // a stop on its way, or a ptrace stop not yet left
            }
            if clock.now >= deadline { return check(false) }
            Sys.pause(microseconds: 1_000)
            now = RunState.of(pid: pid)
        }
    }
}

/// Whether a stop signal (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU) is pending for `pid`: the
/// process looks running now but is about to stop.
func stopSignalPending(_ pid: Int32) -> Bool {
    guard let status = try? ProcFS.status(pid) else { return false }
    let mask: UInt64 = [SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU].reduce(0) { $0 | 1 << UInt64($1 - 1) }
    return ["ShdPnd", "SigPnd"].contains { key in
        status[key].flatMap { UInt64($0, radix: 16) }.map { $0 & mask != 0 } ?? false
    }
}

extension ProcFS {
    /// A thread's `State:` line (`D (disk sleep)`), or `?` when it cannot be read.
    public static func threadStateText(pid: Int32, tid: Int32) -> String {
        guard let text = try? readText("/proc/\(pid)/task/\(tid)/status") else { return "?" }
        for line in text.split(separator: "\n") where line.hasPrefix("State:") {
            return line.dropFirst("State:".count).trimmingCharacters(in: " \t")
        }
        return "?"
    }
}
