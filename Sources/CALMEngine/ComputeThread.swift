import CALMModel
import Foundation
import Synchronization

/// One long-lived thread that runs the engine's forward passes, so number crunching never blocks
/// Swift's cooperative thread pool. The kernels' worker pool supplies the other cores.
final class ComputeThread: Sendable {
    /// What the thread and its callers share (kept apart so the thread does not retain the owner).
    final class Queue: Sendable {
        let jobs = Locked<[@Sendable () -> Void]>([])
        let signal = DispatchSemaphore(value: 0)
        let stopped = Atomic<Bool>(false)
    }

    private let queue = Queue()

    init(name: String = "calm.compute") {
        let queue = self.queue
        let thread = Thread {
            while true {
                queue.signal.wait()
                if queue.stopped.load(ordering: .acquiring) { return }
                let job = queue.jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                job?()
            }
        }
        thread.name = name
        thread.stackSize = 16 << 20
        thread.start()
    }

    deinit {
        queue.stopped.store(true, ordering: .releasing)
        queue.signal.signal()
    }

    /// Runs `work` on the compute thread and returns its result.
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.jobs.withLock { $0.append { continuation.resume(returning: work()) } }
            queue.signal.signal()
        }
    }
}
