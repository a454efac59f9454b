import ArgumentParser
import VmIO
import VmioPtrace

/// A session's `finish [--thread TID]`: run until the current function of the last event's
/// thread returns.
public struct FinishCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "finish",
        abstract: "Run until the current function of the last event's thread returns (session).",
        discussion: """
            A hidden breakpoint at the return address (the word at rsp at a function's first \
            instruction, else the caller's pc from the unwinder), hit by that thread with its \
            stack above where it was. Its value is the event finish (with rax, the return \
            value, as $hit.rax), or another event that came first.
            """
    )

    @Option(help: "The thread (default: the thread of the last event).")
    public var thread: Int32?

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        try context.withTarget(maps: .onDemand) { target in
            let session = try context.traps.existingSession(for: "finish")
            let event = try session.finish(try context.traps.thread(thread, for: "finish"))
            return context.traps.outcome(of: event, on: target)
        }
    }
}
