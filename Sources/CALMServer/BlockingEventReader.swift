import CALMEngine
import Dispatch
import Foundation

/// Reads a generation stream from a connection thread: each `next` runs the async iterator in a
/// task and waits for its event on a semaphore, so the thread blocks and the cooperative pool does
/// not. Reading one event at a time keeps the stream's bounded buffer as the back-pressure: a
/// slow client slows only its own request.
final class BlockingEventReader: @unchecked Sendable {
    // Safe to share: the iterator is only touched by one task at a time, and `next` waits for
    // that task before returning (the semaphore orders the accesses).
    private var iterator: GenerationStream.AsyncIterator?
    private var delivered: GenerationEvent?

    init(_ stream: GenerationStream) { iterator = stream.makeAsyncIterator() }

    /// The next event, or nil at the end. `abandon` is asked every 100 ms while waiting; when it
    /// says yes (the client is gone) the request is cancelled and nil returned.
    func next(abandon: () -> Bool) -> GenerationEvent? {
        guard iterator != nil else { return nil }
        let done = DispatchSemaphore(value: 0)
        let task = Task { [self] in
            var it = iterator
            let event = await it?.next()
            iterator = it
            delivered = event
            done.signal()
        }
        while done.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
            if abandon() {
                task.cancel()
                done.wait()
                iterator = nil
                return nil
            }
        }
        let event = delivered
        delivered = nil
        if event == nil { iterator = nil }
        return event
    }

    /// Cancels the request if it is still running (dropping the iterator cancels it).
    func cancel() { iterator = nil }
}
