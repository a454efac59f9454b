import ArgumentParser
import VmIO
import VmioPtrace

/// `copy SRCPID:ADDR DSTPID:ADDR LEN`: memory from one process to another (or within one).
public struct CopyCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy memory from one process to another (or within one).",
        discussion: """
            Bytes go through a bounded 1 MiB buffer, so memory use stays flat for any length. \
            The destination range must lie in mappings of the destination. A mapping the \
            destination cannot write (r-xp code, r--p data) is refused, exit 3, with nothing \
            written, unless --force, which writes through /proc/PID/mem. A copy that faults \
            reports how many bytes moved and the first faulting address, and exits 2; with \
            --skip-faults, unreadable source pages are stepped over (the destination keeps its \
            bytes there), each hole is reported, and the exit status is 2 if any hole was \
            skipped. --json prints {source, destination, requested, moved, complete, holes, stop}.
            """
    )

    @Argument(help: "SRCPID:ADDR — where to copy from.")
    public var source: ProcessAddress

    @Argument(help: "DSTPID:ADDR — where to copy to.")
    public var destination: ProcessAddress

    @Argument(help: "How many bytes to copy.")
    public var length: Length

    @Flag(help: "Step over source pages that fault instead of stopping at the first.")
    public var skipFaults = false

    @Flag(
        help: """
            Copy past unreadable source pages, write zeros in their place, list them, and exit 0 \
            unless the copy stopped early.
            """
    )
    public var bestEffort = false

    @Flag(help: "Write through /proc/PID/mem, which can write mappings the destination cannot (code, r--p data).")
    public var force = false

    @OptionGroup public var stop: StopOptions

    public static var positionalArguments: [PositionalArgument<Self>] {
        [.init(\.source), .init(\.destination), .init(\.length)]
    }

    public init() {}

    public func run(in context: CommandContext) throws -> Outcome {
        // Both processes stopped (one, when they are the same), each one's maps read after its stop.
        let policy = stop.policy(.required)
        return try context.withTarget(source.pid.value, stop: policy, attach: stop.attach, maps: .onDemand) { from in
            try context.withTarget(destination.pid.value, stop: policy, attach: stop.attach, maps: .onDemand) { to in
                let fromAddress = try from.resolve(source.address)
                let toAddress = try to.resolve(destination.address)
                return try copy(from: from, at: fromAddress, to: to, at: toAddress)
            }
        }
    }

    private func copy(from source: Target, at from: Address, to destination: Target, at to: Address) throws -> Outcome {
        guard try source.mapping(at: from) != nil else {
            throw CommandError.badInput("source address \(from.hex) is in no mapping of pid \(source.pid)")
        }
        let count = length.value
        _ = try AddressRange(start: to, count: count)  // an overflowing range is named as such first
        // The ranges are held by two owners at once, which must not overlap (ARCHITECTURE.md).
        if source.pid == destination.pid, count > 0, from < to &+ count, to < from &+ count {
            throw CommandError.badInput(
                "source \(from.hex) and destination \(to.hex) of \(count) bytes overlap in pid \(source.pid): "
                    + "a copy within one process needs ranges that do not")
        }
        guard try destination.mapping(at: to) != nil else {
            throw CommandError.badInput("destination address \(to.hex) is in no mapping of pid \(destination.pid)")
        }
        let report: TransferReport
        do {
            report = try destination.copy(
                from: source, at: from, to: to, count: count, skipFaults: skipFaults, fillHoles: bestEffort,
                force: force)
        } catch {
            // A guard, not `catch TargetError.model(…)`: that pattern over a typed throw
            // crashes Swift 6.3's SILGen ("Found ownership error").
            guard case .model(.rangeNotCovered(let gap)) = error else { throw error }
            let range = "destination range \(to.hex)+\(count)"
            throw CommandError.badInput(
                "\(range) leaves the mappings of pid \(destination.pid): \(gap.hex) is in no mapping")
        }
        let ends = "\(source.pid):\(from.hex) to \(destination.pid):\(to.hex)"
        var o = Outcome()
        o.json =
            [
                ("source", .string("\(source.pid):\(from.hex)")),
                ("destination", .string("\(destination.pid):\(to.hex)")),
            ] + report.jsonFields
        if report.isComplete {
            o.text = ["copied \(counted(report.moved, "byte")) from \(ends)"]
        } else {
            o.text =
                report.holes.map { "hole: \($0.length) bytes at \($0.address.hex) (\($0.kind))" }
                + [report.summary("copied")]
        }
        o.value = .int(Int128(report.moved))
        o.status = report.exitStatus(bestEffort: bestEffort)
        if o.status != .ok { o.message = report.summary("partial copy", pids: (source.pid, destination.pid)) }
        return o
    }
}
