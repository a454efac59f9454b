// Fuzzes the hex byte parsers: BytePattern(hex:) (search) and parseHexBytes (x"…", --hex).
// Invariants: they throw/return VmIoError.badPattern or give bytes whose hex re-parses
// to the same bytes; a pattern has as many mask entries as bytes and a known byte.
import VmIO
import VmioCommands
import VmioPtrace

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let p = try BytePattern(hex: text)
        check(p.bytes.count == p.mask.count && !p.bytes.isEmpty, "pattern of \(text.debugDescription) is malformed")
        check(p.mask.contains(true), "pattern of \(text.debugDescription) has no known byte")
        let back = zip(p.bytes, p.mask).map { $1 ? hexString([$0]) : "??" }.joined(separator: " ")
        let again = try BytePattern(hex: back)
        check(again.bytes == p.bytes && again.mask == p.mask, "pattern does not round-trip through \(back)")
    } catch {
        guard case .badPattern = error else { fatalError("BytePattern threw \(error)") }
    }
    switch parseHexBytes(text) {
    case .success(let bytes):
        check(!bytes.isEmpty, "parseHexBytes gave no bytes for \(text.debugDescription)")
        guard case .success(let again) = parseHexBytes(hexString(bytes)), again == bytes else {
            fatalError("invariant violated: hex bytes do not round-trip for \(text.debugDescription)")
        }
    case .failure(let error):
        guard case .badPattern = error else { fatalError("parseHexBytes failed with \(error)") }
    }
    return 0
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant violated: " + message()) }
}
