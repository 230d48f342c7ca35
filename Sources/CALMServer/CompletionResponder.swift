import CALMEngine
import Foundation

/// Answers one `POST /v1/completions`: parses the body, starts one engine request per choice, and
/// writes the completion whole or as server-sent events (`data: {json}` per chunk, `data: [DONE]`
/// at the end). Choices are read one after another; the others wait in their bounded streams.
struct CompletionResponder {
    let handler: OpenAIHandler
    let writer: HTTPResponseWriter
    let keepAlive: Bool

    /// Returns whether the connection may serve another request; throws when the client is gone.
    func respond(body: [UInt8]) throws -> Bool {
        let started = ClientSocket.now()
        let request: CompletionRequest
        do {
            request = try CompletionRequest(body: body, maxChoices: handler.configuration.maxChoices)
        } catch {
            return try reject(APIError.from(engineError: error))
        }
        let limit = handler.configuration.maxRequestsInFlight
        guard handler.metrics.admit(limit: limit) else {
            handler.metrics.requestRejected(outcome: "too_many_requests")
            try writer.send(status: 429, json: APIError(status: 429, message: "\(limit) completion requests are in flight already; retry later",
                                                        type: "rate_limit_error", code: "too_many_requests").json,
                            headers: [("Retry-After", "1")], keepAlive: keepAlive)
            return keepAlive
        }
        var readers: [BlockingEventReader] = []
        do {
            for i in 0..<request.choices {
                var p = request.parameters
                if let seed = p.seed { p.seed = seed &+ UInt64(i) }
                readers.append(BlockingEventReader(try handler.engine.generate(prompt: request.prompt, parameters: p)))
            }
        } catch {
            readers.forEach { $0.cancel() }
            handler.metrics.withdraw()
            return try reject(APIError.from(engineError: error))
        }
        var outcome = "cancelled", promptTokens = 0, completionTokens = 0
        defer {
            readers.forEach { $0.cancel() }
            handler.metrics.requestFinished(outcome: outcome, promptTokens: promptTokens, completionTokens: completionTokens,
                                            seconds: ClientSocket.now() - started)
        }
        let id = "cmpl-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let created = Int(Date().timeIntervalSince1970)
        func envelope(_ choices: [JSONValue], usage: JSONValue? = nil) -> JSONValue {
            var members: [(String, JSONValue)] = [("id", .string(id)), ("object", .string("text_completion")), ("created", .integer(created)),
                                                  ("model", .string(handler.modelName)), ("choices", .array(choices))]
            if let usage { members.append(("usage", usage)) }
            return .object(members)
        }
        func choice(_ index: Int, _ text: String, _ finish: String?, logprobs: JSONValue = .null) -> JSONValue {
            .object([("text", .string(text)), ("index", .integer(index)), ("logprobs", logprobs), ("finish_reason", finish.map(JSONValue.string) ?? .null)])
        }
        // `logprobs` (discrete models): each chunk's tokens with their log-probabilities, per choice
        let wantsLogprobs = request.parameters.logprobs
        var logprobs = (0..<request.choices).map { _ in CompletionLogprobs(tokenizer: handler.engine.tokenizer) }
        func usage() -> JSONValue {
            .object([("prompt_tokens", .integer(promptTokens)), ("completion_tokens", .integer(completionTokens)),
                     ("total_tokens", .integer(promptTokens + completionTokens))])
        }
        // A streamed piece of text is the common event: its JSON is written from a prefix made
        // once per request, the text being the only part to escape (the same bytes as `envelope`).
        let chunkPrefix = "data: " + String(envelope([]).serialized.dropLast(3)) + "[{\"text\":"
        func chunkEvent(_ index: Int, _ text: String) -> String {
            chunkPrefix + JSONValue.string(text).serialized + ",\"index\":\(index),\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        }
        assert(chunkEvent(1, "a\"é\n") == "data: \(envelope([choice(1, "a\"é\n", nil)]).serialized)\n\n")  // debug builds: the tests
        let abandon = { writer.clientGone }
        var failure: String?
        var reasons: [String] = []
        if request.stream {
            try writer.beginStream(status: 200, contentType: "text/event-stream", keepAlive: keepAlive)
            for (index, reader) in readers.enumerated() {
                while let event = reader.next(abandon: abandon) {
                    switch event {
                    case let .chunk(c):
                        completionTokens += c.tokens.count
                        if wantsLogprobs {
                            // every token's log-probability goes out, also when its text is still held back
                            let lp = logprobs[index].object(tokens: c.tokens, logprobs: c.logprobs ?? [])
                            try writer.sendChunk("data: \(envelope([choice(index, c.text, nil, logprobs: lp)]).serialized)\n\n")
                        } else if !c.text.isEmpty {
                            try writer.sendChunk(chunkEvent(index, c.text))
                        }
                    case let .completed(info):
                        promptTokens = info.promptTokens
                        let finish = FinishReason.name(info.reason)
                        reasons.append(finish)
                        if case let .error(message) = info.reason { failure = message }
                        try writer.sendChunk("data: \(envelope([choice(index, "", finish)]).serialized)\n\n")
                    }
                }
                if reasons.count <= index { throw ClientSocket.WriteFailed() }  // client gone: the request was cancelled
            }
            if let failure {
                try writer.sendChunk("data: \(APIError(status: 500, message: "generation failed: \(failure)", type: "server_error").json.serialized)\n\n")
            } else if request.streamUsage {
                try writer.sendChunk("data: \(envelope([], usage: usage()).serialized)\n\n")
            }
            try writer.sendChunk("data: [DONE]\n\n")
            try writer.endStream()
        } else {
            var texts: [String] = []
            var logprobParts: [[JSONValue]] = Array(repeating: [], count: readers.count)
            for (index, reader) in readers.enumerated() {
                var text = ""
                while let event = reader.next(abandon: abandon) {
                    switch event {
                    case let .chunk(c):
                        text += c.text
                        completionTokens += c.tokens.count
                        if wantsLogprobs { logprobParts[index].append(logprobs[index].object(tokens: c.tokens, logprobs: c.logprobs ?? [])) }
                    case let .completed(info):
                        promptTokens = info.promptTokens
                        reasons.append(FinishReason.name(info.reason))
                        if case let .error(message) = info.reason { failure = message }
                    }
                }
                if reasons.count <= texts.count { throw ClientSocket.WriteFailed() }  // client gone: the request was cancelled
                texts.append(text)
            }
            if let failure {
                outcome = "error"
                try writer.send(status: 500, json: APIError(status: 500, message: "generation failed: \(failure)", type: "server_error").json,
                                keepAlive: keepAlive)
                return keepAlive
            }
            let choices = texts.enumerated().map {
                choice($0.offset, $0.element, reasons[$0.offset], logprobs: wantsLogprobs ? CompletionLogprobs.merged(logprobParts[$0.offset]) : .null)
            }
            try writer.send(status: 200, json: envelope(choices, usage: usage()), keepAlive: keepAlive)
        }
        outcome = failure != nil ? "error" : (reasons.first ?? "cancelled")
        return keepAlive
    }

    private func reject(_ error: APIError) throws -> Bool {
        handler.metrics.requestRejected(outcome: error.status == 500 ? "error" : "bad_request")
        try writer.send(status: error.status, json: error.json, keepAlive: keepAlive)
        return keepAlive
    }
}
