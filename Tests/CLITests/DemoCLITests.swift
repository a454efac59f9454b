// `vmio-ptrace demo` end to end: every step of the tour runs and checks out (exit 0), and
// the two fixture processes it starts are gone when it ends; a missing fixture is bad input.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct DemoCLITests {
    @Test func theTourRunsEveryStepAndLeavesNothingRunning() throws {
        let result = try Tool.run(["demo"], timeout: 180)
        #expect(result.exited(0), "\(result)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        let lines = result.lines
        let headings = lines.filter { $0.hasPrefix("== ") }
        #expect(
            headings == [
                "== 1. Start two fixture processes that hold known buffers",
                "== 2. The maps of A (first lines)",
                "== 3. Read and decode A's buffer",
                "== 4. Write into A, verified through the write-to-read handover",
                "== 5. Copy 4 KiB from A to B",
                "== 6. A read that runs off the end of a mapping stops exactly there",
                "== 7. Patch B's code: refused without --force, done with it",
                "== 8. Stop A for a consistent snapshot; it runs on afterwards",
                "== 9. Done",
            ], "\(headings)")
        #expect(lines.filter { $0.hasPrefix("  ✓ ") }.count >= 12, "\(result.stdoutText)")
        #expect(lines.last == "  ✓ both fixtures have exited; nothing is left running", "\(lines.suffix(3))")
        // Every command it ran ended with the status it expected; none printed an error line.
        #expect(!lines.contains { $0.hasPrefix("  [stderr] vmio-ptrace: demo") }, "\(result.stdoutText)")
        // The two holders it started (named in step 1) no longer exist.
        let pids = lines.compactMap { line -> Int32? in
            guard let r = line.range(of: #"^  holder [AB]: pid \d+"#, options: .regularExpression) else { return nil }
            return Int32(line[r].split(separator: " ").last!)
        }
        #expect(pids.count == 2, "\(lines.prefix(5))")
        for pid in pids {
            #expect(waitUntil { procStatus(pid).isEmpty }, "holder \(pid) still exists: \(procStatus(pid))")
        }
    }

    @Test func aMissingFixtureIsBadInput() throws {
        let missing = try Tool.run("demo", "--fixture", "/nonexistent/vmio-fixture-holder")
        #expect(missing.exited(1), "\(missing)")
        #expect(
            missing.stderrLines == [
                "vmio-ptrace: demo: no fixture at /nonexistent/vmio-fixture-holder; build the package first (swift build)"
            ], "\(missing.stderr)")
        // A program that is not a holder: the tour stops with exit 1 and says why.
        let wrong = try Tool.run(["demo", "--fixture", "/bin/true"], timeout: 60)
        #expect(wrong.exited(1), "\(wrong)")
        #expect(wrong.stderrLines.last?.hasPrefix("vmio-ptrace: demo: ") == true, "\(wrong.stderr)")
        // Another fixture says `ready` too, but has none of the holder's addresses: it crashed.
        let changer = Fixtures.path(of: .changer).path
        let other = try Tool.run(["demo", "--fixture", changer], timeout: 60)
        #expect(other.exited(1), "\(other)")
        #expect(
            other.stderrLines.last?.hasPrefix("vmio-ptrace: demo: \(changer) is not the holder fixture") == true,
            "\(other.stderr)")
    }
}
