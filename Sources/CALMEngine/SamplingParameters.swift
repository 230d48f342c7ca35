import CALMModel
import Foundation

/// How the engine turns the model's implicit distribution into a chunk at a temperature.
public enum Sampler: Sendable, Equatable {
    /// One head sample per step: T = 1 only.
    case single
    /// The reference algorithm (the paper's Algorithm 2): N samples per step, selection among
    /// repeats; T must be 1/n.
    case batchApproximation(samples: Int)
    /// The paper's Algorithm 1: exact for any T in (0, 1], drawing samples until acceptance
    /// (at most `maxDraws` per step; the expected count grows quickly as T falls).
    case exactRejection(maxDraws: Int)
}

/// Request parameters, with the names users of LLM engines know. CALM has no logits, so there is
/// no top-p, top-k, repetition penalty or log-probabilities: temperature works through `sampler`.
///
/// ```swift
/// var p = SamplingParameters(maxTokens: 128, temperature: 0.5, seed: 7)
/// p.stopSequences = ["\n\n"]
/// ```
public struct SamplingParameters: Sendable, Equatable {
    /// Most tokens to generate.
    public var maxTokens: Int
    /// Temperature in (0, 1] (the reference's default is 1/2).
    public var temperature: Double
    /// Seed of the request's own random stream: same seed, same output, whatever else runs.
    /// nil draws a fresh seed.
    public var seed: UInt64?
    /// Generation stops before the first occurrence of any of these strings (never streamed).
    public var stopSequences: [String]
    /// Stop after a chunk that contains the end-of-text token.
    public var stopAtEndToken: Bool
    /// The temperature sampler (the reference: batch approximation with N = 200).
    public var sampler: Sampler

    public init(maxTokens: Int = 256, temperature: Double = 0.5, seed: UInt64? = nil, stopSequences: [String] = [],
                stopAtEndToken: Bool = true, sampler: Sampler = .batchApproximation(samples: 200)) {
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.seed = seed
        self.stopSequences = stopSequences
        self.stopAtEndToken = stopAtEndToken
        self.sampler = sampler
    }

    /// Checks every value; errors name the parameter.
    public func validate() throws {
        guard maxTokens >= 1 else { throw EngineError.invalidParameter(name: "maxTokens", reason: "must be at least 1, got \(maxTokens)") }
        guard temperature.isFinite, temperature > 0, temperature <= 1 else {
            throw EngineError.invalidParameter(name: "temperature", reason: "must be in (0, 1], got \(temperature)")
        }
        for s in stopSequences where s.isEmpty {
            throw EngineError.invalidParameter(name: "stopSequences", reason: "an empty stop sequence would stop at once")
        }
        switch sampler {
        case .single:
            guard temperature == 1 else {
                throw EngineError.invalidParameter(name: "sampler", reason: ".single draws at T = 1; use .batchApproximation or .exactRejection for temperature \(temperature)")
            }
        case let .batchApproximation(samples):
            guard samples >= 1 else { throw EngineError.invalidParameter(name: "samples", reason: "must be at least 1, got \(samples)") }
            do { _ = try BatchApproximation.level(forTemperature: temperature) } catch let ModelError.invalidParameter(_, reason) {
                throw EngineError.invalidParameter(name: "temperature", reason: reason)
            }
        case let .exactRejection(maxDraws):
            guard maxDraws >= 1 else { throw EngineError.invalidParameter(name: "maxDraws", reason: "must be at least 1, got \(maxDraws)") }
        }
    }
}
