import VmIO

/// A session value as JSON, and back.
extension Value {
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

    /// The JSON of a value that is an address: a `0x…` string (an integer that is no
    /// 64-bit address keeps its usual form).
    public var addressJSON: JSONValue {
        guard case .int(let i) = self, let address = UInt64(exactly: i) else { return json }
        return .string(address.hex)
    }

    /// The value as JSON: an integer as a number (a string beyond 64 bits), bytes as hex.
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
        case .record(let r): r.primary?.json ?? .object(r.fields.map { ($0.name, $0.value.json) })
        }
    }
}
