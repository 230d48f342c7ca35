import CALMEngine
import CALMModel
import Foundation

/// An error answered in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with its
/// HTTP status.
public struct APIError: Error, Equatable, CustomStringConvertible {
    public var status: Int
    public var message: String
    public var type: String
    /// The request field at fault, when one is.
    public var param: String?
    public var code: String?

    public init(status: Int, message: String, type: String = "invalid_request_error", param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    public var description: String { "\(status) \(message)" }

    /// A request field of the wrong type or value (400).
    public static func invalidField(_ param: String, _ message: String) -> APIError {
        APIError(status: 400, message: "'\(param)': \(message)", param: param, code: "invalid_value")
    }

    /// The body as JSON.
    public var json: JSONValue {
        .object([("error", .object([("message", .string(message)), ("type", .string(type)),
                                    ("param", param.map(JSONValue.string) ?? .null), ("code", code.map(JSONValue.string) ?? .null)]))])
    }

    /// The request field that sets a `SamplingParameters` field (`maxTokens` → `max_tokens`).
    public static func fieldName(forParameter name: String) -> String {
        if name == "stopSequences" { return "stop" }
        let option = SamplingOptionTable.optionForParameter[name].flatMap { $0.split(separator: " ").first.map(String.init) } ?? name
        return option.replacingOccurrences(of: "-", with: "_")
    }

    /// An engine or model error raised when a request was submitted, as the client should see it.
    public static func from(engineError error: any Error) -> APIError {
        switch error {
        case let EngineError.invalidParameter(name, reason), let ModelError.invalidParameter(name, reason):
            return invalidField(fieldName(forParameter: name), reason)
        case let EngineError.invalidPrompt(reason):
            return APIError(status: 400, message: "'prompt': \(reason)", param: "prompt", code: "invalid_value")
        case let EngineError.requestTooLarge(reason):
            return APIError(status: 400, message: "the prompt plus max_tokens can never fit: \(reason)", param: "prompt",
                            code: "context_length_exceeded")
        case EngineError.noTokenizer:
            return APIError(status: 400, message: "this model has no tokenizer: give the prompt (and no stop) as token ids", param: "prompt")
        case let api as APIError:
            return api
        default:
            return APIError(status: 500, message: "\(error)", type: "server_error")
        }
    }
}
