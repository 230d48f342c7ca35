import Foundation

extension CALMModel {
    /// Longest sequence the model accepts, in tokens (`max_position_embeddings` chunks of K).
    public var contextTokens: Int {
        let (tokens, overflow) = config.maxPositionEmbeddings.multipliedReportingOverflow(by: patchSize)
        return overflow ? Int.max : tokens
    }

    /// Generates a continuation of `promptIDs` with the reference's semantics (prompt right-padded
    /// with `[PAD]` to whole chunks, one chunk per step through the KV cache, stop on a chunk that
    /// contains end-of-text, `[PAD]` removed from the output), calling `onChunk` with each new
    /// chunk's ids as soon as it is decoded. Return `false` from `onChunk` to stop early.
    /// `drawsPerRound` is how many samples the exact sampler draws per batched round (the engine's
    /// `EngineConfiguration.exactRejectionDrawsPerRound`; equal values give equal tokens).
    /// `decoding` is how head samples are decoded (`DecodingStrategy`; both give the same tokens).
    ///
    /// ```swift
    /// let result = try model.generate(promptIDs: ids, parameters: .init(maxTokens: 64, temperature: 1)) { chunk in
    ///     print(chunk); return true
    /// }
    /// ```
    public func generate(promptIDs: [Int], parameters: GenerationParameters,
                         randomness: SequenceRandomness? = nil, drawsPerRound: Int = Sampler.defaultDrawsPerRound,
                         decoding: DecodingStrategy = .lazy, onChunk: ([Int]) -> Bool = { _ in true }) throws -> GenerationResult {
        let start = DispatchTime.now()
        _ = try parameters.makeSelector()   // validates before any work
        guard !promptIDs.isEmpty else { throw ModelError.invalidPrompt(reason: "empty prompt: give at least one token") }
        for id in promptIDs where id < 0 || id >= config.vocabSize {
            throw ModelError.invalidPrompt(reason: "token id \(id) is outside the vocabulary (size \(config.vocabSize))")
        }
        let k = patchSize, pad = padTokenID
        let padded = promptIDs + [Int](repeating: pad, count: (k - promptIDs.count % k) % k)
        guard padded.count + k <= contextTokens else {
            throw ModelError.invalidPrompt(reason: "\(promptIDs.count) tokens (\(padded.count / k) chunks) leave no room in the model's context of \(contextTokens) tokens (\(config.maxPositionEmbeddings) chunks)")
        }
        let rng = randomness ?? SeededRandomness(seed: parameters.seed ?? UInt64.random(in: .min ... .max))
        let cache = makeCache()
        defer { cache.release() }
        var input = padded
        var generated: [Int] = []
        var steps = 0, samples = 0, argmaxRows = 0
        var firstChunk: Double?
        var reason = StopReason.maxTokens
        while true {
            let hidden = try forward(chunks: [input], caches: [cache])
            let last = Array(hidden.suffix(config.hiddenSize))
            guard let draw = try sampleChunks(hidden: last, selectors: [try parameters.makeSelector()], randomness: [rng],
                                                   drawsPerRound: drawsPerRound, decoding: decoding).first else {
                throw ModelError.invalidParameter(name: "sampler", reason: "drew no chunk")
            }
            steps += 1
            samples += draw.samplesDrawn
            argmaxRows += draw.argmaxRows
            let chunk = draw.chunk.map(Int.init)
            input = chunk
            var visible = chunk.filter { $0 != pad }
            let remaining = parameters.maxTokens - generated.count
            if visible.count > remaining { visible = Array(visible.prefix(remaining)) }
            generated += visible
            if firstChunk == nil { firstChunk = seconds(since: start) }
            let keepGoing = onChunk(visible)
            if parameters.stopAtEndToken, let eos = eosTokenID, chunk.contains(eos) { reason = .endToken; break }
            if !keepGoing { reason = .cancelled; break }
            if generated.count >= parameters.maxTokens { reason = .maxTokens; break }
            if (cache.count + 1) * k > contextTokens { reason = .contextFull; break }
        }
        return GenerationResult(tokens: generated, promptTokens: promptIDs.count, steps: steps, stopReason: reason,
                                timeToFirstChunk: firstChunk ?? 0, seconds: seconds(since: start), samplesDrawn: samples,
                                argmaxRows: argmaxRows)
    }
}

func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
}
