import CALMEngine
import Foundation

/// A `POST /v1/completions` body, read strictly: OpenAI's fields (`model`, `prompt`, `max_tokens`,
/// `temperature`, `seed`, `stop`, `stream`, `n`, `user`, `top_p`, `presence_penalty`, …) and the
/// engine's own under the CLI's option names (`sampler`, `samples`, `max_draws`, `top_k`, `min_p`,
/// `repetition_penalty`, the Token Maturation options; `ignore_eos` as in vLLM). Unknown fields are ignored.
struct CompletionRequest {
    var prompt: Prompt
    var parameters: SamplingParameters
    var stream: Bool
    var choices: Int

    /// OpenAI's default `max_tokens` for completions.
    static let defaultMaxTokens = 16

    init(body bytes: [UInt8], maxChoices: Int) throws {
        let body: JSONValue
        do { body = try JSONValue.parse(bytes) } catch let e as JSONSyntaxError {
            throw APIError(status: 400, message: "the body is not valid JSON: \(e)", code: "invalid_json")
        }
        guard case .object = body else { throw APIError(status: 400, message: "the body must be a JSON object, got \(body.typeName)") }
        switch body["prompt"] {
        case nil, .null?: throw APIError.invalidField("prompt", "is required")
        case let .string(s)?: prompt = .text(s)
        case let .array(items)?:
            var ids: [Int] = []
            for item in items {
                guard case let .integer(id) = item else {
                    throw APIError.invalidField("prompt", "must be a string or an array of token ids (one prompt per request)")
                }
                ids.append(id)
            }
            prompt = .tokens(ids)
        case let other?: throw APIError.invalidField("prompt", "must be a string or an array of token ids, got \(other.typeName)")
        }
        for field in ["model", "user"] {
            if let v = body[field], v != .null {
                guard case .string = v else { throw APIError.invalidField(field, "must be a string, got \(v.typeName)") }
            }
        }
        switch body["stream"] {
        case nil, .null?: stream = false
        case let .bool(b)?: stream = b
        case let other?: throw APIError.invalidField("stream", "must be a boolean, got \(other.typeName)")
        }
        switch body["n"] {
        case nil, .null?: choices = 1
        case let .integer(n)? where (1...max(1, maxChoices)).contains(n): choices = n
        case let .integer(n)?: throw APIError.invalidField("n", "must be in 1…\(maxChoices), got \(n)")
        case let other?: throw APIError.invalidField("n", "must be an integer, got \(other.typeName)")
        }
        var stops: [String] = []
        switch body["stop"] {
        case nil, .null?: break
        case let .string(s)?: stops = [s]
        case let .array(items)?:
            for item in items {
                guard case let .string(s) = item else { throw APIError.invalidField("stop", "must be a string or an array of strings") }
                stops.append(s)
            }
        case let other?: throw APIError.invalidField("stop", "must be a string or an array of strings, got \(other.typeName)")
        }
        var p = SamplingParameters(maxTokens: Self.defaultMaxTokens, stopSequences: stops)
        switch body["ignore_eos"] {  // vLLM's name: keep generating past the end-of-text token
        case nil, .null?: break
        case let .bool(b)?: p.stopAtEndToken = !b
        case let other?: throw APIError.invalidField("ignore_eos", "must be a boolean, got \(other.typeName)")
        }
        var fields = RequestFields(body: body)
        try SamplingOptionTable.read(from: &fields, into: &p)
        parameters = p
    }
}
