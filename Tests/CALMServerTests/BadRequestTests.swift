import CALMServer
import Foundation
import Testing

/// What a client can send wrong: each gets its status and an OpenAI-shaped error naming the field,
/// and the server goes on serving.
@Suite("Bad requests", .timeLimit(.minutes(5)))
struct BadRequestTests {
    /// Sends `raw`, returns the response (and whether the server then closed the connection).
    static func exchange(_ port: Int, _ raw: String, finish: Bool = false) throws -> (HTTPClientConnection.Response, closed: Bool) {
        let c = try HTTPClientConnection(port: port)
        try c.send(raw)
        if finish { c.finishSending() }
        let r = try c.response()
        return (r, c.closedByServer())
    }

    static func post(_ port: Int, _ json: String, headers: [String] = []) throws -> HTTPClientConnection.Response {
        let c = try HTTPClientConnection(port: port)
        try c.post("/v1/completions", json: json, headers: headers)
        return try c.response()
    }

    @Test func wrongFieldTypesAndValuesNameTheField() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let cases: [(String, String)] = [
            (#"{"prompt": [1, 2], "max_tokens": "ten"}"#, "max_tokens"),
            (#"{"prompt": [1, 2], "max_tokens": 1.5}"#, "max_tokens"),
            (#"{"prompt": [1, 2], "max_tokens": 0}"#, "max_tokens"),
            (#"{"prompt": [1, 2], "temperature": "hot"}"#, "temperature"),
            (#"{"prompt": [1, 2], "temperature": 5}"#, "temperature"),
            (#"{"prompt": [1, 2], "seed": -1}"#, "seed"),
            (#"{"prompt": [1, 2], "stream": "yes"}"#, "stream"),
            (#"{"prompt": [1, 2], "n": 0}"#, "n"),
            (#"{"prompt": [1, 2], "stop": 3}"#, "stop"),
            (#"{"prompt": [1, 2], "stop": [""]}"#, "stop"),
            (#"{"prompt": [1, 2], "sampler": "fancy"}"#, "sampler"),
            (#"{"prompt": [1, 2], "top_p": 0.5}"#, "top_p"),
            (#"{"prompt": [1, 2], "model": 7}"#, "model"),
            (#"{"prompt": true}"#, "prompt"),
            (#"{"prompt": [1, "a"]}"#, "prompt"),
            (#"{"prompt": [99999]}"#, "prompt"),
            (#"{"prompt": []}"#, "prompt"),
            (#"{"max_tokens": 3}"#, "prompt"),
            ("{\"prompt\": [" + Array(repeating: "1", count: 1100).joined(separator: ",") + "]}", "prompt"),   // beyond the context
        ]
        let responses = try await offPool { try cases.map { try Self.post(port, $0.0) } }
        for ((body, field), r) in zip(cases, responses) {
            #expect(r.status == 400, "\(body) → \(r.status) \(r.text)")
            #expect(r.json?["error"]?["param"] == .string(field), "\(body) → \(r.text)")
            guard case let .string(message)? = r.json?["error"]?["message"] else { Issue.record("no message for \(body)"); continue }
            #expect(!message.isEmpty)
        }
        #expect(await fixture.kvPoolRefills())
    }

    @Test func brokenHTTPIsRefusedAndClosed() async throws {
        let fixture = try ServerFixture { $0.maxBodyBytes = 1000; $0.maxHeaderBytes = 2000 }
        let port = fixture.port
        let results = try await offPool { () -> [(Int, Bool, String)] in
            var out: [(Int, Bool, String)] = []
            func run(_ name: String, _ raw: String, finish: Bool = false) throws {
                let (r, closed) = try Self.exchange(port, raw, finish: finish)
                out.append((r.status, closed, name))
            }
            try run("truncated headers", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le", finish: true)
            try run("truncated body", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"prompt\"", finish: true)
            try run("garbage request line", "HELLO\r\n\r\n")
            try run("bare LF", "GET /health HTTP/1.1\nHost: x\n\n", finish: true)
            try run("no Host", "GET /health HTTP/1.1\r\n\r\n")
            try run("bad Content-Length", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -4\r\n\r\n")
            try run("oversized body", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n")
            try run("oversized headers", "GET /health HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "a", count: 3000) + "\r\n\r\n")
            try run("chunked upload", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            return out
        }
        let expected = ["truncated headers": 400, "truncated body": 400, "garbage request line": 400, "bare LF": 400, "no Host": 400,
                        "bad Content-Length": 400, "oversized body": 413, "oversized headers": 431, "chunked upload": 501]
        for (status, closed, name) in results {
            #expect(status == expected[name], "\(name) → \(status)")
            #expect(closed, "\(name): the connection stays open")
        }
        // the server still serves
        let ok = try await offPool { () -> Int in
            let c = try HTTPClientConnection(port: port)
            try c.get("/health")
            return try c.response().status
        }
        #expect(ok == 200)
    }

    @Test func invalidJSONRoutesMethodsAndKeys() async throws {
        let fixture = try ServerFixture { $0.apiKey = "sekrit" }
        let port = fixture.port
        let (badJSON, notObject, noKey, wrongKey, rightKey, unknown, wrongMethod, health) = try await offPool {
            let key = ["Authorization: Bearer sekrit"]
            let badJSON = try Self.post(port, #"{"prompt": [1, 2"#, headers: key)
            let notObject = try Self.post(port, #"[1, 2]"#, headers: key)
            let noKey = try Self.post(port, #"{"prompt": [1, 2], "max_tokens": 2}"#)
            let wrongKey = try Self.post(port, #"{"prompt": [1, 2], "max_tokens": 2}"#, headers: ["Authorization: Bearer nope"])
            let rightKey = try Self.post(port, #"{"prompt": [1, 2], "max_tokens": 2, "sampler": "single", "temperature": 1}"#, headers: key)
            let c = try HTTPClientConnection(port: port)
            try c.get("/v2/nothing", headers: key)
            let unknown = try c.response()
            try c.get("/v1/completions", headers: key)
            let wrongMethod = try c.response()
            try c.get("/health")
            return (badJSON, notObject, noKey, wrongKey, rightKey, unknown, wrongMethod, try c.response())
        }
        #expect(badJSON.status == 400 && badJSON.json?["error"]?["code"] == .string("invalid_json"))
        #expect(notObject.status == 400)
        #expect(noKey.status == 401 && wrongKey.status == 401)
        #expect(wrongKey.json?["error"]?["type"] == .string("authentication_error"))
        #expect(rightKey.status == 200, "\(rightKey.text)")
        #expect(unknown.status == 404 && unknown.json?["error"] != nil)
        #expect(wrongMethod.status == 405 && wrongMethod.headers["allow"] == "POST")
        #expect(health.status == 200)
    }

    @Test func slowClientsAreClosed() async throws {
        let fixture = try ServerFixture { $0.requestTimeout = 0.5; $0.idleTimeout = 1 }
        let port = fixture.port
        let (status, idleClosed, seconds) = try await offPool { () -> (Int, Bool, Double) in
            let start = Date()
            let slow = try HTTPClientConnection(port: port)
            try slow.send("POST /v1/completions HTTP/1.1\r\nHost: x\r\n")   // and nothing more
            let status = try slow.response().status
            let idle = try HTTPClientConnection(port: port)
            return (status, idle.closedByServer(), Date().timeIntervalSince(start))
        }
        #expect(status == 408)
        #expect(idleClosed)
        #expect(seconds < 60)   // 0.5 s and 1 s timeouts; generous for a loaded machine
    }

    @Test func connectionsBeyondTheLimitGet503() async throws {
        let fixture = try ServerFixture { $0.maxConnections = 2 }
        let port = fixture.port
        let statuses = try await offPool { () -> [Int] in
            let a = try HTTPClientConnection(port: port), b = try HTTPClientConnection(port: port)
            try a.get("/health"); _ = try a.response()
            try b.get("/health"); _ = try b.response()
            let c = try HTTPClientConnection(port: port)
            let third = try c.response().status
            withExtendedLifetime((a, b)) {}
            return [third]
        }
        #expect(statuses == [503])
    }
}

/// Requests beyond `maxRequestsInFlight` get 429 while the others run.
@Suite("Request limit", .timeLimit(.minutes(5)))
struct RequestLimitTests {
    @Test func requestsBeyondTheLimitGet429() async throws {
        let fixture = try ServerFixture { $0.maxRequestsInFlight = 1 }
        let port = fixture.port
        let (second, first) = try await offPool { () -> (HTTPClientConnection.Response?, HTTPClientConnection.Response) in
            let a = try HTTPClientConnection(port: port)
            try a.post("/v1/completions", json: #"{"prompt": [1, 2, 3], "max_tokens": 600, "stream": true, "ignore_eos": true, "temperature": 0.5, "samples": 64}"#)
            var second: HTTPClientConnection.Response?
            let first = try a.response { piece in
                if second == nil && piece.hasPrefix("data: {") {
                    let b = try HTTPClientConnection(port: port)
                    try b.post("/v1/completions", json: #"{"prompt": [1, 2], "max_tokens": 2}"#)
                    second = try b.response()
                }
            }
            return (second, first)
        }
        #expect(second?.status == 429)
        #expect(second?.headers["retry-after"] == "1")
        #expect(second?.json?["error"]?["code"] == .string("too_many_requests"))
        #expect(first.events.last == "[DONE]")
        for _ in 0..<3000 where fixture.handler.metrics.inFlight > 0 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(fixture.handler.metrics.inFlight == 0)
    }
}
