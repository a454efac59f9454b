import ArgumentParser
import VmIO
import VmioPtrace

/// A session's `wait [--timeout S]`: every thread runs until the next event, which is the
/// verb's value (`$hit.kind`, `$hit.pc`, `$hit.rdi`…).
public struct WaitCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Let the target run until the next event (session): a hit, a signal, its exit.",
        discussion: """
            Resumes every thread (a thread at a breakpoint is stepped over it first) until the \
            next event: breakpoint, watchpoint, signal (delivered when the thread goes on), exit, \
            exec (every trap ends) or timeout; then every thread is held again. Its value is the \
            event, whose fields are read as $hit.kind, $hit.id, $hit.tid, $hit.pc, \
            $hit.address, $hit.old, $hit.value (a watchpoint's values), $hit.signal, \
            $hit.status and every register ($hit.rdi, $hit.rsp…).
            """
    )

    @Option(help: ArgumentHelp("Give up after this many seconds: the event is then timeout.", valueName: "seconds"))
    public var timeout: Double?

    public init() {}

    public func validate() throws {
        if let timeout, !(timeout > 0 && timeout <= 86_400) {
            throw ValidationError("--timeout must be more than 0 and at most 86400 seconds")
        }
    }

    public func run(in context: CommandContext) throws -> Outcome {
        try context.withTarget(maps: .onDemand) { target in
            let session = try context.traps.session(on: target)
            let event = try session.wait(timeout: timeout.map { .milliseconds(Int64(($0 * 1000).rounded(.up))) })
            return context.traps.outcome(of: event, on: target)
        }
    }
}

extension SessionTraps {
    /// The outcome of an event `wait`, `step` or `finish` gave; a fatal signal received is
    /// kept (the session ends, then the tool dies of it).
    func outcome(of event: TrapEvent, on target: Target) -> Outcome {
        lastEvent = event
        if event.kind == .interrupted { keep(interruption: event.signal) }
        return TrapEventValue.outcome(event, on: target)
    }
}
