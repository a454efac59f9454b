import ArgumentParser
import VmIO
import VmioPtrace

/// `read ADDR LEN`: memory of a process as a hex dump, raw bytes, typed values or a string.
public struct ReadCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "read",
        abstract: "Read memory of a process.",
        discussion: """
            LEN is in bytes (decimal, 0x hex, or with a K/M/G suffix). A read that faults \
            prints what it read, then how many bytes moved and the first faulting address, \
            and exits 2. Every format streams through one buffer, so memory use stays flat \
            for any length. --json prints {pid, address, length, format, data | values | string, \
            requested, moved, complete, holes, stop, ranges, mechanism} (with -o FILE: output \
            instead of the data, last).
            """
    )

    @Argument(help: "Where to read: 0x…, decimal, [heap]+OFF, [stack], FILE+OFF, sym:NAME.")
    public var address: AddressExpression

    @Argument(help: "How many bytes to read.")
    public var length: Length

    @Option(help: "hex (a dump with addresses), raw (bytes), u8…u64, i8…i64, f32, f64, ptr, or str (up to a NUL).")
    public var format: ValueFormat = .hex

    @Option(
        name: [.short, .customLong("output")], help: "Write the output to this file instead of standard output.",
        transform: nonEmptyPath)
    public var output: String?

    @Flag(help: "Step over pages that fault (each reported as a hole) instead of stopping at the first.")
    public var skipFaults = false

    @Flag(
        help: """
            Read past holes, fill them with zeros, list them (and the mechanism that failed), \
            and exit 0 unless the read stopped early.
            """
    )
    public var bestEffort = false

    @Flag(help: "Replace the -o file if it exists.") public var force = false

    @Flag(help: "Do not flush the -o file to disk (fsync) before its rename: faster, not durable across a crash.")
    public var noSync = false

    @Flag(help: "Group the hex dump by the target's words (its pointer width, in its byte order), like xxd -e.")
    public var words = false

    @OptionGroup public var stop: StopOptions

    public static var positionalArguments: [PositionalArgument<Self>] { [.init(\.address), .init(\.length)] }

    public init() {}

    /// Reads no more than this into memory (a session's value; the command line streams).
    static let memoryLimit: UInt64 = 1 << 30

    public func run(in context: CommandContext) throws -> Outcome {
        // Each option read once: a property wrapper's getter is a cost at every line of a session.
        let (stop, format, length) = (self.stop, self.format, self.length.value)
        let policy = stop.policy(.consistent)
        return try context.withTarget(stop: policy, attach: stop.attach, maps: .onDemand) { target in
            let start = try target.resolve(address)
            if let width = format.width(for: target.abi), length % UInt64(width) != 0 {
                throw CommandError.badInput(
                    "length \(length) is not a multiple of the \(width)-byte \(format.rawValue) values")
            }
            let range = try AddressRange(start: start, count: length)
            guard try target.mapping(at: start) != nil else {
                throw CommandError.badInput("address \(start.hex) is in no mapping of pid \(target.pid)")
            }
            if context.streams || output != nil {
                return try ReadStream(command: self, target: target, range: range, json: context.json).run()
            }
            return try collect(target, range, json: context.json)
        }
    }

    /// Streams `range` of `target` through `sink` as this format asks; the report says
    /// what moved. Bytes that could not be read are zeros where the format keeps places
    /// (typed values, JSON data, and every format with --best-effort).
    func stream(
        _ target: Target, _ range: AddressRange, fillsHoles: Bool,
        _ sink: (Address, UnsafeRawBufferPointer) throws -> Bool
    ) throws -> TransferReport {
        // The sink's own failure ends the stream, and is thrown once it has ended.
        var failure: (any Error)?
        let taking = { (at: Address, chunk: UnsafeRawBufferPointer) throws(TargetError) -> Bool in
            do { return try sink(at, chunk) } catch {
                failure = error
                return false
            }
        }
        let skipping = skipFaults || bestEffort
        let report =
            format == .str
            ? try target.stream(range, policy: .stop, chunkSize: 4096, sink: taking)
            // The sink (a file's writes, a hex dump's text) runs beside the reading of the next
            // chunks; four of 256 KiB hold what one buffer of 1 MiB did before.
            : try target.stream(
                range, policy: FaultPolicy(skipFaults: skipping, fillHoles: bestEffort || (skipping && fillsHoles)),
                chunkSize: 256 << 10, overlapped: true, sink: taking)
        if let failure { throw failure }
        return report
    }

    /// Whether the text of this format keeps each byte's place (so holes are zeros), or
    /// marks the holes (a hex dump) or leaves them out (raw bytes in a file).
    var textKeepsPlaces: Bool { format.width != nil }

    /// The status and the message of a finished read.
    func conclude(_ report: TransferReport, into outcome: inout Outcome, kept: String = "") {
        outcome.status = report.exitStatus(bestEffort: bestEffort)
        if outcome.status != .ok {
            outcome.message = report.summary("partial read") + kept
        } else if !report.holes.isEmpty {
            outcome.message = report.summary("best effort")
        }
    }

    /// The fields every read's JSON starts with.
    func jsonHead(_ target: Target, _ range: AddressRange) -> [(String, JSONValue)] {
        [
            ("pid", .int(Int64(target.pid))), ("address", .string(range.start.hex)),
            ("length", .uint(length.value)), ("format", .string(format.rawValue)),
        ]
    }

    /// A session's read: the bytes in memory (up to 1 GiB), decoded into a value and text
    /// lines, or JSON fields with `json` (a session prints one of them; building the other
    /// was a fifth of a short read's cost).
    func collect(_ target: Target, _ range: AddressRange, json: Bool) throws -> Outcome {
        let (format, length) = (self.format, self.length.value)
        guard length <= Self.memoryLimit else {
            throw CommandError.badInput(
                "read \(length) bytes into memory: use --format raw -o FILE for more than 1 GiB")
        }
        var bytes: [UInt8] = []
        let report = try stream(target, range, fillsHoles: true) { _, chunk in
            guard format == .str, let nul = chunk.firstIndex(of: 0) else {
                bytes += chunk
                return true
            }
            bytes += chunk[..<nul]
            return false
        }
        var o = Outcome()
        conclude(report, into: &o)
        if json { o.json = jsonHead(target, range) + report.jsonFields }
        switch format {
        case .hex, .raw:
            if json { o.json.append(("data", .string(hexString(bytes)))) }
            if !json {
                o.text = stride(from: 0, to: bytes.count, by: 16).map {
                    hexDumpLine(address: range.start + UInt64($0), bytes[$0..<min($0 + 16, bytes.count)])
                }
            }
            o.value = .bytes(bytes)
        case .str:
            let s = String(decoding: bytes, as: UTF8.self)
            if json { o.json.append(("string", .string(s))) }
            o.text = [s]
            o.value = .string(s)
        default:
            let values = format.decode(bytes, abi: target.abi)
            let width = UInt64(format.width(for: target.abi)!)
            if json { o.json.append(("values", .array(values))) }
            if !json {
                o.text =
                    values.count == 1
                    ? [ValueFormat.text(values[0])]
                    : values.enumerated().map {
                        "\((range.start + UInt64($0.offset) * width).hex): \(ValueFormat.text($0.element))"
                    }
            }
            if values.count == 1 { o.value = Value(values[0]) }
        }
        return o
    }
}
