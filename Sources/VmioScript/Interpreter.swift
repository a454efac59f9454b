import Glibc
import VmIO
import VmioCommands
import VmioPtrace

/// Runs the session language against one target, in one attach.
///
/// Each command's result goes to `output` as text, or — with `json` — as one JSON
/// object a command: `{"line", "verb", "ok", "status", "result" | "error"}`, flushed
/// after each line, so another program can drive a session through a pipe.
public final class Interpreter {
    public let target: Target
    public private(set) var variables: [String: Value] = [:]
    let json: Bool
    let keepGoing: Bool
    let output: (String) -> Void
    let diagnostics: (String) -> Void
    /// The target and the other processes named by `PID:ADDR`, each opened once.
    let targets: TargetPool
    /// What the shared commands run with.
    let context: CommandContext
    /// Failed commands so far: line, status, message.
    public private(set) var failures: [(line: Int, status: ExitStatus, message: String)] = []
    /// The same failures as printed on stderr, each naming its line and column.
    private var failureLines: [String] = []
    public private(set) var commandsRun = 0

    public init(
        target: Target, json: Bool, keepGoing: Bool,
        output: @escaping (String) -> Void, diagnostics: @escaping (String) -> Void
    ) {
        self.target = target
        self.json = json
        self.keepGoing = keepGoing
        self.output = output
        self.diagnostics = diagnostics
        targets = TargetPool(target)
        context = CommandContext(
            pid: target.pid, targets: targets, streams: false, json: json, showsProgress: false,
            warn: { diagnostics("vmio-ptrace: warning: " + $0) })
    }

    deinit {
        // The session's own target is let go by its owner; the others here.
        targets.resumeAll(except: target.pid)
    }

    // MARK: Running

    /// Parses every line first (a broken line stops the script before anything runs),
    /// then runs them. Returns the session's exit status.
    public func run(script: String) -> ExitStatus {
        let lines = script.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var statements: [(Int, String, Statement)] = []
        var parseFailures: [ScriptError] = []
        for (i, text) in lines.enumerated() {
            do { statements.append((i + 1, text, try Parser.parse(text, line: i + 1))) } catch {
                parseFailures.append(error)
            }
        }
        if !parseFailures.isEmpty {
            for e in parseFailures {
                report(line: e.line, verb: "parse", status: .badInput, message: e.description, result: nil)
            }
            if json { summary() }
            return .badInput
        }
        for (number, text, statement) in statements {
            if !execute(statement, line: number, text: text) && !keepGoing { break }
        }
        return finish()
    }

    /// Runs lines as they come (standard input, a pipe): each is parsed and run before the
    /// next is read. Returns the session's exit status.
    public func run(lines next: () -> String?) -> ExitStatus {
        var number = 0
        while let text = next() {
            number += 1
            let statement: Statement
            do { statement = try Parser.parse(text, line: number) } catch {
                commandsRun += 1  // a line that does not parse is a command that failed
                report(line: number, verb: "parse", status: .badInput, message: error.description, result: nil)
                if keepGoing { continue }
                break
            }
            if !execute(statement, line: number, text: text) && !keepGoing { break }
        }
        return finish()
    }

    /// The final status: that of the first failure, or ok. With `keepGoing`, every failure
    /// is listed once more at the end.
    func finish() -> ExitStatus {
        if keepGoing && failures.count > 0 {
            diagnostics("vmio-ptrace: \(failures.count) of \(counted(commandsRun, "command")) failed:")
            for f in failureLines { diagnostics("  " + f) }
        }
        if json { summary() }
        return failures.first?.status ?? .ok
    }

    /// The closing `{"summary": …}` object of `--json`.
    private func summary() {
        output(
            JSONValue.object([
                (
                    "summary",
                    .object([
                        ("commands", .int(Int64(commandsRun))),
                        (
                            "failures",
                            .array(
                                failures.map {
                                    .object([
                                        ("line", .int(Int64($0.line))), ("status", .int(Int64($0.status.rawValue))),
                                        ("error", .string($0.message)),
                                    ])
                                })
                        ),
                        ("status", .int(Int64((failures.first?.status ?? .ok).rawValue))),
                    ])
                )
            ]).rendered)
    }

    /// Runs one statement; false when it failed.
    @discardableResult
    public func execute(_ statement: Statement, line: Int, text: String) -> Bool {
        if case .empty = statement { return true }
        commandsRun += 1
        let parser = Parser(line: line, text: text)
        // Failures name the line and the column where the command starts.
        let column =
            (text.firstIndex { !$0.isWhitespace }).map { text.distance(from: text.startIndex, to: $0) + 1 } ?? 1
        do {
            let outcome = try perform(statement, parser: parser)
            let failed = outcome.status != .ok
            report(
                line: line, column: column, verb: statement.verbName, status: outcome.status,
                message: failed ? (outcome.message ?? "failed") : nil, result: outcome,
                note: failed ? nil : outcome.message)
            return !failed
        } catch {
            let failure = CommandError(error)
            report(
                line: line, column: column, verb: statement.verbName, status: failure.exitStatus,
                message: failure.message, result: nil)
            return false
        }
    }

    private func report(
        line: Int, column: Int = 1, verb: String, status: ExitStatus, message: String?, result: Outcome?,
        note: String? = nil
    ) {
        if let message, status != .ok || verb == "parse" {
            failures.append((line, status, message))
            failureLines.append(message.hasPrefix("line ") ? message : "line \(line):\(column): \(message)")
        }
        if json {
            var fields: [(String, JSONValue)] = [
                ("line", .int(Int64(line))), ("verb", .string(verb)),
                ("ok", .bool(status == .ok && verb != "parse")), ("status", .int(Int64(status.rawValue))),
            ]
            if let result, !result.json.isEmpty { fields.append(("result", .object(result.json))) }
            if let message, status != .ok || verb == "parse" { fields.append(("error", .string(message))) }
            output(JSONValue.object(fields).rendered)
        } else {
            for l in result?.text ?? [] { output(l) }
            if let note { diagnostics(note) }
            if message != nil, status != .ok || verb == "parse", let located = failureLines.last {
                diagnostics("vmio-ptrace: " + located)
            }
        }
    }

    // MARK: Statements

    private func perform(_ statement: Statement, parser: Parser) throws -> Outcome {
        var o = Outcome()
        switch statement {
        case .empty: break
        case .verb(let call):
            o = try run(call, parser: parser)
        case .assign(let name, let expression):
            let value = try evaluate(expression, parser: parser)
            variables[name] = value
            o.json = [("name", .string(name)), ("value", value.json)]
            o.value = value
        case .expect(let left, let op, let right):
            let l = try evaluate(left, parser: parser)
            o.json = [("left", l.json)]
            if let op, let right {
                let r = try evaluate(right, parser: parser)
                o.json += [("op", .string(op.rawValue)), ("right", r.json)]
                let holds = try compare(l, op, r, line: parser.line)
                o.json.append(("holds", .bool(holds)))
                if !holds {
                    o.status = .badInput
                    o.message = "expectation failed: \(l) \(op.rawValue) \(r)"
                }
            } else {
                let holds = truth(l)
                o.json.append(("holds", .bool(holds)))
                if !holds {
                    o.status = .badInput
                    o.message = "expectation failed: \(l) is not true"
                }
            }
        case .stop:
            try target.stop()
            o.json = [("stopped", .array(target.stoppedThreads.map { .int(Int64($0)) }))]
            o.text = ["stopped \(counted(target.stoppedThreads.count, "thread")) of pid \(target.pid)"]
        case .cont:
            target.resume()
            o.json = [("running", .bool(true))]
            o.text = ["pid \(target.pid) runs on"]
        case .echo(let words):
            let line = try words.map { try interpolate($0, parser: parser) }.joined(separator: " ")
            o.text = [line]
            o.json = [("text", .string(line))]
        case .sleep(let duration):
            let c = duration.components
            var ts = timespec(tv_sec: Int(c.seconds), tv_nsec: Int(c.attoseconds / 1_000_000_000))
            var left = timespec()
            while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
            o.json = [("seconds", .double(Double(c.seconds) + Double(c.attoseconds) / 1e18))]
        }
        return o
    }

    /// `$name` and `${name}` inside an echo word.
    private func interpolate(_ word: Word, parser: Parser) throws -> String {
        var out = ""
        var chars = Array(word.text)[...]
        while let c = chars.first {
            chars = chars.dropFirst()
            // A `$` not followed by a name is itself (`echo costs $5`).
            guard c == "$", let next = chars.first, next.isLetter || next == "_" || next == "{" else {
                out.append(c)
                continue
            }
            let braced = chars.first == "{"
            if braced { chars = chars.dropFirst() }
            let name = String(chars.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
            chars = chars.dropFirst(name.count)
            if braced { chars = chars.dropFirst() }
            guard let v = variables[name] else {
                throw ScriptError(line: parser.line, column: word.column, "unknown variable $\(name)")
            }
            out += v.description
        }
        return out
    }

    // MARK: Expressions

    public func evaluate(_ e: Expression, parser: Parser) throws -> Value {
        switch e {
        case .literal(let v): return v
        case .variable(let name, let column):
            guard let v = variables[name] else {
                throw ScriptError(line: parser.line, column: column, "unknown variable $\(name)")
            }
            return v
        case .address(let a, let column):
            do { return .int(Int128(try target.resolve(a))) } catch {
                throw ScriptError(line: parser.line, column: column, CommandError(error).message)
            }
        case .negate(let inner, let column):
            switch try evaluate(inner, parser: parser) {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            case let v: throw ScriptError(line: parser.line, column: column, "cannot negate \(v.kind) \(v)")
            }
        case .binary(let op, let l, let r, let column):
            let a = try evaluate(l, parser: parser), b = try evaluate(r, parser: parser)
            switch (a, b) {
            case (.int(let x), .int(let y)):
                let (v, overflow): (Int128, Bool) =
                    switch op {
                    case "+": x.addingReportingOverflow(y)
                    case "-": x.subtractingReportingOverflow(y)
                    default: x.multipliedReportingOverflow(by: y)
                    }
                guard !overflow else {
                    throw ScriptError(line: parser.line, column: column, "\(x) \(op) \(y) overflows")
                }
                return .int(v)
            case (.double, _), (_, .double):
                guard let x = a.asDouble, let y = b.asDouble else { break }
                return .double(op == "+" ? x + y : op == "-" ? x - y : x * y)
            case (.string(let x), .string(let y)) where op == "+": return .string(x + y)
            case (.bytes(let x), .bytes(let y)) where op == "+": return .bytes(x + y)
            default: break
            }
            throw ScriptError(line: parser.line, column: column, "cannot compute \(a.kind) \(op) \(b.kind)")
        case .call(let call):
            let o = try run(call, parser: parser)
            if o.status != .ok {
                throw ScriptError(
                    line: parser.line, column: call.column, o.message ?? "\(call.verb.rawValue) failed",
                    status: o.status)
            }
            guard let v = o.value else {
                if call.verb == .search {
                    // Say what was looked for, where, and how much was read.
                    let pattern = o.json.first { $0.0 == "pattern" }.map { ValueFormat.text($0.1) } ?? "the pattern"
                    let regions = call.options["--region"]?.map(\.text).joined(separator: ", ")
                    throw ScriptError(
                        line: parser.line, column: call.column,
                        "search found no \(pattern) in \(regions ?? "the readable memory") of pid \(target.pid)"
                            + (o.message.map { " (\($0))" } ?? ""))
                }
                throw ScriptError(line: parser.line, column: call.column, "\(call.verb.rawValue) gave no value here")
            }
            return v
        }
    }

    func compare(_ a: Value, _ op: Comparison, _ b: Value, line: Int) throws -> Bool {
        let order: Int
        switch (a, b) {
        case (.int(let x), .int(let y)): order = x < y ? -1 : x > y ? 1 : 0
        case (.string(let x), .string(let y)): order = x < y ? -1 : x > y ? 1 : 0
        case (.bytes(let x), .bytes(let y)):
            order = x.lexicographicallyPrecedes(y) ? -1 : y.lexicographicallyPrecedes(x) ? 1 : 0
        case (.string(let s), .bytes(let x)), (.bytes(let x), .string(let s)):
            // A string read with --format str compares with its bytes.
            let y = Array(s.utf8)
            let o = x.lexicographicallyPrecedes(y) ? -1 : y.lexicographicallyPrecedes(x) ? 1 : 0
            order = { if case .string = a { -o } else { o } }()
        default:
            guard let x = a.asDouble, let y = b.asDouble else {
                throw ScriptError(line: line, column: 1, "cannot compare \(a.kind) \(a) with \(b.kind) \(b)")
            }
            order = x < y ? -1 : x > y ? 1 : 0
        }
        switch op {
        case .equal: return order == 0
        case .notEqual: return order != 0
        case .less: return order < 0
        case .lessOrEqual: return order <= 0
        case .greater: return order > 0
        case .greaterOrEqual: return order >= 0
        }
    }

    func truth(_ v: Value) -> Bool {
        switch v {
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .bytes(let b): !b.isEmpty
        }
    }

    // MARK: Arguments

    /// A word as an integer expression (an address, a length, a pid).
    func integer(_ word: Word, parser: Parser, what: String) throws -> Int128 {
        let e: Expression
        if word.quoted {
            guard let n = parseLength(word.text) else {
                throw ScriptError(line: parser.line, column: word.column, "\(what) '\(word.text)' is not a number")
            }
            return Int128(n)
        }
        e = try parser.valueExpression(from: word.column - 1, to: word.column - 1 + word.text.count)
        guard case .int(let i) = try evaluate(e, parser: parser) else {
            throw ScriptError(line: parser.line, column: word.column, "\(what) must be an integer")
        }
        return i
    }

    func address(_ word: Word, parser: Parser) throws -> Address {
        let i = try integer(word, parser: parser, what: "address")
        guard let a = UInt64(exactly: i) else {
            throw ScriptError(line: parser.line, column: word.column, "address \(i) is outside 0…0xffffffffffffffff")
        }
        return a
    }

    func count(_ word: Word, parser: Parser, what: String) throws -> UInt64 {
        let i = try integer(word, parser: parser, what: what)
        guard let n = UInt64(exactly: i) else {
            throw ScriptError(line: parser.line, column: word.column, "\(what) \(i) is negative or too large")
        }
        return n
    }

    /// A word as text: a quoted string as written, a lone `$name` as that value's text.
    func text(_ word: Word, parser: Parser, hex: Bool = false) throws -> String {
        if !word.quoted, word.text.hasPrefix("$") {
            let name = String(word.text.dropFirst()).trimmingCharacters(in: ["{", "}"])
            guard let v = variables[name] else {
                throw ScriptError(line: parser.line, column: word.column, "unknown variable $\(name)")
            }
            if hex, case .bytes(let b) = v { return hexString(b) }
            if case .int(let i) = v { return String(i) }
            return v.description
        }
        return word.text
    }

    func payload(_ call: VerbCall, parser: Parser) throws -> PayloadSpec {
        var spec = PayloadSpec()
        if let w = call.option("--hex") { spec.hex = try text(w, parser: parser, hex: true) }
        if let w = call.option("--string") { spec.string = try text(w, parser: parser) }
        if let w = call.option("--utf16") { spec.utf16 = try text(w, parser: parser) }
        if let w = call.option("--file") { spec.file = try text(w, parser: parser) }
        spec.nul = call.flags.contains("--nul")
        for format in PayloadSpec.typedFormats {
            guard let w = call.option("--" + format.rawValue) else { continue }
            if format == .f32 || format == .f64 || w.quoted {
                spec.typed = (format, try text(w, parser: parser))
            } else {
                spec.typed = (format, String(try integer(w, parser: parser, what: format.rawValue)))
            }
        }
        guard spec.sourceCount == 1 else {
            throw ScriptError(
                line: parser.line, column: call.column,
                "\(call.verb.rawValue) needs exactly one of --hex, --string, --utf16, --file, --u8…--u64, --i8…--i64, --f32, --f64"
            )
        }
        return spec
    }

    func selectors(_ words: [Word]?, parser: Parser) throws -> [RegionSelector] {
        try (words ?? []).map { w in
            do { return try RegionSelector(parsing: try text(w, parser: parser)) } catch let e as VmIoError {
                throw ScriptError(line: parser.line, column: w.column, e.description)
            }
        }
    }

    /// `ADDR` in this target, or `PID:ADDR` in another process.
    func location(_ word: Word, parser: Parser) throws -> (Target, Address) {
        if let colon = word.text.firstIndex(of: ":"), let pid = try processID(word.text[..<colon], parser: parser),
            pid > 0
        {
            let rest = String(word.text[word.text.index(after: colon)...])
            let other = try targets.target(pid)
            let sub = Parser(
                line: parser.line,
                text: String(
                    repeating: " ", count: word.column + word.text.distance(from: word.text.startIndex, to: colon))
                    + rest)
            let e = try sub.valueExpression(
                from: word.column + word.text.distance(from: word.text.startIndex, to: colon))
            let v = try Interpreter.withTarget(other, base: self) { try $0.evaluate(e, parser: sub) }
            guard case .int(let i) = v, let a = UInt64(exactly: i) else {
                throw ScriptError(line: parser.line, column: word.column, "'\(word.text)' is not an address")
            }
            return (other, a)
        }
        return (target, try address(word, parser: parser))
    }

    /// The pid of a `PID:ADDR` location: digits, or a `$name` holding an integer; nil for
    /// anything else (then the word is an address of this target, like `sym:FILE:NAME`).
    func processID(_ text: Substring, parser: Parser) throws -> Int32? {
        if let pid = Int32(text) { return pid }
        guard text.hasPrefix("$"), String(text.dropFirst()).isIdentifier else { return nil }
        guard case .int(let i)? = variables[String(text.dropFirst())], let pid = Int32(exactly: i) else {
            throw ScriptError(line: parser.line, column: 1, "\(text) is not a pid")
        }
        return pid
    }

    /// Evaluates in another target's address space (regions and symbols resolve there),
    /// with this session's variables.
    static func withTarget<T>(_ other: Target, base: Interpreter, _ body: (Interpreter) throws -> T) throws -> T {
        if other === base.target { return try body(base) }
        let sub = Interpreter(target: other, json: base.json, keepGoing: false, output: { _ in }, diagnostics: { _ in })
        sub.variables = base.variables
        return try body(sub)
    }

    // MARK: Verbs

    func run(_ call: VerbCall, parser: Parser) throws -> Outcome {
        // The targets may have mapped or unmapped memory since the last command.
        targets.beginCommand()
        _ = try targets.target(target.pid)
        switch call.verb {
        case .maps:
            return Operations.maps(target)
        case .read:
            let (where_, start) = try location(call.positionals[0], parser: parser)
            let length = try count(call.positionals[1], parser: parser, what: "length")
            var words = ["--", start.hex, String(length)]
            if let w = call.option("--format") { words = ["--format", try text(w, parser: parser)] + words }
            if call.flags.contains("--skip-faults") { words.insert("--skip-faults", at: 0) }
            return try ReadCommand.parse(words: words).run(in: context.with(pid: where_.pid))
        case .write:
            let (where_, start) = try location(call.positionals[0], parser: parser)
            let bytes = try payload(call, parser: parser).bytes()
            return try Operations.write(
                where_, bytes, at: start, force: call.flags.contains("--force"), verify: call.flags.contains("--verify")
            )
        case .copy:
            let (from, fromAddress) = try location(call.positionals[0], parser: parser)
            let (to, toAddress) = try location(call.positionals[1], parser: parser)
            let length = try count(call.positionals[2], parser: parser, what: "length")
            return try Operations.copy(
                from: from, at: fromAddress, to: to, at: toAddress, count: length,
                skipFaults: call.flags.contains("--skip-faults"))
        case .search:
            let spec = try payload(call, parser: parser)
            let align = try call.option("--align").map { try count($0, parser: parser, what: "alignment") }
            let nth = try call.option("--nth").map { try count($0, parser: parser, what: "--nth") } ?? 1
            guard nth >= 1 else { throw ScriptError(line: parser.line, column: call.column, "--nth counts from 1") }
            let max = try call.option("--max").map { try count($0, parser: parser, what: "--max") } ?? 1000
            let pattern: BytePattern
            do { pattern = try spec.pattern(alignment: align == 0 ? nil : align) } catch VmIoError.badPattern(
                _, let reason)
            {
                // A pattern, not an "address".
                throw CommandError.badInput("bad search pattern '\(spec.label)': \(reason)")
            }
            let (outcome, report) = try Operations.search(
                target, pattern: pattern, label: spec.label,
                regions: selectors(call.options["--region"], parser: parser), max: Int(Swift.max(max, nth)))
            var o = outcome
            if call.option("--nth") != nil {
                guard report.hits.count >= Int(nth) else {
                    throw ScriptError(
                        line: parser.line, column: call.column,
                        "search found \(counted(report.hits.count, "hit")), not \(nth)")
                }
                o.value = .int(Int128(report.hits[Int(nth) - 1].address))
            }
            return o
        case .dump:
            return try Operations.dump(
                target, regions: selectors(call.options["--region"], parser: parser),
                to: text(call.positionals[0], parser: parser), replace: call.flags.contains("--force"))
        case .restore:
            return try Operations.restore(
                target, from: text(call.positionals[0], parser: parser),
                skip: selectors(call.options["--skip"], parser: parser),
                skipMismatched: call.flags.contains("--skip-mismatched"),
                force: call.flags.contains("--force"), verify: call.flags.contains("--verify"))
        case .backtrace:
            let thread = try call.option("--thread").map {
                Int32(clamping: try integer($0, parser: parser, what: "thread id"))
            }
            let depth = try call.option("--depth").map { try count($0, parser: parser, what: "depth") } ?? 256
            guard depth >= 1 else {
                throw ScriptError(line: parser.line, column: call.column, "--depth must be at least 1")
            }
            return try Operations.backtrace(
                target, thread: thread, snapshot: call.flags.contains("--snapshot"),
                depth: Int(min(depth, 1 << 20)), memory: .cached)
        case .regs:
            let thread = try call.option("--thread").map {
                Int32(clamping: try integer($0, parser: parser, what: "thread id"))
            }
            return try Operations.regs(target, thread: thread)
        case .symbol:
            let (where_, address) = try location(call.positionals[0], parser: parser)
            return try SymbolCommand.parse(words: ["--", address.hex]).run(in: context.with(pid: where_.pid))
        }
    }
}

extension Value {
    var asDouble: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }
}
