import Foundation

/// One sequence's draw for one step.
public struct ChunkDraw: Sendable {
    /// The chosen chunk (K ids), before any end-of-text masking.
    public var chunk: [Int32]
    /// Head samples drawn.
    public var samplesDrawn: Int
    /// The round's draws (batch approximation only; N entries), as far as they were decoded: all
    /// whole under `DecodingStrategy.full`; under `.lazy` the chosen chunk and every chunk drawn
    /// more than once are whole, and any other entry may be just the prefix that no other entry
    /// shares (`PartialChunk`). Entries compare like their chunks either way.
    public var pool: [PartialChunk] = []
    /// The selection (batch approximation only). Its `candidates` are pool entries: under lazy
    /// decoding a level-1 candidate other than the chosen one may be a prefix; counts, weights,
    /// level and index are those of the whole chunks.
    public var selection: BatchApproximation.Selection?
    /// The latent behind `chunk` (single sampling only).
    public var latent: [Float] = []
    /// Whether the exact sampler stopped at `maxDraws` before an exact acceptance.
    public var truncated = false
    /// Rows of the vocabulary argmax computed for this chunk in this call (all rounds, the
    /// chosen chunk's completion included): samples × K under full decoding.
    public var argmaxRows = 0
    /// The chosen draw, until `sampleChunks` has decoded it in full.
    var source: DecodedDraw?
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
    /// both sample through here. `work[r]` receives the samples row r drew in this call and the
    /// vocabulary-argmax rows its decoding took.
    ///
    /// `decoding` chooses how the round's samples become chunks (`DecodingStrategy`): the decoder
    /// trunk runs for every sample either way; `.full` argmaxes all K positions of every sample,
    /// `.lazy` only the positions that can change a selection, then the chosen chunk in full. The
    /// chunks chosen, and the random draws consumed, are the same.
    public func sampleChunks(hidden: [Float], selectors: inout [any ChunkSelector], randomness: [SequenceRandomness],
                             drawsPerRound: Int = Sampler.defaultDrawsPerRound, maxRounds: Int? = nil,
                             decoding: DecodingStrategy = .lazy,
                             work: inout [SamplingWork], record: ActivationRecorder? = nil) throws -> [ChunkDraw?] {
        let h = config.hiddenSize, k = patchSize, eps = config.noiseSize, z = config.latentSize
        guard hidden.count == selectors.count * h, randomness.count == selectors.count else {
            throw ModelError.invalidParameter(name: "hidden", reason: "\(hidden.count) floats, \(randomness.count) random streams for \(selectors.count) rows of \(h)")
        }
        var draws = [ChunkDraw?](repeating: nil, count: selectors.count)
        work = [SamplingWork](repeating: SamplingWork(), count: selectors.count)
        var unresolved = Array(selectors.indices)
        var rounds = 0
        while !unresolved.isEmpty {
            if let maxRounds, rounds >= maxRounds { break }
            rounds += 1
            let counts = unresolved.map { selectors[$0].samplesWanted(roundLimit: max(1, drawsPerRound)) }
            let total = counts.reduce(0, +)
            var rowsHidden: [Float] = []
            var noise: [Float] = []
            rowsHidden.reserveCapacity(unresolved.count * h)
            noise.reserveCapacity(total * eps)
            for (r, c) in zip(unresolved, counts) {
                rowsHidden += hidden[(r * h)..<((r + 1) * h)]
                noise += randomness[r].uniformFloats(count: c * eps).map { $0 - 0.5 }
            }
            let latents = head.sample(hiddenStates: rowsHidden, sampleCounts: counts, noise: noise, pool: pool, record: record)
            let rows = DecoderRows(hidden: autoencoder.decodeHidden(latents, rows: total, pool: pool), latents: latents,
                                   chunkSize: k, width: autoencoder.config.hiddenSize, latentSize: z)
            // Full decoding: every position of every sample, in one call (the reference path).
            let decoded: [Int32] = decoding == .full ? autoencoder.vocabularyArgmax(rows.hidden, rows: total * k, pool: pool) : []
            // Each row's comparison set: its selector's earlier draws, then this round's.
            var sets: [[DecodedDraw]] = []
            var offset = 0
            for (r, c) in zip(unresolved, counts) {
                let fresh = (offset..<(offset + c)).map { i in
                    DecodedDraw(chunk: PartialChunk(tokens: decoding == .full ? Array(decoded[(i * k)..<((i + 1) * k)]) : [], size: k),
                                rows: rows, index: i)
                }
                sets.append(selectors[r].earlierDraws + fresh)
                offset += c
                work[r].samples += c
                if decoding == .full { work[r].argmaxRows += c * k }
            }
            // Lazy decoding decodes the positions that tell draws apart; after a full decode this
            // only reaches earlier draws left partial, if any.
            let prefixRows = autoencoder.decodePrefixes(&sets, pool: pool)
            var still: [Int] = []
            var decided: [(row: Int, draw: ChunkDraw)] = []
            for (n, (r, c)) in zip(unresolved, counts).enumerated() {
                work[r].argmaxRows += prefixRows[n]
                let earlier = sets[n].count - c
                let round = DecodedRound(draws: Array(sets[n][earlier...]), earlier: Array(sets[n][..<earlier]))
                if let d = selectors[r].consume(round, randomness: randomness[r]) {
                    decided.append((r, d))
                } else {
                    still.append(r)
                }
            }
            // The chosen chunks in full (lazy decoding may have stopped at a prefix).
            var sources: [DecodedDraw] = []
            for d in decided {
                guard let source = d.draw.source else {
                    throw ModelError.invalidParameter(name: "sampler", reason: "a selector chose a chunk without its draw")
                }
                sources.append(source)
            }
            let (chunks, completionRows) = autoencoder.completeChunks(sources, pool: pool)
            for (i, item) in decided.enumerated() {
                let r = item.row
                var d = item.draw
                work[r].argmaxRows += completionRows[i]
                let prefix = sources[i].chunk.tokens
                if prefix.count < k {
                    // A prefix no other entry shares: its pool entry and candidate are this draw's.
                    if let j = d.pool.firstIndex(where: { $0.tokens == prefix }) { d.pool[j] = PartialChunk(tokens: chunks[i], size: k) }
                    if var s = d.selection, s.candidates[s.index] == prefix {
                        s.candidates[s.index] = chunks[i]
                        d.selection = s
                    }
                }
                d.chunk = chunks[i]
                d.source = nil
                d.samplesDrawn = work[r].samples   // discarded draws of the last round count too
                d.argmaxRows = work[r].argmaxRows
                draws[r] = d
            }
            unresolved = still
        }
        return draws
    }

    /// `sampleChunks` to the end: every row decides (single-sequence generation, conformance).
    public func sampleChunks(hidden: [Float], selectors: [any ChunkSelector], randomness: [SequenceRandomness],
                             drawsPerRound: Int = Sampler.defaultDrawsPerRound, decoding: DecodingStrategy = .lazy,
                             record: ActivationRecorder? = nil) throws -> [ChunkDraw] {
        var selectors = selectors
        var work: [SamplingWork] = []
        let draws = try sampleChunks(hidden: hidden, selectors: &selectors, randomness: randomness, drawsPerRound: drawsPerRound,
                                     decoding: decoding, work: &work, record: record)
        return draws.compactMap { $0 }
    }
}
