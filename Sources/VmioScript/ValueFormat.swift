import VmIO

/// How bytes read from a target are shown: a hex dump, raw bytes, or typed values
/// (little-endian, as on x86_64).
public enum ValueFormat: String, CaseIterable, Sendable {
    case hex, raw, u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, str, ptr

    /// Bytes per value for the typed formats; nil for hex, raw and str.
    public var width: Int? {
        switch self {
        case .u8, .i8: 1
        case .u16, .i16: 2
        case .u32, .i32, .f32: 4
        case .u64, .i64, .f64, .ptr: 8
        case .hex, .raw, .str: nil
        }
    }

    /// Decodes each `width`-byte value of `bytes` (which must be a multiple of `width`).
    public func decode(_ bytes: some Collection<UInt8>) -> [JSONValue] {
        guard let width else { return [] }
        let array = Array(bytes)
        return stride(from: 0, to: array.count - width + 1, by: width).map { i in
            var raw: UInt64 = 0
            for k in 0..<width { raw |= UInt64(array[i + k]) << (8 * UInt64(k)) }
            switch self {
            case .u8, .u16, .u32, .u64: return .uint(raw)
            case .i8: return .int(Int64(Int8(truncatingIfNeeded: raw)))
            case .i16: return .int(Int64(Int16(truncatingIfNeeded: raw)))
            case .i32: return .int(Int64(Int32(truncatingIfNeeded: raw)))
            case .i64: return .int(Int64(bitPattern: raw))
            case .f32: return .double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw))))
            case .f64: return .double(Double(bitPattern: raw))
            case .ptr: return .string(raw.hex)
            default: return .null
            }
        }
    }

    /// A decoded value as text.
    public static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): s
        default: value.rendered
        }
    }
}

/// Parses hex bytes: `deadbeef`, `de ad be ef`, `0xdeadbeef`, `de:ad`; nil with the
/// reason when malformed.
public func parseHexBytes(_ text: String) -> Result<[UInt8], VmIoError> {
    var digits = text.filter { !$0.isWhitespace && $0 != ":" && $0 != "_" }
    if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits.removeFirst(2) }
    guard !digits.isEmpty else { return .failure(.badAddress(text, reason: "no hex digits")) }
    guard digits.count % 2 == 0 else {
        return .failure(.badAddress(text, reason: "odd number of hex digits (\(digits.count))"))
    }
    var out: [UInt8] = []
    out.reserveCapacity(digits.count / 2)
    var index = digits.startIndex
    while index < digits.endIndex {
        let next = digits.index(index, offsetBy: 2)
        guard let byte = UInt8(digits[index..<next], radix: 16) else {
            return .failure(.badAddress(text, reason: "'\(digits[index..<next])' is not a hex byte"))
        }
        out.append(byte)
        index = next
    }
    return .success(out)
}

/// Lowercase hex of bytes, no separators.
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// An xxd-style dump line: address, 16 bytes in groups of two, then the printable text.
public func hexDumpLine(address: Address, _ bytes: ArraySlice<UInt8>) -> String {
    var line = String(address, radix: 16)
    line = String(repeating: "0", count: max(0, 12 - line.count)) + line + ": "
    for i in 0..<16 {
        if i < bytes.count {
            let b = bytes[bytes.startIndex + i]
            line += (b < 16 ? "0" : "") + String(b, radix: 16)
        } else {
            line += "  "
        }
        if i % 2 == 1 { line += " " }
    }
    line += " "
    for b in bytes { line += (0x20..<0x7f).contains(b) ? String(UnicodeScalar(b)) : "." }
    return line
}
