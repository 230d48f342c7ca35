import Foundation

/// The reference `CALM.generate` loop for a batch of equal-length prompts, kept step for step
/// (right padding with `[PAD]`, the first step over the whole prompt, the T = 1 shortcut or the
/// batch approximation, end-of-text masking, `[PAD]` clean-up) so golden fixtures can be replayed.
public struct ReferenceGeneration: Sendable {
    /// What one step did, per row.
    public struct Step: Sendable {
        public var hidden: [Float]
        public var draws: [ChunkDraw]
    }
    /// The sequence as built inside the loop (padded prompt, chunks, post-EOS pads), per row.
    public var rawIDs: [[Int]]
    /// The reference's return value: every `[PAD]` removed, left-aligned, refilled with `[PAD]`.
    public var outputIDs: [[Int]]
    /// The padded prompt, per row.
    public var paddedPromptIDs: [[Int]]
    public var steps: [Step]
}

extension CALMModel {
    /// Replays the reference generate loop. `maxLength` counts the padded prompt, as in the reference;
    /// `eosTokenID` overrides the config's (the fixtures' early-EOS golden does this). `decoding`
    /// defaults to the full decode, whose pools hold every sample's whole chunk as the reference's do.
    public func referenceGenerate(prompts: [[Int]], maxLength: Int, temperature: Double, sampler: Sampler,
                                  randomness: [SequenceRandomness], eosTokenID: Int? = nil,
                                  decoding: DecodingStrategy = .full) throws -> ReferenceGeneration {
        guard let length = prompts.first?.count, length > 0 else { throw ModelError.invalidPrompt(reason: "empty prompt") }
        guard prompts.allSatisfy({ $0.count == length }) else {
            throw ModelError.invalidPrompt(reason: "prompts in a reference batch must have equal length")
        }
        let k = patchSize, pad = padTokenID, eos = eosTokenID ?? self.eosTokenID
        let padded = prompts.map { p in p + [Int](repeating: pad, count: (k - p.count % k) % k) }
        var sequences = padded
        var unfinished = [Bool](repeating: true, count: prompts.count)
        let caches = prompts.map { _ in makeCache() }
        var steps: [ReferenceGeneration.Step] = []
        var inputs = padded
        while true {
            let hiddenAll = try forward(chunks: inputs, caches: caches)
            // The last position of each row.
            var hidden: [Float] = []
            var offset = 0
            for input in inputs {
                let rows = input.count / k
                offset += rows
                hidden += hiddenAll[((offset - 1) * config.hiddenSize)..<(offset * config.hiddenSize)]
            }
            let selectors = try prompts.map { _ in try sampler.makeSelector(temperature: temperature) }
            let draws = try sampleChunks(hidden: hidden, selectors: selectors, randomness: randomness, decoding: decoding)
            steps.append(.init(hidden: hidden, draws: draws))
            for r in sequences.indices {
                let chunk = unfinished[r] ? draws[r].chunk.map(Int.init) : [Int](repeating: pad, count: k)
                sequences[r] += chunk
                if let eos, chunk.contains(eos) { unfinished[r] = false }
                inputs[r] = chunk
            }
            if sequences[0].count >= maxLength || !unfinished.contains(true) { break }
        }
        let total = sequences[0].count
        let outputs = sequences.map { s -> [Int] in
            let kept = s.filter { $0 != pad }
            return kept + [Int](repeating: pad, count: total - kept.count)
        }
        return ReferenceGeneration(rawIDs: sequences, outputIDs: outputs, paddedPromptIDs: padded, steps: steps)
    }
}
