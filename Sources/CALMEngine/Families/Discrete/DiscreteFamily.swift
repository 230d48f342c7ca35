import CALMModel
import Foundation

/// Any discrete causal LM (`DiscreteLanguageModel`: Hugging Face `LlamaForCausalLM`,
/// `GPT2LMHeadModel`), the papers' baseline: one KV position per token; a step runs the backbone
/// for every sequence's new tokens in one batched pass, projects the committing sequences' last
/// rows to the vocabulary in one multiply, and draws each sequence's token with `TokenSampler`
/// (the same code as `DiscreteLanguageModel.generate`); plain greedy rows take the projection's
/// (screened) argmax instead, the same token without the logits.
public final class DiscreteFamily: ModelFamily {
    public let model: any DiscreteLanguageModel

    public init(model: any DiscreteLanguageModel) { self.model = model }

    public var name: String { model.familyName }
    public var tokensPerPosition: Int { 1 }
    public var vocabularySize: Int { model.vocabSize }
    public var contextPositions: Int { model.maxPositions }
    public var endTokenIDs: Set<Int> { Set(model.endTokenIDs) }
    public var paddingTokenID: Int? { nil }
    public func kvLayout(blockPositions: Int) -> KVLayout { model.kvLayout(blockPositions: blockPositions) }

    public func validate(_ p: SamplingParameters) throws {
        if p.maturation != nil {
            throw EngineError.invalidParameter(name: "maturation", reason: "Token Maturation settings are for Token Maturation models; this is a \(name) model")
        }
        if p.sampler != nil {
            throw EngineError.invalidParameter(name: "sampler", reason: "a discrete model samples from its logits; the sampler setting is CALM's (leave it nil)")
        }
        do { try p.tokenSampler.validate() } catch let ModelError.invalidParameter(name, reason) {
            throw EngineError.invalidParameter(name: name, reason: reason)
        }
    }

    public func step(_ batch: StepBatch) throws -> [StepOutcome] {
        let start = DispatchTime.now().uptimeNanoseconds
        let hidden = try model.forward(tokens: batch.entries.map(\.tokens), caches: batch.entries.map(\.cache), record: nil)
        let forwardDone = DispatchTime.now().uptimeNanoseconds
        let h = model.hiddenSize, v = model.vocabSize
        var outcomes = [StepOutcome](repeating: .fed, count: batch.entries.count)
        // Last rows of the committing sequences, projected together.
        var committing: [Int] = []
        var lastRows: [Float] = []
        var row = 0
        for (i, e) in batch.entries.enumerated() {
            row += e.tokens.count
            guard e.commits else { continue }
            committing.append(i)
            lastRows += hidden[((row - 1) * h)..<(row * h)]
        }
        defer {
            let end = DispatchTime.now().uptimeNanoseconds
            batch.recordTimes(backbone: Double(forwardDone - start) / 1e9, sampling: Double(end - forwardDone) / 1e9,
                              samples: committing.count, rows: hidden.count / h)
        }
        guard !committing.isEmpty else { return outcomes }
        var results = [StepOutcome?](repeating: nil, count: committing.count)
        func failed(_ r: Int) -> StepOutcome {
            .failed(ModelError.nonFinite(what: "logits of request \(batch.entries[committing[r]].requestID)").description)
        }
        // Plain greedy rows take the projection's argmax without the logits: the same first maximum
        // as TokenSampler's, screened where the vocabulary is large. The row's maximum tells a failed
        // row apart: NaN (NaN wins the argmax) or −∞ (no finite value). A +∞ maximum goes to the
        // logits, which decide whether the row has a finite value at all.
        let greedy = committing.indices.filter { Self.isPlainGreedy(batch.entries[committing[$0]].parameters) }
        if !greedy.isEmpty {
            var rows: [Float] = []
            rows.reserveCapacity(greedy.count * h)
            for r in greedy { rows += lastRows[(r * h)..<((r + 1) * h)] }
            let (indices, maxima) = model.lmHead.argmaxAndMaximum(rows, rows: greedy.count, pool: model.pool)
            for (k, r) in greedy.enumerated() {
                if maxima[k].isFinite { results[r] = .committed(StepCommit(tokens: [Int(indices[k])], logprobs: nil)) }
                else if maxima[k] != .infinity { results[r] = failed(r) }
            }
        }
        let sampled = committing.indices.filter { results[$0] == nil }
        if !sampled.isEmpty {
            var rows: [Float] = []
            rows.reserveCapacity(sampled.count * h)
            for r in sampled { rows += lastRows[(r * h)..<((r + 1) * h)] }
            var logits = model.logits(rows, rows: sampled.count)
            // Each row is drawn from its own logits and its own sequence's random stream, so the rows
            // are sampled in parallel on the model's pool when the vocabulary is large (a 128k row
            // costs a fraction of a millisecond; a small one less than handing it to a thread).
            logits.withUnsafeMutableBufferPointer { all in
                results.withUnsafeMutableBufferPointer { res in
                    func sampleRow(_ j: Int) {
                        let r = sampled[j]
                        let e = batch.entries[committing[r]]
                        let rowLogits = UnsafeMutableBufferPointer(rebasing: all[(j * v)..<((j + 1) * v)])
                        // the model's own log-probability, before penalties and filters change the row
                        let sampler = e.parameters.tokenSampler
                        let raw: [Float]? = e.parameters.logprobs ? Array(rowLogits) : nil
                        guard let token = sampler.sample(logits: rowLogits, history: e.history, outputStart: e.outputStart,
                                                         randomness: e.randomness) else {
                            res[r] = failed(r)
                            return
                        }
                        let logprob = raw.map { raw in raw.withUnsafeBufferPointer { TokenSampler.logProbability(of: token, logits: $0) } }
                        res[r] = .committed(StepCommit(tokens: [token], logprobs: logprob.map { [$0] }))
                    }
                    if v >= 4096 {
                        model.pool.parallelFor(sampled.count, sampleRow)
                    } else {
                        for j in sampled.indices { sampleRow(j) }
                    }
                }
            }
        }
        for (r, i) in committing.enumerated() { outcomes[i] = results[r] ?? failed(r) }
        return outcomes
    }

    /// Greedy with nothing that needs the logits: T = 0 (top-k, top-p and min-p cannot change the
    /// argmax), no penalty, no log-probabilities.
    static func isPlainGreedy(_ p: SamplingParameters) -> Bool {
        p.temperature == 0 && p.repetitionPenalty == 1 && p.presencePenalty == 0 && p.frequencyPenalty == 0 && !p.logprobs
    }
}
