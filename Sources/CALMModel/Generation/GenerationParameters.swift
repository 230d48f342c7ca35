import Foundation

/// Sampling parameters with the names users know. CALM has no logits, so there is no top-p,
/// top-k or repetition penalty: temperature works by drawing several samples per step and
/// selecting among repeats.
public struct GenerationParameters: Sendable, Equatable {
    /// Most tokens to generate (the last chunk is cut to this count).
    public var maxTokens: Int
    /// Sampling temperature in (0, 1]. With the batch approximation T must be 1/n.
    public var temperature: Double
    /// How a chunk is chosen at `temperature` (the reference: the batch approximation, N = 200).
    public var sampler: Sampler
    /// Seed for the request's random stream; nil draws one from the system.
    public var seed: UInt64?
    /// Stop when a chunk contains the end-of-text token.
    public var stopAtEndToken: Bool

    public init(maxTokens: Int = 256, temperature: Double = 0.5, sampler: Sampler = .reference, seed: UInt64? = nil,
                stopAtEndToken: Bool = true) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.sampler = sampler
        self.seed = seed
        self.stopAtEndToken = stopAtEndToken
    }

    /// Checks the parameters and builds the step's chunk selector (errors name the parameter).
    public func makeSelector() throws -> any ChunkSelector {
        guard maxTokens >= 1 else { throw ModelError.invalidParameter(name: "maxTokens", reason: "must be at least 1, got \(maxTokens)") }
        return try sampler.makeSelector(temperature: temperature)
    }
}

/// Why a generation ended.
public enum StopReason: String, Sendable, Codable {
    /// A chunk contained the end-of-text token.
    case endToken = "end_token"
    /// `maxTokens` were generated.
    case maxTokens = "max_tokens"
    /// The model's context (max_position_embeddings chunks) is full.
    case contextFull = "context_full"
    /// The caller stopped it.
    case cancelled
}

/// The outcome of a single-sequence generation.
public struct GenerationResult: Sendable {
    /// Generated ids with `[PAD]` removed (the prompt excluded).
    public var tokens: [Int]
    public var promptTokens: Int
    public var steps: Int
    public var stopReason: StopReason
    public var timeToFirstChunk: Double
    public var seconds: Double
    /// Head samples drawn over the whole generation.
    public var samplesDrawn: Int
    /// Rows of the decoder's vocabulary argmax computed over the whole generation (samples × K
    /// under full decoding; fewer under lazy decoding).
    public var argmaxRows: Int = 0
}
