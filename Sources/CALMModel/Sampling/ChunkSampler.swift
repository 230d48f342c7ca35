import Foundation

/// One sequence's draw for one step.
public struct ChunkDraw: Sendable {
    /// The chosen chunk (K ids), before any end-of-text masking.
    public var chunk: [Int32]
    /// Head samples drawn.
    public var samplesDrawn: Int
    /// The decoded pool (batch approximation only; N chunks).
    public var pool: [[Int32]] = []
    /// The selection (batch approximation only).
    public var selection: BatchApproximation.Selection?
    /// The latent behind `chunk` (single sampling only).
    public var latent: [Float] = []
    /// Whether the exact sampler stopped at `maxDraws` before an exact acceptance.
    public var truncated = false
}

extension CALMModel {
    /// Draws the next chunk for each of the hidden rows (rows × hidden), one selector per row:
    /// every round draws all undecided rows' samples in one batched head + decoder pass, until
    /// every selector has decided — or `maxRounds` rounds have run; rows still undecided are nil
    /// and their selectors (in `selectors`) continue where they stopped at the next call, drawing
    /// the same samples in the same order (rounds are never split), so the result does not depend
    /// on where the work was cut. Row r's noise and
    /// selection draws come from `randomness[r]` only, so a row's result is independent of the
    /// others (the kernels' rows are independent too). The engine and single-sequence generation
    /// both sample through here. `drawn[r]` receives the samples row r drew in this call.
    public func sampleChunks(hidden: [Float], selectors: inout [any ChunkSelector], randomness: [SequenceRandomness],
                             drawsPerRound: Int = Sampler.defaultDrawsPerRound, maxRounds: Int? = nil,
                             drawn: inout [Int], record: ActivationRecorder? = nil) throws -> [ChunkDraw?] {
        let h = config.hiddenSize, k = patchSize, eps = config.noiseSize, z = config.latentSize
        guard hidden.count == selectors.count * h, randomness.count == selectors.count else {
            throw ModelError.invalidParameter(name: "hidden", reason: "\(hidden.count) floats, \(randomness.count) random streams for \(selectors.count) rows of \(h)")
        }
        var draws = [ChunkDraw?](repeating: nil, count: selectors.count)
        drawn = [Int](repeating: 0, count: selectors.count)
        var unresolved = Array(selectors.indices)
        var rounds = 0
        while !unresolved.isEmpty {
            if let maxRounds, rounds >= maxRounds { break }
            rounds += 1
            let counts = unresolved.map { selectors[$0].samplesWanted(roundLimit: max(1, drawsPerRound)) }
            var rowsHidden: [Float] = []
            var noise: [Float] = []
            rowsHidden.reserveCapacity(unresolved.count * h)
            noise.reserveCapacity(counts.reduce(0, +) * eps)
            for (r, c) in zip(unresolved, counts) {
                rowsHidden += hidden[(r * h)..<((r + 1) * h)]
                noise += randomness[r].uniformFloats(count: c * eps).map { $0 - 0.5 }
            }
            let latents = head.sample(hiddenStates: rowsHidden, sampleCounts: counts, noise: noise, pool: pool, record: record)
            let tokens = autoencoder.decodeTokens(latents, rows: counts.reduce(0, +), pool: pool)
            var offset = 0
            var still: [Int] = []
            for (r, c) in zip(unresolved, counts) {
                let chunks = (0..<c).map { Array(tokens[((offset + $0) * k)..<((offset + $0 + 1) * k)]) }
                let rowLatents = (0..<c).map { Array(latents[((offset + $0) * z)..<((offset + $0 + 1) * z)]) }
                offset += c
                drawn[r] += c
                if var d = selectors[r].consume(chunks: chunks, latents: rowLatents, randomness: randomness[r]) {
                    d.samplesDrawn = drawn[r]   // discarded draws of the last round count too
                    draws[r] = d
                } else {
                    still.append(r)
                }
            }
            unresolved = still
        }
        return draws
    }

    /// `sampleChunks` to the end: every row decides (single-sequence generation, conformance).
    public func sampleChunks(hidden: [Float], selectors: [any ChunkSelector], randomness: [SequenceRandomness],
                             drawsPerRound: Int = Sampler.defaultDrawsPerRound, record: ActivationRecorder? = nil) throws -> [ChunkDraw] {
        var selectors = selectors
        var drawn: [Int] = []
        let draws = try sampleChunks(hidden: hidden, selectors: &selectors, randomness: randomness, drawsPerRound: drawsPerRound,
                                     drawn: &drawn, record: record)
        return draws.compactMap { $0 }
    }
}
