import Foundation
import Synchronization

/// The events of one request, as an `AsyncSequence`.
///
/// Breaking out of `for await`, dropping the stream, or cancelling the consuming task cancels the
/// request and frees its KV blocks. The buffer is bounded: a consumer that stops reading pauses only
/// its own sequence; no event is ever dropped.
///
/// ```swift
/// for await event in try engine.generate(prompt: "Once upon a time") {
///     if case let .chunk(c) = event { print(c.text, terminator: "") }
/// }
/// ```
public struct GenerationStream: AsyncSequence, Sendable {
    public typealias Element = GenerationEvent
    let channel: EventChannel
    let lifetime: StreamLifetime

    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: EventChannel
        /// Leaving the loop drops the iterator, which cancels the request.
        let lifetime: StreamLifetime
        public mutating func next() async -> GenerationEvent? { await channel.next() }
    }

    /// Streams have one consumer: iterate once.
    public func makeAsyncIterator() -> AsyncIterator {
        channel.markIterated()
        let channel = self.channel
        return AsyncIterator(channel: channel, lifetime: StreamLifetime { channel.consumerLeft() })
    }

    /// The request's id (for logs).
    public var requestID: Int { channel.requestID }
}

/// Cancels the request when the last stream or iterator holding it goes away.
final class StreamLifetime: Sendable {
    let onRelease: @Sendable () -> Void
    init(onRelease: @escaping @Sendable () -> Void) { self.onRelease = onRelease }
    deinit { onRelease() }
}

/// A bounded, single-consumer event buffer between the scheduler and one stream.
final class EventChannel: Sendable {
    struct State {
        var buffer: [GenerationEvent] = []
        var head = 0
        var waiter: CheckedContinuation<GenerationEvent?, Never>?
        var finished = false
        var consumerGone = false
        var iterated = false
        var count: Int { buffer.count - head }
    }

    let requestID: Int
    let limit: Int
    private let state = Mutex(State())
    /// Called when a full buffer drains below the limit (the scheduler resumes the sequence).
    let onDrain: @Sendable () -> Void
    /// Called once when the consumer cancels or goes away.
    let onConsumerGone: @Sendable () -> Void

    init(requestID: Int, limit: Int, onDrain: @escaping @Sendable () -> Void, onConsumerGone: @escaping @Sendable () -> Void) {
        self.requestID = requestID
        self.limit = limit
        self.onDrain = onDrain
        self.onConsumerGone = onConsumerGone
    }

    /// Whether the buffer is at its limit (the producer should pause this sequence).
    var isFull: Bool { state.withLock { $0.count >= limit } }

    func markIterated() { state.withLock { $0.iterated = true } }

    /// A stream dropped without ever being iterated cancels its request.
    func streamDropped() {
        if !state.withLock({ $0.iterated }) { consumerLeft() }
    }

    /// Whether the consumer is gone (its sequence should be cancelled).
    var consumerGone: Bool { state.withLock { $0.consumerGone } }

    /// Delivers an event; never drops it (the buffer may exceed the limit by one step's events).
    func send(_ event: GenerationEvent) {
        let waiter: CheckedContinuation<GenerationEvent?, Never>? = state.withLock { s in
            guard !s.finished, !s.consumerGone else { return nil }
            if let w = s.waiter { s.waiter = nil; return w }
            s.buffer.append(event)
            return nil
        }
        waiter?.resume(returning: event)
    }

    /// Ends the stream after the buffered events.
    func finish() {
        let waiter: CheckedContinuation<GenerationEvent?, Never>? = state.withLock { s in
            s.finished = true
            if s.count == 0, let w = s.waiter { s.waiter = nil; return w }
            return nil
        }
        waiter?.resume(returning: nil)
    }

    func next() async -> GenerationEvent? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<GenerationEvent?, Never>) in
                var drained = false
                let immediate: GenerationEvent?? = state.withLock { s in
                    if s.consumerGone { return .some(nil) }
                    if s.count > 0 {
                        let wasFull = s.count >= limit
                        let e = s.buffer[s.head]
                        s.head += 1
                        if s.head > 64 && s.head * 2 > s.buffer.count { s.buffer.removeFirst(s.head); s.head = 0 }
                        drained = wasFull && s.count < limit
                        return .some(e)
                    }
                    if s.finished { return .some(nil) }
                    s.waiter = c
                    return nil
                }
                if let immediate { c.resume(returning: immediate) }
                if drained { onDrain() }
            }
        } onCancel: {
            consumerLeft()
        }
    }

    /// The consumer cancelled or dropped the stream.
    func consumerLeft() {
        let (waiter, first): (CheckedContinuation<GenerationEvent?, Never>?, Bool) = state.withLock { s in
            let first = !s.consumerGone && !s.finished
            s.consumerGone = true
            s.buffer.removeAll(); s.head = 0
            let w = s.waiter
            s.waiter = nil
            return (w, first)
        }
        waiter?.resume(returning: nil)
        if first { onConsumerGone() }
    }
}
