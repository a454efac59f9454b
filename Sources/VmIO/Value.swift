/// A value in a session: an integer (wide enough that address arithmetic cannot
/// silently wrap), a float, a string, or bytes. A command's result (`read --format u32`,
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

    /// The kind of value as messages name it: `integer`, `float`, `string`, `bytes`.
    public var kind: String {
        switch self {
        case .int: "integer"
        case .double: "float"
        case .string: "string"
        case .bytes: "bytes"
        }
    }

    /// The value as a session prints it: integers above 0xffff in hex, bytes as `x"…"`.
    public var description: String {
        switch self {
        case .int(let i): i < 0 ? String(i) : (i > 0xffff ? "0x" + String(i, radix: 16) : String(i))
        case .double(let d): "\(d)"
        case .string(let s): s
        case .bytes(let b): "x\"" + hexString(b) + "\""
        }
    }
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
