import CALMModel
import Foundation

/// Any discrete causal LM (`DiscreteLanguageModel`: Hugging Face `LlamaForCausalLM`,
/// `GPT2LMHeadModel`), the papers' baseline: one KV position per token; a step runs the backbone
/// for every sequence's new tokens in one batched pass, projects the committing sequences' last
/// rows to the vocabulary in one multiply, and draws each sequence's token with `TokenSampler`
/// (the same code as `DiscreteLanguageModel.generate`).
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
        var logits = model.logits(lastRows, rows: committing.count)
        // Each committing row is drawn from its own logits and its own sequence's random stream, so
        // the rows are sampled in parallel on the model's pool when the vocabulary is large (a 128k
        // row costs a fraction of a millisecond; a small one less than handing it to a thread).
        var results = [StepOutcome?](repeating: nil, count: committing.count)
        logits.withUnsafeMutableBufferPointer { all in
            results.withUnsafeMutableBufferPointer { res in
                func sampleRow(_ r: Int) {
                    let e = batch.entries[committing[r]]
                    let rowLogits = UnsafeMutableBufferPointer(rebasing: all[(r * v)..<((r + 1) * v)])
                    // the model's own log-probability, before penalties and filters change the row
                    let sampler = e.parameters.tokenSampler
                    let raw: [Float]? = e.parameters.logprobs ? Array(rowLogits) : nil
                    guard let token = sampler.sample(logits: rowLogits, history: e.history, outputStart: e.outputStart,
                                                     randomness: e.randomness) else {
                        res[r] = .failed(ModelError.nonFinite(what: "logits of request \(e.requestID)").description)
                        return
                    }
                    let logprob = raw.map { raw in raw.withUnsafeBufferPointer { TokenSampler.logProbability(of: token, logits: $0) } }
                    res[r] = .committed(StepCommit(tokens: [token], logprobs: logprob.map { [$0] }))
                }
                if v >= 4096 {
                    model.pool.parallelFor(committing.count, sampleRow)
                } else {
                    for r in committing.indices { sampleRow(r) }
                }
            }
        }
        for (r, i) in committing.enumerated() { outcomes[i] = results[r]! }
        return outcomes
    }
}
