import VmIO
import VmioPtrace

/// The breakpoints and watchpoints of a session (`break`, `watch`, `delete`, `wait`, `step`,
/// `finish`): one `TrapSession` on the session's own process, made by the first of these
/// verbs, and ended — every byte put back, DR7 cleared on every thread, both read back — by
/// ``end()``, which the session calls at `cont`, at its end whatever happened, and when a
/// fatal signal came (README.md, "Sessions"). While it lives the tool's fatal-signal handlers
/// only record SIGINT/TERM/HUP/QUIT/PIPE: ``takeInterruption()`` takes one, and the session
/// ends before the tool dies of it.
public final class SessionTraps {
    /// The session's own process: the only one traps are set in (a second event loop would
    /// take the first one's stops).
    let pid: Int32?
    /// The event loop, from the first trap verb until ``end()``.
    public private(set) var session: TrapSession?
    /// The last event `wait`, `step` or `finish` gave: whose thread `step` and `finish` take.
    var lastEvent: TrapEvent?
    /// The fatal signal received while the traps were set, once taken.
    public private(set) var interruption: Int32?

    /// The traps of a session on `pid` (nil: the command line, which has no session verbs).
    public init(pid: Int32? = nil) {
        self.pid = pid
    }

    /// The event loop on `target`, made (every thread held) on first use.
    func session(on target: Target) throws -> TrapSession {
        guard target.pid == pid else {
            let own = pid.map { "the session's own process (pid \($0))" } ?? "a session"
            throw CommandError.badInput("breakpoints and watchpoints are set in \(own) only, not in pid \(target.pid)")
        }
        if let session { return session }
        let made = try TrapSession(target: target)
        session = made
        return made
    }

    /// The event loop, or a clear error for a verb that needs one.
    func existingSession(for verb: String) throws -> TrapSession {
        guard let session else {
            throw CommandError.badInput("\(verb) needs a breakpoint or watchpoint: set one first (break, watch)")
        }
        return session
    }

    /// The thread `step` and `finish` work on: `thread`, else the last event's.
    func thread(_ thread: Int32?, for verb: String) throws -> Int32 {
        if let thread { return thread }
        guard let tid = lastEvent?.tid, tid != 0 else {
            throw CommandError.badInput("\(verb) needs a thread: wait for an event first, or give --thread TID")
        }
        return tid
    }

    /// How the process ended, when a wait saw it.
    public var processEnd: ProcessEnd? { session?.processEnd }

    /// A fatal signal received while the traps are set (taken from the handlers' record),
    /// or the one taken before; nil when there is none.
    @discardableResult
    public func takeInterruption() -> Int32? {
        if interruption == nil, session != nil, let signal = TrapSession.pendingSignal() { interruption = signal }
        return interruption
    }

    /// Keeps a fatal signal the event loop took itself (a wait's `interrupted` event).
    func keep(interruption signal: Int32?) {
        if interruption == nil { interruption = signal }
    }

    /// Ends the event loop: every byte put back and DR7 cleared on every thread, both read
    /// back, then the threads let go. Nil when there was none. Idempotent.
    @discardableResult
    public func end() -> TrapCleanup? {
        guard let session else { return nil }
        self.session = nil
        lastEvent = nil
        let cleanup = session.end()
        if interruption == nil, let signal = TrapSession.pendingSignal() { interruption = signal }
        return cleanup
    }
}
