import CALMEngine
import CALMModel
import CALMServer
import Foundation
import Synchronization
import Testing

/// A family that fails every sequence whose prompt starts with `marker` after two steps (the
/// engine ends it with `.error`; the others go on).
final class FailingFamily: ModelFamily {
    let inner: any ModelFamily
    let marker: Int
    private let steps = Mutex<[Int: Int]>([:])

    init(_ inner: any ModelFamily, marker: Int) { self.inner = inner; self.marker = marker }

    var name: String { "failing-\(inner.name)" }
    var tokensPerPosition: Int { inner.tokensPerPosition }
    var vocabularySize: Int { inner.vocabularySize }
    var contextPositions: Int { inner.contextPositions }
    var endTokenIDs: Set<Int> { inner.endTokenIDs }
    var paddingTokenID: Int? { inner.paddingTokenID }
    func kvLayout(blockPositions: Int) -> KVLayout { inner.kvLayout(blockPositions: blockPositions) }
    func validate(_ parameters: SamplingParameters) throws { try inner.validate(parameters) }

    func step(_ batch: StepBatch) throws -> [StepOutcome] {
        let failing = Set(batch.entries.filter { e in
            guard e.history.first == marker else { return false }
            return steps.withLock { s -> Int in s[e.requestID, default: 0] += 1; return s[e.requestID, default: 0] } > 2
        }.map(\.requestID))
        if failing.isEmpty { return try inner.step(batch) }
        let healthy = try inner.step(batch.filtered { !failing.contains($0.requestID) })
        var it = healthy.makeIterator()
        return batch.entries.map { e in failing.contains(e.requestID) ? .failed("injected fault") : (it.next() ?? .fed) }
    }
}

/// A generation that fails at run time: 500 (or an error event in a stream) in OpenAI's shape,
/// the request ended cleanly, its KV blocks back, and the server goes on.
@Suite("Generation failures", .timeLimit(.minutes(5)))
struct GenerationFailureTests {
    @Test func aFailedGenerationIsA500AndTheServerGoesOn() async throws {
        let fixture = try ServerFixture(wrap: { FailingFamily($0, marker: 300) })
        let port = fixture.port
        let (whole, streamed, healthy) = try await offPool {
            let c = try HTTPClientConnection(port: port)
            let body = #"{"prompt": [300, 1, 2, 3], "max_tokens": 40, "ignore_eos": true, "temperature": 1, "sampler": "single""#
            try c.post("/v1/completions", json: body + "}")
            let whole = try c.response()
            try c.post("/v1/completions", json: body + #", "stream": true}"#)
            let streamed = try c.response()
            try c.post("/v1/completions", json: #"{"prompt": [1, 2, 3], "max_tokens": 8, "temperature": 1, "sampler": "single"}"#)
            return (whole, streamed, try c.response())
        }
        #expect(whole.status == 500)
        #expect(whole.json?["error"]?["type"] == .string("server_error"))
        let events = streamed.events
        #expect(streamed.status == 200)
        #expect(events.last == "[DONE]")
        #expect(events.contains { $0.contains("\"finish_reason\":\"error\"") })
        #expect(events.contains { $0.hasPrefix("{\"error\":") })
        #expect(healthy.status == 200)
        #expect(await fixture.kvPoolRefills())
    }
}
