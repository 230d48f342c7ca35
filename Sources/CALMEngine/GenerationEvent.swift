import CALMModel
import Foundation

/// What a generation stream yields.
public enum GenerationEvent: Sendable, Equatable {
    /// A decoded chunk: its ids and the text it completes (whole characters only; text that could
    /// still become a stop sequence is held back).
    case chunk(GeneratedChunk)
    /// The last event of every stream.
    case completed(CompletionInfo)
}

/// One generated chunk.
public struct GeneratedChunk: Sendable, Equatable {
    /// The chunk's token ids (`[PAD]` removed; cut to `maxTokens`).
    public var tokens: [Int]
    /// Text released by this chunk.
    public var text: String
    /// 0-based chunk number in this request.
    public var index: Int
    /// Log-probability of each id in `tokens` under the model (before penalties and filters), when
    /// the request set `logprobs` (discrete models only).
    public var logprobs: [Double]?
    /// Token Maturation: each token's maturation statistics (entropy at top-k, cosine to the
    /// nearest embedding, top-1 − top-2 gap, lock step, distinct candidates), when the request set
    /// `maturation.diagnostics`.
    public var diagnostics: [TokenMaturationDiagnostics]?

    public init(tokens: [Int], text: String, index: Int, logprobs: [Double]? = nil, diagnostics: [TokenMaturationDiagnostics]? = nil) {
        self.tokens = tokens
        self.text = text
        self.index = index
        self.logprobs = logprobs
        self.diagnostics = diagnostics
    }
}

/// Why a request ended.
public enum CompletionReason: Sendable, Equatable, CustomStringConvertible {
    case endToken
    case stopSequence(String)
    case maxTokens
    case contextFull
    case cancelled
    case error(String)

    public var description: String {
        switch self {
        case .endToken: return "end_token"
        case let .stopSequence(s): return "stop_sequence(\(s.debugDescription))"
        case .maxTokens: return "max_tokens"
        case .contextFull: return "context_full"
        case .cancelled: return "cancelled"
        case let .error(e): return "error(\(e))"
        }
    }
}

/// Sampler statistics of one request.
public struct SamplerStatistics: Sendable, Equatable {
    /// Head samples drawn (all of them, including discarded ones).
    public var samplesDrawn = 0
    /// CALM: rows of the decoder's vocabulary argmax computed for this request (samples × K under
    /// full decoding; fewer under lazy decoding, the engine's default).
    public var argmaxRows = 0
    /// Chunks accepted (one per step).
    public var accepted = 0
    /// Steps at which the exact sampler hit `maxDraws` before an exact acceptance.
    public var truncatedSteps = 0
    /// For the batch approximation: how many steps selected at each cascade level n, n−1, …, 1.
    public var cascadeLevels: [Int: Int] = [:]
}

/// The summary carried by `.completed`.
public struct CompletionInfo: Sendable, Equatable {
    public var reason: CompletionReason
    public var promptTokens: Int
    public var generatedTokens: Int
    public var chunks: Int
    /// Seconds from submission to the first chunk (nil if none was produced).
    public var timeToFirstChunk: Double?
    /// Seconds between consecutive chunks (the first measured from submission).
    public var chunkSeconds: [Double]
    /// Seconds from submission to completion.
    public var totalSeconds: Double
    public var sampler: SamplerStatistics

    /// Generated tokens per second after the first chunk (the decode rate; 0 with fewer than two
    /// chunks).
    public var tokensPerSecond: Double {
        guard chunks > 1, let first = timeToFirstChunk, totalSeconds > first else { return 0 }
        let firstChunkTokens = Double(generatedTokens) * (1 / Double(chunks))
        return (Double(generatedTokens) - firstChunkTokens) / (totalSeconds - first)
    }

    public init(reason: CompletionReason, promptTokens: Int, generatedTokens: Int, chunks: Int, timeToFirstChunk: Double?,
                chunkSeconds: [Double], totalSeconds: Double, sampler: SamplerStatistics) {
        self.reason = reason
        self.promptTokens = promptTokens
        self.generatedTokens = generatedTokens
        self.chunks = chunks
        self.timeToFirstChunk = timeToFirstChunk
        self.chunkSeconds = chunkSeconds
        self.totalSeconds = totalSeconds
        self.sampler = sampler
    }
}

/// A whole completion (`CALMEngine.complete`).
public struct Completion: Sendable, Equatable {
    public var text: String
    public var tokens: [Int]
    public var info: CompletionInfo
}
