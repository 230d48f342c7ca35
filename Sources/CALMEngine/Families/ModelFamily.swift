import CALMModel
import Foundation

/// A model family the engine serves: what the scheduler needs to know to batch, cache and stream
/// any autoregressive model, and one batched step that advances many sequences at once.
///
/// The scheduler owns requests, KV blocks, streams and cancellation; a family owns the math. A KV
/// *position* holds `tokensPerPosition` token ids (CALM: one chunk of K; a discrete model: one
/// token). Each step feeds every scheduled sequence some positions (a prefill slice or the tokens it
/// committed last step) and, for the sequences marked `commits`, returns the tokens the step
/// commits. A family that needs scratch rows besides the ones it persists (Token Maturation's
/// liquid tail, a second masked pass) runs them inside `step` on the same cache and leaves only
/// the positions the scheduler fed (`scratchPositions` says how many extra it needs; per-sequence
/// state lives in `StepEntry.state`). See Docs/AddingAModelFamily.md.
public protocol ModelFamily: AnyObject, Sendable {
    /// Short name for logs and `--stats` ("calm", "llama").
    var name: String { get }
    /// Token ids per KV position (prompts are padded with `paddingTokenID` to whole positions).
    var tokensPerPosition: Int { get }
    /// Ids are in [0, vocabularySize).
    var vocabularySize: Int { get }
    /// Most KV positions one sequence may hold.
    var contextPositions: Int { get }
    /// Ids that end a generation (with `stopAtEndToken`).
    var endTokenIDs: Set<Int> { get }
    /// The id that pads prompts to whole positions and is dropped from the output; nil when
    /// `tokensPerPosition` is 1.
    var paddingTokenID: Int? { get }
    /// The KV geometry, with blocks of `blockPositions` positions.
    func kvLayout(blockPositions: Int) -> KVLayout
    /// Rejects parameters this family does not have or accept (typed errors naming the parameter).
    /// Shared checks (`SamplingParameters.validate`) have already passed.
    func validate(_ parameters: SamplingParameters) throws
    /// One batched step. Throwing fails every sequence of the step; `.failed` fails one.
    func step(_ batch: StepBatch) throws -> [StepOutcome]
    /// KV positions a sequence needs in its own cache beyond the ones it keeps, during a step
    /// (Token Maturation's liquid-tail scratch rows); reserved at admission. Default 0.
    func scratchPositions(for parameters: SamplingParameters) -> Int
    /// Whether requests may share whole prompt blocks, and under which key: cached keys/values
    /// that depend on more than the token ids (Token Maturation's FiLM(K)) must only be shared
    /// between requests with the same key; nil turns sharing off for the request. Default 0.
    func prefixSharingKey(for parameters: SamplingParameters) -> Int?
}

extension ModelFamily {
    public func scratchPositions(for parameters: SamplingParameters) -> Int { 0 }
    public func prefixSharingKey(for parameters: SamplingParameters) -> Int? { 0 }
}

/// Per-sequence state a family keeps between steps (Token Maturation's liquid tail). The scheduler
/// owns the slot with the rest of the request, so the state goes when the request ends.
///
/// `@unchecked Sendable`: confined: only the family's `step` reads or writes `value`, on the
/// scheduler's one compute thread; the scheduler actor only holds the slot (and drops it when the
/// request ends, between steps).
public final class FamilyStateSlot: @unchecked Sendable {
    /// Set and read by the family's `step` only (on the compute thread, while the scheduler waits).
    public var value: AnyObject?
    public init() {}
}

/// One sequence's part of a step.
public struct StepEntry: Sendable {
    /// The request (for logs and fault injection).
    public let requestID: Int
    /// Its cache; `tokens` are appended to it.
    public let cache: KVCache
    /// Positions × `tokensPerPosition` ids to feed.
    public let tokens: [Int]
    /// Whether this step commits tokens for the sequence (decoding, or the last prefill slice).
    public let commits: Bool
    public let parameters: SamplingParameters
    /// The request's own random stream (same seed, same draws, whatever else is batched).
    public let randomness: SeededRandomness
    /// Prompt then generated ids so far (for penalties).
    public let history: [Int]
    /// Where the generated ids start in `history`.
    public let outputStart: Int
    /// The family's own state for this sequence (nil until the family sets it).
    public let state: FamilyStateSlot
}

/// Everything one step runs.
public struct StepBatch: Sendable {
    public let entries: [StepEntry]
    /// Engine setting for CALM's exact sampler.
    public let exactRejectionDrawsPerRound: Int
    /// Engine setting: how CALM decodes its head samples.
    public let chunkDecoding: DecodingStrategy
    /// Where the step's time goes (backbone vs sampling).
    let statistics: EngineStatisticsRecorder

    /// The same step for the entries that pass `keep` (a family that wraps another, e.g. to
    /// route some sequences elsewhere).
    public func filtered(_ keep: (StepEntry) -> Bool) -> StepBatch {
        StepBatch(entries: entries.filter(keep), exactRejectionDrawsPerRound: exactRejectionDrawsPerRound,
                  chunkDecoding: chunkDecoding, statistics: statistics)
    }

    /// Adds a step's time split to the engine's statistics: seconds in the backbone and in
    /// sampling, samples drawn, backbone rows run and (CALM) vocabulary-argmax rows computed.
    public func recordTimes(backbone: Double, sampling: Double, samples: Int, rows: Int, argmaxRows: Int = 0) {
        statistics.record(backbone: backbone, sampling: sampling, samples: samples, rows: rows, argmaxRows: argmaxRows)
    }
}

/// What a step did for one sequence.
public enum StepOutcome: Sendable {
    /// The sequence only fed positions (an early prefill slice).
    case fed
    /// The step committed tokens.
    case committed(StepCommit)
    /// Not decided yet: the sequence's commit goes on at the next step, which feeds it nothing new
    /// (CALM's exact sampler after its share of a step, kept in `StepEntry.state`), so one request
    /// that needs many draws never holds up the others.
    case pending
    /// This sequence failed (the others go on); the message names the cause.
    case failed(String)
}

/// Tokens a step committed for one sequence, with sampler details.
public struct StepCommit: Sendable {
    /// Committed ids (CALM: the K ids of the chunk, `[PAD]` included; discrete: one id).
    public var tokens: [Int]
    /// Log-probability of each committed id, when the request asked for them.
    public var logprobs: [Double]?
    /// Samples drawn (CALM's head samples; 1 for discrete models).
    public var samplesDrawn: Int
    /// CALM: rows of the decoder's vocabulary argmax computed for this chunk (0 for other families).
    public var argmaxRows: Int
    /// The batch approximation's cascade level, if any.
    public var level: Int?
    /// Whether the exact sampler stopped at `maxDraws`.
    public var truncated: Bool
    /// Per committed token statistics, when the request asked for them (Token Maturation, §2.10).
    public var diagnostics: [TokenMaturationDiagnostics]?
    /// The family cannot continue this sequence: its context is full (the request ends with
    /// `.contextFull` after these tokens).
    public var contextFull: Bool

    public init(tokens: [Int], logprobs: [Double]? = nil, samplesDrawn: Int = 1, level: Int? = nil, truncated: Bool = false,
                diagnostics: [TokenMaturationDiagnostics]? = nil, contextFull: Bool = false, argmaxRows: Int = 0) {
        self.tokens = tokens
        self.logprobs = logprobs
        self.samplesDrawn = samplesDrawn
        self.argmaxRows = argmaxRows
        self.level = level
        self.truncated = truncated
        self.diagnostics = diagnostics
        self.contextFull = contextFull
    }
}
