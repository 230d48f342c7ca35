import CALMKernels
import Testing

/// ctx: [counts (n_tasks) | thread index seen (n_tasks)] as Int32.
private let countTask: calm_task_fn = { ctx, task, thread in
    let p = ctx!.assumingMemoryBound(to: Int32.self)
    p[Int(task) * 2] += 1
    p[Int(task) * 2 + 1] = thread
}

@Suite struct PoolTests {
    func check(_ pool: OpaquePointer?, tasks: Int) -> Bool {
        var buf = [Int32](repeating: 0, count: max(tasks, 1) * 2)
        buf.withUnsafeMutableBytes { calm_pool_run(pool, Int32(tasks), countTask, $0.baseAddress) }
        let size = calm_pool_size(pool)
        for t in 0..<tasks where buf[t * 2] != 1 || buf[t * 2 + 1] < 0 || buf[t * 2 + 1] >= size { return false }
        return true
    }

    @Test func nullPoolRunsSerially() {
        #expect(calm_pool_size(nil) == 1)
        #expect(check(nil, tasks: 5))
        #expect(check(nil, tasks: 0))
    }

    @Test(arguments: [1, 2, 3, 8])
    func manyRunsEachTaskOnce(threads: Int) {
        let pool = calm_pool_create(Int32(threads))
        #expect(calm_pool_size(pool) == Int32(threads))
        var ok = true
        for r in 0..<3000 { ok = ok && check(pool, tasks: r % 7) }
        for _ in 0..<20 { ok = ok && check(pool, tasks: 1000) }
        #expect(ok)
        calm_pool_destroy(pool)
    }

    @Test func defaultSizeAndCreateDestroyLoop() {
        let pool = calm_pool_create(0)
        #expect(calm_pool_size(pool) >= 1)
        calm_pool_destroy(pool)
        for _ in 0..<50 {
            let p = calm_pool_create(3)
            #expect(check(p, tasks: 4))
            calm_pool_destroy(p)
        }
        calm_pool_destroy(nil)
    }

    @Test func runsAfterWorkersPark() async throws {
        let pool = calm_pool_create(2)
        for _ in 0..<3 {
            try await Task.sleep(nanoseconds: 5_000_000) // past the spin window: workers park
            #expect(check(pool, tasks: 16))
        }
        calm_pool_destroy(pool)
    }

    @Test func concurrentCallersAreSerialised() async {
        let pool = calm_pool_create(2)
        let box = UnsafeSendable(pool)
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var ok = true
                    for r in 0..<300 {
                        var buf = [Int32](repeating: 0, count: 64)
                        let n = Int32(1 + r % 31)
                        buf.withUnsafeMutableBytes { calm_pool_run(box.value, n, countTask, $0.baseAddress) }
                        for t in 0..<Int(n) where buf[t * 2] != 1 { ok = false }
                    }
                    return ok
                }
            }
            for await ok in group { #expect(ok) }
        }
        calm_pool_destroy(pool)
    }
}

struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
