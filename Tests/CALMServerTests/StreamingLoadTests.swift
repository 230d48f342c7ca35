import CALMModel
import CALMServer
import Foundation
import Testing

/// Streams under load and clients that leave: every stream well-formed, KV blocks always back.
@Suite("Streaming under load", .timeLimit(.minutes(5)))
struct StreamingLoadTests {
    @Test func disconnectMidStreamCancelsAndFreesKVBlocks() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let sawChunk = try await offPool { () -> Bool in
            let c = try HTTPClientConnection(port: port)
            // long enough to be running when the client leaves
            try c.post("/v1/completions", json: #"{"prompt": [1, 2, 3], "max_tokens": 900, "stream": true, "temperature": 0.5, "samples": 64, "ignore_eos": true}"#)
            struct Leave: Error {}
            var saw = false
            do {
                _ = try c.response { piece in
                    if piece.hasPrefix("data: {") { saw = true; throw Leave() }
                }
            } catch is Leave {}
            return saw
        }  // the client socket closes here
        #expect(sawChunk)
        #expect(await fixture.kvPoolRefills(), "KV blocks in use after the client left: \(fixture.engine.kvBlocksTotal - fixture.engine.kvBlocksFree)")
        let handler = fixture.handler
        let metrics = try await offPool { () -> [String: Double] in
            for _ in 0..<3000 where handler.metrics.inFlight > 0 { usleep(20_000) }
            let c = try HTTPClientConnection(port: port)
            try c.get("/metrics")
            return try PrometheusText.parse(try c.response().text)
        }
        #expect(metrics["calm_requests_total{outcome=\"cancelled\"}"] == 1)
        #expect(metrics["calm_requests_in_flight"] == 0)
    }

    @Test func manyConcurrentStreamingClientsAllComplete() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let clients = 256
        let latencies = Locked([Double]())
        let start = Date()
        let results = try await offPool { () -> [String?] in
            let outcomes = ClientOutcomes(count: clients)
            let group = DispatchGroup()
            for i in 0..<clients {
                group.enter()
                let thread = Thread {
                    defer { group.leave() }
                    do {
                        let c = try HTTPClientConnection(port: port)
                        let sent = Date()
                        try c.post("/v1/completions", json: #"{"prompt": [\#(i % 50 + 1), 2, 3], "max_tokens": 16, "seed": \#(i), "stream": true, "temperature": 1, "sampler": "single"}"#)
                        let r = try c.response()
                        let latency = Date().timeIntervalSince(sent)
                        latencies.withLock { $0.append(latency) }
                        let events = r.events
                        guard r.status == 200, events.last == "[DONE]" else { outcomes.set(i, "status \(r.status), last \(events.last ?? "none")"); return }
                        var finished = false
                        for e in events.dropLast() {
                            guard let json = try? JSONValue.parse(Array(e.utf8)), json["object"] == .string("text_completion") else {
                                outcomes.set(i, "malformed event \(e)"); return
                            }
                            if let f = json["choices"]?.arrayFirst?["finish_reason"], f != .null { finished = true }
                        }
                        outcomes.set(i, finished ? nil : "no finish_reason")
                    } catch {
                        outcomes.set(i, "\(error)")
                    }
                }
                thread.stackSize = 256 << 10
                thread.start()
            }
            guard group.wait(timeout: .now() + 240) == .success else { return ["timed out"] }
            return outcomes.values
        }
        let failures = results.compactMap { $0 }
        #expect(failures.isEmpty, "\(failures.count) of \(clients) failed, e.g. \(failures.prefix(3))")
        #expect(await fixture.kvPoolRefills())
        #expect(fixture.handler.metrics.inFlight == 0)
        let sorted = latencies.withLock { $0 }.sorted()
        if !sorted.isEmpty {
            func at(_ q: Double) -> String { String(format: "%.3f s", sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * q))]) }
            print("[load] \(clients) concurrent streaming clients, 16 tokens each: all done in \(String(format: "%.2f s", Date().timeIntervalSince(start))); request latency p50 \(at(0.5)), p99 \(at(0.99))")
        }
    }

    @Test func aSlowReaderPausesOnlyItsOwnRequest() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let engine = fixture.engine
        let handler = fixture.handler
        struct Seen: Sendable {
            var paused = false, stepsWhilePaused = 0, normalStatus = 0, inFlightAfterNormal = 0
            var slowEvents: [String] = []
        }
        let seen = try await offPool { () -> Seen in
            var seen = Seen()
            // a tiny receive buffer: the server's writes block soon, then the stream's buffer fills
            let slow = try HTTPClientConnection(port: port, timeout: 60, receiveBufferBytes: 2048)
            try slow.post("/v1/completions", json: #"{"prompt": [1, 2, 3], "max_tokens": 100000, "seed": 3, "stream": true, "stream_options": {"include_usage": true}, "temperature": 1, "sampler": "single", "ignore_eos": true}"#)
            // paused: the engine stops stepping although the request is unfinished
            var last = -1, still = 0
            for _ in 0..<600 {
                usleep(50_000)
                let steps = engine.statistics.steps
                still = steps == last && steps > 0 ? still + 1 : 0
                last = steps
                if still >= 10 { seen.paused = true; break }
            }
            let pausedAt = engine.statistics.steps
            let normal = try HTTPClientConnection(port: port, timeout: 60)
            try normal.post("/v1/completions", json: #"{"prompt": [4, 5], "max_tokens": 8, "seed": 1, "temperature": 1, "sampler": "single"}"#)
            seen.normalStatus = try normal.response().status
            seen.stepsWhilePaused = engine.statistics.steps - pausedAt
            seen.inFlightAfterNormal = handler.metrics.inFlight
            seen.slowEvents = try slow.response().events
            return seen
        }
        #expect(seen.paused, "the engine kept stepping for 30 s with a client reading nothing")
        #expect(seen.normalStatus == 200 && seen.stepsWhilePaused > 0, "the other request did not go on")
        #expect(seen.inFlightAfterNormal == 1, "the slow request should still be in flight, paused")
        // nothing lost: the whole completion arrives once the client reads, up to the context
        #expect(seen.slowEvents.last == "[DONE]")
        let usage = seen.slowEvents.dropLast().last.flatMap { try? JSONValue.parse(Array($0.utf8)) }
        let finish = seen.slowEvents.dropLast(2).last.flatMap { try? JSONValue.parse(Array($0.utf8)) }?["choices"]?.arrayFirst?["finish_reason"]
        #expect(finish == .string("length"))
        let texts = seen.slowEvents.dropLast(2).compactMap { e -> String? in
            guard case let .string(t)? = (try? JSONValue.parse(Array(e.utf8)))?["choices"]?.arrayFirst?["text"] else { return nil }
            return t
        }
        if case let .integer(tokens)? = usage?["usage"]?["completion_tokens"] {
            #expect(tokens > 100, "completion_tokens \(tokens)")
            #expect(texts.joined().count >= tokens, "every token's text arrives (each id decodes to 1–2 characters)")
        } else {
            Issue.record("no usage event: \(seen.slowEvents.suffix(2))")
        }
        #expect(await fixture.kvPoolRefills())
    }
}

/// Per-client outcomes written from many threads.
final class ClientOutcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String?]
    init(count: Int) { items = Array(repeating: "not finished", count: count) }
    func set(_ i: Int, _ v: String?) { lock.lock(); items[i] = v; lock.unlock() }
    var values: [String?] { lock.lock(); defer { lock.unlock() }; return items }
}
