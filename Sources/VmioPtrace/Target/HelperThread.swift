import Glibc
import Synchronization

/// A second thread that does one half of a piece of work while the calling thread does the
/// other (``both(_:_:)``): a search reads each chunk in two halves at once, one a thread, and
/// matches each half on the thread that read it, so both cores copy out of the target and
/// nothing crosses between their caches but the halves' edges (README.md, "Benchmarks").
///
/// A job is handed over under a pthread mutex (which ThreadSanitizer follows) and announced
/// by a counter: the helper spins on the counter for ``spinLimit`` before it sleeps on the
/// condition, and so does the caller waiting for the job's end, because the next job comes
/// within microseconds and waking a sleeping thread costs more. The thread runs (and holds
/// the helper) until ``stop()``.
final class HelperThread: @unchecked Sendable {
    // Unchecked: `job` and `stopping` are read and written only with `lock` held; what a job
    // touches is the caller's, who waits in `both` until the job is done.
    private var job: (() -> Void)?
    private var stopping = false
    /// Jobs posted and jobs finished, each counted up by one side and read by the other.
    private let posted = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    /// Set by ``rest()``: no job is coming soon, so the helper sleeps at once instead of polling.
    private let resting = Atomic<Bool>(false)
    private var thread: pthread_t?
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    /// How long either side polls its counter before it sleeps on the condition.
    let spinLimit: Duration

    /// A started helper, whose sides poll for `spinLimit` before they sleep (the 200 µs
    /// default suits jobs that come back to back; zero, jobs far apart); nil when no thread
    /// can be started (the caller works alone).
    init?(spinLimit: Duration = .microseconds(200)) {
        self.spinLimit = spinLimit
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
        // The loop holds the helper strongly until `stop()` ends it.
        guard let thread = Sys.startThread(ConsumerWork { [self] in loop() }) else {
            pthread_cond_destroy(changed)
            pthread_mutex_destroy(lock)
            lock.deallocate()
            changed.deallocate()
            return nil
        }
        self.thread = thread
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        lock.deallocate()
        changed.deallocate()
    }

    /// Runs `there` on the helper and `here` on this thread, and returns when both are done.
    func both(_ here: () -> Void, _ there: () -> Void) {
        // The job is waited for before this returns: the closure never outlives the call.
        withoutActuallyEscaping(there) { there in
            resting.store(false, ordering: .relaxed)
            pthread_mutex_lock(lock)
            job = there
            let number = posted.add(1, ordering: .releasing).newValue
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(lock)
            here()
            wait(until: { finished.load(ordering: .acquiring) >= number })
        }
    }

    /// Tells the helper that no job comes soon: it sleeps on the condition now rather than
    /// poll for the rest of its ``spinLimit``.
    func rest() {
        resting.store(true, ordering: .relaxed)
    }

    /// Ends the helper's thread and waits for it.
    func stop() {
        guard let thread else { return }
        pthread_mutex_lock(lock)
        stopping = true
        pthread_cond_broadcast(changed)
        pthread_mutex_unlock(lock)
        Sys.joinThread(thread)
        self.thread = nil
    }

    /// Polls `done` for ``spinLimit``, then sleeps on the condition until it holds.
    private func wait(until done: () -> Bool) {
        let until = ContinuousClock.now + spinLimit
        while !done() {
            guard ContinuousClock.now < until, !resting.load(ordering: .relaxed) else {
                pthread_mutex_lock(lock)
                while !done() && !stopping { pthread_cond_wait(changed, lock) }
                pthread_mutex_unlock(lock)
                return
            }
        }
    }

    /// Takes the posted job and runs it; false when the helper is stopping instead. The job
    /// is let go before this returns, so the caller's `withoutActuallyEscaping` finds it
    /// released once the job is counted finished.
    private func runJob() -> Bool {
        pthread_mutex_lock(lock)
        guard !stopping, let work = job else {
            pthread_mutex_unlock(lock)
            return false
        }
        job = nil
        pthread_mutex_unlock(lock)
        work()
        return true
    }

    /// The helper's thread: each job as it comes, until ``stop()``.
    private func loop() {
        var taken = 0
        while true {
            wait(until: { posted.load(ordering: .acquiring) > taken })
            guard runJob() else { return }
            taken += 1
            finished.store(taken, ordering: .releasing)
            pthread_mutex_lock(lock)
            pthread_cond_broadcast(changed)
            pthread_mutex_unlock(lock)
        }
    }
}
