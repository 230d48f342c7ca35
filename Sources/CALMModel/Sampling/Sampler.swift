import Foundation

/// How CALM turns the model's implicit distribution into a chunk at a temperature: the one sampler
/// configuration, shared by the engine (`SamplingParameters.sampler`), single-sequence generation
/// (`GenerationParameters.sampler`) and the conformance replays. `makeSelector(temperature:)` is
/// the factory that validates it once and builds the per-step state machine.
///
/// ```swift
/// var selector = try Sampler.exactRejection(maxDraws: 10_000).makeSelector(temperature: 0.4)
/// ```
public enum Sampler: Sendable, Equatable {
    /// One head sample per step: T = 1 only.
    case single
    /// The reference algorithm (the paper's Algorithm 2): N samples per step, selection among
    /// repeats; T must be 1/n.
    case batchApproximation(samples: Int)
    /// The paper's Algorithm 1: exact for any T in (0, 1], drawing samples until acceptance
    /// (at most `maxDraws` per step; the expected count grows quickly as T falls).
    case exactRejection(maxDraws: Int)

    /// Samples the exact sampler draws per batched round unless told otherwise (engine and
    /// single-sequence generation share it, so they give the same tokens).
    public static let defaultDrawsPerRound = 8

    /// Most head samples a batch-approximation step may draw (the reference uses 200): each is a
    /// full head pass and decode, so more would only let one request stall the engine.
    public static let maxSamples = 4096
    /// Most draws the exact sampler may spend on one chunk (it pauses between engine steps, so it
    /// never holds others up, but a request must end).
    public static let maxDrawsLimit = 1_000_000

    /// The reference's default: the batch approximation with N = 200.
    public static let reference = Sampler.batchApproximation(samples: 200)

    /// A fresh selector for one step at temperature `t`, after checking the combination (errors
    /// name the parameter). At T = 1 every sampler is one head sample, as in the reference.
    public func makeSelector(temperature t: Double) throws -> any ChunkSelector {
        guard t.isFinite, t > 0, t <= 1 else {
            throw ModelError.invalidParameter(name: "temperature", reason: "CALM samples at T in (0, 1], got \(t)")
        }
        switch self {
        case .single:
            guard t == 1 else {
                throw ModelError.invalidParameter(name: "sampler", reason: "the single sampler draws at T = 1; use the batch approximation or exact rejection for temperature \(t)")
            }
            return SingleSampleSelector()
        case let .batchApproximation(samples):
            guard samples >= 1, samples <= Self.maxSamples else {
                throw ModelError.invalidParameter(name: "samples", reason: "must be in 1…\(Self.maxSamples), got \(samples)")
            }
            let level = try BatchApproximation.level(forTemperature: t)
            return level == 1 ? SingleSampleSelector() as any ChunkSelector : BatchApproximationSelector(level: level, samples: samples)
        case let .exactRejection(maxDraws):
            guard maxDraws >= 1, maxDraws <= Self.maxDrawsLimit else {
                throw ModelError.invalidParameter(name: "maxDraws", reason: "must be in 1…\(Self.maxDrawsLimit), got \(maxDraws)")
            }
            return t == 1 ? SingleSampleSelector() as any ChunkSelector
                          : ExactRejectionSelector(sampler: try ExactRejectionSampler(temperature: t, maxDraws: maxDraws))
        }
    }
}

/// One sequence's chunk choice at one step: asks for head samples in rounds and decides from the
/// decoded chunks. The caller draws every sequence's round in one batched head + decoder pass.
public protocol ChunkSelector: Sendable {
    /// Whether it always decides in one round of a fixed size (single, batch approximation); the
    /// exact sampler may need any number of rounds.
    var decidesInOneRound: Bool { get }
    /// Samples wanted in the next round (`roundLimit` caps samplers that can take any number).
    func samplesWanted(roundLimit: Int) -> Int
    /// Takes this round's decoded chunks (and their latents); returns the choice once decided.
    /// Selection draws come from `randomness` only.
    mutating func consume(chunks: [[Int32]], latents: [[Float]], randomness: SequenceRandomness) -> ChunkDraw?
}

/// T = 1: one head sample, decoded by argmax.
struct SingleSampleSelector: ChunkSelector {
    var decidesInOneRound: Bool { true }
    func samplesWanted(roundLimit: Int) -> Int { 1 }
    mutating func consume(chunks: [[Int32]], latents: [[Float]], randomness: SequenceRandomness) -> ChunkDraw? {
        ChunkDraw(chunk: chunks[0], samplesDrawn: 1, latent: latents[0])
    }
}

/// T = 1/n: N samples, selection among repeats (Algorithm 2).
struct BatchApproximationSelector: ChunkSelector {
    var decidesInOneRound: Bool { true }
    let level: Int
    let samples: Int
    func samplesWanted(roundLimit: Int) -> Int { samples }
    mutating func consume(chunks: [[Int32]], latents: [[Float]], randomness: SequenceRandomness) -> ChunkDraw? {
        let s = BatchApproximation.select(pool: chunks, level: level, u: randomness.uniformDouble())
        return ChunkDraw(chunk: s.chunk, samplesDrawn: chunks.count, pool: chunks, selection: s)
    }
}

/// Any T: samples fed one by one into Algorithm 1 until it accepts or `maxDraws` runs out.
struct ExactRejectionSelector: ChunkSelector {
    var decidesInOneRound: Bool { false }
    var sampler: ExactRejectionSampler<[Int32]>
    func samplesWanted(roundLimit: Int) -> Int { max(1, min(roundLimit, sampler.maxDraws - sampler.draws)) }
    mutating func consume(chunks: [[Int32]], latents: [[Float]], randomness: SequenceRandomness) -> ChunkDraw? {
        for chunk in chunks {
            if let accepted = sampler.consume(chunk, uniform: { randomness.uniformDouble() }) {
                return ChunkDraw(chunk: accepted, samplesDrawn: sampler.draws, truncated: sampler.truncated)
            }
        }
        return nil
    }
}
