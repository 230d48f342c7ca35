import CALMKernels
import Foundation

/// One generation in progress: committed ids, the liquid tail, the KV cache of committed positions
/// and everything fixed for the run (α profile, conditioning table, FiLM(K)). Made by
/// `TokenMaturationModel.makeSequence`; advanced by `TokenMaturationModel.step`, alone or batched
/// with others. Not safe to step from two threads at once (the engine steps a sequence from one
/// compute thread).
///
/// Cache invariant between steps: `cache.count == ids.count − 1` once decoding runs (the last
/// committed position is row 0 of the next step's window, which persists it). During a step the cache
/// also holds the tail's scratch rows beyond `cache.count`.
///
/// `@unchecked Sendable`: the `var`s (ids, tail, caches, EMA state) and `randomness` are
/// unsynchronised; a sequence has one owner at a time, which alone calls
/// `TokenMaturationModel.step` on it. In the engine it lives in its request's `FamilyStateSlot` and
/// only the scheduler's compute thread touches it (made and stepped inside `ModelFamily.step`); the
/// scheduler merely drops it when the request ends, after the step that last used it has returned.
public final class TokenMaturationSequence: @unchecked Sendable {
    /// Committed ids: the prompt, then every committed token.
    public private(set) var ids: [Int]
    /// Prompt length.
    public let promptCount: Int
    /// The liquid tail.
    public internal(set) var tail: LiquidTail
    /// Why the sequence stopped; nil while it runs.
    public internal(set) var stopReason: StopReason?
    /// Keys/values of committed positions.
    public let cache: KVCache
    /// The request as given.
    public let parameters: TokenMaturationParameters
    /// Per-token statistics, when `parameters.diagnostics` is on.
    public internal(set) var diagnostics: [TokenMaturationDiagnostics] = []
    /// Set when a step failed for this sequence; it can't be stepped again.
    public internal(set) var failure: ModelError?

    let resolved: ResolvedTokenMaturationParameters
    let randomness: SequenceRandomness
    /// α_j and η_j per slot (slot 0 = front).
    let alphas: [Float]
    let rates: [Float]
    /// (K × d) conditioning of the tail slots, and the α = 1 conditioning of committed rows.
    let slotConditioning: [Float]
    let commitConditioning: [Float]
    /// FiLM(K): scale = 1 + γ, shift = β.
    let filmScale: [Float]
    let filmShift: [Float]
    /// Embryo standard deviation per coordinate, ρR/√d, and unit noise R/√d.
    let embryoDeviation: Float
    let noiseDeviation: Float
    /// The tail-only pass's keys/values (never persisted; reserved for the tail rows once).
    let unconditionalCache: KVCache?
    /// Full recomputation's keys/values (history noise: the prefix cache can't be reused).
    var recomputeCache: KVCache?
    /// The committed row's prediction for slot 0 (shift alignment), kept for inner iterations after
    /// the first, which don't rerun that row.
    var frontPrediction: [Float]?
    /// History EMA: value at position `historyEMANext − 1`.
    var historyEMAState: [Float]?
    var historyEMANext = 0

    init(prompt: [Int], parameters: TokenMaturationParameters, resolved: ResolvedTokenMaturationParameters, model: TokenMaturationModel,
         cache: KVCache, randomness: SequenceRandomness) throws {
        let k = resolved.tailLength, d = model.hidden
        ids = prompt
        promptCount = prompt.count
        self.parameters = parameters
        self.resolved = resolved
        self.cache = cache
        self.randomness = randomness
        let alphaMax = resolved.maturityMax
        alphas = TokenMaturationConfig.maturityProfile(tailLength: k, maturityMax: alphaMax)
        rates = alphas.map { min(max(resolved.maturationRate * $0, 0), 1) }
        let table = model.alphaConditioner.table(alphas + [1], pool: model.pool)
        slotConditioning = Array(table[0..<(k * d)])
        commitConditioning = Array(table[(k * d)..<((k + 1) * d)])
        (filmScale, filmShift) = try model.film.modulation(tailLength: k, pool: model.pool)
        let r = model.embedding.radius
        embryoDeviation = resolved.embryoScale * r / Float(d).squareRoot()
        noiseDeviation = r / Float(d).squareRoot()
        unconditionalCache = try Self.unconditionalCache(resolved, model: model)
        tail = LiquidTail(length: k, dim: d, standardDeviation: embryoDeviation, randomness: randomness)
    }

    /// A sequence that continues `snapshot` with committed ids `ids` (the snapshot's, possibly with
    /// another last id), on `cache`, drawing later embryos and noise from `randomness`. The caller
    /// (`TokenMaturationModel.resume`) has checked the snapshot, the ids and the cache.
    init(resuming snapshot: TokenMaturationSnapshot, ids: [Int], model: TokenMaturationModel, cache: KVCache,
         randomness: SequenceRandomness) throws {
        self.ids = ids
        promptCount = snapshot.promptCount
        parameters = snapshot.parameters
        resolved = snapshot.resolved
        self.cache = cache
        self.randomness = randomness
        alphas = snapshot.alphas
        rates = snapshot.rates
        slotConditioning = snapshot.slotConditioning
        commitConditioning = snapshot.commitConditioning
        filmScale = snapshot.filmScale
        filmShift = snapshot.filmShift
        embryoDeviation = snapshot.embryoDeviation
        noiseDeviation = snapshot.noiseDeviation
        historyEMAState = snapshot.historyEMAState
        historyEMANext = snapshot.historyEMANext
        unconditionalCache = try Self.unconditionalCache(snapshot.resolved, model: model)
        tail = snapshot.tail
    }

    /// The tail-only pass's private cache, reserved for the tail rows once (nil when no such pass runs).
    static func unconditionalCache(_ resolved: ResolvedTokenMaturationParameters, model: TokenMaturationModel) throws -> KVCache? {
        guard resolved.runsUnconditionalPass else { return nil }
        let tailRows = resolved.alignment.tailRows(tailLength: resolved.tailLength)
        let scratch = model.makeCache()
        guard scratch.reserve(additional: tailRows) else {
            throw ModelError.invalidParameter(name: "kvCache", reason: "no memory for the unconditional pass's \(tailRows) rows")
        }
        return scratch
    }

    /// This sequence's decoding state between two steps, to continue from later with
    /// `TokenMaturationModel.resume` — any number of times, on caches forked from this one
    /// (evaluation branches a teacher-forced run this way). Cheap: the arrays are shared until
    /// one side changes them. Diagnostics already recorded are not carried over.
    public func snapshot() -> TokenMaturationSnapshot {
        TokenMaturationSnapshot(ids: ids, promptCount: promptCount, tail: tail, parameters: parameters, stopReason: stopReason,
                                failure: failure, resolved: resolved, alphas: alphas, rates: rates, slotConditioning: slotConditioning,
                                commitConditioning: commitConditioning, filmScale: filmScale, filmShift: filmShift,
                                embryoDeviation: embryoDeviation, noiseDeviation: noiseDeviation,
                                historyEMAState: historyEMAState, historyEMANext: historyEMANext)
    }

    /// Tokens committed so far (prompt excluded).
    public var generated: [Int] { Array(ids[promptCount...]) }
    /// K.
    public var tailLength: Int { resolved.tailLength }
    /// Tail rows each forward runs besides committed rows (K − 1 with shift, K with same): the KV
    /// positions the sequence needs beyond its committed ones.
    public var scratchRows: Int { resolved.alignment.tailRows(tailLength: resolved.tailLength) }
    /// Committed positions not yet in the cache.
    public var pendingPositions: Int { ids.count - cache.count }

    /// Committed inputs for positions `range` (rows × d): e_x (or its history EMA), plus history
    /// noise when `noisy`, plus the α = 1 conditioning. Noise is drawn position by position.
    func committedInputs(_ range: Range<Int>, noisy: Bool, embedding: NearestEmbedding) -> [Float] {
        let d = embedding.dim
        var out = [Float](repeating: 0, count: range.count * d)
        guard !range.isEmpty else { return out }
        let beta = resolved.user.historyEMA
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            if beta == 0 {
                for (r, t) in range.enumerated() { embedding.lookup(ids[t], into: base + r * d) }
            } else {
                // continue the running EMA when the range follows the last one, else restart at 0
                var state: [Float]
                var t0: Int
                if let s = historyEMAState, historyEMANext == range.lowerBound { state = s; t0 = range.lowerBound }
                else { state = [Float](repeating: 0, count: d); t0 = 0 }
                var e = [Float](repeating: 0, count: d)
                for t in t0..<range.upperBound {
                    e.withUnsafeMutableBufferPointer { embedding.lookup(ids[t], into: $0.baseAddress!) }
                    if t == 0 { state = e } else { calm_lerp(e, 1 - beta, &state, d) }
                    if t >= range.lowerBound { (base + (t - range.lowerBound) * d).update(from: state, count: d) }
                }
                historyEMAState = state
                historyEMANext = range.upperBound
            }
            if noisy && resolved.user.historyNoise > 0 {
                let scale = resolved.user.historyNoise * noiseDeviation
                for r in 0..<range.count {
                    let xi = LiquidTail.gaussian(count: d, standardDeviation: 1, randomness: randomness)
                    calm_axpy(scale, xi, base + r * d, Int32(d))
                }
            }
            commitConditioning.withUnsafeBufferPointer { c in
                for r in 0..<range.count { calm_add(base + r * d, c.baseAddress!, base + r * d, d) }
            }
        }
        return out
    }

    /// The tail rows' inputs (scratchRows × d): slot vectors plus their maturity conditioning.
    func tailInputs() -> [Float] {
        let d = tail.dim, rows = scratchRows
        var out = Array(tail.vectors[0..<(rows * d)])
        out.withUnsafeMutableBufferPointer { o in
            slotConditioning.withUnsafeBufferPointer { c in calm_add(o.baseAddress!, c.baseAddress!, o.baseAddress!, rows * d) }
        }
        return out
    }

    /// Which tail slots the tail-only pass guides: all with same alignment; with shift, slot 0's
    /// prediction comes from the committed row, identical in both passes, so only slots 1…K−1.
    var firstGuidedSlot: Int { resolved.alignment == .shift ? 1 : 0 }

    /// One iteration's update from the conditional predictions (K × d) and, when guidance runs, the
    /// unconditional ones (K × d, rows below `firstGuidedSlot` unused): guidance, target EMA,
    /// contraction, tail noise, renormalisation. Non-finite predictions are an error.
    func applyPredictions(conditional: [Float], unconditional: [Float]?, model: TokenMaturationModel) throws {
        let k = resolved.tailLength, d = tail.dim
        var z = conditional
        if let unconditional {
            let s = resolved.guidanceScale
            let first = firstGuidedSlot
            var u = unconditional
            u.withUnsafeMutableBufferPointer { up in
                z.withUnsafeMutableBufferPointer { zp in
                    // ẑ = ẑ_unc + s·(ẑ_cond − ẑ_unc), into u, then back into z
                    let n = (k - first) * d
                    guard n > 0 else { return }
                    calm_lerp(zp.baseAddress! + first * d, s, up.baseAddress! + first * d, n)
                    (zp.baseAddress! + first * d).update(from: up.baseAddress! + first * d, count: n)
                }
            }
        }
        let finite = z.withUnsafeBufferPointer { calm_dot($0.baseAddress!, $0.baseAddress!, Int32(k * d)).isFinite }
        guard finite else { throw ModelError.nonFinite(what: "tail predictions at committed position \(ids.count)") }
        if resolved.user.targetEMA > 0 { tail.smoothTargets(&z, beta: resolved.user.targetEMA) }
        tail.update(toward: z, rates: rates)
        if resolved.user.tailNoise > 0 {
            let sigma = resolved.user.tailNoise * noiseDeviation
            tail.addNoise(scales: alphas.map { sigma * (1 - $0) }, randomness: randomness)
        }
        if resolved.user.renormalizeTail { tail.renormalize(radius: model.embedding.radius) }
        if resolved.user.diagnostics {
            tail.record(argmaxes: model.embedding.commit(tail.vectors, rows: tail.slots, pool: model.pool).map { Int32($0) })
        }
    }

    /// Commits `token` (the front's nearest embedding `projection`, or a teacher-forced id), checks
    /// the stop rules, shifts the tail and draws the next embryo (or, at a stop, flushes the tail
    /// when asked). `scores` are the front's ⟨z, e_i⟩ when diagnostics are on.
    func commit(token: Int, projection: Int, scores: [Float]?, model: TokenMaturationModel) -> TokenMaturationCommit {
        let p = resolved.user
        let front = tail.slot(0)
        ids.append(token)
        let k = resolved.tailLength
        if p.stopAtEndToken && model.config.eosTokenIDs.contains(token) { stopReason = .endToken }
        else if ids.count - promptCount >= p.maxTokens { stopReason = .maxTokens }
        else if ids.count + k > model.config.maxPositions { stopReason = .contextFull }
        frontPrediction = nil
        let embryo = stopReason == nil
            ? LiquidTail.gaussian(count: tail.dim, standardDeviation: embryoDeviation, randomness: randomness) : nil
        let trajectory = tail.shift(appending: embryo)
        var record: TokenMaturationDiagnostics?
        if p.diagnostics, var scores {
            let norm = front.withUnsafeBufferPointer { calm_dot($0.baseAddress!, $0.baseAddress!, Int32($0.count)) }.squareRoot()
            let toCosine = norm > 0 ? 1 / (norm * model.embedding.radius) : 0
            calm_scale(toCosine, &scores, scores.count)
            let (h, best, second) = scores.withUnsafeBufferPointer {
                TokenMaturationDiagnostics.entropy(cosines: $0, topK: p.diagnosticsTopK, temperature: 1)
            }
            let (lock, unique) = TokenMaturationDiagnostics.trajectoryStatistics(trajectory)
            let r = TokenMaturationDiagnostics(token: token, entropy: h, topK: min(p.diagnosticsTopK, scores.count),
                                               cosine: best, gap: best - second, updates: trajectory.count,
                                               lockStep: lock, uniqueCandidates: unique)
            record = r
            diagnostics.append(r)
        }
        var flushed: [Int] = []
        if let reason = stopReason, p.flushTail, reason != .endToken, tail.slots > 0 {
            for id in model.embedding.commit(tail.vectors, rows: tail.slots, pool: model.pool) {
                if model.config.eosTokenIDs.contains(id) { break }
                flushed.append(id)
            }
        }
        return TokenMaturationCommit(token: token, projection: projection, stopReason: stopReason, flushedTokens: flushed, diagnostics: record)
    }
}
