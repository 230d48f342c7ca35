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
    /// Draws of earlier rounds of this step that the next round's draws may be compared with (the
    /// exact sampler's first stage-1 draw or its stage-2 candidate), so that lazy decoding can
    /// decode them further where a new draw shares their prefix. Empty for one-round samplers.
    var earlierDraws: [DecodedDraw] { get }
    /// Takes this round's draws (and `earlierDraws`, decoded as far as needed): two of them have
    /// equal `chunk.tokens` exactly when their chunks are equal, whether they were decoded in full
    /// or lazily. Returns the choice once decided, with `ChunkDraw.source` the chosen draw; its
    /// `chunk` may still be a prefix, which `CALMModel.sampleChunks` decodes in full. Selection
    /// draws come from `randomness` only.
    mutating func consume(_ round: DecodedRound, randomness: SequenceRandomness) -> ChunkDraw?
}

/// T = 1: one head sample, decoded by argmax.
struct SingleSampleSelector: ChunkSelector {
    var decidesInOneRound: Bool { true }
    var earlierDraws: [DecodedDraw] { [] }
    func samplesWanted(roundLimit: Int) -> Int { 1 }
    mutating func consume(_ round: DecodedRound, randomness: SequenceRandomness) -> ChunkDraw? {
        let draw = round.draws[0]
        return ChunkDraw(chunk: draw.chunk.tokens, samplesDrawn: 1, latent: draw.latent, source: draw)
    }
}

/// T = 1/n: N samples, selection among repeats (Algorithm 2).
struct BatchApproximationSelector: ChunkSelector {
    var decidesInOneRound: Bool { true }
    var earlierDraws: [DecodedDraw] { [] }
    let level: Int
    let samples: Int
    func samplesWanted(roundLimit: Int) -> Int { samples }
    mutating func consume(_ round: DecodedRound, randomness: SequenceRandomness) -> ChunkDraw? {
        // Entries compare like the chunks (whole, or a prefix no other entry shares), so the counts,
        // the cascade, the candidates' order and the weights are those of the whole chunks.
        let pool = round.draws.map(\.chunk)
        let s = BatchApproximation.select(pool: pool.map(\.tokens), level: level, u: randomness.uniformDouble())
        let chosen = round.draws.first { $0.chunk.tokens == s.chunk }!
        return ChunkDraw(chunk: s.chunk, samplesDrawn: round.draws.count, pool: pool, selection: s, source: chosen)
    }
}

/// Any T: samples fed one by one into Algorithm 1 until it accepts or `maxDraws` runs out.
///
/// Algorithm 1 runs over draw classes: each draw is labelled with the label of an equal draw among
/// those it can be compared with (this round's earlier draws, and `kept`), or a fresh one, so
/// equal labels mean equal chunks and the sampler takes the same branches and the same coins as on
/// the chunks themselves. Only the draws the sampler may still compare with (its first stage-1 draw
/// or its candidate) are kept between rounds.
struct ExactRejectionSelector: ChunkSelector {
    var decidesInOneRound: Bool { false }
    var sampler: ExactRejectionSampler<Int>
    /// The draws the sampler may compare later draws with, under their labels.
    var kept: [(label: Int, draw: DecodedDraw)] = []
    var nextLabel = 0

    init(sampler: ExactRejectionSampler<Int>) { self.sampler = sampler }

    func samplesWanted(roundLimit: Int) -> Int { max(1, min(roundLimit, sampler.maxDraws - sampler.draws)) }
    var earlierDraws: [DecodedDraw] { kept.map(\.draw) }

    mutating func consume(_ round: DecodedRound, randomness: SequenceRandomness) -> ChunkDraw? {
        var labelOf: [[Int32]: Int] = [:]
        var drawOf: [Int: DecodedDraw] = [:]
        for (i, k) in kept.enumerated() {
            labelOf[round.earlier[i].chunk.tokens] = k.label
            drawOf[k.label] = round.earlier[i]
        }
        for draw in round.draws {
            let label: Int
            if let l = labelOf[draw.chunk.tokens] {
                label = l
            } else {
                label = nextLabel
                nextLabel += 1
                labelOf[draw.chunk.tokens] = label
                drawOf[label] = draw
            }
            // Every label the sampler can return is a key of drawOf (it only returns labels it was given).
            if let accepted = sampler.consume(label, uniform: { randomness.uniformDouble() }), let chosen = drawOf[accepted] {
                return ChunkDraw(chunk: chosen.chunk.tokens, samplesDrawn: sampler.draws, truncated: sampler.truncated, source: chosen)
            }
        }
        kept = sampler.comparands.compactMap { label in drawOf[label].map { (label, $0) } }
        return nil
    }
}
