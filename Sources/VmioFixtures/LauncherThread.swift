// The one thread every fixture and piped program is started from.

import Foundation

/// Starts programs from one thread that lives as long as the process.
///
/// A fixture sets `PR_SET_PDEATHSIG` (SIGKILL), which the kernel sends when the *thread*
/// that started it ends, not the process. A test runs on a libdispatch worker, which ends
/// after a few idle seconds: a fixture started there was killed while its test still used it.
enum LauncherThread {
    private static let jobs = JobQueue()

    /// Runs `body` on the launcher thread and returns what it returned or threw.
    static func run<T>(_ body: @escaping () throws -> T) throws -> T {
        nonisolated(unsafe) var result: Result<T, any Error>?
        nonisolated(unsafe) let body = body
        let done = DispatchSemaphore(value: 0)
        jobs.add {
            result = Result { try body() }
            done.signal()
        }
        done.wait()
        return try result!.get()
    }

    /// Jobs, run in order by the thread it starts.
    private final class JobQueue: @unchecked Sendable {
        private let lock = NSLock()
        private var waiting: [() -> Void] = []
        private let added = DispatchSemaphore(value: 0)

        init() {
            let thread = Thread { [self] in
                while true {
                    added.wait()
                    lock.lock()
                    let job = waiting.removeFirst()
                    lock.unlock()
                    job()
                }
            }
            thread.name = "vmio-fixture-launcher"
            thread.start()
        }

        func add(_ job: @escaping () -> Void) {
            lock.lock()
            waiting.append(job)
            lock.unlock()
            added.signal()
        }
    }
}
