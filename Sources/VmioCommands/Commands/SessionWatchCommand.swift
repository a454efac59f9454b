import ArgumentParser
import VmIO
import VmioPtrace

/// A session's `watch ADDR [LEN] [--write | --access]`: a hardware watchpoint that `wait`
/// reports; its id is the verb's value (for `delete`).
public struct SessionWatchCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Set a hardware watchpoint (session): its id; wait reports its hits.",
        discussion: """
            LEN bytes at ADDR (default 8; up to 32, in aligned pieces of 1, 2, 4 or 8 bytes, one \
            debug register each) on every thread of the session's own process, threads created \
            later included. wait gives each hit with the value before and after.
            """
    )

    @Argument(help: "The address to watch: 0x…, decimal, [heap]+OFF, FILE+OFF, sym:NAME.")
    public var address: AddressExpression

    @Argument(help: "How many bytes (1 to 32; default 8).")
    public var length: Length?

    @Flag public var mode: WatchMode = .write

    public init() {}

    public func validate() throws {
        let length = self.length?.value ?? 8
        guard length >= 1 && length <= 32 else {
            throw ValidationError("LEN must be 1 to 32 bytes (four debug registers of at most 8 bytes)")
        }
    }

    public func run(in context: CommandContext) throws -> Outcome {
        try context.withTarget(maps: .onDemand) { target in
            let at = try target.resolve(address)
            let trap = try context.traps.session(on: target).addWatchpoint(
                at: at, length: Int(length?.value ?? 8), access: mode == .access ? .access : .write)
            return TrapOutcome.set(trap, on: target)
        }
    }
}
