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
            let c = try TestHTTPClient(port: port)
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
            let c = try TestHTTPClient(port: port)
            try c.get("/metrics")
            return try PrometheusText.parse(try c.response().text)
        }
        #expect(metrics["calm_requests_total{outcome=\"cancelled\"}"] == 1)
        #expect(metrics["calm_requests_in_flight"] == 0)
    }

    @Test func manyConcurrentStreamingClientsAllComplete() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let clients = 96
        let results = try await offPool { () -> [String?] in
            let outcomes = ClientOutcomes(count: clients)
            let group = DispatchGroup()
            for i in 0..<clients {
                group.enter()
                Thread {
                    defer { group.leave() }
                    do {
                        let c = try TestHTTPClient(port: port)
                        try c.post("/v1/completions", json: #"{"prompt": [\#(i % 50 + 1), 2, 3], "max_tokens": 16, "seed": \#(i), "stream": true, "temperature": 1, "sampler": "single"}"#)
                        let r = try c.response()
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
                }.start()
            }
            guard group.wait(timeout: .now() + 240) == .success else { return ["timed out"] }
            return outcomes.values
        }
        let failures = results.compactMap { $0 }
        #expect(failures.isEmpty, "\(failures.count) of \(clients) failed, e.g. \(failures.prefix(3))")
        #expect(await fixture.kvPoolRefills())
        #expect(fixture.handler.metrics.inFlight == 0)
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
