import PropertyBased
import Testing

@testable import VmIO

// Address expressions as users write them: a base (number, mapping name, symbol), then
// `+N` / `-N` offsets that may carry a K/M/G suffix and spaces around the sign. The
// property: any such text resolves to the overflow-checked sum of its parts, or throws
// exactly when a step overflows.

@Suite("Address expressions")
struct AddressExpressionTests {
    static let heap: Address = 0x5555_5555_0000
    static let libstdcpp: Address = 0x7f00_0000_0000
    static let ld: Address = 0x7f00_1000_0000
    static let view: MemView = {
        func m(_ start: Address, _ path: String) -> Mapping {
            Mapping(range: try! AddressRange(start: start, count: 0x1000), permissions: .readWrite, path: path)
        }
        return try! MemView(mappings: [
            m(heap, "[heap]"), m(libstdcpp, "/usr/lib/libstdc++.so.6"), m(ld, "/usr/lib/ld-linux-x86-64.so.2"),
        ])
    }()

    static func resolve(_ text: String) throws -> Address {
        try AddressExpression(parsing: text).resolve(in: view) { name, _ throws(VmIoError) in
            guard name == "counter" else { throw .unknownSymbol(name, reason: "not in the test table") }
            return 0x4000
        }
    }

    @Test func spacesAroundSigns() throws {
        #expect(try Self.resolve("[heap] + 0x10") == Self.heap + 0x10)
        #expect(try Self.resolve(" [heap]+ 16 ") == Self.heap + 16)
        #expect(try Self.resolve("[heap] +0x10 - 4") == Self.heap + 12)
        #expect(try Self.resolve("libstdc++.so.6 + 0x20") == Self.libstdcpp + 0x20)
        #expect(try Self.resolve("ld-linux-x86-64.so.2 - 0x10") == Self.ld - 0x10)
        #expect(try Self.resolve("0x1000 + 0x10") == 0x1010)
        #expect(try Self.resolve("sym:counter + 8") == 0x4008)
    }

    @Test func sizeSuffixes() throws {
        #expect(try Self.resolve("0x10000000+100M") == 0x1000_0000 + 100 << 20)
        #expect(try Self.resolve("[heap]+4K") == Self.heap + 4096)
        #expect(try Self.resolve("[heap] + 1k") == Self.heap + 1024)
        #expect(try Self.resolve("0x7f0000000000 - 1G") == 0x7f00_0000_0000 - 1 << 30)
        #expect(try Self.resolve("0x0+0x10M") == 16 << 20, "a hex amount with a suffix")
        #expect(try Self.resolve("[heap]+0xB") == Self.heap + 11, "a trailing hex digit is a digit, not a suffix")
    }

    @Test func malformedAndOverflowingOffsets() {
        #expect(throws: VmIoError.self) { try Self.resolve("0xffffffffffffff00 + 0x200") }
        #expect(throws: VmIoError.self) { try Self.resolve("0x10 - 1K") }
        #expect(throws: VmIoError.self) { try Self.resolve("0x1000 + 17179869184G") }
        #expect(throws: VmIoError.self) { try Self.resolve("0x1000 + -5") }
        #expect(throws: VmIoError.self) { try Self.resolve("[heap] + 1X") }
        #expect(throws: VmIoError.self) { try Self.resolve("[heap] + ") }
    }

    @Test("any base and offsets, in any spacing and notation, resolve to the checked sum or throw")
    func resolvesToTheCheckedSum() async {
        await propertyCheck(count: 600, input: Gen.int(in: 0...Int(Int32.max))) { seed in
            var rng = SplitMix(seed)
            let bases: [(String, Address)] = [
                ("[heap]", Self.heap), ("libstdc++.so.6", Self.libstdcpp), ("ld-linux-x86-64.so.2", Self.ld),
                ("sym:counter", 0x4000), ("0x" + String(Self.heap, radix: 16), Self.heap),
                (String(Self.libstdcpp), Self.libstdcpp), ("0xfffffffffffff000", 0xffff_ffff_ffff_f000),
            ]
            let (baseText, baseValue) = bases[Int(rng.next() % UInt64(bases.count))]
            var text = baseText
            var expected: Address? = baseValue
            for _ in 0..<Int(rng.next() % 5) {
                let negative = rng.next() % 2 == 0
                let (amountText, amount) = Self.randomAmount(&rng)
                let spaces = [("", ""), (" ", " "), (" ", ""), ("", "  ")][Int(rng.next() % 4)]
                text += spaces.0 + (negative ? "-" : "+") + spaces.1 + amountText
                if let e = expected {
                    let (r, o) = negative ? e.subtractingReportingOverflow(amount) : e.addingReportingOverflow(amount)
                    expected = o ? nil : r
                }
            }
            let expression = try AddressExpression(parsing: text)
            if let expected {
                #expect(try Self.resolve(text) == expected, "\(text)")
            } else {
                #expect(throws: VmIoError.self, "\(text) overflows") {
                    try expression.resolve(in: Self.view) { _, _ in 0x4000 }
                }
            }
        }
    }

    /// An amount and how it is written: decimal, hex, or a multiple of K/M/G; now and then
    /// one big enough to overflow.
    static func randomAmount(_ rng: inout SplitMix) -> (String, UInt64) {
        let small = rng.next() % 5000
        switch rng.next() % 6 {
        case 0: return (String(small), small)
        case 1: return ("0x" + String(small, radix: 16), small)
        case 2: return ("\(small)K", small << 10)
        case 3: return ("\(small % 64)\(rng.next() % 2 == 0 ? "M" : "m")", (small % 64) << 20)
        case 4: return ("0x\(String(small % 16, radix: 16))G", (small % 16) << 30)
        default:
            let big = rng.next() | 1 << 63
            return ("0x" + String(big, radix: 16), big)
        }
    }
}
