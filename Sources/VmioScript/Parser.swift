import VmIO
import VmioCommands

/// Parses one line of the session language into a ``Statement``.
///
/// ```
/// # comments run to the end of the line
/// let marker = search --string "VMIO-MARKER-0001"
/// let value  = read $marker+0x100 8 --format u64
/// expect $value == 0x1122334455667788
/// break sym:tick
/// let hit = wait --timeout 5
/// expect $hit.pc == sym:tick
/// read $hit.rdi 16
/// write $marker+0x100 --u64 42 --verify
/// expect (read $marker+0x100 8 --format u64) == 42
/// copy $marker 4321:0x7f0000001000 16
/// stop
/// echo the value was $value
/// cont
/// sleep 100ms
/// ```
public struct Parser: Sendable {
    let line: Int
    let text: LineCharacters

    /// How deep parentheses (and unary minus signs) may nest in one line.
    static let maxNesting = 64
    /// How many `+ - *` one expression may hold, parentheses included: each is a level of the
    /// tree its evaluation recurses through.
    static let maxOperators = 256

    /// A parser of `text`, line `line` (1-based) of a script.
    public init(line: Int, text: String) {
        self.line = line
        self.text = LineCharacters(text)
    }

    /// A parser of `text` that reads even an ASCII line as Characters, the general way
    /// (`bytewise: false`), as the tests of the byte path compare.
    init(line: Int, text: String, bytewise: Bool) {
        self.line = line
        self.text = LineCharacters(text, bytewise: bytewise)
    }

    /// Parses the line at `line` (1-based) of a script.
    ///
    /// Throws a ``ScriptError`` at the column where the line stops making sense: an unknown verb,
    /// a word or option its verb does not take, an unbalanced parenthesis or quote, a malformed value.
    public static func parse(_ text: String, line: Int) throws(ScriptError) -> Statement {
        try Parser(line: line, text: text).statement()
    }

    func fail(_ column: Int, _ message: String) -> ScriptError {
        ScriptError(line: line, column: column, message)
    }

    // MARK: Words

    /// Splits `text[from..<to]` into words: whitespace separates; `"…"` quotes (with
    /// `\"`, `\\`, `\n`, `\t` escapes); parentheses group; `#` outside quotes ends the line.
    func words(from: Int, to: Int? = nil) throws(ScriptError) -> [Word] {
        let end = to ?? text.count
        if let bytes = text.ascii {
            return try LineScanner(text: bytes, line: line).words(from: from, to: end)
        }
        return try LineScanner(text: text.characters, line: line).words(from: from, to: end)
    }

    /// The string of the quote opening at `i`, and the index just past its closing quote.
    func quotedString(at i: Int, end: Int) throws(ScriptError) -> (String, Int) {
        if let bytes = text.ascii {
            let scanner = LineScanner(text: bytes, line: line)
            let (units, next) = try scanner.quotedString(at: i, end: end)
            return (UInt8.string(units), next)
        }
        let scanner = LineScanner(text: text.characters, line: line)
        let (units, next) = try scanner.quotedString(at: i, end: end)
        return (String(units), next)
    }

    // MARK: Statements

    func statement() throws(ScriptError) -> Statement {
        let ws = try words(from: 0)
        guard let first = ws.first else { return .empty }
        let keyword = first.text
        switch keyword {
        case "let":
            guard ws.count >= 2 else { throw fail(first.column, "let needs a name: let NAME = EXPR") }
            let name = ws[1]
            guard name.text.isIdentifier else {
                throw fail(name.column, "'\(name.text)' is not a name (letters, digits, _)")
            }
            guard ws.count >= 3, ws[2].text == "=" else {
                throw fail(name.column + name.text.count, "expected '=' after let \(name.text)")
            }
            guard ws.count >= 4 else { throw fail(ws[2].column + 1, "expected an expression after '='") }
            return .assign(name: name.text, try valueExpression(from: ws[3].column - 1))
        case "expect":
            guard ws.count >= 2 else { throw fail(first.column, "expect needs an expression: expect EXPR OP EXPR") }
            return try expectation(from: ws[1].column - 1)
        case "cont" where ws.count == 2 && ws[1].text == "--wait":
            return .cont(wait: true)
        case "stop", "cont":
            guard ws.count == 1 else {
                throw fail(ws[1].column, keyword == "cont" ? "cont takes only --wait" : "stop takes no arguments")
            }
            return keyword == "stop" ? .stop : .cont(wait: false)
        case "echo":
            return .echo(Array(ws.dropFirst()))
        case "sleep":
            guard ws.count == 2 else { throw fail(first.column, "sleep takes one duration: sleep 100ms, sleep 2s") }
            guard let d = parseDuration(ws[1].text) else {
                throw fail(ws[1].column, "'\(ws[1].text)' is not a duration (like 100ms, 2s, 0.5)")
            }
            return .sleep(d)
        default:
            guard let verb = Verb.named(keyword) else {
                let known = Verb.allCases.map(\.rawValue) + ["let", "expect", "stop", "cont", "echo", "sleep"]
                throw fail(first.column, "unknown command '\(keyword)' (expected \(known.joined(separator: ", ")))")
            }
            return .verb(try verbCall(verb, ws))
        }
    }

    /// Checks a verb's words against its syntax: the command line's options (`--name VALUE`,
    /// `--name=VALUE`, `-o VALUE`, flags), then its positional arguments.
    func verbCall(_ verb: Verb, _ ws: [Word]) throws(ScriptError) -> VerbCall {
        let syntax = verb.syntax
        var call = VerbCall(verb: verb, column: ws[0].column)
        var i = 1
        while i < ws.count {
            let w = ws[i]
            i += 1
            guard !w.quoted, Self.isOption(w.text) else {
                // A last positional that repeats (symbol's ADDR…) takes every word left.
                guard call.positionals.count < syntax.positionals.count || syntax.positionals.last?.isRepeating == true
                else {
                    let names = syntax.positionals.map { Verb.metavariable($0.name) }.joined(separator: " ")
                    let takes = names.isEmpty ? "no arguments" : names
                    throw fail(w.column, "unexpected argument '\(w.text)': \(verb.rawValue) takes \(takes)")
                }
                call.positionals.append(w)
                continue
            }
            let (spelled, attached) = Self.optionParts(w.text)
            guard let option = syntax.option(spelled) else {
                let known = syntax.options.map(\.name).sorted()
                throw fail(
                    w.column,
                    "\(verb.rawValue) has no option \(spelled)"
                        + (known.isEmpty ? "" : " (it takes \(known.joined(separator: ", ")))"))
            }
            guard option.takesValue else {
                call.flags.insert(option.name)
                continue
            }
            let value: Word
            if let attached {
                value = Word(text: attached.text, column: w.column + attached.offset, quoted: false)
            } else {
                guard i < ws.count else { throw fail(w.column, "\(w.text) needs a value") }
                value = ws[i]
                i += 1
            }
            if !option.isRepeating, call.options[option.name] != nil { throw fail(w.column, "\(spelled) given twice") }
            call.options[option.name, default: []].append(value)
        }
        let end = (ws.last.map { $0.column + $0.text.count }) ?? 1
        let rest = syntax.positionals.dropFirst(call.positionals.count)
        if rest.contains(where: { !$0.isOptional }) {
            let missing = rest.filter { !$0.isOptional }
            throw fail(
                end, "\(verb.rawValue) needs \(missing.map { Verb.metavariable($0.name) }.joined(separator: " "))")
        }
        if let required = syntax.requiredOptions.first(where: { call.options[$0.name] == nil }) {
            throw fail(end, "\(verb.rawValue) needs \(required.names[0]) \(Verb.metavariable(required.valueName))")
        }
        return call
    }

    /// `--name`, `--name=value` or `-x`: an option, not a value (`-5`, `-$x` are values).
    static func isOption(_ text: String) -> Bool {
        if let bytes = asciiWord(text) {
            guard bytes.first == UInt8(ascii: "-"), bytes.count > 1 else { return false }
            if bytes[1] == UInt8(ascii: "-") { return bytes.count > 2 }
            return (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[1] | 0x20)
        }
        if text.hasPrefix("--") { return text.count > 2 }
        return text.hasPrefix("-") && text.dropFirst().first?.isLetter == true
    }

    /// An option word's spelling (`--name` of `--name=value`), and the value after its first
    /// `=` with the value's offset in the word (in columns), if it has one.
    static func optionParts(_ text: String) -> (spelled: String, attached: (text: String, offset: Int)?) {
        if let bytes = asciiWord(text) {
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { return (text, nil) }
            let value = String(decoding: bytes[(equals + 1)...], as: UTF8.self)
            return (String(decoding: bytes[..<equals], as: UTF8.self), (value, equals + 1))
        }
        let spelled = String(text.prefix { $0 != "=" })
        guard spelled.count < text.count else { return (spelled, nil) }
        return (spelled, (String(text.dropFirst(spelled.count + 1)), spelled.count + 1))
    }

    /// The UTF-8 of a word whose every byte is one Character (ASCII, no carriage return),
    /// which the byte-wise checks may read; nil for any other word (read as Characters).
    static func asciiWord(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        return bytes.allSatisfy { $0 < 0x80 && $0 != 0x0d } ? bytes : nil
    }

    /// `expect LEFT [OP RIGHT]`: the operator is found outside quotes and parentheses.
    func expectation(from start: Int) throws(ScriptError) -> Statement {
        var depth = 0, i = start, inQuote = false
        let end = commentStart(from: start)
        while i < end {
            let c = text[i]
            if inQuote && c == "\\" { i += 2; continue }  // an escape inside a string
            if c == "\"" { inQuote.toggle() }
            if !inQuote {
                if c == "(" { depth += 1 }
                if c == ")" { depth -= 1 }
                if depth == 0 {
                    for op in Comparison.allCases {
                        let chars = Array(op.rawValue)
                        if i + chars.count <= end && Array(text[i..<i + chars.count]) == chars {
                            let left = try valueExpression(from: start, to: i)
                            guard i + chars.count < end,
                                !String(text[(i + chars.count)..<end]).allSatisfy(\.isWhitespace)
                            else {
                                throw fail(i + chars.count + 1, "expected an expression after \(op.rawValue)")
                            }
                            let right = try valueExpression(from: i + chars.count, to: end)
                            return .expect(left, op, right)
                        }
                    }
                }
            }
            i += 1
        }
        return .expect(try valueExpression(from: start, to: end), nil, nil)
    }

    /// Where a comment starts: a `#` outside quotes at the start of a word (after a space or
    /// at `start`), as ``words(from:to:)`` ends the line there.
    func commentStart(from start: Int) -> Int {
        var inQuote = false, i = start
        while i < text.count {
            if inQuote && text[i] == "\\" { i += 2; continue }  // an escape inside a string
            if text[i] == "\"" { inQuote.toggle() }
            if text[i] == "#" && !inQuote && (i == start || text[i - 1].isSpace) { return i }
            i += 1
        }
        return text.count
    }

    /// An expression, or a bare verb call (`read …`, `search …`) as in `let x = read …`.
    func valueExpression(from start: Int, to end: Int? = nil) throws(ScriptError) -> Expression {
        var operators = 0
        return try valueExpression(from: start, to: end, operators: &operators)
    }

    /// ``valueExpression(from:to:)`` with `operators` already counted in the expression that
    /// holds this one (in parentheses).
    func valueExpression(from start: Int, to end: Int?, operators: inout Int) throws(ScriptError) -> Expression {
        let end = end ?? commentStart(from: start)
        let ws = try words(from: start, to: end)
        if let first = ws.first, !first.quoted, let verb = Verb.named(first.text) {
            return .call(try verbCall(verb, ws))
        }
        var lexer = ExpressionParser(parser: self, position: start, end: end, operators: operators)
        let e = try lexer.parse()
        operators = lexer.operators
        return e
    }
}

/// A recursive-descent parser for expressions over a slice of the line.
struct ExpressionParser {
    let parser: Parser
    var position: Int
    let end: Int
    /// The `+ - *` met so far in the whole expression (``Parser/maxOperators``).
    var operators: Int

    var text: LineCharacters { parser.text }

    mutating func skipSpace() {
        while position < end && text[position].isSpace { position += 1 }
    }

    mutating func parse() throws(ScriptError) -> Expression {
        let e = try sum()
        skipSpace()
        if position < end { throw parser.fail(position + 1, "unexpected '\(text[position])'") }
        return e
    }

    mutating func sum() throws(ScriptError) -> Expression {
        var left = try product()
        while true {
            skipSpace()
            guard position < end, text[position] == "+" || text[position] == "-" else { return left }
            let op = text[position], column = position + 1
            try countOperator(at: column)
            position += 1
            left = .binary(op, left, try product(), column: column)
        }
    }

    mutating func product() throws(ScriptError) -> Expression {
        var left = try unary()
        while true {
            skipSpace()
            guard position < end, text[position] == "*" else { return left }
            let column = position + 1
            try countOperator(at: column)
            position += 1
            left = .binary("*", left, try unary(), column: column)
        }
    }

    mutating func countOperator(at column: Int) throws(ScriptError) {
        operators += 1
        guard operators <= Parser.maxOperators else {
            throw parser.fail(column, "more than \(Parser.maxOperators) operators in one expression")
        }
    }

    mutating func unary(depth: Int = 0) throws(ScriptError) -> Expression {
        skipSpace()
        if position < end && text[position] == "-" {
            let column = position + 1
            guard depth < Parser.maxNesting else {
                throw parser.fail(column, "more than \(Parser.maxNesting) '-' in a row")
            }
            position += 1
            return .negate(try unary(depth: depth + 1), column: column)
        }
        return try primary()
    }

    mutating func primary() throws(ScriptError) -> Expression {
        skipSpace()
        guard position < end else { throw parser.fail(position + 1, "expected a value") }
        let c = text[position], column = position + 1
        if c == "(" {
            // A parenthesised verb call, or a grouped expression.
            let close = try matchingParen(position)
            let inner = try parser.valueExpression(from: position + 1, to: close, operators: &operators)
            position = close + 1
            return inner
        }
        if c == "\"" {
            let (s, next) = try parser.quotedString(at: position, end: end)
            position = next
            return .literal(.string(s))
        }
        if c == "x" && position + 1 < end && text[position + 1] == "\"" {
            let (s, next) = try parser.quotedString(at: position + 1, end: end)
            guard case .success(let bytes) = parseHexBytes(s) else {
                throw parser.fail(column, "x\"…\" must hold hex bytes")
            }
            position = next
            return .literal(.bytes(bytes))
        }
        if c == "$" {
            position += 1
            var name = ""
            let braced = position < end && text[position] == "{"
            if braced { position += 1 }
            while position < end, text[position].isLetter || text[position].isNumber || text[position] == "_" {
                name.append(text[position])
                position += 1
            }
            if braced {
                guard position < end, text[position] == "}" else { throw parser.fail(column, "unterminated ${") }
                position += 1
            }
            guard !name.isEmpty else { throw parser.fail(column, "expected a name after $") }
            var e = Expression.variable(name, column: column)
            // `$hit.pc`, `$r.rsp`: a field of a record.
            while position + 1 < end, text[position] == ".", text[position + 1].isLetter || text[position + 1] == "_" {
                let fieldColumn = position + 2
                position += 1
                var field = ""
                while position < end, text[position].isLetter || text[position].isNumber || text[position] == "_" {
                    field.append(text[position])
                    position += 1
                }
                e = .field(e, name: field, column: fieldColumn)
            }
            return e
        }
        // A number, or an address word ([heap], libc.so.6+0x10, sym:NAME).
        var word = ""
        let numeric = c.isNumber
        while position < end, !text[position].isSpace, !"()$\"*".contains(text[position]) {
            let next = text[position]
            // A number ends at its operator (read on to the end of `1+1+…`, each term cost
            // the rest of the line), but for a float's exponent sign (`1.5e-3`).
            if numeric, next == "+" || next == "-", !(word.contains(".") && (word.last == "e" || word.last == "E")) {
                break
            }
            word.append(next)
            position += 1
        }
        // An operator at the end belongs to the expression, not the word.
        while let last = word.last, last == "+" || last == "-" {
            word.removeLast()
            position -= 1
        }
        guard !word.isEmpty else { throw parser.fail(column, "unexpected '\(c)'") }
        if word.first!.isNumber {
            if let n = parseLength(word) { return .literal(.int(Int128(n))) }
            if word.contains("."), let d = Double(word) { return .literal(.double(d)) }
            // Digits followed by +N/-N (like 4096+16) are arithmetic, not an address word.
            if let split = word.firstIndex(where: { $0 == "+" || $0 == "-" }),
                let n = parseLength(String(word[..<split]))
            {
                position -= word.distance(from: split, to: word.endIndex)
                return .literal(.int(Int128(n)))
            }
            throw parser.fail(column, "'\(word)' is not a number")
        }
        do {
            return .address(try AddressExpression(parsing: word), column: column)
        } catch {
            throw parser.fail(column, error.description)
        }
    }

    func matchingParen(_ open: Int) throws(ScriptError) -> Int {
        var depth = 0, i = open, inQuote = false
        while i < end {
            if inQuote && text[i] == "\\" { i += 2; continue }  // an escape inside a string
            if text[i] == "\"" { inQuote.toggle() }
            if !inQuote {
                if text[i] == "(" { depth += 1 }
                if text[i] == ")" {
                    depth -= 1
                    if depth == 0 { return i }
                }
            }
            i += 1
        }
        throw parser.fail(open + 1, "unbalanced '('")
    }
}

extension String {
    var isIdentifier: Bool {
        guard let f = first, f.isLetter || f == "_" else { return false }
        return allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
    }
}

extension Character {
    /// `isWhitespace`, answered without the Unicode tables for ASCII (every line of a session
    /// is scanned character by character).
    var isSpace: Bool {
        guard let ascii = asciiValue else { return isWhitespace }
        return ascii == 0x20 || (0x09...0x0d).contains(ascii)
    }
}
