import VmIO
import VmioPtrace

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

    /// Bytes per value in a target of `abi`: `ptr` is the target's pointer width (4 in a
    /// 32-bit process), the others are fixed.
    public func width(for abi: TargetABI) -> Int? {
        self == .ptr ? abi.pointerWidth : width
    }

    /// Decodes each value of `bytes` (a multiple of the width) in the target's byte order;
    /// `ptr` values are `abi.pointerWidth` bytes, printed with that many hex digits pairs.
    public func decode(_ bytes: some Collection<UInt8>, abi: TargetABI = .host) -> [JSONValue] {
        guard let width = width(for: abi) else { return [] }
        let array = Array(bytes)
        return stride(from: 0, to: array.count - width + 1, by: width).map { i in
            let raw = abi.value(of: array[i..<(i + width)])
            switch self {
            case .u8, .u16, .u32, .u64: return .uint(raw)
            case .i8: return .int(Int64(Int8(truncatingIfNeeded: raw)))
            case .i16: return .int(Int64(Int16(truncatingIfNeeded: raw)))
            case .i32: return .int(Int64(Int32(truncatingIfNeeded: raw)))
            case .i64: return .int(Int64(bitPattern: raw))
            case .f32: return .double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw))))
            case .f64: return .double(Double(bitPattern: raw))
            case .ptr: return .string(abi.pointerText(raw))
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
        // UInt8(_:radix:) takes a sign ("+f" is 15): accept hex digits only.
        guard digits[index..<next].allSatisfy({ $0.isASCII && $0.isHexDigit }),
            let byte = UInt8(digits[index..<next], radix: 16)
        else {
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

/// A dump line grouped by the target's words (like `xxd -e`): address, the 16 bytes as
/// `abi.pointerWidth`-byte values in the target's byte order (a short tail as bytes),
/// then the printable text.
public func wordDumpLine(address: Address, _ bytes: ArraySlice<UInt8>, abi: TargetABI) -> String {
    var line = String(address, radix: 16)
    line = String(repeating: "0", count: max(0, 12 - line.count)) + line + ": "
    let width = abi.pointerWidth
    var column = 0
    var i = bytes.startIndex
    while column < 16 {
        if i + width <= bytes.endIndex {
            let digits = String(abi.value(of: bytes[i..<(i + width)]), radix: 16)
            line += String(repeating: "0", count: width * 2 - digits.count) + digits + " "
            i += width
        } else if i < bytes.endIndex {
            let tail = bytes[i...]
            line += hexString(tail) + String(repeating: " ", count: (width - tail.count) * 2) + " "
            i = bytes.endIndex
        } else {
            line += String(repeating: " ", count: width * 2 + 1)
        }
        column += width
    }
    line += " "
    for b in bytes { line += (0x20..<0x7f).contains(b) ? String(UnicodeScalar(b)) : "." }
    return line
}
