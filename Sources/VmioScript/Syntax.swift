import VmIO
import VmioCommands

/// An error in a script, naming the line and column (1-based).
public struct ScriptError: Error, CustomStringConvertible, Sendable {
    /// The line of the script (1-based).
    public let line: Int
    /// The column where the problem starts (1-based).
    public let column: Int
    /// What is wrong, in one line.
    public let message: String
    /// The exit status this error ends a session with.
    public let status: ExitStatus

    /// An error at `line`:`column`, with the exit status it gives the session (bad input by default).
    public init(line: Int, column: Int, _ message: String, status: ExitStatus = .badInput) {
        self.line = line
        self.column = column
        self.message = message
        self.status = status
    }

    public var description: String { "line \(line):\(column): \(message)" }
}

/// The verbs of a session. Each runs its command, whose definition is its syntax: the
/// command line's, less the pid (and `--json`, which is the session's), plus the session's
/// own `search --nth N` and `scan --nth N`; and the session's own trap verbs (`break`,
/// `watch`, `delete`, `wait`, `step`, `finish`), whose commands only a session runs.
public enum Verb: String, CaseIterable, Sendable {
    /// A command-line subcommand of that name, less its pid (README.md, "Sessions").
    case maps, read, write, copy, search, dump, restore, diff, scan, monitor, core, backtrace, regs, symbol
    /// A session's own trap verb: it plants (`break`, `watch`), removes (`delete`) or waits
    /// for (`wait`, `step`, `finish`) a trap of the script's trap session (README.md,
    /// "Sessions").
    case `break`, watch, delete, wait, step, finish

    /// The shared command this verb runs.
    package var command: any VmioCommand.Type {
        switch self {
        case .maps: MapsCommand.self
        case .read: ReadCommand.self
        case .write: WriteCommand.self
        case .copy: CopyCommand.self
        case .search: SearchCommand.self
        case .dump: DumpCommand.self
        case .restore: RestoreCommand.self
        case .diff: DiffCommand.self
        case .scan: ScanCommand.self
        case .monitor: MonitorCommand.self
        case .core: CoreCommand.self
        case .backtrace: BacktraceCommand.self
        case .regs: RegsCommand.self
        case .symbol: SymbolCommand.self
        case .break: SessionBreakCommand.self
        case .watch: SessionWatchCommand.self
        case .delete: DeleteCommand.self
        case .wait: WaitCommand.self
        case .step: StepCommand.self
        case .finish: FinishCommand.self
        }
    }

    /// The words this verb takes.
    package var syntax: CommandSyntax {
        if let known = Verb.syntaxes.withLock({ $0[self] }) { return known }
        let own = CommandSyntax(of: command)
        let made = [.search, .scan].contains(self) ? own.adding([CommandSyntax.valued("--nth")]) : own
        Verb.syntaxes.withLock { $0[self] = made }
        return made
    }

    /// Each verb's syntax, read from its command's definition when first needed (reading all
    /// of them was a session's start-up: 15 ms of swift-argument-parser's help dumps).
    private static let syntaxes = Locked<[Verb: CommandSyntax]>([:])

    /// The verb named `name`, as `init(rawValue:)` finds it, by one hash rather than a
    /// comparison a verb.
    static func named(_ name: String) -> Verb? { byName[name] }

    private static let byName = Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, $0) })

    /// How messages name a positional argument: as the README writes it (`ADDR`, `LEN`).
    static func metavariable(_ name: String) -> String {
        let names = ["address": "ADDR", "length": "LEN", "source": "SRC", "destination": "DST", "directory": "DIR"]
        return names[name] ?? name.uppercased()
    }
}

/// One argument as written: its text (quotes removed) and where it starts.
public struct Word: Sendable, Equatable {
    /// The word, its quotes and escapes removed.
    public let text: String
    /// Where it starts in the line (1-based).
    public let column: Int
    /// Whether it was written in quotes (then it is never an option or an expression).
    public let quoted: Bool
}

/// A verb with its arguments, checked against the verb's syntax. Options are keyed by
/// their long name (`-o` is `--output`).
public struct VerbCall: Sendable {
    /// The command.
    public let verb: Verb
    /// Where the verb starts in the line (1-based).
    public let column: Int
    /// Its positional arguments, in order.
    public var positionals: [Word] = []
    /// Its options' values by name (`--format`), each given value in order.
    public var options: [String: [Word]] = [:]
    /// Its flags given (`--verify`).
    public var flags: Set<String> = []

    /// The last value given for option `name`, if any.
    public func option(_ name: String) -> Word? { options[name]?.last }
}

/// Comparison operators of `expect`.
public enum Comparison: String, CaseIterable, Sendable {
    /// `==`, `!=`, `<=`, `>=`, `<` and `>`.
    case equal = "==", notEqual = "!=", lessOrEqual = "<=", greaterOrEqual = ">=", less = "<", greater = ">"
}

/// An expression: integers with `+ - *`, floats, strings, `x"…"` bytes, `$variables`,
/// addresses (`[heap]+0x10`, `libc.so.6`, `sym:NAME`), and `(read …)` / `(search …)`.
public indirect enum Expression: Sendable {
    /// A number, string or `x"…"` bytes as written.
    case literal(Value)
    /// `$name`, at `column`.
    case variable(String, column: Int)
    /// An address form (`[heap]+0x10`, `sym:NAME`), resolved against the target.
    case address(AddressExpression, column: Int)
    /// `+`, `-` or `*` of two expressions; `column` is the operator's.
    case binary(Character, Expression, Expression, column: Int)
    /// `-` of an expression.
    case negate(Expression, column: Int)
    /// `(read …)` or `(search …)`: the command's value.
    case call(VerbCall)
    /// `$hit.pc`: a field of a record (an event, registers).
    case field(Expression, name: String, column: Int)
}

/// One line of a script.
public enum Statement: Sendable {
    /// A line with no words.
    case empty
    /// A command.
    case verb(VerbCall)
    /// `let NAME = EXPR`.
    case assign(name: String, Expression)
    /// `expect EXPR [OP EXPR]`: without a comparison, the value must be true (not 0, not empty).
    case expect(Expression, Comparison?, Expression?)
    /// `stop`: holds the target stopped until `cont`.
    case stop
    /// `cont`, or `cont --wait`: until the process ends.
    case cont(wait: Bool)
    /// `echo WORDS`: the words, `$name` replaced by its value.
    case echo([Word])
    /// `sleep DURATION`.
    case sleep(Duration)

    /// The statement's verb as a session line writes it (`let`, `expect`, `read`…; empty for an empty line).
    public var verbName: String {
        switch self {
        case .empty: ""
        case .verb(let call): call.verb.rawValue
        case .assign: "let"
        case .expect: "expect"
        case .stop: "stop"
        case .cont: "cont"
        case .echo: "echo"
        case .sleep: "sleep"
        }
    }
}

extension ScriptError: StatusError {
    /// The session's exit status for this error.
    package var exitStatus: ExitStatus { status }
}
