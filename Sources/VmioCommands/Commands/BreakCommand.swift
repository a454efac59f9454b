import ArgumentParser
import VmIO
import VmioPtrace

/// `break ADDR…`: logging breakpoints, each hit one line with the call's first six arguments.
public struct BreakCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "break",
        abstract: "Log every time a process reaches an address, with its first six arguments.",
        discussion: """
            Puts an int3 byte at each ADDR through /proc/PID/mem (the original kept), or with \
            --hardware uses a debug register (at most four), lets the target run, and prints one \
            line a hit: the time (UTC), the thread, the pc as FUNCTION+0xOFF (MODULE+0xOFF), \
            and rdi rsi rdx rcx r8 r9 (the first six integer arguments of the x86-64 System V \
            calling convention); --regs adds every register. The thread then goes on: the \
            original byte is put back, that thread single-stepped with the others held, and the \
            int3 put back. A fork's child gets the int3 bytes out of its copy of the text and is \
            let go; exec ends every breakpoint. Signals the target receives are delivered to \
            it. Ends as watch does; before the target is let go every original byte is put back \
            and read back, and DR7 cleared on every thread. --json prints one object a hit \
            {event, time, id, tid, pc, function, location, arguments: {rdi…r9}, registers} \
            and the same last object as watch.
            """
    )

    @Argument(help: "Where to break: 0x…, FILE+OFF, sym:NAME (one or more).")
    public var addresses: [AddressExpression]

    @Flag(help: "Use a debug register (DR0-DR3) instead of an int3 byte.")
    public var hardware = false

    @Flag(help: "Show every register at each hit.")
    public var regs = false

    @OptionGroup public var log: TrapLogOptions

    public init() {}

    public func validate() throws {
        if addresses.isEmpty { throw ValidationError("give at least one ADDR") }
        if hardware && addresses.count > DebugRegisters.slotCount {
            throw ValidationError("--hardware has four debug registers: at most 4 ADDRs")
        }
    }

    static let arguments = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"]
    /// Where each of ``arguments`` is in ``Registers/values``.
    static let argumentIndices = arguments.map { Registers.names.firstIndex(of: $0)! }

    public func run(in context: CommandContext) throws -> Outcome {
        try context.withTarget(attach: log.attach) { target in
            let starts = try addresses.map { try target.resolve($0) }
            let log = TrapLog(context: context, options: self.log) { event, parts in
                guard let registers = event.registers else { return ("", []) }
                let arguments = Self.argumentIndices.map { (Registers.names[$0], registers.values[$0]) }
                var text = ""
                var json: [(String, JSONValue)] = []
                if parts.contains(.text) {
                    text = arguments.map { "\($0.0)=\($0.1.hex)" }.joined(separator: " ")
                    if regs {
                        text += " " + registers.named.map { "\($0.name)=\($0.value.hex)" }.joined(separator: " ")
                    }
                }
                if parts.contains(.json) {
                    json = [("arguments", .object(arguments.map { ($0.0, .string($0.1.hex)) }))]
                    if regs {
                        json.append(("registers", .object(registers.named.map { ($0.name, .string($0.value.hex)) })))
                    }
                }
                return (text, json)
            }
            return try log.run(target, verb: "break") { session in
                try starts.map { try session.addBreakpoint(at: $0, hardware: hardware) }
            }
        }
    }
}
