import Foundation
import VmIO
import VmioPtrace

/// Where the bytes of a `write` or the pattern of a `search` come from: exactly one of
/// hex, a string, a file, or one typed value — shared by the CLI and sessions.
public struct PayloadSpec: Sendable {
    public var hex: String?
    public var string: String?
    public var utf16: String?
    public var file: String?
    public var nul = false
    /// A typed value: its format (`u8`…`f64`) and its text.
    public var typed: (ValueFormat, String)?

    public init() {}

    /// The typed formats a value option may name.
    public static let typedFormats: [ValueFormat] = [.u8, .u16, .u32, .u64, .i8, .i16, .i32, .i64, .f32, .f64]

    /// How many sources were given (exactly one is valid).
    public var sourceCount: Int {
        [hex, string, utf16, file].compactMap { $0 }.count + (typed == nil ? 0 : 1)
    }

    /// The bytes to write.
    public func bytes() throws -> [UInt8] {
        if let hex {
            switch parseHexBytes(hex) {
            case .success(let bytes): return bytes
            case .failure(let e):
                if case .badPattern(_, let reason) = e { throw CommandError.badInput("malformed hex: \(reason)") }
                throw e
            }
        }
        if let string { return Array(string.utf8) + (nul ? [0] : []) }
        if let utf16 { return utf16.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] } + (nul ? [0, 0] : []) }
        if let file {
            // Read to end of file (a pipe or a /proc file too); a failure names its errno.
            do { return try ProcFS.readAll(file) } catch {
                throw CommandError.badInput("cannot read \(file): \(error) (errno \(error.rawValue))")
            }
        }
        if let (format, text) = typed {
            guard let bytes = format.encode(text) else {
                throw CommandError.badInput("'\(text)' is not a valid \(format.rawValue) value")
            }
            return bytes
        }
        throw CommandError.badInput("nothing given to write")
    }

    /// A search pattern: hex may hold `??` wildcards; typed values default to their
    /// natural alignment.
    public func pattern(alignment: UInt64?) throws -> BytePattern {
        if let hex { return try BytePattern(hex: hex, alignment: alignment ?? 1) }
        let natural = typed.flatMap { UInt64($0.0.width ?? 1) } ?? 1
        return try BytePattern(bytes: try bytes(), alignment: alignment ?? natural)
    }

    /// A short label of the pattern for output.
    public var label: String {
        if let hex { return "hex:" + hex }
        if let string { return "string:" + string }
        if let utf16 { return "utf16:" + utf16 }
        if let file { return "file:" + file }
        if let (format, text) = typed { return "\(format.rawValue):\(text)" }
        return ""
    }
}

extension ValueFormat {
    /// `inf`, `-infinity`, `nan`: a value that is not finite, asked for by name.
    static func namesNonFinite(_ text: String) -> Bool {
        let lowered = text.lowercased()
        return lowered.contains("inf") || lowered.contains("nan")
    }

    /// Little-endian bytes of `text` as a value of this format (decimal, 0x hex, or a
    /// float); nil when it does not parse or does not fit.
    public func encode(_ text: String) -> [UInt8]? {
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func signed(_ text: String) -> Int64? {
            if text.hasPrefix("-") {
                guard let magnitude = parseNumber(text.dropFirst()[...]), magnitude <= UInt64(Int64.max) + 1 else {
                    return nil
                }
                return Int64(truncatingIfNeeded: 0 &- magnitude)
            }
            return parseNumber(text[...]).flatMap { $0 <= UInt64(Int64.max) ? Int64($0) : nil }
        }
        switch self {
        case .u8: return parseNumber(text[...]).flatMap(UInt8.init(exactly:)).map(le)
        case .u16: return parseNumber(text[...]).flatMap(UInt16.init(exactly:)).map(le)
        case .u32: return parseNumber(text[...]).flatMap(UInt32.init(exactly:)).map(le)
        case .u64, .ptr: return parseNumber(text[...]).map(le)
        case .i8: return signed(text).flatMap(Int8.init(exactly:)).map(le)
        case .i16: return signed(text).flatMap(Int16.init(exactly:)).map(le)
        case .i32: return signed(text).flatMap(Int32.init(exactly:)).map(le)
        case .i64: return signed(text).map(le)
        // A float that overflows to infinity does not fit, unless it was asked for by name.
        case .f32: return Float(text).flatMap { $0.isFinite || Self.namesNonFinite(text) ? le($0.bitPattern) : nil }
        case .f64: return Double(text).flatMap { $0.isFinite || Self.namesNonFinite(text) ? le($0.bitPattern) : nil }
        default: return nil
        }
    }
}
