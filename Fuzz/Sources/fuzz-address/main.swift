// Fuzzes the address forms: AddressExpression, RegionSelector, parseNumber, parseLength.
// Invariants: parsing throws only VmIoError.badAddress; resolving throws a VmIoError
// or gives the base plus the offsets computed with overflow checks; numbers and
// lengths agree with their reference meaning.
import VmIO

/// A small view with the names the expressions can refer to.
let view: MemView = {
    let text = """
        00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/prog
        00651000-00652000 rw-p 00051000 08:02 173521 /usr/bin/prog
        01e00000-01e21000 rw-p 00000000 00:00 0 [heap]
        7f0000000000-7f0000200000 r-xp 00000000 08:02 1000 /lib/libc.so.6
        7f0000400000-7f0000401000 rw-p 00000000 00:00 0 [anon:buf]
        7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0 [stack]
        ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
        """
    return try! MapsParser.parse(text)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)

    do {
        let e = try AddressExpression(parsing: text)
        check(e.text == text, "the expression does not keep its text")
        // Reference value: base, then each offset, with overflow checks; nil on overflow.
        func reference(_ base: UInt64) -> UInt64? {
            var v: UInt64? = base
            for (negative, amount) in e.offsets {
                guard let cur = v else { return nil }
                let (r, o) = negative ? cur.subtractingReportingOverflow(amount) : cur.addingReportingOverflow(amount)
                v = o ? nil : r
            }
            return v
        }
        let symbolBase: UInt64 = 0x7f00_0000_1234
        let symbols: (String, String?) throws(VmIoError) -> Address = { name, _ throws(VmIoError) in
            if name.hasPrefix("missing") { throw .unknownSymbol(name, reason: "fuzz") }
            return symbolBase
        }
        let base: UInt64?
        switch e.base {
        case .absolute(let a): base = a
        case .region(let name): base = try? view.regionStart(named: name)  // nil when unknown or ambiguous
        case .symbol(let name, _): base = name.hasPrefix("missing") ? nil : symbolBase
        }
        do {
            let r = try e.resolve(in: view, symbols: symbols)
            check(
                base != nil && reference(base!) == r,
                "\(text.debugDescription) resolved to \(r), expected \(String(describing: base.flatMap(reference)))")
        } catch {
            check(base == nil || reference(base!) == nil, "\(text.debugDescription) failed to resolve: \(error)")
        }
        _ = try? e.resolve(in: view, symbols: nil)
        _ = try? e.resolve(in: .empty)
    } catch {
        guard case .badAddress = error else { fatalError("AddressExpression threw \(error)") }
    }

    do {
        let sel = try RegionSelector(parsing: text)
        if case .range(let r) = sel { check(r.isWellFormed, "selector range \(r) is not well formed") }
        let picked = RegionSelector.select([sel], in: view)
        for (m, r) in picked {
            check(m.range.clamped(to: r) == r, "selector picked \(r) outside \(m)")
        }
    } catch {
        switch error {
        case .badSelector, .invalidRange: break  // `0x9-0x0` is an inverted range
        default: fatalError("RegionSelector threw \(error)")
        }
    }

    let sub = Substring(text)
    if let n = parseNumber(sub) {
        let digits = sub.filter { $0 != "_" }
        let isHex = digits.hasPrefix("0x") || digits.hasPrefix("0X")
        let body = isHex ? String(digits.dropFirst(2)) : digits
        check(
            !body.isEmpty && body.utf8.allSatisfy { isHex ? isHexDigit($0) : ($0 >= 48 && $0 <= 57) },
            "parseNumber accepted \(text.debugDescription)")
        check(UInt64(body, radix: isHex ? 16 : 10) == n, "parseNumber(\(text.debugDescription)) = \(n)")
    }
    if let n = parseLength(text) {
        _ = n  // no trap on overflow is the property; the value is checked against parseNumber below
        if let plain = parseNumber(Substring(text.trimmingCharacters())) {
            check(plain == n, "parseLength(\(text.debugDescription)) = \(n), parseNumber says \(plain)")
        }
    }
    return 0
}

func isHexDigit(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) }

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s = s.dropFirst() }
        while s.last?.isWhitespace == true { s = s.dropLast() }
        return String(s)
    }
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant violated: " + message()) }
}
