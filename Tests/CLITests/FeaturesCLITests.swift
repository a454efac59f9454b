// Everyday conveniences of issue 12, end to end through the binary: address arithmetic
// with spaces and size suffixes.

import Foundation
import Testing
import VmioTestSupport

@Suite struct FeaturesCLITests {
    @Test func addressArithmeticWithSpacesAndSuffixes() throws {
        let holder = try Fixtures.launch(.holder)
        defer { holder.terminate() }
        let buf = holder.address("buf")
        let spaced = try Tool.run("read", holder.pidArg, "\(hx(buf)) + 0x100", "16", "--format", "str")
        #expect(spaced.exited(0) && spaced.lines == ["VMIO-MARKER-0001"], "\(spaced)")
        let suffixed = try Tool.run("read", holder.pidArg, "\(hx(buf - 4096))+4K + 0x100", "16", "--format", "str")
        #expect(suffixed.exited(0) && suffixed.lines == ["VMIO-MARKER-0001"], "\(suffixed)")
        let name = try Tool.run("read", holder.pidArg, "vmio-fixture-holder + 0", "4", "--format", "hex")
        #expect(name.exited(0) && name.stdoutText.contains("7f45 4c46"), "the ELF magic: \(name)")
        let overflow = try Tool.run("read", holder.pidArg, "0xffffffffffffff00 + 1K", "8")
        #expect(overflow.exited(1) && overflow.stderr.contains("0xffffffffffffff00"), "\(overflow)")
    }
}
