import Foundation
import Testing

@testable import VmIO

// `Locked`, the project's one lock: updates under it are never lost, and under
// ThreadSanitizer (scripts/sanitize thread) a handover between threads that wait for each
// other is ordered, where the standard library's `Mutex` waits in a futex call that
// ThreadSanitizer does not see and was reported as a data race (CI, `ChunkChannel`).

@Suite("Locked")
struct LockedTests {
    /// Plain stored fields, so that ThreadSanitizer checks every access to them.
    private struct Tally {
        var arrived = 0
        var count = 0
        var lastWriter = -1
        var handovers = 0
        var reported = 0
    }

    @Test("threads that contend for the lock lose no update")
    func contendedUpdatesAreNotLost() {
        let (threads, wanted) = (4, 1_000)
        let tally = Locked(Tally())
        let done = DispatchSemaphore(value: 0)
        for thread in 0..<threads {
            Thread {
                tally.withLock { $0.arrived += 1 }
                while tally.withLock({ $0.arrived }) < threads {}
                // Until the lock has gone from thread to thread `wanted` times (or 10 s).
                let deadline = ContinuousClock.now + .seconds(10)
                var mine = 0
                var enough = false
                while !enough && ContinuousClock.now < deadline {
                    enough = tally.withLock { tally in
                        if tally.lastWriter != thread { tally.handovers += 1 }
                        tally.count += 1
                        tally.lastWriter = thread
                        return tally.handovers >= wanted
                    }
                    mine += 1
                }
                tally.withLock { $0.reported += mine }
                done.signal()
            }.start()
        }
        for _ in 0..<threads { done.wait() }
        let final = tally.withLock { $0 }
        #expect(final.handovers >= wanted, "the threads did contend")
        #expect(final.count == final.reported)
    }

    @Test("a body's typed error passes through, and the lock is free afterwards")
    func errorsPassThroughAndReleaseTheLock() {
        struct Refused: Error, Equatable {}
        let value = Locked(1)
        #expect(throws: Refused()) {
            try value.withLock { (v: inout Int) throws(Refused) in
                v = 2
                throw Refused()
            }
        }
        #expect(value.withLock { $0 } == 2)
    }
}
