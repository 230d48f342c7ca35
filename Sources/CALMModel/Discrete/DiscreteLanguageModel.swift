import Foundation

/// A causal language model over token ids with a vocabulary head (Llama, GPT-2): the baseline the
/// continuous-token papers compare against. One protocol so the engine family, single-sequence
/// generation and the benchmarks are written once for every such backbone.
public protocol DiscreteLanguageModel: AnyObject, Sendable {
    /// Short family name for logs and `--stats` ("llama", "gpt2").
    var familyName: String { get }
    /// Vocabulary size (ids are in 0..<vocabSize).
    var vocabSize: Int { get }
    /// Model width (rows of `forward`'s output).
    var hiddenSize: Int { get }
    /// Most positions one sequence may hold.
    var maxPositions: Int { get }
    /// Ids that end a generation.
    var endTokenIDs: [Int] { get }
    /// Bytes of weights one decode step reads (stack and vocabulary projection).
    var decodeStepWeightBytes: Int { get }
    /// KV geometry with blocks of `blockPositions` tokens.
    func kvLayout(blockPositions: Int) -> KVLayout
    /// Runs several sequences at once: `tokens[i]` is appended to `caches[i]`. Returns the final
    /// hidden state of every new position (Σ counts × hiddenSize), in order.
    func forward(tokens: [[Int]], caches: [KVCache], record: ActivationRecorder?) throws -> [Float]
    /// Vocabulary logits (rows × vocabSize) of `rows` hidden states.
    func logits(_ hidden: [Float], rows: Int) -> [Float]
    /// The vocabulary projection (`logits` is `lmHead` applied): greedy decoding takes its argmax
    /// without the logits (screened where the vocabulary is large).
    var lmHead: Linear { get }
    /// The worker pool the model's kernels run on (callers may run per-row work on it too).
    var pool: ComputePool { get }
}

/// The outcome of `DiscreteLanguageModel.generate`.
public struct DiscreteGenerationResult: Sendable {
    public var tokens: [Int]
    public var promptTokens: Int
    public var stopReason: StopReason
    public var timeToFirstToken: Double
    public var seconds: Double
}

extension DiscreteLanguageModel {
    /// A heap-backed cache for standalone use.
    public func makeCache(blockPositions: Int = 16) -> KVCache {
        let layout = kvLayout(blockPositions: blockPositions)
        return KVCache(layout: layout, source: HeapKVBlockSource(layout: layout))
    }

    /// Generates up to `maxTokens` tokens after `promptIDs` with ordinary temperature sampling
    /// (T = 0: greedy), stopping after an end-of-text id. `onToken` receives each token and may
    /// return false to stop.
    public func generate(promptIDs: [Int], maxTokens: Int, temperature: Double = 1, seed: UInt64? = nil,
                         stopAtEndToken: Bool = true, onToken: (Int) -> Bool = { _ in true }) throws -> DiscreteGenerationResult {
        try generate(promptIDs: promptIDs, maxTokens: maxTokens, sampler: TokenSampler(temperature: temperature), seed: seed,
                     stopAtEndToken: stopAtEndToken, onToken: onToken)
    }

    /// Generates up to `maxTokens` tokens after `promptIDs`, one at a time through a KV cache,
    /// drawing each with `sampler` (the same code the engine runs, so a seed gives the engine's
    /// tokens), stopping after an end-of-text id. `onToken` receives each token and may return
    /// false to stop.
    ///
    /// ```swift
    /// let model = try LlamaCausalLM.load(directory: modelURL)
    /// let result = try model.generate(promptIDs: [1, 2, 3], maxTokens: 16, sampler: TokenSampler(temperature: 0), seed: 1)
    /// ```
    public func generate(promptIDs: [Int], maxTokens: Int, sampler: TokenSampler, seed: UInt64? = nil,
                         stopAtEndToken: Bool = true, onToken: (Int) -> Bool = { _ in true }) throws -> DiscreteGenerationResult {
        guard !promptIDs.isEmpty else { throw ModelError.invalidPrompt(reason: "the prompt is empty") }
        guard maxTokens >= 1 else { throw ModelError.invalidParameter(name: "maxTokens", reason: "must be at least 1, got \(maxTokens)") }
        try sampler.validate()
        let start = DispatchTime.now()
        let random = seed.map { SeededRandomness(seed: $0) } ?? SeededRandomness()
        let cache = makeCache()
        defer { cache.release() }
        var input = promptIDs
        var history = promptIDs
        var generated: [Int] = []
        var firstTokenTime = 0.0
        var reason = StopReason.maxTokens
        let h = hiddenSize
        while generated.count < maxTokens {
            guard cache.count + input.count <= maxPositions else { reason = .contextFull; break }
            let hidden = try forward(tokens: [input], caches: [cache], record: nil)
            var row = logits(Array(hidden[((input.count - 1) * h)..<(input.count * h)]), rows: 1)
            guard let token = row.withUnsafeMutableBufferPointer({
                sampler.sample(logits: $0, history: history, outputStart: promptIDs.count, randomness: random)
            }) else {
                throw ModelError.nonFinite(what: "logits at generated token \(generated.count)")
            }
            if generated.isEmpty { firstTokenTime = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }
            generated.append(token)
            history.append(token)
            if !onToken(token) { reason = .cancelled; break }
            if stopAtEndToken && endTokenIDs.contains(token) { reason = .endToken; break }
            input = [token]
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return DiscreteGenerationResult(tokens: generated, promptTokens: promptIDs.count, stopReason: reason,
                                        timeToFirstToken: firstTokenTime, seconds: seconds)
    }
}
