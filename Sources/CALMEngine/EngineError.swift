import Foundation

/// Errors raised by the engine; each names the parameter or request at fault.
public enum EngineError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    case invalidParameter(name: String, reason: String)
    case invalidConfiguration(name: String, reason: String)
    case invalidPrompt(reason: String)
    /// The request can never fit: prompt plus maxTokens exceed the KV budget or the context.
    case requestTooLarge(reason: String)
    /// A text prompt or stop sequence was given but the engine has no tokenizer.
    case noTokenizer

    public var description: String {
        switch self {
        case let .invalidParameter(name, reason): return "parameter '\(name)': \(reason)"
        case let .invalidConfiguration(name, reason): return "engine configuration '\(name)': \(reason)"
        case let .invalidPrompt(reason): return "prompt: \(reason)"
        case let .requestTooLarge(reason): return "request can never fit: \(reason)"
        case .noTokenizer: return "this engine has no tokenizer: give the prompt as token ids"
        }
    }

    public var errorDescription: String? { description }
}
