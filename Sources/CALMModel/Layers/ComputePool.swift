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

    /// Runs `body(i)` for every i in 0..<count on the pool's threads (the caller's included) and
    /// returns when all have run. Calls for different i may run at the same time: `body` must only
    /// touch state of its own i. A call from inside one of this pool's tasks runs serially.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        if count == 1 || threadCount == 1 {
            for i in 0..<count { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            let box = ParallelBody(body)
            withExtendedLifetime(box) {
                calm_pool_run(raw, Int32(count), { ctx, i, _ in
                    Unmanaged<ParallelBody>.fromOpaque(ctx!).takeUnretainedValue().body(Int(i))
                }, Unmanaged.passUnretained(box).toOpaque())
            }
        }
    }

    /// The process-wide pool used by models that are not given one.
    public static let shared = ComputePool()

    /// A single-threaded pool, for tests of thread-count invariance.
    public static let serial = ComputePool(threads: 1)
}

private final class ParallelBody {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}
