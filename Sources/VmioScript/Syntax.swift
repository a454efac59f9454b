import VmIO
import VmioCommands

/// An error in a script, naming the line and column (1-based).
public struct ScriptError: Error, CustomStringConvertible, Sendable {
    public let line: Int
    public let column: Int
    public let message: String
    /// The exit status this error ends a session with.
    public let status: ExitStatus

    public init(line: Int, column: Int, _ message: String, status: ExitStatus = .badInput) {
        self.line = line
        self.column = column
        self.message = message
        self.status = status
    }

    public var description: String { "line \(line):\(column): \(message)" }
}

/// The verbs a session shares with the command line.
public enum Verb: String, CaseIterable, Sendable {
    case maps, read, write, copy, search, dump, restore, backtrace, regs, symbol

    /// Positional arguments, and the options each verb takes (valued, repeatable, flags).
    var shape: (positionals: [String], valued: Set<String>, repeatable: Set<String>, flags: Set<String>) {
        let typed = Set(PayloadSpec.typedFormats.map { "--" + $0.rawValue })
        switch self {
        case .maps: return ([], [], [], [])
        case .read: return (["ADDR", "LEN"], ["--format"], [], ["--skip-faults"])
        case .write:
            return (
                ["ADDR"], typed.union(["--hex", "--string", "--utf16", "--file"]), [], ["--nul", "--force", "--verify"]
            )
        case .copy: return (["SRC", "DST", "LEN"], [], [], ["--skip-faults"])
        case .search:
            return ([], typed.union(["--hex", "--string", "--utf16", "--align", "--max", "--nth"]), ["--region"], [])
        case .dump: return (["DIR"], [], ["--region"], ["--force"])
        case .restore: return (["DIR"], [], ["--skip"], ["--skip-mismatched", "--force", "--verify"])
        case .backtrace: return ([], ["--thread", "--depth"], [], ["--snapshot"])
        case .regs: return ([], ["--thread"], [], [])
        case .symbol: return (["ADDR"], [], [], [])
        }
    }
}

/// One argument as written: its text (quotes removed) and where it starts.
public struct Word: Sendable, Equatable {
    public let text: String
    public let column: Int
    public let quoted: Bool
}

/// A verb with its arguments, checked against the verb's shape.
public struct VerbCall: Sendable {
    public let verb: Verb
    public let column: Int
    public var positionals: [Word] = []
    public var options: [String: [Word]] = [:]
    public var flags: Set<String> = []

    public func option(_ name: String) -> Word? { options[name]?.last }
}

/// Comparison operators of `expect`.
public enum Comparison: String, CaseIterable, Sendable {
    case equal = "==", notEqual = "!=", lessOrEqual = "<=", greaterOrEqual = ">=", less = "<", greater = ">"
}

/// An expression: integers with `+ - *`, floats, strings, `x"…"` bytes, `$variables`,
/// addresses (`[heap]+0x10`, `libc.so.6`, `sym:NAME`), and `(read …)` / `(search …)`.
public indirect enum Expression: Sendable {
    case literal(Value)
    case variable(String, column: Int)
    case address(AddressExpression, column: Int)
    case binary(Character, Expression, Expression, column: Int)
    case negate(Expression, column: Int)
    case call(VerbCall)
}

/// One line of a script.
public enum Statement: Sendable {
    case empty
    case verb(VerbCall)
    case assign(name: String, Expression)
    case expect(Expression, Comparison?, Expression?)
    case stop
    case cont
    case echo([Word])
    case sleep(Duration)

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
    public var exitStatus: ExitStatus { status }
}
