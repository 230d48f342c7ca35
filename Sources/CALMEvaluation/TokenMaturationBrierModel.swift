import CALMModel
import Foundation

/// Token Maturation under the BrierLM protocol.
///
/// The model has no token probabilities; its only randomness is its embryos (spec §2.7). Two
/// maturations of the same context with independently seeded embryos are therefore two
/// independent samples of its predictive distribution, which is all the estimator needs.
///
/// **Teacher-forced samples.** Two runs (one per sample, each with its own embryo seed) decode the
/// block from its first id with every commit *forced* to the block's next id
/// (`TokenMaturationBatchItem.forcedToken`): at position i the run has committed exactly the true
/// prefix 0…i, and its front vector — matured over K steps in the liquid tail like any token the
/// model generates — projects to its sample for position i + 1 (`TokenMaturationCommit.projection`).
/// Along a block the model generates itself with that seed, nothing is ever forced and the samples
/// are exactly what `TokenMaturationModel.generate` commits (tested). The first K − 1 positions of
/// a block have fewer than K updates, exactly as a generation from a one-token prompt does.
///
/// **Cost.** The tail pipelines the maturations: one batched `step` per position advances both
/// runs, so a block of L ids costs L − 1 backbone forwards of 2·K rows (K − 1 scratch tail rows
/// and the newly committed row per run; 2·(K − 1) more with guidance), instead of one K-step
/// maturation per position and sample. The forwards are sequential (the tail at i depends on the
/// tail at i − 1). `EvaluationCost.tokenMaturation` counts the floating-point work.
///
/// **Continuations** (Brier-2…4; the protocol's chunk size is one token). After each position
/// where the two samples agree, both runs' states are kept (`TokenMaturationSequence.snapshot()`,
/// tails only: arrays are shared until changed). A continued window w resumes both snapshots with
/// the fed sample as their last committed id (it was the true id in the teacher-forced run; it is
/// not in any cache yet), on caches forked from the run's cache at w + 1 committed positions, and
/// lets them go on committing: each continuation step is one batched `step` over every window of
/// the group, two sequences per window. The samples and continuations of a window are therefore
/// one generation process (the model decoding after the true prefix), so accuracy-n and
/// collision-n describe the same distribution.
///
/// The block plus a tail must fit the model's positions: L − 1 + K ≤ the position limit.
public final class TokenMaturationBrierModel: BrierEvaluable {
    /// The model.
    public let model: TokenMaturationModel
    /// Decoding settings (tail length, guidance, maturity, …; nil fields: the model's). Length,
    /// seed, end-of-text and flushing are the evaluator's: every run commits to the end of its
    /// block whatever it projects.
    public let parameters: TokenMaturationParameters
    /// Backbone rows run since the adapter was made (teacher-forced runs and continuations).
    public private(set) var backboneRows = 0
    /// Backbone forwards run since the adapter was made.
    public private(set) var forwards = 0

    private var runs: [TokenMaturationSequence] = []
    private var snapshots: [Int: (TokenMaturationSnapshot, TokenMaturationSnapshot)] = [:]
    private var branches: [Int: (TokenMaturationSequence, TokenMaturationSequence)] = [:]

    /// An adapter for `model` with the decoding settings `parameters` (validated at the first block).
    public init(model: TokenMaturationModel, parameters: TokenMaturationParameters = TokenMaturationParameters()) {
        self.model = model
        self.parameters = parameters
    }

    /// One token per position: Brier-2…4 run the protocol's continuation path.
    public var chunkSize: Int { 1 }
    /// Three 24-bit uniforms make one 64-bit embryo seed.
    public var noiseWidth: Int { 3 }

    /// A 64-bit seed from three uniforms in [0, 1) (24 bits each).
    static func seed(_ u: ArraySlice<Float>) -> UInt64 {
        u.reduce(UInt64(0)) { h, x in (h << 24) ^ UInt64(max(0, min(x, 1)) * 0x1p24) }
    }

    /// The embryo seeds of block `blockIndex`'s two teacher-forced runs (sample 1, sample 2).
    public func teacherForcedSeeds(blockIndex: Int, noise: EvaluationNoise) -> (UInt64, UInt64) {
        let u = noise.teacherForcedUniforms(block: blockIndex, samples: 2, positions: 1, width: noiseWidth)
        return (Self.seed(u[0..<3]), Self.seed(u[3..<6]))
    }

    /// The settings every run of a block of `blockLength` ids uses.
    func runParameters(blockLength: Int) -> TokenMaturationParameters {
        var p = parameters
        p.maxTokens = blockLength + 8
        p.stopAtEndToken = false
        p.flushTail = false
        p.diagnostics = false
        p.seed = nil
        return p
    }

    /// Runs the two teacher-forced maturation runs over `block` (commits forced to its ids) and
    /// returns their projections as samples 1 and 2; keeps both runs' snapshots where the samples
    /// agree, for `continue`. Errors: `CorpusError.invalidParameter` (`blockSize` beyond the
    /// position limit, an id outside the vocabulary), `ModelError` (invalid parameters, a failed step).
    public func teacherForced(block: [Int], blockIndex: Int, noise: EvaluationNoise) throws -> TeacherForcedSamples {
        endBlock()
        let positions = block.count - 1
        let p = runParameters(blockLength: block.count)
        let resolved = try model.resolved(p)
        let k = resolved.tailLength ?? model.config.tailLength
        guard positions + k <= model.config.maxPositions else {
            throw CorpusError.invalidParameter(name: "blockSize", reason: "a block of \(block.count) ids plus a tail of \(k) exceeds the Token Maturation model's \(model.config.maxPositions) positions (at most \(model.config.maxPositions - k + 1) ids per block)")
        }
        if let bad = block.first(where: { $0 < 0 || $0 >= model.config.vocabSize }) {
            throw CorpusError.invalidParameter(name: "block", reason: "token id \(bad) is outside the model's vocabulary (\(model.config.vocabSize))")
        }
        let (seed1, seed2) = teacherForcedSeeds(blockIndex: blockIndex, noise: noise)
        runs = [try model.makeSequence(prompt: [block[0]], parameters: p, randomness: SeededRandomness(seed: seed1)),
                try model.makeSequence(prompt: [block[0]], parameters: p, randomness: SeededRandomness(seed: seed2))]
        let windows = BrierProtocol.scoredPositions(chunks: block.count, k: 1)
        var first = [Int32](repeating: 0, count: positions), second = first
        for i in 0..<positions {
            let step = try model.step(runs.map { TokenMaturationBatchItem(sequence: $0, forcedToken: block[i + 1]) })
            backboneRows += step.backboneRows
            forwards += step.forwards
            let projections = try step.outcomes.map { outcome -> Int in
                switch outcome {
                case let .committed(c): return c.projection
                case let .failed(error): throw error
                case .fed: throw ModelError.invalidParameter(name: "sequence", reason: "a teacher-forced step committed nothing")
                }
            }
            first[i] = Int32(projections[0])
            second[i] = Int32(projections[1])
            if i < windows && projections[0] == projections[1] {
                snapshots[i] = (runs[0].snapshot(), runs[1].snapshot())
            }
        }
        return TeacherForcedSamples(first: first, second: second, positions: positions)
    }

    /// One continuation step for `windows`: resumes both runs' snapshots at a window's first step
    /// (the fed sample as last id, caches forked from run 1's), then one batched `step` over all
    /// branches. Returns sample 1's and sample 2's next id per window.
    public func `continue`(windows: [Int], feed: [[Int]], step: Int, blockIndex: Int, noise: EvaluationNoise) throws -> [Int32] {
        guard let base = runs.first?.cache else {
            throw CorpusError.invalidParameter(name: "continue", reason: "called before teacherForced")
        }
        guard feed.count == windows.count else {
            throw CorpusError.invalidParameter(name: "feed", reason: "\(feed.count) feeds for \(windows.count) windows")
        }
        var items: [TokenMaturationBatchItem] = []
        items.reserveCapacity(2 * windows.count)
        for (w, fed) in zip(windows, feed) {
            guard fed.count == 1, let token = fed.first else {
                throw CorpusError.invalidParameter(name: "feed", reason: "window \(w): one token per continuation step, got \(fed.count)")
            }
            if let (a, b) = branches[w] {
                // Both went on from the same context and committed the same token (the protocol
                // continues a window only while its two samples agree).
                guard a.ids.last == token, b.ids.last == token else {
                    throw CorpusError.invalidParameter(name: "feed", reason: "window \(w): fed \(token), but its branches committed \(a.ids.last ?? -1) and \(b.ids.last ?? -1)")
                }
                items += [TokenMaturationBatchItem(sequence: a), TokenMaturationBatchItem(sequence: b)]
                continue
            }
            guard let (s1, s2) = snapshots[w] else {
                throw CorpusError.invalidParameter(name: "windows", reason: "window \(w) has no teacher-forced state to continue (its samples differed or it is out of range)")
            }
            // Context: the true ids 0…w, then the fed sample (not yet cached).
            guard let c1 = base.fork(prefix: w + 1), let c2 = base.fork(prefix: w + 1) else {
                throw CorpusError.invalidParameter(name: "kvCache", reason: "out of KV-cache blocks")
            }
            let u = noise.continuationUniforms(block: blockIndex, window: w, step: step, width: noiseWidth)
            let a = try model.resume(s1, lastToken: token, cache: c1, randomness: SeededRandomness(seed: Self.seed(u[0..<3])))
            let b = try model.resume(s2, lastToken: token, cache: c2, randomness: SeededRandomness(seed: Self.seed(u[3..<6])))
            branches[w] = (a, b)
            items += [TokenMaturationBatchItem(sequence: a), TokenMaturationBatchItem(sequence: b)]
        }
        let result = try model.step(items)
        backboneRows += result.backboneRows
        forwards += result.forwards
        return try result.outcomes.map { outcome -> Int32 in
            switch outcome {
            case let .committed(c): return Int32(c.token)
            case let .failed(error): throw error
            case .fed: throw ModelError.invalidParameter(name: "sequence", reason: "a continuation step committed nothing")
            }
        }
    }

    /// Releases the branches' caches.
    public func endContinuations() {
        for (a, b) in branches.values { a.cache.release(); b.cache.release() }
        branches.removeAll()
    }

    /// Releases the branches, the snapshots and the runs' caches.
    public func endBlock() {
        endContinuations()
        snapshots.removeAll()
        for run in runs { run.cache.release() }
        runs.removeAll()
    }
}
