import Glibc
import VmIO
import VmioCommands
import VmioPtrace

/// Words as values: integers, addresses, lengths, text, and `PID:ADDR` locations.
extension Interpreter {
    /// A word as an integer expression (an address, a length, a pid).
    func integer(_ word: Word, parser: Parser, what: String) throws -> Int128 {
        let e: Expression
        if word.quoted {
            guard let n = parseLength(word.text) else {
                throw ScriptError(line: parser.line, column: word.column, "\(what) '\(word.text)' is not a number")
            }
            return Int128(n)
        }
        // A number as written is its value (as the expression parser reads a literal).
        // (An ASCII test: Character.isNumber looks up Unicode properties, a cost every line.)
        if let first = word.text.utf8.first, first &- UInt8(ascii: "0") < 10, let n = parseLength(word.text) {
            return Int128(n)
        }
        e = try parser.valueExpression(from: word.column - 1, to: word.column - 1 + word.text.count)
        guard case .int(let i) = try evaluate(e, parser: parser).scalar else {
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

    /// The words of a verb as its command's parser takes them, and the target it runs on
    /// (an `ADDR` of another process runs it there). Option values are taken as written,
    /// but for `$name` and `(…)` expressions, whose values are written out; addresses and
    /// lengths are expressions, each written as its number.
    func commandWords(_ call: VerbCall, parser: Parser) throws -> (target: Target, words: [String]) {
        var words: [String] = []
        // Options in the order of their names, flags too (one needs no sorting: most lines).
        let options =
            call.options.count < 2 ? Array(call.options) : call.options.sorted { $0.key < $1.key }
        for (name, values) in options where name != "--nth" {
            for value in values {
                words.append(name)
                words.append(try optionText(value, parser: parser))
            }
        }
        words += call.flags.count < 2 ? Array(call.flags) : call.flags.sorted()
        var on = target
        var positionals: [String] = []
        let syntax = call.verb.syntax.positionals
        for (index, word) in call.positionals.enumerated() {
            // Words past the last positional are more of it (it repeats: the parser checked).
            guard let positional = index < syntax.count ? syntax[index] : syntax.last else { break }
            switch positional.name {
            case "address", "addresses":
                let (where_, address) = try location(word, parser: parser)
                if index > 0, where_ !== on {
                    throw ScriptError(
                        line: parser.line, column: word.column,
                        "'\(word.text)' is in another process than the line's first address: one process a line")
                }
                on = where_
                positionals.append(address.hex)
            case "source", "destination":
                let (where_, address) = try location(word, parser: parser)
                positionals.append("\(where_.pid):\(address.hex)")
            case "length":
                positionals.append(String(try count(word, parser: parser, what: "length")))
            default:
                positionals.append(try optionText(word, parser: parser))
            }
        }
        // After `--`, a positional that starts with a dash is not taken for an option.
        return (on, words + ["--"] + positionals)
    }

    /// A value as text: as written, or the value of a `$name` or `(…)` expression.
    func optionText(_ word: Word, parser: Parser) throws -> String {
        guard !word.quoted, word.text.hasPrefix("$") || word.text.hasPrefix("(") else { return word.text }
        let e = try parser.valueExpression(from: word.column - 1, to: word.column - 1 + word.text.count)
        switch try evaluate(e, parser: parser).scalar {
        case .int(let i): return String(i)
        case .bytes(let b): return hexString(b)
        case let v: return v.description
        }
    }

    /// `ADDR` in this target, or `PID:ADDR` in another process.
    func location(_ word: Word, parser: Parser) throws -> (Target, Address) {
        // No colon byte, no colon Character: an address of this target.
        guard word.text.utf8.contains(UInt8(ascii: ":")) else {
            return (target, try address(word, parser: parser))
        }
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
}
