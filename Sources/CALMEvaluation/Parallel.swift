import CALMKernels
import CALMModel

/// Runs `body(i)` for i in 0..<count on the compute pool's threads (the caller included).
func parallelFor(pool: ComputePool, count: Int, _ body: (Int) -> Void) {
    guard count > 0 else { return }
    if count == 1 || pool.threadCount == 1 {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { escaping in
        let box = ParallelBody(escaping)
        let ctx = Unmanaged.passUnretained(box).toOpaque()
        calm_pool_run(pool.raw, Int32(count), { ctx, task, _ in
            Unmanaged<ParallelBody>.fromOpaque(ctx!).takeUnretainedValue().body(Int(task))
        }, ctx)
    }
}

/// The body of one `parallelFor`, boxed so the C pool's tasks can reach it through their context
/// pointer.
///
/// `@unchecked Sendable`: the box lives only for one `calm_pool_run`, which returns after every
/// task has finished, and `body` is a `let`. `body` runs concurrently for distinct indices, so it
/// must keep them independent: the one caller, `SamplingJob.run(row:)`, writes disjoint rows.
final class ParallelBody: @unchecked Sendable {
    let body: (Int) -> Void
    init(_ body: @escaping (Int) -> Void) { self.body = body }
}
