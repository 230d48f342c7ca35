import CALMEngine
import CALMModel
import CALMServer
import CALMTestSupport
import Foundation
import Testing

/// `logprobs` on a discrete model: each token with its log-probability and text offset, in
/// OpenAI's completions shape, the same whole and streamed; CALM refuses the field by name.
@Suite("Completion logprobs", .timeLimit(.minutes(3)))
struct LogprobsTests {
    /// A server over a tiny random Llama whose vocabulary is the fixture tokenizer's 512 ids.
    static func llamaFixture() throws -> ServerFixture {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("server-llama-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var shape = TinyLlama.Shape(vocab: 512, hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2)
        shape.logitScale = 3
        let model = try TinyLlama.load(try TinyLlama.write(to: dir, shape: shape, seed: 3))
        let tokenizer = try #require(ServerFixture.tokenizer)
        let engine = try CALMEngine(model: model, tokenizer: tokenizer, configuration: EngineConfiguration(kvCacheBytes: 16 << 20))
        return try ServerFixture(engine: engine, modelName: "tiny-llama")
    }

    struct Tokens: Equatable { var tokens: [String] = [], logprobs: [Double] = [], offsets: [Int] = [] }

    static func tokens(_ logprobs: JSONValue?) -> Tokens {
        var t = Tokens()
        if case let .array(items)? = logprobs?["tokens"] { t.tokens = items.compactMap { if case let .string(s) = $0 { return s }; return nil } }
        if case let .array(items)? = logprobs?["token_logprobs"] {
            t.logprobs = items.compactMap { switch $0 { case let .number(d): return d; case let .integer(i): return Double(i); default: return nil } }
        }
        if case let .array(items)? = logprobs?["text_offset"] { t.offsets = items.compactMap { if case let .integer(i) = $0 { return i }; return nil } }
        return t
    }

    @Test func tokensLogprobsAndOffsetsWholeAndStreamed() async throws {
        let fixture = try Self.llamaFixture()
        let port = fixture.port
        let body = #"{"prompt": [5, 6, 7], "max_tokens": 12, "temperature": 0.7, "seed": 9, "logprobs": 1, "ignore_eos": true"#
        let (whole, streamed) = try await offPool {
            let c = try HTTPClientConnection(port: port)
            try c.post("/v1/completions", json: body + "}")
            let whole = try c.response()
            try c.post("/v1/completions", json: body + #", "stream": true}"#)
            return (whole, try c.response())
        }
        #expect(whole.status == 200, "\(whole.text)")
        let choice = whole.json?["choices"]?.arrayFirst
        let t = Self.tokens(choice?["logprobs"])
        #expect(t.tokens.count == 12 && t.logprobs.count == 12 && t.offsets.count == 12, "\(whole.text)")
        #expect(t.logprobs.allSatisfy { $0 <= 0 && $0.isFinite })
        guard case let .string(text)? = choice?["text"] else { Issue.record("no text"); return }
        #expect(t.tokens.joined() == text, "every id of this tokenizer decodes on its own")
        var expected = 0
        for (s, o) in zip(t.tokens, t.offsets) { #expect(o == expected); expected += s.unicodeScalars.count }
        #expect(choice?["logprobs"]?["top_logprobs"] == .null)
        // streamed: the events' pieces add up to the same tokens and values
        var s = Tokens()
        for e in streamed.events.dropLast() {
            guard let j = try? JSONValue.parse(Array(e.utf8)), let lp = j["choices"]?.arrayFirst?["logprobs"], lp != .null else { continue }
            let part = Self.tokens(lp)
            s.tokens += part.tokens; s.logprobs += part.logprobs; s.offsets += part.offsets
        }
        #expect(s == t)
    }

    @Test func calmRefusesLogprobsByName() async throws {
        let fixture = try ServerFixture()
        let port = fixture.port
        let r = try await offPool {
            let c = try HTTPClientConnection(port: port)
            try c.post("/v1/completions", json: #"{"prompt": [1, 2], "max_tokens": 4, "logprobs": 1}"#)
            return try c.response()
        }
        #expect(r.status == 400 && r.json?["error"]?["param"] == .string("logprobs"), "\(r.text)")
    }
}
