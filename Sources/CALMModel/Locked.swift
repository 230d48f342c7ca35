import Glibc

/// A value behind a POSIX mutex: the package's one lock for state shared across threads (weights'
/// lazily built screens, the engine, the server).
///
/// Why not `Synchronization.Mutex`: on Linux it parks on a raw futex that ThreadSanitizer cannot
/// see, so every access inside `withLock` reports as a "Swift access race" and real races would
/// drown among them. A `pthread_mutex_t` costs the same uncontended and is understood by the
/// sanitizer, so `.ci/run`'s ThreadSanitizer pass needs no suppressions.
///
/// `@unchecked Sendable`: `value` is only touched inside `withLock`, which holds the mutex, and
/// values go in and out as `sending`, as with `Mutex`.
package final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    package init(_ value: sending Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        self.value = value
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    package func withLock<R, E: Error>(_ body: (inout sending Value) throws(E) -> sending R) throws(E) -> sending R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
