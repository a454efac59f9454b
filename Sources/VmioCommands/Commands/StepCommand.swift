import ArgumentParser
import VmIO
import VmioPtrace

/// A session's `step [--thread TID]`: one instruction of the last event's thread.
public struct StepCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Run one instruction of the last event's thread (session); the others stay held.",
        discussion: "Its value is the event step, with the thread's pc and registers ($hit.pc, $hit.rip…)."
    )

    @Option(help: "The thread (default: the thread of the last event).")
    public var thread: Int32?

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        try context.withTarget(maps: .onDemand) { target in
            let session = try context.traps.existingSession(for: "step")
            let event = try session.step(try context.traps.thread(thread, for: "step"))
            return context.traps.outcome(of: event, on: target)
        }
    }
}
