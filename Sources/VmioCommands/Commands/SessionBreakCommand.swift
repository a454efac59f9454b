import ArgumentParser
import VmIO
import VmioPtrace

/// A session's `break ADDR [--hardware]`: a breakpoint that `wait` reports; its id is the
/// verb's value (for `delete`).
public struct SessionBreakCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "break",
        abstract: "Set a breakpoint (session): its id; wait reports its hits.",
        discussion: """
            An int3 byte at ADDR through /proc/PID/mem (the original kept), or with --hardware \
            a debug register (DR0-DR3), in the session's own process. The first break or watch \
            holds every thread until wait lets them run; every byte is put back and DR7 cleared \
            at cont and at the end of the session, on every path.
            """
    )

    @Argument(help: "Where to break: 0x…, FILE+OFF, sym:NAME.")
    public var address: AddressExpression

    @Flag(help: "Use a debug register (DR0-DR3) instead of an int3 byte.")
    public var hardware = false

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        try context.withTarget(maps: .onDemand) { target in
            let at = try target.resolve(address)
            let trap = try context.traps.session(on: target).addBreakpoint(at: at, hardware: hardware)
            return TrapOutcome.set(trap, on: target)
        }
    }
}

/// The outcome of setting a trap in a session: `breakpoint #1 int3 at 0x… FUNCTION (LOCATION)`,
/// {id, kind, address, length, access}, the id as the value.
enum TrapOutcome {
    static func set(_ trap: Trap, on target: Target) -> Outcome {
        let place = target.symbols.describe(trap.address)
        let access: String
        switch trap.kind {
        case .software: access = "int3"
        case .hardware(let kind): access = kind.rawValue
        }
        var o = Outcome()
        o.text = [
            "\(trap.isBreakpoint ? "breakpoint" : "watchpoint") \(trap.summary) \(place.functionText) "
                + "(\(place.locationText))"
        ]
        o.json = [
            ("id", .int(Int64(trap.id))), ("kind", .string(trap.isBreakpoint ? "breakpoint" : "watchpoint")),
            ("address", .string(trap.address.hex)), ("length", .int(Int64(trap.length))),
            ("access", .string(access)),
        ]
        o.value = .int(Int128(trap.id))
        return o
    }
}
