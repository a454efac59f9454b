import PropertyBased
import Testing

@testable import VmIO

// `parseNumber` reads bytes (a session parses a number or two a command); these check it
// against the plain definition it replaced: underscores dropped, then `0x` hex or decimal,
// digits only, nil past 64 bits.

/// The definition `parseNumber` must agree with, written the obvious way.
private func referenceNumber(_ text: Substring) -> UInt64? {
    var s = text.filter { $0 != "_" }[...]
    var radix = 10
    if s.hasPrefix("0x") || s.hasPrefix("0X") {
        s = s.dropFirst(2)
        radix = 16
    }
    guard !s.isEmpty, s.allSatisfy({ $0.isASCII && (radix == 16 ? $0.isHexDigit : $0.isNumber) }) else { return nil }
    return UInt64(s, radix: radix)
}

@Suite("parseNumber")
struct ParseNumberTests {
    /// Words of the characters numbers are made of, and a few that break them.
    static let alphabet: [Character] = Array("0123456789abcdefABCDEFxX_ -+gz٣é")

    @Test("agrees with the reference on words of number characters")
    func agreesWithReference() async {
        let word = Gen.int(in: 0...(Self.alphabet.count - 1)).array(of: 0...20)
        await propertyCheck(count: 2000, input: word, Gen.bool) { indices, hexPrefix in
            let text = (hexPrefix ? "0x" : "") + String(indices.map { Self.alphabet[$0] })
            #expect(parseNumber(text[...]) == referenceNumber(text[...]), "\(text)")
        }
    }

    @Test("every UInt64 round-trips in decimal and hex, and one more overflows")
    func roundTripsAndOverflows() async {
        await propertyCheck(count: 1000, input: Gen.uint64()) { n in
            #expect(parseNumber(Substring(String(n))) == n)
            #expect(parseNumber(Substring("0x" + String(n, radix: 16))) == n)
            #expect(parseNumber(Substring("0X" + String(n, radix: 16, uppercase: true))) == n)
        }
        #expect(parseNumber("18446744073709551616") == nil)
        #expect(parseNumber("0x1_0000_0000_0000_0000") == nil)
        #expect(parseNumber("0x_ff") == 0xff && parseNumber("_0x10") == 16 && parseNumber("0x") == nil)
    }
}

// `parseLength` reads ASCII text byte by byte, with no String made, and any other text the
// general way (`parseLengthGeneral`, on Characters): the two must agree on every text.

@Suite("parseLength")
struct ParseLengthTests {
    /// What lengths are made of, the suffixes in both cases, whitespace that is trimmed and
    /// some that is not, and characters that are not ASCII (one equals "K": the Kelvin sign).
    static let alphabet: [String] = [
        "0", "1", "7", "9", "a", "f", "A", "F", "b", "B", "x", "X", "_", "k", "K", "m", "M", "g", "G", "z", " ",
        "\t", "\n", "\r", "\r\n", "\u{0B}", "\u{1C}", "\u{85}", "\u{A0}", "\u{212A}", "٣", "é", "\u{301}", "+", "-",
        ".",
    ]

    @Test("the byte path agrees with the general path on words of length characters")
    func bytePathAgreesWithGeneralPath() async {
        let word = Gen.int(in: 0...(Self.alphabet.count - 1)).array(of: 0...14)
        await propertyCheck(count: 3000, input: word, Gen.int(in: 0...3)) { indices, prefix in
            let text = ["", "0x", "0X", " 0x"][prefix] + indices.map { Self.alphabet[$0] }.joined()
            #expect(parseLength(text) == parseLengthGeneral(text), "\(text.debugDescription)")
        }
    }

    @Test("lengths as written, and what is refused, both ways")
    func examples() {
        let cases: [(String, UInt64?)] = [
            ("8", 8), ("0x10", 16), ("4K", 4096), ("4k", 4096), ("1M", 1 << 20), ("2G", 2 << 30), ("0x1K", 1024),
            ("0x1b", 0x1b), ("0X1B", 0x1b), ("0x1G", 1 << 30), (" 16 ", 16), ("\t1_000\n", 1000), ("", nil),
            ("K", nil), ("0x", nil), ("16K ", 16384), ("8 K", nil), ("16EB", nil), ("-1", nil),
            ("17179869184G", nil), ("16777215G", 16_777_215 << 30), ("1\u{212A}", 1024), ("٣", nil),
        ]
        for (text, expected) in cases {
            #expect(parseLength(text) == expected, "\(text.debugDescription)")
            #expect(parseLengthGeneral(text) == expected, "\(text.debugDescription)")
        }
    }
}
