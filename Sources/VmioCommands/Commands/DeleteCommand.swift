import ArgumentParser
import VmIO
import VmioPtrace

/// A session's `delete ID`: a breakpoint's byte put back, or a watchpoint's debug registers
/// freed on every thread.
public struct DeleteCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Remove a breakpoint or watchpoint (session) by the id break or watch gave."
    )

    @Argument(help: "The id break or watch gave.")
    public var id: Int

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        try context.traps.existingSession(for: "delete").remove(id)
        var o = Outcome()
        o.text = ["deleted #\(id)"]
        o.json = [("id", .int(Int64(id)))]
        o.value = .int(Int128(id))
        return o
    }
}
