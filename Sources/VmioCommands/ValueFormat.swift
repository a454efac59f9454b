import VmIO
import VmioPtrace

/// How bytes read from a target are shown: a hex dump, raw bytes, or typed values
/// (little-endian, as on x86_64); `x8`…`x64` are unsigned values in hex (`0x` and every digit).
public enum ValueFormat: String, CaseIterable, Sendable {
    case hex, raw, u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, str, ptr, x8, x16, x32, x64

    /// Bytes per value for the typed formats; nil for hex, raw and str.
    public var width: Int? {
        switch self {
        case .u8, .i8, .x8: 1
        case .u16, .i16, .x16: 2
        case .u32, .i32, .f32, .x32: 4
        case .u64, .i64, .f64, .ptr, .x64: 8
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
        let little = abi.byteOrder == .little
        return stride(from: 0, to: array.count - width + 1, by: width).map { i in
            // Here, not through TargetABI's generic `value(of:)`: across the module boundary
            // that ran unspecialized, a tenth of a session's `read … --format u64`.
            var raw: UInt64 = 0
            for k in 0..<width {
                let byte = UInt64(array[little ? i + width - 1 - k : i + k])
                raw = raw << 8 | byte
            }
            return value(raw, abi: abi)
        }
    }

    /// One value of this format from its bits (`raw`, already in host order).
    public func value(_ raw: UInt64, abi: TargetABI) -> JSONValue {
        switch self {
        case .u8, .u16, .u32, .u64: .uint(raw)
        case .i8: .int(Int64(Int8(truncatingIfNeeded: raw)))
        case .i16: .int(Int64(Int16(truncatingIfNeeded: raw)))
        case .i32: .int(Int64(Int32(truncatingIfNeeded: raw)))
        case .i64: .int(Int64(bitPattern: raw))
        case .f32: .double(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw))))
        case .f64: .double(Double(bitPattern: raw))
        case .ptr: .string(abi.pointerText(raw))
        case .x8, .x16, .x32, .x64:
            .string(
                "0x" + String(repeating: "0", count: max(0, width! * 2 - String(raw, radix: 16).count))
                    + String(raw, radix: 16))
        case .hex, .raw, .str: .null
        }
    }

    /// A decoded value as text.
    public static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): s
        // JSON has no word for these (it says null); text does.
        case .double(let d) where d.isNaN: "nan"
        case .double(let d) where d.isInfinite: d < 0 ? "-inf" : "inf"
        default: value.rendered
        }
    }
}

extension ValueFormat {
    /// Bytes as `diff` and `monitor` show a side: hex, or the values of this format
    /// (space-separated in text, an array in JSON).
    func shown(_ bytes: [UInt8]) -> (text: String, json: JSONValue) {
        guard width != nil else { return (hexString(bytes), .string(hexString(bytes))) }
        let values = decode(bytes)
        return (values.map { ValueFormat.text($0) }.joined(separator: " "), .array(values))
    }
}
