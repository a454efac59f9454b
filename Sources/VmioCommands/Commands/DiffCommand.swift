import ArgumentParser
import VmIO
import VmioPtrace

/// One side of `diff`: a live process (a pid, or `self`) or a dump directory.
public enum DiffOperand: ExpressibleByArgument, Sendable, CustomStringConvertible {
    case process(Int32)
    case directory(String)

    public init?(argument: String) {
        guard !argument.isEmpty else { return nil }
        if let pid = PID(argument: argument) {
            self = .process(pid.value)
        } else {
            self = .directory(argument)
        }
    }

    public var description: String {
        switch self {
        case .process(let pid): String(pid)
        case .directory(let path): path
        }
    }
}

/// `diff A B`: what changed between two dumps, a dump and its process, or two processes.
public struct DiffCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what changed between two dumps, a dump and a process, or two processes.",
        discussion: """
            A and B are each a dump directory or a live pid (a directory named by digits is \
            written ./NAME). Regions are matched by address and path: regions of one path that \
            overlap are compared over their common part, and reported as resized when their \
            bounds differ; a named region found at another address with the same size is \
            reported as moved, not compared; the rest are listed as only in A or only in B. \
            Holes (a dump's, a process's unreadable pages) are reported, never counted as \
            changes. Prints one changed range a line, merged where they touch: address, label, \
            length, old -> new (hex, or typed values at their alignment with --format); a summary \
            goes to stderr. Memory stays bounded for any size. Exit status 0 whether or not \
            anything changed. --json prints {a, b, format, changes: [{address, label, length, \
            bytes_changed, old, new, whole}], ranges, bytes_changed, bytes_compared, \
            bytes_not_compared, regions_compared, resized, moved, only_in_a, only_in_b, holes}.
            """
    )

    @Argument(help: "The old side: a dump directory or a pid.")
    public var a: DiffOperand

    @Argument(help: "The new side: a dump directory or a pid (in a session, the session's process when left out).")
    public var b: DiffOperand?

    @Option(
        help: """
            How to show old and new: hex (default), or values at their alignment: u8…u64, i8…i64, \
            x8…x64, f32, f64.
            """)
    public var format: ValueFormat = .hex

    @Option(
        name: .customLong("region"),
        help: "What to compare (repeatable): a name, 0xSTART-0xEND, perm:FLAGS, or anon. Default: every region.")
    public var regions: [RegionSelector] = []

    @Option(help: "Merge changes less than this many unchanged bytes apart into one range.")
    public var context: UInt64 = 0

    @Option(help: "Show at most this many bytes of each side of a range (the length is always given).")
    public var show: Int = 32

    @OptionGroup public var stop: StopOptions

    public init() {}

    public func validate() throws {
        guard format == .hex || (format.width != nil && format != .ptr) else {
            throw ValidationError("--format must be hex or a value type (u8…u64, i8…i64, x8…x64, f32, f64)")
        }
        guard show >= 0 else { throw ValidationError("--show must be 0 or more") }
    }

    public func run(in context: CommandContext) throws -> Outcome {
        guard let b = b ?? context.pid.map({ DiffOperand.process($0) }) else {
            throw CommandError.usage("diff needs two sides: A B (each a dump directory or a pid)")
        }
        return try withSource(a, context) { sourceA in
            try withSource(b, context) { sourceB in try diff(sourceA, sourceB, context) }
        }
    }

    /// Opens one side: a dump's manifest (refused before anything attaches when bad), or
    /// a process, stopped with `--stop`.
    private func withSource<R>(_ operand: DiffOperand, _ context: CommandContext, _ body: (DiffSource) throws -> R)
        throws -> R
    {
        switch operand {
        case .directory(let path):
            return try body(.dump(directory: path, manifest: try DumpManifest.load(from: path)))
        case .process(let pid):
            return try context.withTarget(pid, stop: stop.policy(.consistent), attach: stop.attach) {
                try body(.live($0))
            }
        }
    }

    private func diff(_ sourceA: DiffSource, _ sourceB: DiffSource, _ context: CommandContext) throws -> Outcome {
        var options = DiffOptions()
        options.alignment = UInt64(format.width ?? 1)
        options.join = self.context
        options.keep = show
        let labels = sourceB.view
        // On the command line both outputs stream (memory stays bounded); a session keeps them.
        let stdout: OutputSink? = context.streams ? OutputSink() : nil
        var lines: [String] = []
        var changes: [JSONValue] = []
        var streamed = 0
        let head: [(String, JSONValue)] = [
            ("a", .string(sourceA.name)), ("b", .string(sourceB.name)), ("format", .string(format.rawValue)),
        ]
        // The JSON object's changes come before the fields known only at the end.
        var object = stdout.map { JSONObjectWriter($0) }
        if context.json, object != nil {
            try object!.fields(head)
            try object!.key("changes")
            try stdout!.append("[")
        }
        let total = sourceA.regions(regions).reduce(0) { $0 + $1.range.count }
        var failure = CallbackFailure()
        let report = try context.withProgress("diff", total: total) { progress in
            try DiffSource.diff(sourceA, sourceB, selectors: regions, options: options, progress: progress) { change in
                let label = labels.label(of: change.range.start) ?? change.range.start.hex
                return failure.attempt {
                    switch (context.json, stdout) {
                    case (true, let stdout?):
                        try stdout.append((streamed > 0 ? "," : "") + json(change, label: label).rendered)
                        streamed += 1
                    case (true, nil): changes.append(json(change, label: label))
                    case (false, let stdout?): try stdout.line(text(change, label: label))
                    case (false, nil): lines.append(text(change, label: label))
                    }
                    return true
                }
            }
        }
        try failure.check()
        var o = Outcome()
        let tail: [(String, JSONValue)] =
            [
                ("ranges", .uint(report.ranges)), ("bytes_changed", .uint(report.bytesChanged)),
                ("bytes_compared", .uint(report.bytesCompared)), ("bytes_not_compared", .uint(report.bytesNotCompared)),
                ("regions_compared", .uint(UInt64(report.regionsCompared))),
            ] + pairingJSON(report)
        let notes = regionNotes(report)
        if let stdout {
            if context.json {
                try stdout.append("]")
                try object!.fields(tail)
                try object!.end()
            } else {
                for line in notes { try stdout.line(line) }
            }
            // Flushed here, not left to the sink's end, which cannot report a failed write.
            try stdout.flush()
            o.printed = true
        } else {
            o.text = lines + notes
            o.json = head + [("changes", .array(changes))] + tail
        }
        o.message = summary(report)
        o.value = .int(Int128(report.ranges))
        return o
    }

    /// `ADDR  LABEL  LEN  OLD -> NEW`.
    private func text(_ change: ChangedRange, label: String) -> String {
        let more = change.isWhole ? "" : " …"
        let (old, new) = (format.shown(change.old).text, format.shown(change.new).text)
        return "\(change.range.start.hex)  \(label)  \(change.range.count)  \(old)\(more) -> \(new)\(more)"
    }

    private func json(_ change: ChangedRange, label: String) -> JSONValue {
        func side(_ bytes: [UInt8]) -> JSONValue { format.shown(bytes).json }
        return .object([
            ("address", .string(change.range.start.hex)), ("label", .string(label)),
            ("length", .uint(change.range.count)), ("bytes_changed", .uint(change.bytesChanged)),
            ("old", side(change.old)), ("new", side(change.new)), ("whole", .bool(change.isWhole)),
        ])
    }

    /// One line a region that was not compared as it is: resized, moved, in one side only;
    /// and one a hole.
    private func regionNotes(_ report: DiffReport) -> [String] {
        var lines: [String] = []
        for pairing in report.pairings {
            switch pairing {
            case .compared(let a, let b, let path, let common) where a != b:
                lines.append("resized: \(describe(a, path)) -> \(b.start.hex)-\(b.end.hex) (compared \(common))")
            case .moved(let a, let b, let path):
                lines.append("moved: \(describe(a, path)) -> \(b.start.hex)-\(b.end.hex) (not compared)")
            case .onlyInA(let range, let path): lines.append("only in A: \(describe(range, path))")
            case .onlyInB(let range, let path): lines.append("only in B: \(describe(range, path))")
            default: break
            }
        }
        for hole in report.holes {
            lines.append(
                "hole in \(hole.side.rawValue.uppercased()): \(hole.range.count) bytes at \(hole.range.start.hex)")
        }
        return lines
    }

    private func describe(_ range: AddressRange, _ path: String) -> String {
        "\(range.start.hex)-\(range.end.hex)" + (path.isEmpty ? "" : " \(path)")
    }

    private func pairingJSON(_ report: DiffReport) -> [(String, JSONValue)] {
        func region(_ range: AddressRange) -> JSONValue {
            .object([("start", .string(range.start.hex)), ("end", .string(range.end.hex))])
        }
        var resized: [JSONValue] = [], moved: [JSONValue] = [], onlyA: [JSONValue] = [], onlyB: [JSONValue] = []
        for pairing in report.pairings {
            switch pairing {
            case .compared(let a, let b, let path, let common) where a != b:
                resized.append(
                    .object([("path", .string(path)), ("a", region(a)), ("b", region(b)), ("compared", region(common))])
                )
            case .moved(let a, let b, let path):
                moved.append(.object([("path", .string(path)), ("a", region(a)), ("b", region(b))]))
            case .onlyInA(let range, let path):
                onlyA.append(
                    .object([
                        ("start", .string(range.start.hex)), ("end", .string(range.end.hex)), ("path", .string(path)),
                    ]))
            case .onlyInB(let range, let path):
                onlyB.append(
                    .object([
                        ("start", .string(range.start.hex)), ("end", .string(range.end.hex)), ("path", .string(path)),
                    ]))
            default: break
            }
        }
        let holes = report.holes.map { hole -> JSONValue in
            .object([
                ("side", .string(hole.side.rawValue)), ("address", .string(hole.range.start.hex)),
                ("length", .uint(hole.range.count)),
            ])
        }
        return [
            ("resized", .array(resized)), ("moved", .array(moved)), ("only_in_a", .array(onlyA)),
            ("only_in_b", .array(onlyB)), ("holes", .array(holes)),
        ]
    }

    private func summary(_ report: DiffReport) -> String {
        var parts = [
            "\(counted(report.ranges, "changed range")), \(counted(report.bytesChanged, "byte")) changed "
                + "in \(counted(report.regionsCompared, "region")) compared (\(report.bytesCompared) bytes)"
        ]
        let onlyA = report.pairings.count { if case .onlyInA = $0 { true } else { false } }
        let onlyB = report.pairings.count { if case .onlyInB = $0 { true } else { false } }
        let moved = report.pairings.count { if case .moved = $0 { true } else { false } }
        let resized = report.pairings.count(where: \.isResized)
        if onlyA + onlyB > 0 { parts.append("\(onlyA) only in A, \(onlyB) only in B") }
        if moved > 0 { parts.append("\(moved) moved") }
        if resized > 0 { parts.append("\(resized) resized") }
        if report.bytesNotCompared > 0 { parts.append("\(report.bytesNotCompared) unreadable bytes not compared") }
        return parts.joined(separator: "; ")
    }
}
