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

/// What delivering an event means for the producer.
enum Delivery: Equatable {
    /// Keep producing.
    case more
    /// The buffer is at its limit: pause this sequence until the consumer drains it.
    case pause
    /// The consumer is gone: end the sequence.
    case gone
}

/// A bounded, single-consumer event buffer between the scheduler and one stream.
///
/// Every stream ends with `.completed`: when the consuming task is cancelled, the chunks still
/// buffered are dropped but the iterator waits for the scheduler's `.completed(.cancelled)` (sent
/// at the next step boundary, with the real counts) and yields it last.
final class EventChannel: Sendable {
    struct State {
        var buffer: [GenerationEvent] = []
        var head = 0
        var waiter: CheckedContinuation<GenerationEvent?, Never>?
        var finished = false
        var consumerGone = false
        /// The consumer was cancelled but still reads: only `.completed` is delivered.
        var awaitingCompletion = false
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

    /// Delivers an event and says what the consumer's state means for the producer. Never drops
    /// an event a consumer will read (the buffer may exceed the limit by one step's events).
    func send(_ event: GenerationEvent) -> Delivery {
        var isCompletion = false
        if case .completed = event { isCompletion = true }
        let (waiter, delivery): (CheckedContinuation<GenerationEvent?, Never>?, Delivery) = state.withLock { s in
            if s.finished { return (nil, .gone) }
            if s.consumerGone {
                guard s.awaitingCompletion, isCompletion else { return (nil, .gone) }
                s.awaitingCompletion = false
            }
            if let w = s.waiter { s.waiter = nil; return (w, s.consumerGone ? .gone : .more) }
            s.buffer.append(event)
            return (nil, s.consumerGone ? .gone : s.count >= limit ? .pause : .more)
        }
        waiter?.resume(returning: event)
        return delivery
    }

    /// Ends the stream after the buffered events.
    func finish() {
        let waiter: CheckedContinuation<GenerationEvent?, Never>? = state.withLock { s in
            s.finished = true
            s.awaitingCompletion = false
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
                    if s.count > 0 {
                        let wasFull = s.count >= limit
                        let e = s.buffer[s.head]
                        s.head += 1
                        if s.head > 64 && s.head * 2 > s.buffer.count { s.buffer.removeFirst(s.head); s.head = 0 }
                        drained = wasFull && s.count < limit
                        return .some(e)
                    }
                    if s.finished || (s.consumerGone && !s.awaitingCompletion) { return .some(nil) }
                    s.waiter = c
                    return nil
                }
                if let immediate { c.resume(returning: immediate) }
                if drained && !Task.isCancelled { onDrain() }
            }
        } onCancel: {
            consumerLeft(awaitCompletion: true)
        }
    }

    /// The consumer cancelled (`awaitCompletion`: its iterator still reads the final `.completed`)
    /// or dropped the stream.
    func consumerLeft(awaitCompletion: Bool = false) {
        let (waiter, event, first): (CheckedContinuation<GenerationEvent?, Never>?, GenerationEvent?, Bool) = state.withLock { s in
            let first = !s.consumerGone && !s.finished
            // chunks are dropped; a `.completed` already buffered stays for a cancelled reader
            let completion = s.buffer[s.head...].last.flatMap { e -> GenerationEvent? in
                if case .completed = e { return e } else { return nil }
            }
            s.buffer.removeAll(); s.head = 0
            if awaitCompletion, let completion { s.buffer = [completion] }
            if first {
                s.consumerGone = true
                s.awaitingCompletion = awaitCompletion
            }
            guard let w = s.waiter else { return (nil, nil, first) }
            if s.awaitingCompletion && !s.finished { return (nil, nil, first) } // `send(.completed)` resumes it
            s.waiter = nil
            guard s.count > 0 else { return (w, nil, first) }
            let e = s.buffer[s.head]
            s.head += 1
            return (w, e, first)
        }
        waiter?.resume(returning: event)
        if first { onConsumerGone() }
    }
}
