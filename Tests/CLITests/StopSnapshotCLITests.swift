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
        try Self.stoppedRuns { run in
            let result = try Tool.run("search", churn.pidArg, "--string", "no such bytes 5e1f", "--stop", "--json")
            guard !Self.readWithoutTheStop(result) else { return false }
            #expect(result.exited(0), "run \(run): \(result)")
            let unreadable = result.json?["unreadable"] as? Int
            #expect(unreadable == 0, "run \(run): \(unreadable.map(String.init) ?? "?") unreadable bytes: \(result)")
            #expect(waitUntil(timeout: 10) { isFreeRunning(churn.pid) }, "run \(run): the target runs on")
            return true
        }
    }

    @Test func dumpWithStopHasNoHoles() throws {
        let churn = try Fixtures.launch(.mappingChurn)
        defer { churn.terminate() }
        let dir = TempDir()
        try Self.stoppedRuns { run in
            let result = try Tool.run("dump", churn.pidArg, "-o", dir.sub("d\(run)"), "--stop", "--json")
            guard !Self.readWithoutTheStop(result) else { return false }
            #expect(result.exited(0), "run \(run): \(result)")
            #expect(result.json?["complete"] as? Bool == true, "run \(run): \(result)")
            #expect((result.json?["holes"] as? [Any])?.isEmpty == true, "run \(run): \(result)")
            return true
        }
    }

    /// Whether a thread of the target did not stop within the attach timeout, so the tool
    /// read without the stop, as documented (README.md, "Bounded waits"): a loaded
    /// machine can hold a thread of the churn in uninterruptible sleep that long.
    static func readWithoutTheStop(_ result: RunResult) -> Bool {
        result.stderr.contains("did not stop within the attach timeout")
    }

    /// Calls `run` until it has run `runs` times with the target stopped (it answers false
    /// for a run without the stop), with at most as many runs again without.
    static func stoppedRuns(_ run: (Int) throws -> Bool) throws {
        var stopped = 0
        var unstopped = 0
        while stopped < runs && unstopped < runs {
            if try run(stopped + unstopped + 1) { stopped += 1 } else { unstopped += 1 }
        }
        if unstopped > 0 {
            print("stop snapshot: \(unstopped) runs read without the stop (a thread did not stop in time)")
        }
        #expect(stopped == runs, "\(unstopped) runs could not stop the target")
    }
}
