// `vmio-ptrace copy` with an address outside the mappings, or a range that runs out of
// them, says which side of the copy (source or destination) and which pid.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

@Suite struct CopySideCLITests {
    @Test func unmappedStartSaysWhichSide() throws {
        let a = try Fixtures.launch(.holder), b = try Fixtures.launch(.holder)
        let bBuf = b.address("buf")
        let source = try Tool.run("copy", "\(a.pid):0x10", "\(b.pid):\(hx(bBuf))", "16")
        #expect(source.exited(1), "\(source)")
        #expect(source.stderr.contains("source address 0x10 is in no mapping of pid \(a.pid)"), "\(source.stderr)")
        let destination = try Tool.run("copy", "\(a.pid):\(hx(a.address("buf")))", "\(b.pid):0x10", "16")
        #expect(destination.exited(1), "\(destination)")
        #expect(
            destination.stderr.contains("destination address 0x10 is in no mapping of pid \(b.pid)"),
            "\(destination.stderr)")
        #expect(try b.get(bBuf, 16) == (0..<16).map(holderPattern))
    }

    /// A destination range that runs past the end of `edge` into the unmapped pages after it:
    /// refused before anything is written, naming the destination and where it leaves.
    @Test func destinationRangeLeavingTheMappings() throws {
        let a = try Fixtures.launch(.holder), b = try Fixtures.launch(.holder)
        let to = b.address("edge") + 4088
        let result = try Tool.run("copy", "\(a.pid):\(hx(a.address("buf")))", "\(b.pid):\(hx(to))", "16")
        #expect(result.exited(1), "\(result)")
        let end = hx(b.address("edge") + 4096)
        #expect(
            result.stderr.contains(
                "destination range \(hx(to))+16 leaves the mappings of pid \(b.pid): \(end) is in no mapping"),
            "\(result.stderr)")
        #expect(try b.get(to, 8) == [UInt8](repeating: 0xab, count: 8), "nothing written")
    }

    /// A source range that runs into a hole: a partial copy whose message names the source.
    @Test func sourceFaultNamesTheSource() throws {
        let a = try Fixtures.launch(.holder), b = try Fixtures.launch(.holder)
        let from = a.address("edge") + 4088
        let result = try Tool.run("copy", "\(a.pid):\(hx(from))", "\(b.pid):\(hx(b.address("buf")))", "16")
        #expect(result.exited(2), "\(result)")
        #expect(
            result.stderr.contains(
                "first faulting address \(hx(a.address("edge") + 4096)) (in the source, pid \(a.pid))"),
            "\(result.stderr)")
    }

    /// A destination page the target cannot write (the guard page) is refused before anything
    /// moves, as `write` refuses it, naming the destination's pid (issue 12, bug 12; this was a
    /// partial copy, exit 2). A destination that faults (with --force, the truncated fixture's
    /// pages past the end of its file): the fault names the destination.
    @Test func destinationFaultNamesTheDestination() throws {
        let a = try Fixtures.launch(.holder), b = try Fixtures.launch(.holder)
        let to = b.address("guard")
        let result = try Tool.run("copy", "\(a.pid):\(hx(a.address("buf")))", "\(b.pid):\(hx(to))", "16")
        #expect(result.exited(3), "\(result)")
        #expect(result.stderr.contains("permission denied to write pid \(b.pid): \(hx(to))"), "\(result.stderr)")

        let t = try Fixtures.launch(.truncated)
        defer { t.terminate() }
        let past = t.address("map") + 4096
        let faulted = try Tool.run("copy", "\(a.pid):\(hx(a.address("buf")))", "\(t.pid):\(hx(past))", "16", "--force")
        #expect(faulted.exited(2), "\(faulted)")
        #expect(
            faulted.stderr.contains("first faulting address \(hx(past)) (in the destination, pid \(t.pid))"),
            "\(faulted.stderr)")
    }
}
