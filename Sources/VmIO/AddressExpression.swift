/// An address as a user writes it: `0x7f00…`, `4096`, `[heap]+0x10`, `[stack]`,
/// `libc.so.6+0x1234` (the first mapping of that file; a name that denotes several
/// separate regions is refused, see ``MemView/regionStart(named:)``), `sym:NAME`, `sym:FILE:NAME`,
/// each optionally followed by `+N` / `-N` offsets: hex or decimal, with an optional `K`,
/// `M` or `G` suffix (``parseLength(_:)``), spaces allowed around the sign (`[heap] + 1K`).
public struct AddressExpression: Hashable, Sendable, CustomStringConvertible {
    /// What an expression starts from, before its offsets are added.
    public enum Base: Hashable, Sendable {
        /// A numeric address (`0x7f00…`, `4096`).
        case absolute(Address)
        /// A mapping by name: `[heap]`, `[stack]`, `[anon:NAME]`, a file's basename or full path.
        case region(String)
        /// A symbol, optionally qualified by the file that defines it.
        case symbol(name: String, file: String?)
    }

    /// The starting point: a number, a region's name, a symbol.
    public let base: Base
    /// Signed offsets, applied left to right with overflow checks.
    public let offsets: [(negative: Bool, amount: UInt64)]
    /// The expression as written, which identifies it (two expressions are equal when their texts are).
    public let text: String

    /// Equal when written the same.
    public static func == (a: Self, b: Self) -> Bool { a.text == b.text }
    /// Hashes the text as written.
    public func hash(into hasher: inout Hasher) { hasher.combine(text) }
    public var description: String { text }

    /// Parses `text`; throws ``VmIoError/badAddress(_:reason:)`` for malformed input.
    public init(parsing text: String) throws(VmIoError) {
        self.text = text
        // A plain number, the common case (a session hands every address over as one).
        if let value = parseNumber(Substring(text)) {
            (base, offsets) = (.absolute(value), [])
            return
        }
        let trimmed = text.trimmingSpaces()
        guard !trimmed.isEmpty else { throw .badAddress(text, reason: .empty) }
        var rest = Substring(trimmed)
        var offsets: [(Bool, UInt64)] = []
        // Peel `+N`/`-N` suffixes from the right, so names holding '+' or '-' survive
        // (`libstdc++.so.6+0x10`, `ld-linux-x86-64.so.2+0x10`). An offset is a length
        // (`100M`), and spaces may stand around the sign (`[heap] + 0x10`).
        while let sign = rest.lastIndex(where: { $0 == "+" || $0 == "-" }), sign != rest.startIndex,
            let amount = parseLength(String(rest[rest.index(after: sign)...]))
        {
            offsets.insert((rest[sign] == "-", amount), at: 0)
            rest = rest[..<sign]
            while rest.last?.isWhitespace == true { rest = rest.dropLast() }
        }
        let baseText = String(rest)
        if baseText.hasPrefix("sym:") {
            let spec = baseText.dropFirst(4)
            guard !spec.isEmpty else { throw .badAddress(text, reason: .symbolNameMissing) }
            if let colon = spec.lastIndex(of: ":") {
                let file = String(spec[..<colon]), name = String(spec[spec.index(after: colon)...])
                guard !file.isEmpty, !name.isEmpty else { throw .badAddress(text, reason: .symbolFileOrNameMissing) }
                base = .symbol(name: name, file: file)
            } else {
                base = .symbol(name: String(spec), file: nil)
            }
        } else if let value = parseNumber(rest) {
            base = .absolute(value)
        } else if baseText.first?.isNumber == true && !baseText.contains(".") {
            throw .badAddress(text, reason: .notANumber(baseText))
        } else {
            base = .region(baseText)
        }
        self.offsets = offsets
    }

    /// Resolves against a view (regions) and a symbol lookup; checks every step for overflow.
    ///
    /// Throws ``VmIoError/unknownRegion(_:)`` or ``VmIoError/ambiguousRegion(_:candidates:)`` for a
    /// region name, ``VmIoError/unknownSymbol(_:reason:)`` for `sym:` without `symbols` (or what
    /// `symbols` throws), ``VmIoError/badAddress(_:reason:)`` for an offset below zero, and
    /// ``VmIoError/addressOverflow(base:length:)`` for one past 64 bits.
    public func resolve(
        in view: MemView, symbols: ((String, String?) throws(VmIoError) -> Address)? = nil
    ) throws(VmIoError) -> Address {
        var value: Address
        switch base {
        case .absolute(let a): value = a
        case .region(let name):
            value = try view.regionStart(named: name)
        case .symbol(let name, let file):
            guard let symbols else { throw .unknownSymbol(name, reason: "no symbol tables loaded") }
            value = try symbols(name, file)
        }
        for (negative, amount) in offsets {
            if negative {
                let (r, o) = value.subtractingReportingOverflow(amount)
                guard !o else { throw .badAddress(text, reason: .belowZero(value: value, offset: amount)) }
                value = r
            } else {
                value = try value.adding(amount)
            }
        }
        return value
    }
}

/// Parses `0x…` hex or decimal, with `_` separators allowed; nil when malformed or too large.
/// (Byte by byte: a session parses a number or two a command.)
public func parseNumber(_ text: Substring) -> UInt64? {
    let utf8 = text.utf8
    return utf8.withContiguousStorageIfAvailable { parseNumber(bytes: $0[...]) }
        ?? Array(utf8).withUnsafeBufferPointer { parseNumber(bytes: $0[...]) }
}

/// ``parseNumber(_:)`` of UTF-8 bytes: underscores skipped wherever they stand (`_0x10` is
/// 16), then `0x` hex or decimal digits.
func parseNumber(bytes: Slice<UnsafeBufferPointer<UInt8>>) -> UInt64? {
    let underscore = UInt8(ascii: "_")
    var i = bytes.startIndex
    let end = bytes.endIndex
    /// The first byte at or after `j` that is not an underscore.
    func skipping(_ j: Int) -> Int {
        var j = j
        while j < end && bytes[j] == underscore { j += 1 }
        return j
    }
    var radix: UInt64 = 10
    let first = skipping(i)
    if first < end, bytes[first] == UInt8(ascii: "0") {
        let second = skipping(first + 1)
        if second < end, bytes[second] | 0x20 == UInt8(ascii: "x") {
            radix = 16
            i = second + 1
        }
    }
    var value: UInt64 = 0
    var digits = 0
    while i < end {
        let byte = bytes[i]
        i += 1
        if byte == underscore { continue }
        let digit: UInt64
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt64(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f") where radix == 16: digit = UInt64(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F") where radix == 16: digit = UInt64(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
        let (shifted, overflow) = value.multipliedReportingOverflow(by: radix)
        let (sum, carry) = shifted.addingReportingOverflow(digit)
        guard !overflow, !carry else { return nil }
        value = sum
        digits += 1
    }
    return digits > 0 ? value : nil
}

/// Parses a length: a number as ``parseNumber(_:)``, optionally with a `K`, `M` or `G`
/// (KiB, MiB, GiB) suffix; nil when malformed or when it does not fit in 64 bits.
/// (ASCII text byte by byte, with no String made; other text the general way.)
public func parseLength(_ text: String) -> UInt64? {
    let utf8 = text.utf8
    let answer = utf8.withContiguousStorageIfAvailable { parseLength(ascii: $0) }
    guard let answer else { return parseLengthGeneral(text) }
    return answer ?? parseLengthGeneral(text)
}

/// ``parseLength(_:)`` of ASCII bytes: `.some(value)` (nil when malformed), or nil when a
/// byte is not ASCII, which the general path answers (its Characters compare by Unicode).
func parseLength(ascii bytes: UnsafeBufferPointer<UInt8>) -> UInt64?? {
    var start = 0, end = bytes.count
    for byte in bytes where byte >= 0x80 { return nil }
    /// ASCII whitespace, as `Character.isWhitespace` has it: space, tab to carriage return.
    func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0d).contains(byte) }
    while start < end && isSpace(bytes[start]) { start += 1 }
    while end > start && isSpace(bytes[end - 1]) { end -= 1 }
    var scale: UInt64 = 1
    if end > start {
        let last = bytes[end - 1]
        let hexPrefix =
            end - start >= 2 && bytes[start] == UInt8(ascii: "0") && bytes[start + 1] == UInt8(ascii: "x")
        let lastIsHexDigit =
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(last)
            || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(last | 0x20)
        if !hexPrefix || !lastIsHexDigit {
            switch last | 0x20 {
            case UInt8(ascii: "k"): scale = 1 << 10
            case UInt8(ascii: "m"): scale = 1 << 20
            case UInt8(ascii: "g"): scale = 1 << 30
            default: break
            }
            if scale > 1 { end -= 1 }
        }
    }
    guard let n = parseNumber(bytes: bytes[start..<end]) else { return .some(nil) }
    let (r, o) = n.multipliedReportingOverflow(by: scale)
    return .some(o ? nil : r)
}

/// ``parseLength(_:)`` the general way, on Characters: any text (the byte path's reference).
func parseLengthGeneral(_ text: String) -> UInt64? {
    var s = Substring(text.trimmingSpaces())
    var scale: UInt64 = 1
    if let last = s.last, !s.hasPrefix("0x") || !last.isHexDigit {
        switch last {
        case "K", "k": scale = 1 << 10
        case "M", "m": scale = 1 << 20
        case "G", "g": scale = 1 << 30
        default: break
        }
        if scale > 1 { s = s.dropLast() }
    }
    guard let n = parseNumber(s) else { return nil }
    let (r, o) = n.multipliedReportingOverflow(by: scale)
    return o ? nil : r
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return String(s)
    }
}
