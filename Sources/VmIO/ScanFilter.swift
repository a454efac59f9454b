/// The type of the values a scan follows: a little-endian integer or float, or a byte
/// string of a fixed length (`--string`, `--hex`).
public enum ScanType: Hashable, Sendable {
    /// An unsigned or signed integer of 1, 2, 4 or 8 bytes, or an IEEE 754 float of 4 or 8 bytes.
    case u8, u16, u32, u64, i8, i16, i32, i64, f32, f64
    /// A byte string of this many bytes.
    case bytes(Int)

    /// The numeric types by their option names (`u32`…).
    public static let numeric: [ScanType] = [.u8, .u16, .u32, .u64, .i8, .i16, .i32, .i64, .f32, .f64]

    /// The numeric type with this option name (`u32`…); nil for any other.
    public init?(name: String) {
        guard let found = Self.numeric.first(where: { $0.name == name }) else { return nil }
        self = found
    }

    /// The bytes a value takes.
    public var width: Int {
        switch self {
        case .u8, .i8: 1
        case .u16, .i16: 2
        case .u32, .i32, .f32: 4
        case .u64, .i64, .f64: 8
        case .bytes(let n): n
        }
    }

    /// Where values are looked for: multiples of their width (1 for byte strings).
    public var alignment: Int {
        if case .bytes = self { return 1 }
        return width
    }

    /// The option name (`u32`…; `bytesN` for a byte string).
    public var name: String {
        switch self {
        case .u8: "u8"
        case .u16: "u16"
        case .u32: "u32"
        case .u64: "u64"
        case .i8: "i8"
        case .i16: "i16"
        case .i32: "i32"
        case .i64: "i64"
        case .f32: "f32"
        case .f64: "f64"
        case .bytes(let n): "bytes\(n)"
        }
    }

    /// Whether values are floats (compared within a tolerance).
    public var isFloat: Bool { self == .f32 || self == .f64 }
    /// Whether values are signed integers.
    public var isSigned: Bool { [.i8, .i16, .i32, .i64].contains(self) }

    /// The code the state file stores (README.md, "scan").
    public var code: UInt8 {
        switch self {
        case .bytes: 0
        default: UInt8(Self.numeric.firstIndex(of: self)! + 1)
        }
    }

    /// The type a state file stores as `code` with values `width` bytes wide; nil when they do not fit.
    public init?(code: UInt8, width: Int) {
        if code == 0 {
            guard width > 0 else { return nil }
            self = .bytes(width)
        } else if Int(code) <= Self.numeric.count, Self.numeric[Int(code) - 1].width == width {
            self = Self.numeric[Int(code) - 1]
        } else {
            return nil
        }
    }

    /// The value in `raw` (little-endian, `width` bytes) as a number to compare: the
    /// integer, sign-extended for signed types, or the float.
    @inline(__always)
    func number(_ raw: UInt64) -> ScanNumber {
        switch self {
        case .u8, .u16, .u32, .u64: .unsigned(raw)
        case .i8: .signed(Int64(Int8(truncatingIfNeeded: raw)))
        case .i16: .signed(Int64(Int16(truncatingIfNeeded: raw)))
        case .i32: .signed(Int64(Int32(truncatingIfNeeded: raw)))
        case .i64: .signed(Int64(bitPattern: raw))
        case .f32: .float(Double(Float(bitPattern: UInt32(truncatingIfNeeded: raw))))
        case .f64: .float(Double(bitPattern: raw))
        case .bytes: .unsigned(raw)
        }
    }

    /// The value as text: decimal, or a float.
    public func text(_ raw: UInt64) -> String {
        switch number(raw) {
        case .unsigned(let u): String(u)
        case .signed(let s): String(s)
        case .float(let d): self == .f32 ? String(Float(d)) : String(d)
        }
    }

    /// The bits of a value of this width.
    var mask: UInt64 { width >= 8 ? .max : (UInt64(1) << UInt64(width * 8)) - 1 }
}

/// A value as compared: integers exactly, floats within a tolerance.
enum ScanNumber {
    case unsigned(UInt64), signed(Int64), float(Double)
}

/// What a narrowing scan keeps: a candidate whose new value (and old one, for the
/// comparisons over time) satisfies this. Operands are raw values of the scan's type.
public enum ScanFilter: Hashable, Sendable {
    /// `--eq`: the value equals this one.
    case equal(UInt64)
    /// `--ne`: the value differs from this one.
    case notEqual(UInt64)
    /// `--gt`: the value is greater than this one.
    case greater(UInt64)
    /// `--lt`: the value is less than this one.
    case less(UInt64)
    /// `--changed`: the value differs from the one before.
    case changed
    /// `--unchanged`: the value equals the one before.
    case unchanged
    /// `--increased`: the value is greater than the one before.
    case increased
    /// `--decreased`: the value is less than the one before.
    case decreased
    /// `--increased-by D`: the value is the one before plus this much.
    case increasedBy(UInt64)
    /// `--decreased-by D`: the value is the one before less this much.
    case decreasedBy(UInt64)

    /// Whether it compares with the value before (and so works after a snapshot).
    public var comparesOverTime: Bool {
        switch self {
        case .equal, .notEqual, .greater, .less: false
        default: true
        }
    }

    /// Whether a byte-string scan can use it (the comparisons of order need numbers).
    public var appliesToBytes: Bool {
        switch self {
        case .equal, .notEqual, .changed, .unchanged: true
        default: false
        }
    }

    /// Whether a candidate of `type` whose value went from `old` to `new` is kept. Floats
    /// are equal within `tolerance` (absolute); integers exactly, and `--increased-by`
    /// wraps at the type's width.
    @inline(__always)
    public func keeps(old: UInt64, new: UInt64, type: ScanType, tolerance: Double = 0) -> Bool {
        switch self {
        case .changed: return !same(old, new, type, tolerance)
        case .unchanged: return same(old, new, type, tolerance)
        case .equal(let v): return same(new, v, type, tolerance)
        case .notEqual(let v): return !same(new, v, type, tolerance)
        case .greater(let v): return order(new, v, type, tolerance) > 0
        case .less(let v): return order(new, v, type, tolerance) < 0
        case .increased: return order(new, old, type, tolerance) > 0
        case .decreased: return order(new, old, type, tolerance) < 0
        case .increasedBy(let d): return step(old, d, type, tolerance, up: true, new)
        case .decreasedBy(let d): return step(old, d, type, tolerance, up: false, new)
        }
    }

    @inline(__always)
    private func same(_ a: UInt64, _ b: UInt64, _ type: ScanType, _ tolerance: Double) -> Bool {
        guard type.isFloat else { return a == b }
        return order(a, b, type, tolerance) == 0
    }

    /// -1, 0 or 1 as `a` is less than, equal to (floats: within the tolerance) or more than `b`.
    @inline(__always)
    private func order(_ a: UInt64, _ b: UInt64, _ type: ScanType, _ tolerance: Double) -> Int {
        switch (type.number(a), type.number(b)) {
        case (.unsigned(let x), .unsigned(let y)): return x < y ? -1 : x == y ? 0 : 1
        case (.signed(let x), .signed(let y)): return x < y ? -1 : x == y ? 0 : 1
        case (.float(let x), .float(let y)):
            // NaN is never equal, less or more.
            guard !x.isNaN, !y.isNaN else { return 2 }
            return abs(x - y) <= tolerance ? 0 : x < y ? -1 : 1
        default: return 2
        }
    }

    /// Whether `new` is `old` moved by `delta` (up or down).
    @inline(__always)
    private func step(
        _ old: UInt64, _ delta: UInt64, _ type: ScanType, _ tolerance: Double, up: Bool, _ new: UInt64
    ) -> Bool {
        switch (type.number(old), type.number(delta), type.number(new)) {
        case (.float(let o), .float(let d), .float(let n)):
            return abs((up ? o + d : o - d) - n) <= tolerance
        default:
            return (up ? old &+ delta : old &- delta) & type.mask == new & type.mask
        }
    }
}
