// `--stop` is a consistent snapshot (issue 19, section 3): every command that stops its
// target reads the maps after the stop. On a process whose mappings never stand still
// (the mapping-churn fixture maps, fills and unmaps regions and starts short-lived
// threads, all the time), a view read before the stop lists regions that are gone by the
// time they are read: `search --stop` then skipped them as "unreadable". Read after the
// stop, the view is the stopped process's, and nothing in it is unreadable.

import Foundation
import Testing
import VmioFixtures
import VmioTestSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite(.serialized) struct StopSnapshotCLITests {
    /// Several runs, since each run races the churn once: before the fix most runs
    /// skipped some bytes.
    static let runs = 6

    @Test func searchWithStopReadsTheMapsAfterTheStop() throws {
        let churn = try Fixtures.launch(.mappingChurn)
        defer { churn.terminate() }
        for run in 1...Self.runs {
            let result = try Tool.run("search", churn.pidArg, "--string", "no such bytes 5e1f", "--stop", "--json")
            #expect(result.exited(0), "run \(run): \(result)")
            let unreadable = result.json?["unreadable"] as? Int
            #expect(unreadable == 0, "run \(run): \(unreadable.map(String.init) ?? "?") unreadable bytes: \(result)")
            #expect(waitUntil { isFreeRunning(churn.pid) }, "run \(run): the target runs on")
        }
    }

    @Test func dumpWithStopHasNoHoles() throws {
        let churn = try Fixtures.launch(.mappingChurn)
        defer { churn.terminate() }
        let dir = TempDir()
        for run in 1...Self.runs {
            let result = try Tool.run("dump", churn.pidArg, "-o", dir.sub("d\(run)"), "--stop", "--json")
            #expect(result.exited(0), "run \(run): \(result)")
            #expect(result.json?["complete"] as? Bool == true, "run \(run): \(result)")
            #expect((result.json?["holes"] as? [Any])?.isEmpty == true, "run \(run): \(result)")
        }
    }
}
