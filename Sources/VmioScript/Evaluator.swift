import Glibc
import VmIO
import VmioCommands
import VmioPtrace

/// Expressions: their values, comparisons and truth, and `$name` inside echo words.
extension Interpreter {
    /// Whether `e` denotes an address: an address form (`[heap]+0x10`, `sym:NAME`), a search
    /// hit, a scan's `--nth` candidate, a `ptr` read, a variable that holds one, or one of
    /// these plus or minus an integer (an address less an address is a size).
    func denotesAddress(_ e: Expression) -> Bool {
        switch e {
        case .address: true
        case .variable(let name, _): addressNames.contains(name)
        case .call(let call):
            call.verb == .search || (call.verb == .scan && call.option("--nth") != nil)
                || (call.verb == .read && call.option("--format")?.text == "ptr")
        case .field(_, let name, _): ["pc", "address", "rip", "rsp", "rbp"].contains(name)
        case .binary("+", let l, let r, _): denotesAddress(l) != denotesAddress(r)
        case .binary("-", let l, let r, _): denotesAddress(l) && !denotesAddress(r)
        default: false
        }
    }

    /// The value of `e` on `parser`'s line: a `(read …)` or `(search …)` runs its command against the session's
    /// target; `$hit.pc` is a field of a record (an event of `wait`, the registers of `regs`).
    ///
    /// Throws a ``ScriptError`` at the column of the part that failed: an unknown variable, an arithmetic
    /// overflow, operands of the wrong kinds, an address that does not resolve, or a command that failed or gave
    /// no value. A failed command's error keeps its message, and its exit status as ``ScriptError/status`` (the
    /// one the command line would exit with: `.partialCopy` for a read cut short, `.targetGone` when the process
    /// is gone…).
    public func evaluate(_ e: Expression, parser: Parser) throws(ScriptError) -> Value {
        switch e {
        case .literal(let v): return v
        case .variable(let name, let column):
            guard let v = variables[name] else {
                throw ScriptError(line: parser.line, column: column, "unknown variable $\(name)")
            }
            return v
        case .address(let a, let column):
            do { return .int(Int128(try target.resolve(a))) } catch {
                // A name looked up in a process that has gone is exit 4, as for any command.
                let failure = CommandError(error)
                throw ScriptError(line: parser.line, column: column, failure.message, status: failure.exitStatus)
            }
        case .field(let inner, let name, let column):
            let v = try evaluate(inner, parser: parser)
            guard case .record(let record) = v else {
                throw ScriptError(line: parser.line, column: column, "\(v.kind) \(v) has no field \(name)")
            }
            return try field(name, of: record, line: parser.line, column: column)
        case .negate(let inner, let column):
            switch try evaluate(inner, parser: parser).scalar {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            case let v: throw ScriptError(line: parser.line, column: column, "cannot negate \(v.kind) \(v)")
            }
        case .binary(let op, let l, let r, let column):
            let a = try evaluate(l, parser: parser).scalar, b = try evaluate(r, parser: parser).scalar
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
            let o: Outcome
            do { o = try run(call, parser: parser) } catch let error as ScriptError { throw error } catch {
                let failure = CommandError(error)
                throw ScriptError(line: parser.line, column: call.column, failure.message, status: failure.exitStatus)
            }
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

    /// Field `name` of `record`, or an error naming the fields it has.
    func field(_ name: String, of record: Record, line: Int, column: Int) throws(ScriptError) -> Value {
        guard let value = record[name] else {
            let names = record.fields.map(\.name).joined(separator: ", ")
            throw ScriptError(line: line, column: column, "no field \(name) here (it has \(names))")
        }
        return value
    }

    func compare(_ a: Value, _ op: Comparison, _ b: Value, line: Int) throws -> Bool {
        let (a, b) = (a.scalar, b.scalar)
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
        switch v.scalar {
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .bytes(let b): !b.isEmpty
        case .record: true
        }
    }

    /// `$name` and `${name}` inside an echo word.
    func interpolate(_ word: Word, parser: Parser) throws -> String {
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
            guard var v = variables[name] else {
                throw ScriptError(line: parser.line, column: word.column, "unknown variable $\(name)")
            }
            // `$hit.pc` of a record: its field (a dot after any other value is text).
            while case .record(let record) = v, chars.first == "." {
                let name = String(chars.dropFirst().prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                guard !name.isEmpty else { break }
                v = try field(name, of: record, line: parser.line, column: word.column)
                chars = chars.dropFirst(1 + name.count)
            }
            out += v.description
        }
        return out
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
