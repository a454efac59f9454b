import ArgumentParser
import VmIO
import VmioPtrace

extension ScanType: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
}

/// `scan`: scanmem's narrowing, scripted: a first scan records every match of a value (or a
/// snapshot of every slot), each later pass re-reads only the candidates and keeps those a
/// filter accepts.
public struct ScanCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "scan",
        abstract: "Find a value by narrowing: a first scan, then passes that keep the candidates a filter accepts.",
        discussion: """
            A first scan (one of --u8…--f64, --string, --hex, --utf16) records every match, at the \
            value's natural alignment, with its value, in the state file -o STATE. An unknown \
            value starts with --snapshot TYPE -o STATE: every aligned slot is a candidate, and only \
            the filters that compare with the value before (--changed, --unchanged, --increased, \
            --decreased, --increased-by, --decreased-by) can narrow it. A pass, --state STATE with \
            one filter, re-reads only the candidates and writes those kept back to STATE (or to -o); \
            unreadable candidates are dropped and counted. Without a filter, --state lists the \
            candidates with their values now. The state file holds the pid and the process's start \
            time (refused for any other process, or the same pid restarted), the value type, and \
            the addresses sorted and delta-encoded in blocks; it is written under a temporary name \
            and renamed. Floats are equal within --tolerance. Prints the first --list candidates \
            (address, label, value); the count goes to stderr. --json prints {pid, state, type, \
            snapshot, candidates, dropped, scanned, state_bytes, listed: [{address, label, value}]}.
            """
    )

    @OptionGroup public var value: PayloadOptions

    @Option(
        help: ArgumentHelp(
            "Start from an unknown value of this type (u8…u64, i8…i64, f32, f64).", valueName: "type"))
    public var snapshot: ScanType?

    @Option(
        help: ArgumentHelp("The state file of the scan so far, to narrow.", valueName: "file"), transform: nonEmptyPath)
    public var state: String?

    @Option(
        name: [.customShort("o"), .customLong("output")],
        help: ArgumentHelp("Where to write the state (default with --state: the same file).", valueName: "file"),
        transform: nonEmptyPath)
    public var output: String?

    @Option(parsing: .unconditional, help: "Keep the candidates whose value now equals this.") public var eq: String?
    @Option(parsing: .unconditional, help: "Keep the candidates whose value now differs from this.")
    public var ne: String?
    @Option(parsing: .unconditional, help: "Keep the candidates whose value now is greater than this.")
    public var gt: String?
    @Option(parsing: .unconditional, help: "Keep the candidates whose value now is less than this.")
    public var lt: String?
    @Flag(help: "Keep the candidates whose value changed since the last pass.") public var changed = false
    @Flag(help: "Keep the candidates whose value did not change.") public var unchanged = false
    @Flag(help: "Keep the candidates whose value went up.") public var increased = false
    @Flag(help: "Keep the candidates whose value went down.") public var decreased = false
    @Option(parsing: .unconditional, help: "Keep the candidates whose value went up by exactly this.")
    public var increasedBy: String?
    @Option(parsing: .unconditional, help: "Keep the candidates whose value went down by exactly this.")
    public var decreasedBy: String?

    @Option(help: "In a filter over float values, floats within this of each other are equal (default 0: exactly).")
    public var tolerance: Double = 0

    @Option(help: "Print at most this many candidates (0: none).") public var list: Int = 10

    @Option(
        name: .customLong("region"),
        help: """
            Where a first scan looks (repeatable): a name, 0xSTART-0xEND, perm:FLAGS, or anon. \
            Default: every readable mapping.
            """
    )
    public var regions: [RegionSelector] = []

    @OptionGroup public var stop: StopOptions

    public init() {}

    /// The filters given, by option name, with their operands.
    private var filters: [(String, String?)] {
        let valued: [(String, String?)] = [
            ("--eq", eq), ("--ne", ne), ("--gt", gt), ("--lt", lt), ("--increased-by", increasedBy),
            ("--decreased-by", decreasedBy),
        ]
        let flags: [(String, Bool)] = [
            ("--changed", changed), ("--unchanged", unchanged), ("--increased", increased), ("--decreased", decreased),
        ]
        return valued.compactMap { name, text in text.map { (name, $0) } }
            + flags.compactMap { name, given in given ? (name, nil) : nil }
    }

    public func validate() throws {
        let sources = value.spec().sourceCount + (snapshot == nil ? 0 : 1)
        if state == nil {
            guard sources == 1, value.typedValues.count <= 1 else {
                throw ValidationError(
                    "a first scan takes exactly one of --u8…--u64, --i8…--i64, --f32, --f64, --string, --hex, "
                        + "--utf16, --snapshot TYPE")
            }
            guard output != nil else { throw ValidationError("a first scan needs -o STATE") }
            // The first scan matches bytes; a float NaN compares equal to nothing (as the filters say).
            if let (format, text) = value.typedValues.first, format == .f32 || format == .f64,
                Double(text)?.isNaN == true
            {
                throw ValidationError("NaN equals nothing: a scan for it finds nothing (use --snapshot \(format))")
            }
            guard filters.isEmpty else { throw ValidationError("a filter narrows a scan: give --state STATE") }
            guard value.hex == nil || !value.hex!.contains("?") else {
                throw ValidationError("a scan's --hex takes no ?? wildcards")
            }
            try value.validateHex(pattern: false)
            guard tolerance == 0 else {
                throw ValidationError("--tolerance applies to a filter over float values; a first scan matches bytes")
            }
        } else {
            guard sources == 0 else { throw ValidationError("--state narrows a scan: give a filter, not a value") }
            guard filters.count <= 1 else {
                throw ValidationError("give one filter a pass (\(filters.map(\.0).joined(separator: ", ")))")
            }
        }
        guard list >= 0 else { throw ValidationError("--list must be 0 or more") }
        guard tolerance >= 0 else { throw ValidationError("--tolerance must be 0 or more") }
    }

    public func run(in context: CommandContext) throws -> Outcome {
        try scan(in: context).outcome
    }

    /// The scan, with its report.
    public func scan(in context: CommandContext) throws -> (outcome: Outcome, report: ScanReport) {
        // A state that cannot be read is refused before anything attaches.
        let reader = try state.map { try ScanStateReader(path: $0) }
        let filter = try reader.flatMap { try self.filter(for: $0.header) }
        return try context.withTarget(stop: stop.policy(.consistent), attach: stop.attach) { target in
            let report: ScanReport
            if let reader, let state {
                let total = reader.header.count * UInt64(reader.header.type.width)
                let destination = output ?? state
                let type = reader.header.type
                let tolerance = tolerance
                report = try context.withProgress("scan", total: total) { progress in
                    guard let filter else {
                        // Listing only: every candidate kept, into a scratch state that is not kept.
                        return try list(target, reader, progress: progress)
                    }
                    if case .bytes(let width) = type {
                        let keepSame = filter == .unchanged
                        return try target.narrow(reader, to: destination, list: list, progress: progress) { old, new in
                            ScanState.equal(old, new, width: width) == keepSame
                        }
                    }
                    let width = type.width
                    return try target.narrow(reader, to: destination, list: list, progress: progress) { old, new in
                        filter.keeps(
                            old: ScanState.loadValue(old, width: width), new: ScanState.loadValue(new, width: width),
                            type: type, tolerance: tolerance)
                    }
                }
            } else {
                let selected = RegionSelector.select(regions, in: target.view)
                guard !selected.isEmpty else {
                    throw CommandError.badInput("no readable mapping of pid \(target.pid) matches the selection")
                }
                let total = selected.reduce(0) { $0 + $1.range.count }
                report = try context.withProgress("scan", total: total) { progress in
                    if let snapshot {
                        return try target.snapshot(type: snapshot, in: selected, to: output!, progress: progress)
                    }
                    let (type, bytes) = try firstValue()
                    return try target.scan(
                        for: bytes, type: type, in: selected, to: output!, list: list, progress: progress)
                }
            }
            return (outcome(target, report), report)
        }
    }

    /// The type and bytes of a first scan's value.
    private func firstValue() throws -> (ScanType, [UInt8]) {
        let spec = value.spec()
        let bytes = try spec.bytes()
        if let (format, _) = spec.typed, let type = ScanType(name: format.rawValue) { return (type, bytes) }
        return (.bytes(bytes.count), bytes)
    }

    /// The filter given, its operand read as a value of the state's type; nil for none.
    private func filter(for header: ScanState.Header) throws -> ScanFilter? {
        let type = header.type
        // Said rather than ignored: the tolerance compares floats, and only a filter compares.
        if tolerance != 0 && (filters.isEmpty || !type.isFloat) {
            throw CommandError.usage(
                "--tolerance applies to a filter over float values"
                    + (filters.isEmpty ? " (none given)" : "; this state holds \(type.name) values"))
        }
        guard let (name, text) = filters.first else { return nil }
        func operand() throws -> UInt64 {
            guard let format = ValueFormat(rawValue: type.name), let text, let bytes = format.encode(text) else {
                throw CommandError.usage("'\(text ?? "")' is not a valid \(type.name) value for \(name)")
            }
            return bytes.withUnsafeBytes { ScanState.loadValue($0.baseAddress!, width: type.width) }
        }
        let filter: ScanFilter =
            switch name {
            case "--eq": .equal(try operand())
            case "--ne": .notEqual(try operand())
            case "--gt": .greater(try operand())
            case "--lt": .less(try operand())
            case "--increased-by": .increasedBy(try operand())
            case "--decreased-by": .decreasedBy(try operand())
            case "--changed": .changed
            case "--unchanged": .unchanged
            case "--increased": .increased
            case "--decreased": .decreased
            default: throw CommandError.usage("unknown filter \(name)")
            }
        if case .bytes = type, filter != .changed && filter != .unchanged {
            throw TargetError.scan(.notNumeric(name))
        }
        if header.snapshot && !filter.comparesOverTime { throw TargetError.scan(.needsComparison(name)) }
        return filter
    }

    /// Lists the candidates of a state with their values now, changing nothing.
    private func list(_ target: Target, _ reader: ScanStateReader, progress: @escaping (UInt64) -> Void) throws
        -> ScanReport
    {
        try target.narrow(reader, to: nil, list: list, progress: progress) { _, _ in true }
    }

    private func outcome(_ target: Target, _ report: ScanReport) -> Outcome {
        let path = output ?? state ?? ""
        var o = Outcome()
        let listed = report.listed.map { candidate -> (String, String, JSONValue) in
            let label = target.view.label(of: candidate.address) ?? candidate.address.hex
            let (text, json) = shown(candidate.value, report.type)
            return (label, text, json)
        }
        o.text = zip(report.listed, listed).map { candidate, shown in
            "\(candidate.address.hex)  \(shown.0)  \(shown.1)"
        }
        o.json = [
            ("pid", .int(Int64(target.pid))), ("state", .string(path)), ("type", .string(report.type.name)),
            ("snapshot", .bool(report.snapshot)), ("candidates", .uint(report.candidates)),
            ("dropped", .uint(report.dropped)), ("scanned", .uint(report.scanned)),
            ("state_bytes", .uint(report.stateBytes)),
            (
                "listed",
                .array(
                    zip(report.listed, listed).map { candidate, shown in
                        .object([
                            ("address", .string(candidate.address.hex)), ("label", .string(shown.0)),
                            ("value", shown.2),
                        ])
                    })
            ),
        ]
        var summary = "\(counted(report.candidates, "candidate")) (\(report.type.name))"
        if report.snapshot { summary += ", every aligned slot of a snapshot" }
        if report.stateBytes > 0 { summary += " in \(path)" }
        if report.dropped > 0 { summary += "; \(report.dropped) unreadable dropped" }
        o.message = summary
        // A session's value: the count (`--nth N` gives the Nth candidate's address).
        o.value = .int(Int128(report.candidates))
        return o
    }

    /// A value as text and JSON: the number, or hex for a byte string.
    private func shown(_ bytes: [UInt8], _ type: ScanType) -> (String, JSONValue) {
        guard let format = ValueFormat(rawValue: type.name), let value = format.decode(bytes).first else {
            return (hexString(bytes), .string(hexString(bytes)))
        }
        return (ValueFormat.text(value), value)
    }
}
