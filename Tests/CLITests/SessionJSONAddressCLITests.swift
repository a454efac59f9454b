// Issue 12, "Friction to remove": a session's JSON `let` value for an address is a `0x…`
// string, as every address in the tool's JSON is ("Addresses are `0x…` strings; sizes and
// counts are numbers"); integers that are no address stay numbers.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct SessionJSONAddressCLITests {
    @Test func letShowsAnAddressAsAHexString() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let script = try SessionScript([
            #"let m = search --string "VMIO-MARKER-0001" --region anon"#,
            "let later = $m + 0x100",
            "let a = \(hx(buf))",
            "let b = sym:counter + 8",
            "let size = $later - $m",
            "let n = 7",
            "let v = read $m+0x100 8 --format u64",
            "let copy = $m",
        ])
        let result = try Tool.run("session", holder.pidArg, script.path, "--json")
        #expect(result.exited(0), "\(result)")
        var values: [String: Any] = [:]
        for object in jsonLines(result) {
            guard let assigned = object["result"] as? [String: Any], let name = assigned["name"] as? String else {
                continue
            }
            values[name] = assigned["value"]
        }
        #expect(values["m"] as? String == hx(buf + 0x100), "a search hit: \(values)")
        #expect(values["later"] as? String == hx(buf + 0x200), "an address plus an offset: \(values)")
        #expect(values["b"] as? String == hx(holder.address("counter") + 8), "an address form: \(values)")
        #expect(values["copy"] as? String == hx(buf + 0x100), "a variable holding an address: \(values)")
        // A literal number, a difference of addresses, a u64 read: numbers.
        #expect((values["a"] as? NSNumber)?.uint64Value == buf, "\(values)")
        #expect((values["size"] as? NSNumber)?.intValue == 0x100, "\(values)")
        #expect((values["n"] as? NSNumber)?.intValue == 7, "\(values)")
        #expect((values["v"] as? NSNumber)?.uint64Value == 0x1122_3344_5566_7788, "\(values)")
    }
}
