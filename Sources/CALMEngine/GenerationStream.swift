import CALMModel
import Foundation

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
    /// The request's output processor, before any event (each iterator runs its own copy).
    let processor: OutputProcessor

    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: EventChannel
        /// Leaving the loop drops the iterator, which cancels the request.
        let lifetime: StreamLifetime
        var processor: OutputProcessor
        var pending: [GenerationEvent] = []
        var ended = false

        public mutating func next() async -> GenerationEvent? {
            while pending.isEmpty {
                if ended { return nil }
                guard let event = await channel.next() else { ended = true; return nil }
                let out = processor.process(event, emitChunks: !channel.readerCancelled)
                pending = out.events
                if out.ended {
                    ended = true
                    // A stop sequence ended the stream here: the scheduler stops the request.
                    if out.stoppedEarly { channel.consumerLeft() }
                }
            }
            return pending.removeFirst()
        }
    }

    /// Streams have one consumer: iterate once.
    public func makeAsyncIterator() -> AsyncIterator {
        channel.markIterated()
        let channel = self.channel
        return AsyncIterator(channel: channel, lifetime: StreamLifetime { channel.consumerLeft() }, processor: processor)
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

/// A bounded, single-consumer buffer of one request's scheduler events, between the scheduler
/// and the stream's iterator.
///
/// Every stream ends with `.completed`: when the consuming task is cancelled, the iterator keeps
/// reading (chunks are counted, not shown) until the scheduler's `.finished(.cancelled)` arrives at
/// the next step boundary, so the summary has the real counts.
final class EventChannel: Sendable {
    struct State {
        var buffer: [SequenceEvent] = []
        var head = 0
        var waiter: CheckedContinuation<SequenceEvent?, Never>?
        var finished = false
        var consumerGone = false
        /// The consumer was cancelled but still reads, up to the final event.
        var awaitingCompletion = false
        var iterated = false
        var count: Int { buffer.count - head }
    }

    let requestID: Int
    let limit: Int
    private let state = Locked(State())
    /// Called when a full buffer drains below the limit (the scheduler resumes the sequence).
    let onDrain: @Sendable () -> Void
    /// Called once when the consumer cancels, goes away or has seen a stop sequence.
    let onConsumerGone: @Sendable () -> Void

    init(requestID: Int, limit: Int, onDrain: @escaping @Sendable () -> Void, onConsumerGone: @escaping @Sendable () -> Void) {
        self.requestID = requestID
        self.limit = limit
        self.onDrain = onDrain
        self.onConsumerGone = onConsumerGone
    }

    /// Whether the buffer is at its limit (the producer should pause this sequence).
    var isFull: Bool { state.withLock { $0.count >= limit } }

    /// Whether the consumer was cancelled (its iterator only wants the summary).
    var readerCancelled: Bool { state.withLock { $0.consumerGone } }

    func markIterated() { state.withLock { $0.iterated = true } }

    /// A stream dropped without ever being iterated cancels its request.
    func streamDropped() {
        if !state.withLock({ $0.iterated }) { consumerLeft() }
    }

    /// Delivers an event and says what the consumer's state means for the producer. Never drops
    /// an event a consumer will read (the buffer may exceed the limit by one step's events).
    func send(_ event: SequenceEvent) -> Delivery {
        let (waiter, delivery): (CheckedContinuation<SequenceEvent?, Never>?, Delivery) = state.withLock { s in
            if s.finished || (s.consumerGone && !s.awaitingCompletion) { return (nil, .gone) }
            if let w = s.waiter { s.waiter = nil; return (w, s.consumerGone ? .gone : .more) }
            s.buffer.append(event)
            return (nil, s.consumerGone ? .gone : s.count >= limit ? .pause : .more)
        }
        waiter?.resume(returning: event)
        return delivery
    }

    /// Ends the stream after the buffered events.
    func finish() {
        let waiter: CheckedContinuation<SequenceEvent?, Never>? = state.withLock { s in
            s.finished = true
            s.awaitingCompletion = false
            if s.count == 0, let w = s.waiter { s.waiter = nil; return w }
            return nil
        }
        waiter?.resume(returning: nil)
    }

    func next() async -> SequenceEvent? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<SequenceEvent?, Never>) in
                var drained = false
                let immediate: SequenceEvent?? = state.withLock { s in
                    if s.count > 0 {
                        let wasFull = s.count >= limit
                        let e = s.buffer[s.head]
                        s.head += 1
                        if s.head > 64 && s.head * 2 > s.buffer.count { s.buffer.removeFirst(s.head); s.head = 0 }
                        drained = wasFull && s.count < limit && !s.consumerGone
                        return .some(e)
                    }
                    if s.finished || (s.consumerGone && !s.awaitingCompletion) { return .some(nil) }
                    s.waiter = c
                    return nil
                }
                if let immediate { c.resume(returning: immediate) }
                if drained { onDrain() }
            }
        } onCancel: {
            consumerLeft(awaitCompletion: true)
        }
    }

    /// The consumer cancelled (`awaitCompletion`: its iterator still reads up to the final event)
    /// or went away.
    func consumerLeft(awaitCompletion: Bool = false) {
        let (waiter, first): (CheckedContinuation<SequenceEvent?, Never>?, Bool) = state.withLock { s in
            let first = !s.consumerGone && !s.finished
            if !s.consumerGone {
                s.consumerGone = true
                s.awaitingCompletion = awaitCompletion && !s.finished
            } else if !awaitCompletion {
                s.awaitingCompletion = false
            }
            // A cancelled reader keeps what is buffered up to the final event; the next send resumes it.
            if awaitCompletion && (s.awaitingCompletion || s.finished) { return (nil, first) }
            s.buffer.removeAll(); s.head = 0
            let w = s.waiter
            s.waiter = nil
            return (w, first)
        }
        waiter?.resume(returning: nil)
        if first { onConsumerGone() }
    }
}
