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
