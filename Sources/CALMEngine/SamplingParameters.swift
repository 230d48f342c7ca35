import CALMModel
import Foundation

/// Request parameters, with the names users of LLM engines know. Which ones apply depends on the
/// model family, and a request that sets one its family does not have fails with a typed error
/// naming it:
/// - CALM has no logits: temperature works through `sampler` (default: the reference's batch
///   approximation with N = 200, T = 1/n); top-k/p, min-p, penalties and log-probabilities do not exist.
/// - Discrete models (Llama, GPT-2) sample from their logits: `temperature` (0 = greedy), `topK`,
///   `topP`, `minP`, the three penalties and `logprobs`; `sampler` must stay nil.
/// - Token Maturation commits the nearest embedding of a matured vector: no sampling, so no
///   temperature (ignored) and none of the above; its settings are `maturation`, and its only
///   randomness is the seeded embryos.
///
/// ```swift
/// var p = SamplingParameters(maxTokens: 128, temperature: 0.5, seed: 7)
/// p.stopSequences = ["\n\n"]
/// var q = SamplingParameters(maxTokens: 64, temperature: 0.8, seed: 1)   // for a Llama model
/// q.topP = 0.9; q.repetitionPenalty = 1.2; q.logprobs = true
/// var t = SamplingParameters(maxTokens: 64, seed: 5)                     // for a Token Maturation model
/// t.maturation = TokenMaturationParameters(tailLength: 16, guidanceScale: 2)
/// ```
public struct SamplingParameters: Sendable, Equatable {
    /// The default `maxTokens`, the same for the API and the CLI.
    public static let defaultMaxTokens = 256

    /// Most tokens to generate (larger values are clamped to what the context can hold).
    public var maxTokens: Int
    /// Sampling temperature. CALM: in (0, 1] (the reference's default is 1/2). Discrete: ≥ 0.
    public var temperature: Double
    /// Seed of the request's own random stream: same seed, same output, whatever else runs.
    /// nil draws a fresh seed.
    public var seed: UInt64?
    /// Generation stops before the first occurrence of any of these strings (never streamed).
    public var stopSequences: [String]
    /// Stop after a step that produced the end-of-text token.
    public var stopAtEndToken: Bool
    /// CALM's temperature sampler; nil = the family's default (CALM: batch approximation, N = 200).
    public var sampler: Sampler?
    /// Discrete models: keep only the k most likely tokens (nil: off).
    public var topK: Int?
    /// Discrete models: nucleus sampling threshold in (0, 1] (1: off).
    public var topP: Double
    /// Discrete models: drop tokens below minP × the top token's probability (0: off).
    public var minP: Double
    /// Discrete models: CTRL repetition penalty over prompt and output (1: off).
    public var repetitionPenalty: Double
    /// Discrete models: subtracted from the logit of every token already in the output (0: off).
    public var presencePenalty: Double
    /// Discrete models: subtracted per occurrence in the output (0: off).
    public var frequencyPenalty: Double
    /// Discrete models: report each chosen token's log-probability (`GeneratedChunk.logprobs`).
    public var logprobs: Bool
    /// Token Maturation's settings (`tailLength`, `guidanceScale`, `maturityMax`, `maturationRate`,
    /// `embryoScale`, `alignment`, the perturbations, `diagnostics`); nil: the model's defaults. The
    /// request's own `maxTokens`, `seed` and `stopAtEndToken` apply, not the copies inside.
    public var maturation: TokenMaturationParameters?

    public init(maxTokens: Int = SamplingParameters.defaultMaxTokens, temperature: Double = 0.5, seed: UInt64? = nil,
                stopSequences: [String] = [], stopAtEndToken: Bool = true, sampler: Sampler? = nil,
                topK: Int? = nil, topP: Double = 1, minP: Double = 0, repetitionPenalty: Double = 1,
                presencePenalty: Double = 0, frequencyPenalty: Double = 0, logprobs: Bool = false,
                maturation: TokenMaturationParameters? = nil) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.seed = seed
        self.stopSequences = stopSequences
        self.stopAtEndToken = stopAtEndToken
        self.sampler = sampler
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.logprobs = logprobs
        self.maturation = maturation
    }

    /// Checks what every family shares; the family checks the rest (`ModelFamily.validate`).
    public func validate() throws {
        guard maxTokens >= 1 else { throw EngineError.invalidParameter(name: "maxTokens", reason: "must be at least 1, got \(maxTokens)") }
        guard temperature.isFinite, temperature >= 0 else {
            throw EngineError.invalidParameter(name: "temperature", reason: "must be a finite number ≥ 0, got \(temperature)")
        }
        for s in stopSequences where s.isEmpty {
            throw EngineError.invalidParameter(name: "stopSequences", reason: "an empty stop sequence would stop at once")
        }
    }

    /// The discrete-model controls these parameters set, by name (for families that have none).
    var discreteControlsSet: [String] {
        var names: [String] = []
        if let topK, topK != 0 { names.append("topK") }
        if topP != 1 { names.append("topP") }
        if minP != 0 { names.append("minP") }
        if repetitionPenalty != 1 { names.append("repetitionPenalty") }
        if presencePenalty != 0 { names.append("presencePenalty") }
        if frequencyPenalty != 0 { names.append("frequencyPenalty") }
        if logprobs { names.append("logprobs") }
        return names
    }

    /// The token sampler of a discrete model.
    var tokenSampler: TokenSampler {
        TokenSampler(temperature: temperature, topK: topK, topP: topP, minP: minP, repetitionPenalty: repetitionPenalty,
                     presencePenalty: presencePenalty, frequencyPenalty: frequencyPenalty)
    }
}
