// Addresses told back as `FUNCTION+0xOFF (MODULE+0xOFF)` for `vmio-ptrace symbol`: the
// holder's known function, global and buffers, and, over every mapping of a real process,
// the location text resolving back to the address it describes. Maps and ELF files only:
// nothing attaches, so it runs in-process.

import Foundation
import Testing
import VmIO
import VmioFixtures
import VmioPtrace
import VmioTestSupport

@Suite struct AddressDescriptionTests {
    @Test func theHoldersFunctionGlobalAndBuffers() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let view = try ProcessMaps.read(pid: holder.pid)
        let symbols = SymbolTable(pid: holder.pid, view: view)
        let exe = try #require(view.firstMapping(named: "vmio-fixture-holder"))

        let code = holder.address("code")
        let atCode = symbols.describe(code)
        #expect(atCode.functionText == "vmio_fixture_answer")
        #expect(atCode.locationText == "vmio-fixture-holder+\((code - exe.start).hex)")
        let inCode = symbols.describe(code + 5)
        #expect(inCode.functionText == "vmio_fixture_answer+0x5")
        #expect(inCode.symbol?.module == exe.path && inCode.mapping?.permissions.execute == true)

        let counter = holder.address("counter")
        #expect(symbols.describe(counter + 3).functionText == "counter+0x3")
        #expect(symbols.describe(counter).locationText == "vmio-fixture-holder+\((counter - exe.start).hex)")

        let buf = holder.address("buf")
        let inBuf = symbols.describe(buf + 0x100)
        let bufMapping = try #require(view.translate(buf)?.mapping)
        #expect(inBuf.functionText == "??" && inBuf.symbol == nil)
        #expect(inBuf.locationText == "\(bufMapping.start.hex)+\((buf + 0x100 - bufMapping.start).hex)")

        let hole = symbols.describe(holder.address("edge") + 4096)
        #expect(hole.mapping == nil && hole.functionText == "??" && hole.locationText == "?")

        let stack = try #require(view.firstMapping(named: "[stack]"))
        #expect(symbols.describe(stack.start + 0x10).locationText == "[stack]+0x10")
    }

    /// For every mapping of the holder (its executable, libc, ld.so, heap, stack, vdso,
    /// anonymous memory): the first, a middle and the last byte's location text is an
    /// address expression that resolves to that byte, and a symbol found holds it.
    @Test func everyLocationResolvesBack() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let target = try Target(pid: holder.pid)
        let symbols = target.symbols
        var checked = 0
        for m in target.view.mappings {
            for address in [m.start, m.start + m.range.count / 2, m.end - 1] {
                let d = symbols.describe(address)
                #expect(d.mapping == m)
                let back = try target.resolve(AddressExpression(parsing: d.locationText))
                #expect(back == address, "\(d.locationText) for \(address.hex) in \(m)")
                // A symbol in an anonymous mapping is a file's `.bss` past its pages: the file's
                // mapping is the one right before.
                let file = m.path.isEmpty ? target.view.mappings.last { $0.end == m.start }?.path : m.path
                if let s = d.symbol { #expect(s.address + s.offset == address && s.module == file, "\(s) in \(m)") }
                checked += 1
            }
        }
        #expect(checked >= 30)
        let getpid = try symbols.address(of: "getpid", in: "libc.so.6")
        let inLibc = symbols.describe(getpid + 1)
        #expect(inLibc.symbol?.address == getpid && inLibc.symbol?.offset == 1, "\(inLibc)")
        #expect(inLibc.locationText.hasPrefix("libc.so.6+0x"))
    }
}
