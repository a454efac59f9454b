/// A value in a session: an integer (wide enough that address arithmetic cannot
/// silently wrap), a float, a string, or bytes.
public enum Value: Sendable, Equatable, CustomStringConvertible {
    case int(Int128)
    case double(Double)
    case string(String)
    case bytes([UInt8])

    /// A decoded JSON value from a typed read.
    public init?(_ json: JSONValue) {
        switch json {
        case .int(let i): self = .int(Int128(i))
        case .uint(let u): self = .int(Int128(u))
        case .double(let d): self = .double(d)
        case .string(let s):
            if s.hasPrefix("0x"), let v = UInt64(s.dropFirst(2), radix: 16) {
                self = .int(Int128(v))
            } else {
                self = .string(s)
            }
        default: return nil
        }
    }

    public var kind: String {
        switch self {
        case .int: "integer"
        case .double: "float"
        case .string: "string"
        case .bytes: "bytes"
        }
    }

    public var description: String {
        switch self {
        case .int(let i): i < 0 ? String(i) : (i > 0xffff ? "0x" + String(i, radix: 16) : String(i))
        case .double(let d): "\(d)"
        case .string(let s): s
        case .bytes(let b): "x\"" + hexString(b) + "\""
        }
    }

    /// The JSON of a value that is an address: a `0x…` string (an integer that is no
    /// 64-bit address keeps its usual form).
    public var addressJSON: JSONValue {
        guard case .int(let i) = self, let address = UInt64(exactly: i) else { return json }
        return .string(address.hex)
    }

    public var json: JSONValue {
        switch self {
        case .int(let i):
            if let s = Int64(exactly: i) {
                .int(s)
            } else if let u = UInt64(exactly: i) {
                .uint(u)
            } else {
                .string(String(i))
            }
        case .double(let d): .double(d)
        case .string(let s): .string(s)
        case .bytes(let b): .string(hexString(b))
        }
    }
}
