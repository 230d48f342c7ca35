import CALMEngine
import Foundation

/// A `POST /v1/completions` body, read strictly: OpenAI's fields (`model`, `prompt`, `max_tokens`,
/// `temperature`, `seed`, `stop`, `stream`, `stream_options`, `n`, `user`, `top_p`, `presence_penalty`, …) and the
/// engine's own under the CLI's option names (`sampler`, `samples`, `max_draws`, `top_k`, `min_p`,
/// `repetition_penalty`, the Token Maturation options; `ignore_eos` as in vLLM). Unknown fields are ignored.
package struct CompletionRequest {
    package var prompt: Prompt
    package var parameters: SamplingParameters
    package var stream: Bool
    /// `stream_options.include_usage`: a last event before `[DONE]` carries `usage` (and no choices).
    package var streamUsage: Bool
    package var choices: Int

    /// OpenAI's default `max_tokens` for completions.
    static let defaultMaxTokens = 16

    /// The body that reads back as `prompt` and `parameters` (what `calm bench-serve --http` sends):
    /// the table's sampling fields plus `prompt`, `stop`, `ignore_eos`, `n` and the stream fields.
    package static func body(prompt: Prompt, parameters: SamplingParameters, stream: Bool, streamUsage: Bool = false,
                             choices: Int = 1) -> JSONValue {
        var members: [(String, JSONValue)] = []
        switch prompt {
        case let .text(s): members.append(("prompt", .string(s)))
        case let .tokens(ids): members.append(("prompt", .array(ids.map { .integer($0) })))
        }
        members += SamplingOptionTable.requestFields(for: parameters)
        if !parameters.stopSequences.isEmpty { members.append(("stop", .array(parameters.stopSequences.map { .string($0) }))) }
        if !parameters.stopAtEndToken { members.append(("ignore_eos", .bool(true))) }
        if choices != 1 { members.append(("n", .integer(choices))) }
        if stream {
            members.append(("stream", .bool(true)))
            if streamUsage { members.append(("stream_options", .object([("include_usage", .bool(true))]))) }
        }
        return .object(members)
    }

    package init(body bytes: [UInt8], maxChoices: Int) throws {
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
        switch body["stream_options"] {
        case nil, .null?: streamUsage = false
        case .object?:
            guard stream else { throw APIError.invalidField("stream_options", "is only allowed when stream is true") }
            switch body["stream_options"]?["include_usage"] {
            case nil, .null?: streamUsage = false
            case let .bool(b)?: streamUsage = b
            case let other?: throw APIError.invalidField("stream_options.include_usage", "must be a boolean, got \(other.typeName)")
            }
        case let other?: throw APIError.invalidField("stream_options", "must be an object, got \(other.typeName)")
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
