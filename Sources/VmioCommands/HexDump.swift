import VmIO
import VmioPtrace

/// Parses hex bytes: `deadbeef`, `de ad be ef`, `0xdeadbeef`, `de:ad`; nil with the
/// reason when malformed.
public func parseHexBytes(_ text: String) -> Result<[UInt8], VmIoError> {
    var digits = text.filter { !$0.isWhitespace && $0 != ":" && $0 != "_" }
    if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits.removeFirst(2) }
    guard !digits.isEmpty else { return .failure(.badPattern(text, reason: .noHexDigits)) }
    guard digits.count % 2 == 0 else {
        return .failure(.badPattern(text, reason: .oddDigits(digits.count)))
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
            return .failure(.badPattern(text, reason: .notAByte(String(digits[index..<next]))))
        }
        out.append(byte)
        index = next
    }
    return .success(out)
}

/// The longest line ``HexLine`` writes: an address of 16 digits, `: `, 40 columns of
/// bytes, a space, 16 characters and a newline.
let hexLineCapacity = 16 + 2 + 40 + 1 + 16 + 1

/// Writes one xxd-style dump line at `out` and returns its length: the address (at least
/// 12 hex digits), `: `, the bytes in groups of two (blank columns for missing bytes),
/// then the printable text (`.` for the rest), and a newline. At most 16 bytes.
func writeHexLine(address: Address, _ bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) -> Int {
    let digits = hexDigits
    var n = 0
    let width = max(12, (67 - address.leadingZeroBitCount) / 4)
    for i in stride(from: width - 1, through: 0, by: -1) {
        out[n] = digits[Int(truncatingIfNeeded: address >> UInt64(i * 4)) & 15]
        n += 1
    }
    out[n] = 0x3a  // ':'
    out[n + 1] = 0x20
    n += 2
    for i in 0..<16 {
        if i < bytes.count {
            let b = bytes[i]
            out[n] = digits[Int(b >> 4)]
            out[n + 1] = digits[Int(b & 15)]
        } else {
            out[n] = 0x20
            out[n + 1] = 0x20
        }
        n += 2
        if i & 1 == 1 {
            out[n] = 0x20
            n += 1
        }
    }
    out[n] = 0x20
    n += 1
    for b in bytes {
        out[n] = b >= 0x20 && b < 0x7f ? b : 0x2e  // '.'
        n += 1
    }
    out[n] = 0x0a
    return n + 1
}

/// An xxd-style dump line (without its newline): address, 16 bytes in groups of two, then
/// the printable text.
public func hexDumpLine(address: Address, _ bytes: ArraySlice<UInt8>) -> String {
    let line = [UInt8](unsafeUninitializedCapacity: hexLineCapacity) { out, count in
        count = bytes.prefix(16).withUnsafeBytes { writeHexLine(address: address, $0, into: out.baseAddress!) } - 1
    }
    return String(decoding: line, as: UTF8.self)
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

/// Turns streamed chunks into xxd-style lines on a sink, marking holes: a chunk that does
/// not continue the last byte seen follows bytes that could not be read.
public struct HexDumper {
    let sink: OutputSink
    /// Group by the words of this ABI instead of by byte pairs (like `xxd -e`).
    let words: TargetABI?
    private var lineStart: Address = 0
    /// The bytes of the line not yet written (fewer than 16).
    private var pending: [UInt8] = []
    /// The address just past the last byte seen (nil before the first chunk).
    private var next: Address?

    public init(sink: OutputSink, words: TargetABI? = nil) {
        self.sink = sink
        self.words = words
        pending.reserveCapacity(16)
    }

    public mutating func add(_ at: Address, _ chunk: UnsafeRawBufferPointer) throws {
        if let expected = next, at != expected {
            try flush()
            try sink.line("*** \(at - expected) bytes at \(expected.hex) could not be read")
        }
        next = at + UInt64(chunk.count)
        var rest = chunk[...]
        if pending.isEmpty { lineStart = at }
        if !pending.isEmpty {
            let take = min(16 - pending.count, rest.count)
            pending += rest.prefix(take)
            rest = rest.dropFirst(take)
            guard pending.count == 16 else { return }
            try writeLine(lineStart, pending)
            lineStart += 16
            pending.removeAll(keepingCapacity: true)
        }
        while rest.count >= 16 {
            try writeLine(lineStart, UnsafeRawBufferPointer(rebasing: rest.prefix(16)))
            lineStart += 16
            rest = rest.dropFirst(16)
        }
        pending += rest
    }

    private func writeLine(_ address: Address, _ bytes: UnsafeRawBufferPointer) throws {
        if let words {
            try sink.line(wordDumpLine(address: address, ArraySlice(bytes), abi: words))
        } else {
            try sink.append(upTo: hexLineCapacity) { writeHexLine(address: address, bytes, into: $0) }
        }
    }

    private func writeLine(_ address: Address, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { (raw) in try writeLine(address, raw) }
    }

    /// Writes the last partial line.
    public mutating func flush() throws {
        if !pending.isEmpty { try writeLine(lineStart, pending) }
        pending.removeAll(keepingCapacity: true)
    }

    /// Writes the last partial line and marks a hole running to `end` of a range that
    /// started at `start` (skipped faults at the end, or a range with no readable byte).
    public mutating func finish(start: Address, end: Address) throws {
        try flush()
        let expected = next ?? start
        if end > expected { try sink.line("*** \(end - expected) bytes at \(expected.hex) could not be read") }
    }
}
