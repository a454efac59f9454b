import ArgumentParser
import VmIO
import VmioPtrace

/// `search PATTERN`: where bytes, a string or a value occur in a process.
public struct SearchCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Search the memory of a process for bytes, strings or values.",
        discussion: """
            Give exactly one pattern. Typed values are little-endian and, unless --align says \
            otherwise, found only at their natural alignment. Matches that straddle chunk \
            boundaries are found. Unreadable pages are skipped and counted, never fatal. \
            Prints one hit a line: address, region and offset; a summary goes to stderr. \
            --json prints {pid, pattern, hits: [{address, region: {start, end, perms, path}, offset}], \
            truncated, scanned, unreadable}.
            """
    )

    @OptionGroup public var pattern: PayloadOptions

    @Option(help: "Report only hits at multiples of this (default: the value's width for typed values, else 1).")
    public var align: UInt64?

    @Option(
        name: .customLong("region"),
        help: """
            Where to search (repeatable): a name, 0xSTART-0xEND, perm:FLAGS, or anon. Default: every \
            readable mapping.
            """
    )
    public var regions: [RegionSelector] = []

    @Option(help: "Stop after this many hits.")
    public var max: Int = 1000

    @OptionGroup public var stop: StopOptions

    public init() {}

    public func validate() throws {
        try pattern.validateOne(sources: "--hex, --string, --utf16, --u8…--u64, --i8…--i64, --f32, --f64")
        guard max > 0 else { throw ValidationError("--max must be at least 1") }
        if let align, align == 0 { throw ValidationError("--align must be at least 1") }
        try pattern.validateHex(pattern: true, alignment: align)
    }

    public func run(in context: CommandContext) throws -> Outcome {
        try search(in: context).outcome
    }

    /// The search, with its report (a session's `--nth` picks among its hits).
    public func search(in context: CommandContext) throws -> (outcome: Outcome, report: SearchReport) {
        let spec = pattern.spec()
        let bytes = try spec.pattern(alignment: align)  // checked by validate()
        return try context.withTarget(stop: stop.policy(.consistent), attach: stop.attach) { target in
            let selected = RegionSelector.select(regions, in: target.view)
            guard !selected.isEmpty else {
                throw CommandError.badInput("no readable mapping of pid \(target.pid) matches the selection")
            }
            let report = try context.withProgress("search", total: selected.reduce(0) { $0 + $1.range.count }) {
                try target.search(bytes, in: selected, max: max, progress: $0)
            }
            return (outcome(target, report, label: spec.label), report)
        }
    }

    private func outcome(_ target: Target, _ report: SearchReport, label: String) -> Outcome {
        let unreadable = report.holes.reduce(0) { $0 + $1.length }
        var o = Outcome()
        o.json = [
            ("pid", .int(Int64(target.pid))), ("pattern", .string(label)),
            ("hits", .array(report.hits.map { $0.json(label: target.view.label(of: $0.address)) })),
            ("truncated", .bool(report.truncated)), ("scanned", .uint(report.scanned)),
            ("unreadable", .uint(unreadable)),
        ]
        o.text = report.hits.map { hit in
            // A label the other commands take back as an ADDR (README.md, "Labels").
            let label = target.view.label(of: hit.address) ?? hit.address.hex
            let region = "\(hit.mapping.permissions) \(hit.mapping.start.hex)-\(hit.mapping.end.hex)"
            return "\(hit.address.hex)  \(label)  (\(region))"
        }
        var summary = "\(report.hits.count) hit\(report.hits.count == 1 ? "" : "s") in \(report.scanned) bytes"
        if report.truncated { summary += " (stopped at --max \(max))" }
        if unreadable > 0 { summary += "; \(unreadable) unreadable bytes skipped" }
        o.message = summary
        o.value = report.hits.first.map { .int(Int128($0.address)) }
        return o
    }
}

extension SearchHit {
    /// `{address, region: {start, end, perms, path}, offset, label}`, with the hit's `label`
    /// (an ADDR that resolves back to it; README.md, "Labels").
    func json(label: String?) -> JSONValue {
        .object([
            ("address", .string(address.hex)),
            (
                "region",
                .object([
                    ("start", .string(mapping.start.hex)), ("end", .string(mapping.end.hex)),
                    ("perms", .string(mapping.permissions.description)), ("path", .string(mapping.path)),
                ])
            ),
            ("offset", .string(offsetInMapping.hex)),
            ("label", label.map { .string($0) } ?? .null),
        ])
    }
}
