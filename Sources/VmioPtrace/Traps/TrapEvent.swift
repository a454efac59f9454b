import VmIO

/// A trap of a ``TrapSession``: a software breakpoint (an `int3` byte in the target's text),
/// or a debug register watching or executing an address.
public struct Trap: Hashable, Sendable {
    /// How the trap is made.
    public enum Kind: Hashable, Sendable {
        /// `int3` at the address, the original byte kept.
        case software
        /// A debug register (`break --hardware`, `watch`).
        case hardware(WatchAccess)
    }

    /// Its number in the session (1, 2, …).
    public let id: Int
    /// How it is made.
    public let kind: Kind
    /// The address it traps: a breakpoint's instruction, a watchpoint's first byte.
    public let address: Address
    /// The bytes watched (1 for a breakpoint).
    public let length: Int
    /// The debug registers it holds (none for a software breakpoint).
    public internal(set) var slots: [Int] = []

    /// Whether it stops at an instruction (software, or a hardware `execute` trap) rather than watching data.
    public var isBreakpoint: Bool {
        if case .hardware(let access) = kind { access == .execute } else { true }
    }
}

/// What a ``TrapSession`` saw: a trap hit, a signal, the end of the process, an exec, a
/// timeout, or a fatal signal sent to this tool.
public struct TrapEvent: Sendable {
    /// What happened.
    public enum Kind: String, Sendable {
        /// A breakpoint or watchpoint hit, a signal for the thread, the process's end or exec, the
        /// wait's timeout, a fatal signal sent to this tool, a single step done, a `finish` returned.
        case breakpoint, watchpoint, signal, exit, exec, timeout, interrupted, step, finish
    }

    /// What happened.
    public let kind: Kind
    /// The thread (0 for a timeout or an interruption).
    public let tid: Int32
    /// Where the thread is: a breakpoint's address, the instruction after a watched write.
    public let pc: Address
    /// The trap that fired.
    public let trap: Trap?
    /// The watched bytes before a watchpoint hit (their values at the previous hit).
    public let old: [UInt8]?
    /// The watched bytes after a watchpoint hit.
    public let new: [UInt8]?
    /// The signal of a `signal` event (delivered when the thread resumes) or of an
    /// `interrupted` one (sent to this tool).
    public let signal: Int32?
    /// How the process ended (`exit`).
    public let end: ProcessEnd?
    /// The thread's registers at the event (after a breakpoint's pc was moved back).
    public let registers: Registers?
    /// Wall-clock time of the event, in nanoseconds since the epoch.
    public let time: UInt64

    init(
        _ kind: Kind, tid: Int32 = 0, pc: Address = 0, trap: Trap? = nil, old: [UInt8]? = nil, new: [UInt8]? = nil,
        signal: Int32? = nil, end: ProcessEnd? = nil, registers: Registers? = nil
    ) {
        (self.kind, self.tid, self.pc, self.trap, self.old, self.new) = (kind, tid, pc, trap, old, new)
        (self.signal, self.end, self.registers) = (signal, end, registers)
        time = Sys.wallClockNanoseconds
    }

    /// Whether the session can go on after it (not an exit, an exec, a timeout, an interruption).
    public var endsWaiting: Bool {
        switch kind {
        case .exit, .exec, .timeout, .interrupted: true
        default: false
        }
    }
}

/// What ending a ``TrapSession`` found: each byte put back and each thread's DR7 read back.
public struct TrapCleanup: Sendable, CustomStringConvertible {
    /// `int3` bytes put back (and read back equal to the originals).
    public var bytesRestored = 0
    /// Threads whose DR7 was cleared and read back 0.
    public var threadsCleared = 0
    /// What could not be put back or verified, one line each.
    public var problems: [String] = []
    /// The run state check of the detach.
    public var runState: RunStateCheck?

    /// Whether everything was put back and read back as it should.
    public var verified: Bool { problems.isEmpty }

    public var description: String {
        if problems.isEmpty {
            return "left nothing behind: \(bytesRestored) byte(s) put back, DR7 zero on \(threadsCleared) thread(s)"
        }
        return "cleanup problems: " + problems.joined(separator: "; ")
    }
}
