import CALMEngine
import CALMModel
import Foundation
import Testing

/// The blocking iterator (the HTTP server's connection threads read streams with it) gives the same
/// events as `for await`, pauses a sequence whose reader stops, and cancels when dropped.
@Suite("Blocking stream iterator", .timeLimit(.minutes(3)))
struct BlockingIteratorTests {
    /// Reads a whole stream on a thread of its own (never the cooperative pool, which the engine needs).
    static func readBlocking(_ stream: GenerationStream, timeout: Double) async -> [GenerationEvent] {
        await withCheckedContinuation { done in
            Thread {
                var it = stream.makeBlockingIterator()
                var events: [GenerationEvent] = []
                loop: while true {
                    switch it.next(timeout: timeout) {
                    case let .event(e): events.append(e)
                    case .timedOut: continue
                    case .end: break loop
                    }
                }
                done.resume(returning: events)
            }.start()
        }
    }

    static func summary(_ events: [GenerationEvent]) -> [String] {
        events.map { e in
            switch e {
            case let .chunk(c): return "chunk \(c.index) \(c.tokens) \(c.text.debugDescription)"
            case let .completed(i): return "completed \(i.reason) \(i.generatedTokens) \(i.chunks)"
            }
        }
    }

    @Test(arguments: TestFamily.allCases)
    func sameEventsAsTheAsyncIterator(family: TestFamily) async throws {
        var p = family.plain(maxTokens: 24, seed: 7)
        p.stopAtEndToken = false
        let prompt = Prompt.tokens(EngineFixtures.prompt(5))
        var awaited: [GenerationEvent] = []
        for await e in try family.engine().generate(prompt: prompt, parameters: p) { awaited.append(e) }
        // a tiny timeout too, so that reads that time out and try again are part of the check
        for timeout in [5.0, 0.0005] {
            let blocked = await Self.readBlocking(try family.engine().generate(prompt: prompt, parameters: p), timeout: timeout)
            #expect(Self.summary(blocked) == Self.summary(awaited), "\(family), timeout \(timeout)")
        }
    }

    @Test func aReaderThatStopsPausesItsSequenceAndDroppingItCancels() async throws {
        let engine = try EngineFixtures.engine(streamBufferLimit: 2)
        let free = engine.kvBlocksFree
        var p = TestFamily.calm.plain(maxTokens: 200, seed: 1)
        p.stopAtEndToken = false
        let stream = try engine.generate(prompt: .tokens(EngineFixtures.prompt(1)), parameters: p)
        let firstTwo: [GenerationEvent] = await withCheckedContinuation { done in
            Thread {
                var it = stream.makeBlockingIterator()
                var got: [GenerationEvent] = []
                while got.count < 2, case let .event(e) = it.next(timeout: 10) { got.append(e) }
                // then stop reading for a while: the sequence pauses at its buffer limit
                Thread.sleep(forTimeInterval: 0.5)
                done.resume(returning: got)
                _ = it  // dropped here: the request is cancelled
            }.start()
        }
        #expect(firstTwo.count == 2)
        let deadline = Date().addingTimeInterval(30)
        while engine.kvBlocksFree != free && Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(engine.kvBlocksFree == free, "dropping the blocking iterator returns the request's KV blocks")
        // paused, not run to its end: far fewer than 200 tokens were made for a reader that took 2 chunks
        #expect(engine.statistics.steps < 60, "steps \(engine.statistics.steps)")
    }
}
