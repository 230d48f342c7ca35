import CALMModel
import Foundation

/// Token Maturation (arXiv 2601.04854; shared/spec/token-maturation.md): one KV position per
/// committed token, plus a liquid tail of K vectors that matures over K steps and is recomputed at
/// every step as scratch rows after the sequence's cached positions. A step is one batched
/// `TokenMaturationModel.step` for every scheduled sequence: their query windows (K rows each) and,
/// for sequences with guidance, their tail-only rows (K more) in the same backbone forward, so the
/// weights are read once per step.
///
/// The liquid tail of a sequence lives in its `StepEntry.state` slot, created at its first step
/// from the prompt, the request's cache and the request's own random stream (the embryos), so a
/// seeded request commits the same tokens alone or batched.
public final class TokenMaturationFamily: ModelFamily {
    public let model: TokenMaturationModel

    public init(model: TokenMaturationModel) { self.model = model }

    public var name: String { "tm" }
    public var tokensPerPosition: Int { 1 }
    public var vocabularySize: Int { model.config.vocabSize }
    public var contextPositions: Int { model.config.maxPositions }
    public var endTokenIDs: Set<Int> { Set(model.config.eosTokenIDs) }
    public var paddingTokenID: Int? { nil }
    public func kvLayout(blockPositions: Int) -> KVLayout { model.kvLayout(blockPositions: blockPositions) }

    /// The model-level parameters of a request: its `maturation` settings with the request's own
    /// length, seed and end-of-text rule. (Flushing the tail is a model-level option: a stream
    /// only carries committed tokens.)
    func maturation(_ p: SamplingParameters) -> TokenMaturationParameters {
        var t = p.maturation ?? TokenMaturationParameters()
        t.maxTokens = p.maxTokens
        t.seed = p.seed
        t.stopAtEndToken = p.stopAtEndToken
        return t
    }

    public func validate(_ p: SamplingParameters) throws {
        if p.sampler != nil {
            throw EngineError.invalidParameter(name: "sampler", reason: "Token Maturation commits the nearest embedding of a matured vector; the sampler setting is CALM's (leave it nil)")
        }
        if let name = p.discreteControlsSet.first {
            throw EngineError.invalidParameter(name: name, reason: "Token Maturation has no logits, so it has no \(name); its randomness is the seeded embryos (maturation settings: tailLength, guidanceScale, …)")
        }
        if p.maturation?.flushTail == true {
            throw EngineError.invalidParameter(name: "flushTail", reason: "the engine streams committed tokens only; flushTail is an option of TokenMaturationModel.generate")
        }
        do { _ = try model.resolved(maturation(p)) } catch let ModelError.invalidParameter(name, reason) {
            throw EngineError.invalidParameter(name: name, reason: reason)
        }
    }

    public func scratchPositions(for p: SamplingParameters) -> Int {
        (try? model.scratchPositions(maturation(p))) ?? 0
    }

    /// Committed keys/values depend on K (FiLM(K) touches every position) and on history
    /// smoothing, so only requests that agree on both share prompt blocks; history noise re-draws
    /// the prefix every step, so those requests share nothing (spec §6.3).
    public func prefixSharingKey(for p: SamplingParameters) -> Int? {
        guard let r = try? model.resolved(maturation(p)), r.historyNoise == 0 else { return nil }
        return (r.tailLength ?? model.config.tailLength) + 128 * Int(r.historyEMA.bitPattern)
    }

    public func step(_ batch: StepBatch) throws -> [StepOutcome] {
        var outcomes = [StepOutcome](repeating: .fed, count: batch.entries.count)
        var items: [TokenMaturationBatchItem] = []
        var owners: [Int] = []
        for (i, e) in batch.entries.enumerated() {
            let sequence: TokenMaturationSequence
            if let existing = e.state.value as? TokenMaturationSequence {
                sequence = existing
            } else {
                do {
                    sequence = try model.makeSequence(prompt: e.history, parameters: maturation(e.parameters), cache: e.cache,
                                                      randomness: e.randomness)
                } catch {
                    outcomes[i] = .failed("token maturation could not start request \(e.requestID): \(error)")
                    continue
                }
                e.state.value = sequence
            }
            items.append(TokenMaturationBatchItem(sequence: sequence, commits: e.commits, feedLimit: e.tokens.count))
            owners.append(i)
        }
        guard !items.isEmpty else { return outcomes }
        let result = try model.step(items)
        var committed = 0
        for (i, outcome) in zip(owners, result.outcomes) {
            switch outcome {
            case .fed: outcomes[i] = .fed
            case let .failed(error): outcomes[i] = .failed("\(error)")
            case let .committed(c):
                committed += 1
                outcomes[i] = .committed(StepCommit(tokens: [c.token], diagnostics: c.diagnostics.map { [$0] },
                                                    contextFull: c.stopReason == .contextFull))
            }
        }
        batch.recordTimes(backbone: result.backboneSeconds, sampling: result.otherSeconds, samples: committed, rows: result.backboneRows)
        return outcomes
    }
}
