import CALMTokenizer

/// One choice's `logprobs` object in OpenAI's completions shape, built chunk by chunk:
/// `{"tokens", "token_logprobs", "top_logprobs": null, "text_offset"}` (vLLM's reading: offsets
/// count Unicode scalars from the start of the completion). A token's string is its own bytes
/// decoded; one that ends inside a UTF-8 character shows U+FFFD, as OpenAI's do.
struct CompletionLogprobs {
    let tokenizer: (any TextTokenizer)?
    private var offset = 0

    init(tokenizer: (any TextTokenizer)?) { self.tokenizer = tokenizer }

    /// The object for `tokens` (the next ones of this choice) and their log-probabilities.
    mutating func object(tokens: [Int], logprobs: [Double]) -> JSONValue {
        var strings: [JSONValue] = [], values: [JSONValue] = [], offsets: [JSONValue] = []
        for (i, id) in tokens.enumerated() {
            let text = tokenizer?.decode([id]) ?? ""
            strings.append(.string(text))
            values.append(i < logprobs.count ? .number(logprobs[i]) : .null)
            offsets.append(.integer(offset))
            offset += text.unicodeScalars.count
        }
        return .object([("tokens", .array(strings)), ("token_logprobs", .array(values)), ("top_logprobs", .null),
                         ("text_offset", .array(offsets))])
    }

    /// The objects of several chunks as one (a whole, non-streamed choice).
    static func merged(_ parts: [JSONValue]) -> JSONValue {
        var merged: [String: [JSONValue]] = ["tokens": [], "token_logprobs": [], "text_offset": []]
        for part in parts {
            for key in ["tokens", "token_logprobs", "text_offset"] {
                if case let .array(items)? = part[key] { merged[key, default: []] += items }
            }
        }
        return .object([("tokens", .array(merged["tokens"] ?? [])), ("token_logprobs", .array(merged["token_logprobs"] ?? [])),
                        ("top_logprobs", .null), ("text_offset", .array(merged["text_offset"] ?? []))])
    }
}
