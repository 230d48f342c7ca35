import Foundation

/// One sequence's part of a batched `TokenMaturationModel.step`.
public struct TokenMaturationBatchItem: Sendable {
    /// The sequence to advance.
    public var sequence: TokenMaturationSequence
    /// Whether to mature the tail and commit a token (false: only cache committed positions, as an
    /// early chunked-prefill slice does).
    public var commits: Bool
    /// With `commits` false: most committed positions to cache this step (nil: all but the last,
    /// which must stay uncached for the committing step's window). A committing item always feeds
    /// every committed position not yet cached, whatever this says.
    public var feedLimit: Int?
    /// Teacher forcing (evaluation): commit this id instead of the front's nearest embedding. The
    /// front is still projected — the commit's `projection` is the model's own choice — but the
    /// forced id is what enters the context. nil: commit the projection, as generation does.
    public var forcedToken: Int?

    /// A committing item by default.
    public init(sequence: TokenMaturationSequence, commits: Bool = true, feedLimit: Int? = nil, forcedToken: Int? = nil) {
        self.sequence = sequence
        self.commits = commits
        self.feedLimit = feedLimit
        self.forcedToken = forcedToken
    }
}

/// What a step committed for one sequence.
public struct TokenMaturationCommit: Sendable, Equatable {
    /// The committed id (the item's `forcedToken` when it had one, else `projection`).
    public var token: Int
    /// The front's nearest embedding: the token the model itself commits here. Equal to `token`
    /// unless the item forced another id.
    public var projection: Int
    /// Set when the sequence stopped with this token.
    public var stopReason: StopReason?
    /// With `flushTail`, at a stop other than end-of-text: the remaining tail's projections, in order.
    public var flushedTokens: [Int]
    /// The committed vector's statistics, with `diagnostics` on.
    public var diagnostics: TokenMaturationDiagnostics?
}

/// One sequence's result of a batched step (mirrors the engine's `StepOutcome`).
public enum TokenMaturationStepOutcome: Sendable, Equatable {
    /// Committed positions were cached; nothing was committed.
    case fed(positions: Int)
    /// A token was committed.
    case committed(TokenMaturationCommit)
    /// This sequence failed (the others went on); it is left unchanged where possible.
    case failed(ModelError)
}

/// The outcomes of a batched step, one per item in order, and where its time went.
public struct TokenMaturationStepResult: Sendable {
    /// One per item, in the items' order.
    public var outcomes: [TokenMaturationStepOutcome]
    /// Rows run through the backbone, all passes and inner iterations together.
    public var backboneRows: Int
    /// Backbone forwards run (one per inner iteration that had rows).
    public var forwards: Int
    /// Seconds in the backbone, and in everything else (inputs, head, updates, commits).
    public var backboneSeconds: Double
    public var otherSeconds: Double
}

/// The outcome of `TokenMaturationModel.generate`.
public struct TokenMaturationResult: Sendable {
    /// Committed ids (the prompt excluded).
    public var tokens: [Int]
    /// With `flushTail`: the tail's projections after the last commit.
    public var flushedTokens: [Int]
    /// Prompt length.
    public var promptTokens: Int
    /// Why it stopped (`cancelled` when `onToken` returned false).
    public var stopReason: StopReason
    /// Steps run (one per committed token).
    public var steps: Int
    /// Backbone rows run in all.
    public var backboneRows: Int
    /// Seconds to the first committed token, and in all.
    public var timeToFirstToken: Double
    public var seconds: Double
    /// Per-token statistics, with `diagnostics` on.
    public var diagnostics: [TokenMaturationDiagnostics]
}
