import VmIO

/// A JSON value with ordered object keys, so that output shapes are stable and
/// documented field order is kept. Renders compactly on one line (JSON-lines friendly).
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.rendered == b.rendered }

    /// The value as one line of JSON.
    public var rendered: String {
        var out = ""
        render(into: &out)
        return out
    }

    public func render(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .uint(let u): out += String(u)
        case .double(let d):
            if d.isFinite { out += "\(d)" } else { out += "null" }
        case .string(let s): Self.quote(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.render(into: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (i, (key, value)) in fields.enumerated() {
                if i > 0 { out += "," }
                Self.quote(key, into: &out)
                out += ":"
                value.render(into: &out)
            }
            out += "}"
        }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        escape(s, into: &out)
        out += "\""
    }

    /// `s` as the inside of a JSON string: quotes, backslashes and control characters escaped.
    static func escape(_ s: String, into out: inout String) {
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
    }
}

/// Writes one JSON object to a sink a field at a time, so that a field as large as a
/// read's data can be written as it comes. Fields come in the order written.
struct JSONObjectWriter {
    let sink: OutputSink
    private var fieldCount = 0

    init(_ sink: OutputSink) {
        self.sink = sink
    }

    /// Starts the next field: its key; the value is written next, by the caller.
    mutating func key(_ key: String) throws {
        var text = fieldCount == 0 ? "{" : ","
        JSONValue.quote(key, into: &text)
        text += ":"
        try sink.append(text)
        fieldCount += 1
    }

    mutating func fields(_ fields: [(String, JSONValue)]) throws {
        for (name, value) in fields {
            try key(name)
            try sink.append(value.rendered)
        }
    }

    /// Closes the object and its line.
    func end() throws {
        try sink.append(fieldCount == 0 ? "{}\n" : "}\n")
    }
}

extension OutputSink {
    /// Appends `text` escaped for the inside of a JSON string.
    func appendJSONEscaped(_ text: String) throws {
        var escaped = ""
        JSONValue.escape(text, into: &escaped)
        try append(escaped)
    }

    /// Appends the bytes as lowercase hex digits.
    func appendHex(_ bytes: UnsafeRawBufferPointer) throws {
        var rest = bytes[...]
        while !rest.isEmpty {
            let piece = rest.prefix(OutputSink.bufferSize / 4)
            try append(upTo: piece.count * 2) { out in
                var n = 0
                for byte in piece {
                    out[n] = hexDigits[Int(byte >> 4)]
                    out[n + 1] = hexDigits[Int(byte & 15)]
                    n += 2
                }
                return n
            }
            rest = rest.dropFirst(piece.count)
        }
    }
}
