import CALMKernels

/// The kernels' persistent worker pool (the calling thread plus one spinning/parking worker per
/// extra core). One forward pass at a time uses it; calls from several threads are serialised
/// inside the C pool.
///
/// `@unchecked Sendable`: the only stored property is the `let` C pool pointer (`OpaquePointer` is
/// not `Sendable`), and the C pool is thread-safe: `calm_pool_run` callers are serialised by its
/// `run_lock`, its job hand-off uses atomics, and a nested run on the same pool runs inline.
public final class ComputePool: @unchecked Sendable {
    /// The underlying C pool (never nil).
    public let raw: OpaquePointer

    /// A pool with `threads` threads in total (the caller included); `nil` = one per core.
    public init(threads: Int? = nil) {
        raw = calm_pool_create(Int32(threads ?? 0))!
    }

    deinit { calm_pool_destroy(raw) }

    /// Threads that run tasks, the caller included.
    public var threadCount: Int { Int(calm_pool_size(raw)) }

    /// The process-wide pool used by models that are not given one.
    public static let shared = ComputePool()

    /// A single-threaded pool, for tests of thread-count invariance.
    public static let serial = ComputePool(threads: 1)
}
