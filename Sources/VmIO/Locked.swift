#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A value shared between threads, reached only under a `pthread_mutex_t`.
///
/// The project's one lock, in place of the standard library's `Mutex`: on Linux that
/// `Mutex` waits for a lock held by another thread in a futex call inside the standard
/// library, which ThreadSanitizer does not see, so a handover under contention looked to
/// it like a data race (CI, `ChunkChannel`). ThreadSanitizer intercepts
/// `pthread_mutex_lock` and `pthread_mutex_unlock`, so every handover through this lock
/// is ordered for it too.
public final class Locked<Value: ~Copyable>: @unchecked Sendable {
    private var value: Value
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    /// A lock around `value`.
    public init(_ value: consuming sending Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` on the value with the lock held (`pthread_mutex_lock`, then
    /// `pthread_mutex_unlock` on every path out).
    public func withLock<Result: ~Copyable, Failure: Error>(
        _ body: (inout sending Value) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
