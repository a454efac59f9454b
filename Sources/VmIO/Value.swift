/// A value in a session: an integer (wide enough that address arithmetic cannot
/// silently wrap), a float, a string, bytes, or a record of named fields (`wait`'s event,
/// `regs`' registers, read with `$name.field`). A command's result (`read --format u32`,
/// `search`'s first hit) is one, and so is each variable a session's `let` sets.
public enum Value: Sendable, Equatable, CustomStringConvertible {
    /// An integer: a number, an address, a size.
    case int(Int128)
    /// A float (`--format f64`, `1.5`).
    case double(Double)
    /// A string (`--format str`, `"text"`).
    case string(String)
    /// Bytes (`--format hex`, `x"c0ffee"`).
    case bytes([UInt8])
    /// Named fields (`let hit = wait`: `$hit.pc`, `$hit.rdi`).
    indirect case record(Record)

    /// The kind of value as messages name it: `integer`, `float`, `string`, `bytes`, `record`.
    public var kind: String {
        switch self {
        case .int: "integer"
        case .double: "float"
        case .string: "string"
        case .bytes: "bytes"
        case .record: "record"
        }
    }

    /// The value as a session prints it: integers above 0xffff in hex, bytes as `x"…"`.
    public var description: String {
        switch self {
        case .int(let i): i < 0 ? String(i) : (i > 0xffff ? "0x" + String(i, radix: 16) : String(i))
        case .double(let d): "\(d)"
        case .string(let s): s
        case .bytes(let b): "x\"" + hexString(b) + "\""
        case .record(let r): r.primary?.description ?? r.summary
        }
    }

    /// The value where one value is used (arithmetic, a comparison, an argument): a record's
    /// primary value (`regs`: rip), anything else itself.
    public var scalar: Value {
        if case .record(let r) = self, let primary = r.primary { return primary }
        return self
    }
}

/// Named fields in order, as `$name.field` reads them: an event of `wait`, `step` or
/// `finish` (`$hit.pc`, `$hit.rdi`…), a thread's registers from `regs` (`$r.rsp`).
public struct Record: Sendable, Equatable {
    /// One field.
    public struct Field: Sendable, Equatable {
        /// Its name (`pc`).
        public let name: String
        /// Its value.
        public let value: Value
    }

    /// The fields, in order.
    public let fields: [Field]
    /// The value the record stands for where one value is used (`regs`: rip); nil when
    /// there is none (an event: its fields must be named).
    public let primary: Value?
    /// How it is shown (`echo $hit`) when it has no primary value.
    public let summary: String

    /// A record of `fields` (name, value) in order.
    public init(_ fields: [(String, Value)], primary: Value? = nil, summary: String) {
        self.fields = fields.map { Field(name: $0.0, value: $0.1) }
        (self.primary, self.summary) = (primary, summary)
    }

    /// The field `name`, or nil.
    public subscript(name: String) -> Value? { fields.first { $0.name == name }?.value }
}

/// The 16 lowercase hex digits.
package let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

/// Lowercase hex of bytes, no separators (`c0ffee`).
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    var out = [UInt8]()
    out.reserveCapacity(bytes.underestimatedCount * 2)
    for b in bytes {
        out.append(hexDigits[Int(b >> 4)])
        out.append(hexDigits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}
