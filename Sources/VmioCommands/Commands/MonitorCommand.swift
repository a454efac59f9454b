import ArgumentParser
import Foundation
import VmIO
import VmioPtrace

/// An interval: `100ms`, `2s`, `250us`, `0.5` (seconds).
public struct Interval: ExpressibleByArgument, Sendable {
    public let duration: Duration

    public init?(argument: String) {
        guard let duration = parseDuration(argument), duration > .zero else { return nil }
        self.duration = duration
    }
}

/// `monitor ADDR LEN`: a range polled without stopping the target, a line each change.
public struct MonitorCommand: VmioCommand {
    public static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Watch a range of memory and print a line each time it changes.",
        discussion: """
            The range is read every --every interval without stopping the target; each time its \
            bytes differ from the last read a line is printed: the time since the start, old -> \
            new (hex, or typed values with --format). Changes between two reads are seen as one. \
            Ends after --count changes, when the process exits (status 4), or when the range \
            can no longer be read (status 2); runs until interrupted otherwise (in a session, \
            --count is required); a SIGINT or SIGTERM ends it, after --json has printed what was \
            seen, and the tool dies of it. A range unreadable at the start is refused (status 1). \
            --json prints {pid, address, length, format, changes: [{time, old, new}], ended} at the \
            end (ended: count, exited, unreadable, interrupted).
            """
    )

    @Argument(help: "Where to watch: 0x…, [heap]+OFF, FILE+OFF, sym:NAME.")
    public var address: AddressExpression

    @Argument(help: "How many bytes to watch (at most 1M).")
    public var length: Length

    @Option(help: "How to show old and new: hex (default), u8…u64, i8…i64, x8…x64, f32, f64.")
    public var format: ValueFormat = .hex

    @Option(help: ArgumentHelp("How often to read the range: 100ms (default), 1s, 250us.", valueName: "interval"))
    public var every: Interval = Interval(argument: "100ms")!

    @Option(help: "Stop after this many changes.") public var count: Int?

    public init() {}

    public func validate() throws {
        guard format == .hex || (format.width != nil && format != .ptr) else {
            throw ValidationError("--format must be hex or a value type (u8…u64, i8…i64, x8…x64, f32, f64)")
        }
        guard length.value > 0, length.value <= 1 << 20 else { throw ValidationError("LEN must be 1 to 1M bytes") }
        if let width = format.width, length.value % UInt64(width) != 0 {
            throw ValidationError(
                "LEN \(length.value) is not a multiple of the \(width)-byte \(format.rawValue) values")
        }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    public func run(in context: CommandContext) throws -> Outcome {
        guard count != nil || context.streams else {
            throw CommandError.usage("monitor in a session needs --count N (it would run forever)")
        }
        return try context.withTarget { target in
            let start = try target.resolve(address)
            let range = try AddressRange(start: start, count: length.value)
            let streaming = context.streams && !context.json
            let stdout = OutputSink()
            var changes: [JSONValue] = []
            var lines: [String] = []
            var seen = 0
            var failure = CallbackFailure()
            // On the command line Ctrl-C ends the monitor, which reports what it saw, then dies of it.
            let end = try target.monitor(range, every: every.duration, endsOnFatalSignal: context.streams) { change in
                seen += 1
                let time = change.elapsed.inSeconds
                if context.json {
                    changes.append(
                        .object([
                            ("time", .double(time)), ("old", format.shown(change.old).json),
                            ("new", format.shown(change.new).json),
                        ]))
                } else {
                    let line =
                        String(format: "+%.3fs  ", time)
                        + "\(format.shown(change.old).text) -> \(format.shown(change.new).text)"
                    if streaming {
                        let written = failure.attempt {
                            try stdout.line(line)
                            try stdout.flush()
                            return true
                        }
                        guard written else { return false }
                    } else {
                        lines.append(line)
                    }
                }
                return count.map { seen < $0 } ?? true
            }
            try failure.check()
            var o = Outcome()
            o.text = lines
            o.printed = streaming
            let ended: String
            switch end {
            case .done: ended = "count"
            case .targetGone:
                ended = "exited"
                o.status = .targetGone
                o.message = "pid \(target.pid) exited after \(counted(seen, "change"))"
            case .unreadable(let hole):
                ended = "unreadable"
                o.status = .partialCopy
                o.message = "\(hole.start.hex) can no longer be read (after \(counted(seen, "change")))"
            case .interrupted: ended = "interrupted"
            }
            o.json = [
                ("pid", .int(Int64(target.pid))), ("address", .string(range.start.hex)),
                ("length", .uint(range.count)), ("format", .string(format.rawValue)), ("changes", .array(changes)),
                ("ended", .string(ended)),
            ]
            if case .interrupted(let signal) = end {
                // Printed here: the tool dies of the signal before it could print an outcome.
                if context.json {
                    try stdout.line(JSONValue.object(o.json).rendered)
                    try stdout.flush()
                }
                StandardError.line(
                    "monitor: \(counted(seen, "change")) of \(counted(Int(range.count), "byte")) at "
                        + "\(range.start.hex); ended: \(ProcessEnd.signalName(signal)) received")
                TrapSession.reraise(signal)
            }
            o.value = .int(Int128(seen))
            return o
        }
    }
}
