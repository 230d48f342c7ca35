import CALMServer
import Foundation
import Testing

/// HTTP details real clients rely on: `Expect: 100-continue`, HTTP/1.0 streams, pipelining.
@Suite("HTTP protocol details", .timeLimit(.minutes(5)))
struct ProtocolDetailTests {
    @Test func expectContinueGetsAnInterimResponse() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let (interim, final) = try await offPool {
            let c = try HTTPClientConnection(port: port)
            let body = #"{"prompt": [1, 2, 3], "max_tokens": 4, "temperature": 1, "sampler": "single"}"#
            try c.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
            let interim = try c.response()
            try c.send(body)
            return (interim.status, try c.response().status)
        }
        #expect(interim == 100)
        #expect(final == 200)
    }

    @Test func http10StreamsAreSentRawAndClosed() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let (response, rest) = try await offPool {
            let c = try HTTPClientConnection(port: port)
            let body = #"{"prompt": [1, 2, 3], "max_tokens": 8, "stream": true, "temperature": 1, "sampler": "single"}"#
            try c.send("POST /v1/completions HTTP/1.0\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
            let r = try c.response()
            return (r, try c.readToEnd())
        }
        #expect(response.status == 200)
        #expect(response.headers["transfer-encoding"] == nil)
        #expect(response.headers["connection"] == "close")
        #expect(rest.hasSuffix("data: [DONE]\n\n"))
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let statuses = try await offPool { () -> [Int] in
            let c = try HTTPClientConnection(port: port)
            try c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
            return try (0..<3).map { _ in try c.response().status }
        }
        #expect(statuses == [200, 404, 200])
    }
}
