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
        /// Leaving the loop drops the iterator, which cancels the request.
        let lifetime: StreamLifetime
        var reader: StreamReader

        public mutating func next() async -> GenerationEvent? {
            while reader.pending.isEmpty {
                if reader.ended { return nil }
                reader.absorb(await reader.channel.next())
            }
            return reader.pending.removeFirst()
        }
    }

    /// Streams have one consumer: iterate once.
    public func makeAsyncIterator() -> AsyncIterator {
        channel.markIterated()
        let channel = self.channel
        return AsyncIterator(lifetime: StreamLifetime { channel.consumerLeft() }, reader: StreamReader(channel: channel, processor: processor))
    }

    /// Reads the stream from a thread that may block (the HTTP server's connection threads): each
    /// event wakes the reading thread directly, with no task and no hop through Swift's cooperative
    /// pool. The same events, in the same order, as the async iterator; dropping it cancels the request.
    package struct BlockingIterator {
        let lifetime: StreamLifetime
        var reader: StreamReader

        /// What a bounded wait ended with.
        package enum Next {
            case event(GenerationEvent)
            /// The stream is over.
            case end
            /// Nothing arrived within the wait.
            case timedOut
        }

        /// The next event, waiting at most `timeout` seconds (so the caller can look at its client).
        package mutating func next(timeout: Double) -> Next {
            while reader.pending.isEmpty {
                if reader.ended { return .end }
                switch reader.channel.nextBlocking(timeout: timeout) {
                case .timedOut: return .timedOut
                case let .event(e): reader.absorb(e)
                case .end: reader.absorb(nil)
                }
            }
            return .event(reader.pending.removeFirst())
        }
    }

    /// Streams have one consumer: iterate once, either way.
    package func makeBlockingIterator() -> BlockingIterator {
        channel.markIterated()
        let channel = self.channel
        return BlockingIterator(lifetime: StreamLifetime { channel.consumerLeft() }, reader: StreamReader(channel: channel, processor: processor))
    }

    /// The request's id (for logs).
    public var requestID: Int { channel.requestID }
}

/// The consumer's side of a stream, shared by both iterators: scheduler events through the
/// request's output processor (detokenising, stop sequences) into the events the caller sees.
struct StreamReader {
    let channel: EventChannel
    var processor: OutputProcessor
    var pending: [GenerationEvent] = []
    var ended = false

    /// Takes the channel's next event (nil: the channel ended).
    mutating func absorb(_ event: SequenceEvent?) {
        guard let event else { ended = true; return }
        let out = processor.process(event, emitChunks: !channel.readerCancelled)
        pending = out.events
        if out.ended {
            ended = true
            // A stop sequence ended the stream here: the scheduler stops the request.
            if out.stoppedEarly { channel.consumerLeft() }
        }
    }
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
        /// A blocking reader waiting for the buffer to change (it re-reads the state when woken).
        var doorbell: DispatchSemaphore?
        var finished = false
        var consumerGone = false
        /// The consumer was cancelled but still reads, up to the final event.
        var awaitingCompletion = false
        var iterated = false
        var count: Int { buffer.count - head }
        /// Nothing more will arrive for the reader.
        var isOver: Bool { finished || (consumerGone && !awaitingCompletion) }

        /// Takes the oldest buffered event (the buffer must hold one); `drained` says whether that
        /// brought a full buffer below `limit` for a consumer still there (the sequence may resume).
        mutating func popFirst(limit: Int) -> (event: SequenceEvent, drained: Bool) {
            let wasFull = count >= limit
            let e = buffer[head]
            head += 1
            if head > 64 && head * 2 > buffer.count { buffer.removeFirst(head); head = 0 }
            return (e, wasFull && count < limit && !consumerGone)
        }
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
        let (waiter, bell, delivery): (CheckedContinuation<SequenceEvent?, Never>?, DispatchSemaphore?, Delivery) = state.withLock { s in
            if s.isOver { return (nil, nil, .gone) }
            if let w = s.waiter { s.waiter = nil; return (w, nil, s.consumerGone ? .gone : .more) }
            s.buffer.append(event)
            let bell = s.doorbell
            s.doorbell = nil
            return (nil, bell, s.consumerGone ? .gone : s.count >= limit ? .pause : .more)
        }
        waiter?.resume(returning: event)
        bell?.signal()
        return delivery
    }

    /// Ends the stream after the buffered events.
    func finish() {
        let (waiter, bell): (CheckedContinuation<SequenceEvent?, Never>?, DispatchSemaphore?) = state.withLock { s in
            s.finished = true
            s.awaitingCompletion = false
            let bell = s.doorbell
            s.doorbell = nil
            if s.count == 0, let w = s.waiter { s.waiter = nil; return (w, bell) }
            return (nil, bell)
        }
        waiter?.resume(returning: nil)
        bell?.signal()
    }

    /// What a blocking read found.
    enum BlockingRead { case event(SequenceEvent), end, timedOut }

    /// Reads the next event from a thread that may block, waiting at most `timeout` seconds.
    /// The thread waits on its own semaphore, rung by `send`, `finish` and `consumerLeft`; a ring
    /// only says "look again", so a late or repeated one costs one more look.
    func nextBlocking(timeout: Double) -> BlockingRead {
        let deadline = DispatchTime.now() + timeout
        let bell = DispatchSemaphore(value: 0)
        while true {
            var drained = false
            let found: BlockingRead? = state.withLock { s in
                if s.count > 0 {
                    let (e, d) = s.popFirst(limit: limit)
                    drained = d
                    s.doorbell = nil
                    return .event(e)
                }
                if s.isOver { s.doorbell = nil; return .end }
                s.doorbell = bell
                return nil
            }
            if drained { onDrain() }
            if let found { return found }
            if bell.wait(timeout: deadline) == .timedOut {
                // one last look, so an event that raced the timeout is not left for the next call only
                let raced = state.withLock { s -> Bool in
                    if s.doorbell === bell { s.doorbell = nil }
                    return s.count > 0 || s.isOver
                }
                if !raced { return .timedOut }
            }
        }
    }

    func next() async -> SequenceEvent? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<SequenceEvent?, Never>) in
                var drained = false
                let immediate: SequenceEvent?? = state.withLock { s in
                    if s.count > 0 {
                        let (e, d) = s.popFirst(limit: limit)
                        drained = d
                        return .some(e)
                    }
                    if s.isOver { return .some(nil) }
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
        var bell: DispatchSemaphore?
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
            bell = s.doorbell
            s.doorbell = nil
            return (w, first)
        }
        waiter?.resume(returning: nil)
        bell?.signal()
        if first { onConsumerGone() }
    }
}
