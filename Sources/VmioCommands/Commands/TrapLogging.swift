import ArgumentParser
import VmIO
import VmioPtrace

/// `--count`, `--timeout`, `--backtrace` and `--attach-timeout`: how `watch` and `break` log
/// and when they end.
public struct TrapLogOptions: ParsableArguments {
    @Option(help: "End after this many hits.")
    public var count: Int?

    @Option(help: ArgumentHelp("End after this many seconds.", valueName: "seconds"))
    public var timeout: Double?

    @Flag(help: "Show the stack of the thread at each hit.")
    public var backtrace = false

    @Option(name: .customLong("attach-timeout"), help: AttachOptions.help)
    public var attachTimeout: Double?

    public init() {}

    public func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let timeout, !(timeout > 0 && timeout <= 86_400) {
            throw ValidationError("--timeout must be more than 0 and at most 86400 seconds")
        }
        try AttachOptions.validate(attachTimeout)
    }

    /// The `--attach-timeout` given, if any (as ``StopOptions/attach``).
    var attach: AttachOptions? {
        guard let attachTimeout else { return nil }
        var options = AttachOptions()
        options.attachTimeout = attachTimeout
        return options
    }

    var duration: Duration? { timeout.map { .milliseconds(Int64(($0 * 1000).rounded(.up))) } }
}

/// Which records of a hit the log makes: its line, its JSON fields, or both (a hit costs
/// only what is shown: the logging loop's speed is the command's, README "Breakpoints and
/// watchpoints").
struct HitParts: OptionSet {
    let rawValue: Int
    static let text = HitParts(rawValue: 1)
    static let json = HitParts(rawValue: 2)
}

/// The logging loop of `watch` and `break`: each hit one line (or one JSON object) as it
/// comes, then a summary; the session's end (every byte put back, DR7 cleared, verified)
/// before anything is let go, on every path.
struct TrapLog {
    let context: CommandContext
    let options: TrapLogOptions
    /// One hit's words after `TIME tid TID pc PC FUNCTION (LOCATION)`, and its JSON fields;
    /// each empty unless in the parts asked for.
    let describe: (TrapEvent, HitParts) -> (text: String, json: [(String, JSONValue)])

    /// Sets the traps with `arm`, runs until the count, the timeout, the target's end or a
    /// fatal signal, and returns the outcome (a fatal signal is re-raised after the summary).
    func run(_ target: Target, verb: String, arm: (TrapSession) throws -> [Trap]) throws -> Outcome {
        let session = try TrapSession(target: target)
        defer { session.end() }
        let traps = try arm(session)
        if context.streams {
            let threads = session.threads.count
            StandardError.line(
                "\(verb): \(traps.map(\.summary).joined(separator: ", ")) on \(counted(threads, "thread")) of pid "
                    + "\(target.pid); the target runs (Ctrl-C ends)")
        }
        let sink: OutputSink? = context.streams ? OutputSink() : nil
        let flushEachLine = context.streams && !context.json && Console.isTerminal(fd: 1)
        let unwinder = options.backtrace ? try Unwinder(pid: target.pid) : nil
        // Each pc's description and its words `pc PC FUNCTION (LOCATION)`, made once.
        var places: [Address: (description: AddressDescription, text: String)] = [:]
        var o = Outcome()
        var events: [JSONValue] = []
        var hits = 0
        var failure = CallbackFailure()
        let parts: HitParts = sink == nil ? [.text, .json] : context.json ? .json : .text
        let last = try session.run(timeout: options.duration) { event in
            hits += 1
            let place =
                places[event.pc]
                ?? {
                    let description = target.symbols.describe(event.pc)
                    let text = "pc \(event.pc.hex) \(description.functionText) (\(description.locationText))"
                    places[event.pc] = (description, text)
                    return (description, text)
                }()
            let (words, fields) = describe(event, parts)
            let time = clockText(event.time)
            var line = ""
            var json: [(String, JSONValue)] = []
            if parts.contains(.text) {
                line.reserveCapacity(time.utf8.count + place.text.utf8.count + words.utf8.count + 20)
                line += time
                line += " tid "
                line += String(event.tid)
                line += " "
                line += place.text
                line += " "
                line += words
            }
            if parts.contains(.json) {
                json = [
                    ("event", .string(event.kind.rawValue)), ("time", .string(time)),
                    ("id", event.trap.map { .int(Int64($0.id)) } ?? .null), ("tid", .int(Int64(event.tid))),
                    ("pc", .string(event.pc.hex)), ("function", .string(place.description.functionText)),
                    ("location", .string(place.description.locationText)),
                ]
                json += fields
            }
            if let unwinder {
                let frames =
                    (try? unwinder.unwind(tid: event.tid, maxDepth: 64, view: target.view, symbols: target.symbols))?
                    .frames ?? []
                for frame in frames {
                    line += "\n    #\(frame.index) \(frame.pc.hex) in \(frame.functionText) (\(frame.moduleText))"
                }
                json.append(("backtrace", .array(frames.map(\.json))))
            }
            if let sink {
                let written = failure.attempt {
                    try sink.line(context.json ? JSONValue.object(json).rendered : line)
                    if flushEachLine { try sink.flush() }
                    return true
                }
                guard written else { return false }
            } else {
                o.text.append(line)
                events.append(.object(json))
            }
            return options.count.map { hits < $0 } ?? true
        }
        // What is not written yet goes out while the session's handlers still only record a
        // fatal signal: a reader gone comes back as EPIPE here, its SIGPIPE recorded.
        if !failure.failed {
            _ = failure.attempt {
                try sink?.flush()
                return true
            }
        }
        let cleanup = session.end()
        // A closed pipe ends the log as SIGINT would: summary, then death by the signal.
        let fatal = last.kind == .interrupted ? last.signal : failure.failed ? TrapSession.pendingSignal() : nil
        let reason: String
        switch last.kind {
        case _ where fatal != nil: reason = "\(ProcessEnd.signalName(fatal ?? 0)) received"
        case .timeout: reason = "the timeout passed"
        case .exit: reason = "pid \(target.pid) \(last.end ?? .gone)"
        case .exec: reason = "pid \(target.pid) ran exec: every trap ended"
        default: reason = "\(hits) hit\(hits == 1 ? "" : "s") counted"
        }
        let trapList = traps.map { "#\($0.id) \($0.address.hex)" }.joined(separator: ", ")
        let summary = "\(verb): \(counted(UInt64(hits), "hit")) on \(trapList); ended: \(reason); \(cleanup)"
        let endFields: [(String, JSONValue)] = [
            ("event", .string("end")),
            ("reason", .string(last.kind == .watchpoint || last.kind == .breakpoint ? "count" : last.kind.rawValue)),
            ("hits", .int(Int64(hits))), ("exit", last.end.map { .string($0.description) } ?? .null),
            ("bytes_restored", .int(Int64(cleanup.bytesRestored))),
            ("threads_cleared", .int(Int64(cleanup.threadsCleared))),
            ("verified", .bool(cleanup.verified)), ("problems", .array(cleanup.problems.map { .string($0) })),
        ]
        if let sink, context.json, !failure.failed {
            try sink.line(JSONValue.object(endFields).rendered)
            try sink.flush()
        }
        if let fatal {
            StandardError.line(summary)
            TrapSession.reraise(fatal)
        }
        try failure.check()
        o.printed = sink != nil
        o.json = endFields + [("events", .array(events))]
        o.value = .int(Int128(hits))
        o.message = summary
        if !cleanup.verified {
            o.status = .badInput
            o.message = summary
        } else if last.kind == .exit {
            o.status = .targetGone
        }
        return o
    }
}

extension Trap {
    /// `#1 8 bytes at 0x… (write)`, `#2 int3 at 0x…`.
    var summary: String {
        switch kind {
        case .software: "#\(id) int3 at \(address.hex)"
        case .hardware(.execute): "#\(id) debug register at \(address.hex)"
        case .hardware(let access): "#\(id) \(counted(length, "byte")) at \(address.hex) (\(access.rawValue))"
        }
    }
}

/// `HH:MM:SS.uuuuuu` (UTC) of a time in nanoseconds since the epoch.
func clockText(_ nanoseconds: UInt64) -> String {
    let seconds = nanoseconds / 1_000_000_000
    // Digit by digit into 15 bytes: a line is made for every hit.
    return String(unsafeUninitializedCapacity: 15) { buffer in
        func put(_ value: UInt64, digits: Int, at start: Int) {
            var value = value
            for place in stride(from: start + digits - 1, through: start, by: -1) {
                buffer[place] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
        }
        put(seconds / 3600 % 24, digits: 2, at: 0)
        buffer[2] = UInt8(ascii: ":")
        put(seconds / 60 % 60, digits: 2, at: 3)
        buffer[5] = UInt8(ascii: ":")
        put(seconds % 60, digits: 2, at: 6)
        buffer[8] = UInt8(ascii: ".")
        put(nanoseconds / 1_000 % 1_000_000, digits: 6, at: 9)
        return 15
    }
}
