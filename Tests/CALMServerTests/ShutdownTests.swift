import CALMServer
import Foundation
import Testing

/// A shutdown stops accepting at once and lets the request in flight finish.
@Suite("Graceful shutdown", .timeLimit(.minutes(5)))
struct ShutdownTests {
    @Test func inFlightStreamFinishesAndNewClientsAreRefused() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port, server = fixture.server
        let (events, drained, refused) = try await offPool { () -> ([String], Bool, Bool) in
            let c = try HTTPClientConnection(port: port)
            try c.post("/v1/completions", json: #"{"prompt": [1, 2, 3], "max_tokens": 400, "stream": true, "ignore_eos": true, "temperature": 1, "sampler": "single"}"#)
            var began = false
            let r = try c.response { piece in
                if !began && piece.hasPrefix("data: {") {
                    began = true
                    server.beginShutdown()
                }
            }
            let drained = server.shutdown(grace: 60)
            let refused = (try? HTTPClientConnection(port: port)) == nil
            return (r.events, drained, refused)
        }
        #expect(events.last == "[DONE]")
        #expect(events.count > 2)
        #expect(drained)
        #expect(refused)
        #expect(await fixture.kvPoolRefills())
    }
}
