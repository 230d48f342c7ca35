import CALMServer
import Foundation
import Testing

/// `POST /v1/completions` over a raw socket: OpenAI's response shape, streaming as server-sent
/// events that add up to the whole completion, `n` choices, keep-alive.
@Suite("Completions endpoint", .timeLimit(.minutes(5)))
struct CompletionEndpointTests {
    @Test func wholeCompletionHasOpenAIShape() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let r = try await offPool {
            let c = try HTTPClientConnection(port: port)
            try c.post("/v1/completions", json: #"{"model": "tiny", "prompt": [1, 2, 3, 4, 5], "max_tokens": 12, "seed": 3, "temperature": 1, "sampler": "single", "user": "u", "unknown_field": {"x": 1}}"#)
            return try c.response()
        }
        #expect(r.status == 200, "\(r.text)")
        let json = try #require(r.json)
        #expect(json["object"] == .string("text_completion"))
        #expect(json["model"] == .string("tiny"))
        guard case let .string(id)? = json["id"] else { Issue.record("no id"); return }
        #expect(id.hasPrefix("cmpl-"))
        guard case let .array(choices)? = json["choices"], let choice = choices.first else { Issue.record("no choices"); return }
        #expect(choices.count == 1)
        #expect(choice["index"] == .integer(0))
        #expect(choice["logprobs"] == .null)
        #expect(choice["finish_reason"] == .string("length") || choice["finish_reason"] == .string("stop"))
        guard case .string? = choice["text"] else { Issue.record("no text"); return }
        #expect(json["usage"]?["prompt_tokens"] == .integer(5))
        guard case let .integer(generated)? = json["usage"]?["completion_tokens"] else { Issue.record("no usage"); return }
        #expect(generated >= 1 && generated <= 12)
        #expect(json["usage"]?["total_tokens"] == .integer(5 + generated))
        #expect(await fixture.kvPoolRefills())
    }

    @Test func streamedTextEqualsWholeTextWithASeed() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let body = #"{"prompt": "Hello there", "max_tokens": 40, "seed": 11, "temperature": 1, "sampler": "single", "stop": ["zz", "Qq"]"#
        let (whole, streamed) = try await offPool {
            let c = try HTTPClientConnection(port: port)
            try c.post("/v1/completions", json: body + "}")
            let whole = try c.response()
            // the same connection (keep-alive) streams the same request
            try c.post("/v1/completions", json: body + #", "stream": true}"#)
            return (whole, try c.response())
        }
        #expect(whole.status == 200 && streamed.status == 200)
        #expect(streamed.headers["content-type"] == "text/event-stream")
        let events = streamed.events
        #expect(events.last == "[DONE]")
        var text = "", finish: JSONValue?
        for event in events.dropLast() {
            let json = try #require(try? JSONValue.parse(Array(event.utf8)), "event is not JSON: \(event)")
            #expect(json["object"] == .string("text_completion"))
            guard case let .string(piece)? = json["choices"]?.arrayFirst?["text"] else { Issue.record("no text in \(event)"); continue }
            text += piece
            if let f = json["choices"]?.arrayFirst?["finish_reason"], f != .null { finish = f }
        }
        let wholeChoice = whole.json?["choices"]?.arrayFirst
        #expect(wholeChoice?["text"] == .string(text))
        #expect(wholeChoice?["finish_reason"] == finish)
    }

    @Test func streamOptionsIncludeUsageSendsAUsageEventLast() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let body = #"{"prompt": [1, 2, 3, 4], "max_tokens": 20, "seed": 2, "temperature": 1, "sampler": "single", "ignore_eos": true"#
        let (whole, streamed, misplaced) = try await offPool {
            let c = try HTTPClientConnection(port: port)
            try c.post("/v1/completions", json: body + "}")
            let whole = try c.response()
            try c.post("/v1/completions", json: body + #", "stream": true, "stream_options": {"include_usage": true}}"#)
            let streamed = try c.response()
            try c.post("/v1/completions", json: body + #", "stream_options": {"include_usage": true}}"#)
            return (whole, streamed, try c.response())
        }
        let events = streamed.events
        #expect(events.last == "[DONE]")
        let usageEvent = try #require(events.dropLast().last.flatMap { try? JSONValue.parse(Array($0.utf8)) })
        #expect(usageEvent["choices"] == .array([]))
        #expect(usageEvent["usage"] == whole.json?["usage"], "\(usageEvent.serialized) vs \(whole.text)")
        #expect(usageEvent["usage"]?["completion_tokens"] == .integer(20))
        // every other event has its choice and no usage
        for e in events.dropLast(2) { #expect(e.contains("\"choices\":[{") && !e.contains("\"usage\"")) }
        #expect(misplaced.status == 400 && misplaced.json?["error"]?["param"] == .string("stream_options"))
    }

    @Test func severalChoicesAreIndependent() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let (whole, streamed) = try await offPool {
            let c = try HTTPClientConnection(port: port)
            try c.post("/v1/completions", json: #"{"prompt": [7, 8, 9], "max_tokens": 24, "n": 3, "seed": 5, "temperature": 1, "sampler": "single"}"#)
            let whole = try c.response()
            try c.post("/v1/completions", json: #"{"prompt": [7, 8, 9], "max_tokens": 24, "n": 3, "seed": 5, "temperature": 1, "sampler": "single", "stream": true}"#)
            return (whole, try c.response())
        }
        guard case let .array(choices)? = whole.json?["choices"] else { Issue.record("no choices: \(whole.text)"); return }
        #expect(choices.map { $0["index"] } == [.integer(0), .integer(1), .integer(2)])
        var texts = ["", "", ""]
        for event in streamed.events.dropLast() {
            guard let json = try? JSONValue.parse(Array(event.utf8)), let c = json["choices"]?.arrayFirst,
                  case let .integer(i)? = c["index"], case let .string(t)? = c["text"], (0..<3).contains(i) else {
                Issue.record("bad event \(event)"); continue
            }
            texts[i] += t
        }
        #expect(choices.map { $0["text"] } == texts.map(JSONValue.string))
        #expect(await fixture.kvPoolRefills())
    }

    @Test func modelsHealthAndMetrics() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let (models, health, metrics) = try await offPool {
            let c = try HTTPClientConnection(port: port)
            try c.post("/v1/completions", json: #"{"prompt": [1, 2], "max_tokens": 8, "sampler": "single", "temperature": 1}"#)
            _ = try c.response()
            try c.get("/v1/models")
            let models = try c.response()
            try c.get("/health")
            let health = try c.response()
            try c.get("/metrics")
            return (models, health, try c.response())
        }
        #expect(models.json?["data"]?.arrayFirst?["id"] == .string("tiny"))
        #expect(health.json?["status"] == .string("ok"))
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        let samples = try PrometheusText.parse(metrics.text)
        #expect(samples["calm_kv_blocks_total"] == Double(fixture.engine.kvBlocksTotal))
        #expect(samples["calm_kv_blocks_in_use"] == 0)
        #expect(samples["calm_requests_in_flight"] == 0)
        #expect((samples["calm_requests_total{outcome=\"length\"}"] ?? 0) + (samples["calm_requests_total{outcome=\"stop\"}"] ?? 0) == 1)
        #expect(samples["calm_request_duration_seconds_count"] == 1)
        #expect(samples["calm_request_duration_seconds_bucket{le=\"+Inf\"}"] == 1)
        #expect(samples["calm_prompt_tokens_total"] == 2)
    }
}

extension JSONValue {
    /// The first element of an array.
    var arrayFirst: JSONValue? {
        guard case let .array(items) = self else { return nil }
        return items.first
    }
}

/// A strict reader of the Prometheus text format: `# HELP`/`# TYPE` comments and
/// `name{labels} value` samples; anything else fails.
enum PrometheusText {
    struct Malformed: Error, CustomStringConvertible { var description: String }

    static func parse(_ text: String) throws -> [String: Double] {
        var samples: [String: Double] = [:]
        var typed: Set<String> = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            if line.hasPrefix("# HELP ") { continue }
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
                    throw Malformed(description: "bad TYPE line: \(line)")
                }
                typed.insert(String(parts[2]))
                continue
            }
            guard let space = line.lastIndex(of: " ") else { throw Malformed(description: "no value: \(line)") }
            let key = String(line[..<space]), valueText = line[line.index(after: space)...]
            guard let value = Double(valueText) else { throw Malformed(description: "bad value: \(line)") }
            let name = key.split(separator: "{").first.map(String.init) ?? key
            guard name.range(of: "^[a-zA-Z_:][a-zA-Z0-9_:]*$", options: .regularExpression) != nil else { throw Malformed(description: "bad name: \(line)") }
            if key.contains("{") {
                guard key.hasSuffix("}"), key.range(of: #"^[^{]+\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)+\}$"#, options: .regularExpression) != nil else {
                    throw Malformed(description: "bad labels: \(line)")
                }
            }
            let family = ["_bucket", "_sum", "_count"].reduce(name) { n, suffix in n.hasSuffix(suffix) && typed.contains(String(n.dropLast(suffix.count))) ? String(n.dropLast(suffix.count)) : n }
            guard typed.contains(family) else { throw Malformed(description: "sample without TYPE: \(line)") }
            samples[key] = value
        }
        return samples
    }
}
