import CALMEngine

/// OpenAI's `finish_reason` for the engine's completion reasons.
enum FinishReason {
    static func name(_ reason: CompletionReason) -> String {
        switch reason {
        case .endToken, .stopSequence: return "stop"
        case .maxTokens, .contextFull: return "length"
        case .cancelled: return "cancelled"
        case .error: return "error"
        }
    }
}
