import CALMEngine
import Foundation

/// Reads a generation stream from a connection thread through the stream's blocking iterator: the
/// thread sleeps on the request's own semaphore until its next event, so neither the cooperative
/// pool nor a task per event is involved. Reading one event at a time keeps the stream's bounded
/// buffer as the back-pressure: a slow client slows only its own request.
final class BlockingEventReader {
    // Used by one connection thread only.
    private var iterator: GenerationStream.BlockingIterator?

    init(_ stream: GenerationStream) { iterator = stream.makeBlockingIterator() }

    /// The next event, or nil at the end. `abandon` is asked every 100 ms while waiting; when it
    /// says yes (the client is gone) the request is cancelled and nil returned.
    func next(abandon: () -> Bool) -> GenerationEvent? {
        while iterator != nil {
            switch iterator?.next(timeout: 0.1) {
            case let .event(e)?: return e
            case .timedOut?: if abandon() { iterator = nil }
            case .end?, nil: iterator = nil
            }
        }
        return nil
    }

    /// Cancels the request if it is still running (dropping the iterator cancels it).
    func cancel() { iterator = nil }
}
