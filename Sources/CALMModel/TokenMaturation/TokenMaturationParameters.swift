import Foundation

/// Decoding settings of one Token Maturation generation. The settings a trained model fixes in its
/// `config.json` (tail length, guidance scale, maturity, rate, embryo scale, alignment) are optional
/// here: nil takes the model's value. Everything the paper calls an optional intervention (§2.8) is
/// off by default.
///
/// ```swift
/// var p = TokenMaturationParameters(maxTokens: 64, seed: 7)
/// p.guidanceScale = 2          // the paper's demo setting
/// let result = try tmModel.generate(prompt: ids, parameters: p)
/// ```
public struct TokenMaturationParameters: Sendable, Equatable {
    /// Largest K any model may use (the paper studies K ∈ {1, 4, 16, 64}).
    public static let tailLengthLimit = 64
    /// The guidance scale the paper's demos use when guidance is on.
    public static let recommendedGuidanceScale: Float = 2
    /// Largest accepted `innerIterations` (each one is a full extra forward per token).
    public static let innerIterationsLimit = 64

    /// K, the number of liquid tail slots (1…64 and ≤ the model's `max_tail_length`); nil: the model's.
    public var tailLength: Int?
    /// s: ẑ = ẑ_unc + s·(ẑ_cond − ẑ_unc). 1 turns guidance off (no second pass); 0 keeps the
    /// unconditional prediction only (a debugging aid); nil: the model's.
    public var guidanceScale: Float?
    /// α_max in [0, 1], the front slot's maturity; nil: the model's. With 1 (shift alignment) the tail
    /// and the seed no longer matter.
    public var maturityMax: Float?
    /// r ≥ 0 in η(α) = clamp(r·α, 0, 1); nil: the model's.
    public var maturationRate: Float?
    /// ρ ≥ 0: embryos are N(0, (ρR)²/d·I); nil: the model's.
    public var embryoScale: Float?
    /// Which output predicts a slot; nil: the model's (it is trained for one).
    public var alignment: TokenMaturationAlignment?
    /// σ_t ≥ 0: after each update z̃_j += σ_t·(1−α_j)·ξ, ξ ~ N(0, R²/d·I). Keeps the prefix cache.
    public var tailNoise: Float = 0
    /// σ_h ≥ 0: committed inputs become e_x + σ_h·ξ, fresh at every forward. The prefix cache can't
    /// hold noisy keys, so every step recomputes the whole prefix (spec §6.3).
    public var historyNoise: Float = 0
    /// β in [0, 1): the update moves toward m_j ← β·m_j + (1−β)·ẑ_j instead of ẑ_j (m travels with
    /// its vector; a new vector's m starts at its first prediction). 0 = off.
    public var targetEMA: Float = 0
    /// β_h in [0, 1): the committed input at t is the EMA over e_{x_1…x_t} (causal, so computed once
    /// per position and cacheable). 0 = off.
    public var historyEMA: Float = 0
    /// Forwards (and updates) per committed token; the paper uses 1.
    public var innerIterations: Int = 1
    /// Rescale every tail vector to radius R after each update (imitates the demo's constant tail norm).
    public var renormalizeTail: Bool = false
    /// At a stop other than end-of-text, also project the remaining (updated) tail vectors, in order,
    /// without further updates; they are returned apart from the committed tokens.
    public var flushTail: Bool = false
    /// Record per-token statistics (entropy, cosine, gap, lock step, candidates; spec §2.10). Costs an
    /// extra K-row vocabulary projection per step.
    public var diagnostics: Bool = false
    /// Candidates the diagnostics' entropy is taken over (50 reproduces the paper's ≈ 3.91 = ln 50).
    public var diagnosticsTopK: Int = 50
    /// Seed of the request's random stream (embryos and noise); nil draws one from the system.
    public var seed: UInt64?
    /// Most tokens to commit.
    public var maxTokens: Int = 256
    /// Stop after committing an end-of-text id.
    public var stopAtEndToken: Bool = true

    /// The settings users change most; every other field keeps its default until set.
    public init(maxTokens: Int = 256, tailLength: Int? = nil, guidanceScale: Float? = nil, seed: UInt64? = nil) {
        self.maxTokens = maxTokens
        self.tailLength = tailLength
        self.guidanceScale = guidanceScale
        self.seed = seed
    }

    /// Checks every value that does not depend on the model; errors are
    /// `ModelError.invalidParameter` naming the parameter.
    public func validate() throws {
        func fail(_ name: String, _ reason: String) -> ModelError { .invalidParameter(name: name, reason: reason) }
        if maxTokens < 1 { throw fail("maxTokens", "must be at least 1, got \(maxTokens)") }
        if let k = tailLength, k < 1 || k > Self.tailLengthLimit {
            throw fail("tailLength", "must be in 1…\(Self.tailLengthLimit), got \(k)")
        }
        if let s = guidanceScale, !(s.isFinite && s >= 0) { throw fail("guidanceScale", "must be a finite number ≥ 0 (1 = off), got \(s)") }
        if let a = maturityMax, !(a >= 0 && a <= 1) { throw fail("maturityMax", "must be in [0, 1], got \(a)") }
        if let r = maturationRate, !(r.isFinite && r >= 0) { throw fail("maturationRate", "must be a finite number ≥ 0, got \(r)") }
        if let rho = embryoScale, !(rho.isFinite && rho >= 0) { throw fail("embryoScale", "must be a finite number ≥ 0, got \(rho)") }
        if !(tailNoise.isFinite && tailNoise >= 0) { throw fail("tailNoise", "must be a finite number ≥ 0 (0 = off), got \(tailNoise)") }
        if !(historyNoise.isFinite && historyNoise >= 0) { throw fail("historyNoise", "must be a finite number ≥ 0 (0 = off), got \(historyNoise)") }
        if !(targetEMA >= 0 && targetEMA < 1) { throw fail("targetEMA", "must be in [0, 1) (0 = off), got \(targetEMA)") }
        if !(historyEMA >= 0 && historyEMA < 1) { throw fail("historyEMA", "must be in [0, 1) (0 = off), got \(historyEMA)") }
        if innerIterations < 1 || innerIterations > Self.innerIterationsLimit {
            throw fail("innerIterations", "must be in 1…\(Self.innerIterationsLimit), got \(innerIterations)")
        }
        if diagnosticsTopK < 1 { throw fail("diagnosticsTopK", "must be at least 1, got \(diagnosticsTopK)") }
    }
}

/// Parameters with the model's defaults filled in and checked against the model.
struct ResolvedTokenMaturationParameters: Sendable {
    let tailLength: Int
    let guidanceScale: Float
    let maturityMax: Float
    let maturationRate: Float
    let embryoScale: Float
    let alignment: TokenMaturationAlignment
    let user: TokenMaturationParameters

    init(_ p: TokenMaturationParameters, config: TokenMaturationConfig) throws {
        try p.validate()
        tailLength = p.tailLength ?? config.tailLength
        if tailLength > config.maxTailLength {
            throw ModelError.invalidParameter(name: "tailLength", reason: "\(tailLength) exceeds the model's max_tail_length \(config.maxTailLength)")
        }
        guidanceScale = p.guidanceScale ?? config.guidanceScale
        maturityMax = p.maturityMax ?? config.maturityMax
        maturationRate = p.maturationRate ?? config.maturationRate
        embryoScale = p.embryoScale ?? config.embryoScale
        alignment = p.alignment ?? config.alignment
        user = p
    }

    /// Whether committed keys/values can be kept between steps (spec §6.3: not with history noise).
    var usesPrefixCache: Bool { user.historyNoise == 0 }
    /// Whether the tail-only pass runs (s = 1 skips it; so does a shift tail of one slot, whose only
    /// prediction comes from the committed row that both passes share).
    var runsUnconditionalPass: Bool { guidanceScale != 1 && alignment.tailRows(tailLength: tailLength) > 0 }
}
