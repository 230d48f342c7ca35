import CALMModel
import Foundation

/// CALM (arXiv 2510.27688): one KV position per chunk of K tokens; a step runs the backbone for
/// every sequence's new chunks in one batched pass, then the energy head and the autoencoder's
/// decoder once for all samples of all committing sequences (repeated in rounds only for
/// exact-rejection sequences still undecided).
public final class CALMFamily: ModelFamily {
    public let model: CALMModel

    public init(model: CALMModel) { self.model = model }

    public var name: String { "calm" }
    public var tokensPerPosition: Int { model.patchSize }
    public var vocabularySize: Int { model.config.vocabSize }
    public var contextPositions: Int { model.config.maxPositionEmbeddings }
    public var endTokenIDs: Set<Int> { model.eosTokenID.map { [$0] } ?? [] }
    public var paddingTokenID: Int? { model.padTokenID }
    public func kvLayout(blockPositions: Int) -> KVLayout { model.kvLayout(blockPositions: blockPositions) }

    /// The sampler a request runs (nil: the reference's batch approximation with N = 200).
    static func sampler(_ p: SamplingParameters) -> Sampler { p.sampler ?? .reference }

    public func validate(_ p: SamplingParameters) throws {
        if p.maturation != nil {
            throw EngineError.invalidParameter(name: "maturation", reason: "Token Maturation settings are for Token Maturation models; this is a \(name) model")
        }
        if let name = p.discreteControlsSet.first {
            throw EngineError.invalidParameter(name: name, reason: "CALM has no logits, so it has no \(name); temperature works through the sampler (batch approximation or exact rejection)")
        }
        do { _ = try Self.sampler(p).makeSelector(temperature: p.temperature) } catch let ModelError.invalidParameter(name, reason) {
            throw EngineError.invalidParameter(name: name, reason: reason)
        }
    }

    /// A chunk being chosen: its selector, the hidden state it samples from, and (for the exact
    /// sampler, which may need many rounds) the time credit it has for rounds beside others.
    final class PendingChunk {
        var selector: any ChunkSelector
        let hidden: [Float]
        let fixedCost: Bool
        var drawn = 0
        var argmaxRows = 0
        /// Seconds of rounds this chunk may still run before others' work has paid for more.
        var credit = 0.0
        /// What its last round took.
        var lastRound = 0.0
        init(selector: any ChunkSelector, hidden: [Float], fixedCost: Bool) {
            self.selector = selector; self.hidden = hidden; self.fixedCost = fixedCost
        }
    }

    /// Rounds of exact-rejection draws may take this share of the time the step's other work took
    /// (earned per step, spent when a round fits), so a request whose draws do not resolve never
    /// holds up the others; it runs a round every step when it is alone.
    static let exactRoundShare = 0.5

    public func step(_ batch: StepBatch) throws -> [StepOutcome] {
        let start = DispatchTime.now().uptimeNanoseconds
        // Sequences still deciding last step's chunk feed nothing; the others run the backbone.
        let fed = batch.entries.indices.filter { !batch.entries[$0].tokens.isEmpty }
        let hidden = fed.isEmpty ? [] : try model.forward(chunks: fed.map { batch.entries[$0].tokens }, caches: fed.map { batch.entries[$0].cache })
        let forwardDone = DispatchTime.now().uptimeNanoseconds
        var decoded = SamplingWork()
        defer {
            let end = DispatchTime.now().uptimeNanoseconds
            batch.recordTimes(backbone: Double(forwardDone - start) / 1e9, sampling: Double(end - forwardDone) / 1e9,
                              samples: decoded.samples, rows: hidden.count / model.config.hiddenSize, argmaxRows: decoded.argmaxRows)
        }
        let h = model.config.hiddenSize, k = model.patchSize
        var outcomes = [StepOutcome](repeating: .fed, count: batch.entries.count)
        // The last position of each committing sequence; a non-finite state fails that sequence only.
        var rows: [(entry: Int, pending: PendingChunk)] = []
        var row = 0
        for i in fed {
            let e = batch.entries[i]
            row += e.tokens.count / k
            guard e.commits else { continue }
            let last = Array(hidden[((row - 1) * h)..<(row * h)])
            if last.contains(where: { !$0.isFinite }) {
                outcomes[i] = .failed(ModelError.nonFinite(what: "backbone hidden state of request \(e.requestID)").description)
                continue
            }
            let selector = try Self.sampler(e.parameters).makeSelector(temperature: e.parameters.temperature)
            rows.append((i, PendingChunk(selector: selector, hidden: last, fixedCost: selector.decidesInOneRound)))
        }
        for (i, e) in batch.entries.enumerated() where e.tokens.isEmpty {
            guard let pending = e.state.value as? PendingChunk else {
                outcomes[i] = .failed("request \(e.requestID) was scheduled with nothing to feed and no chunk pending")
                continue
            }
            rows.append((i, pending))
        }
        func sample(_ chosen: [(entry: Int, pending: PendingChunk)], maxRounds: Int?) throws -> [Int] {
            guard !chosen.isEmpty else { return [] }
            var selectors = chosen.map(\.pending.selector)
            var work: [SamplingWork] = []
            let draws = try model.sampleChunks(hidden: chosen.flatMap(\.pending.hidden), selectors: &selectors,
                                               randomness: chosen.map { batch.entries[$0.entry].randomness },
                                               drawsPerRound: batch.exactRejectionDrawsPerRound, maxRounds: maxRounds,
                                               decoding: batch.chunkDecoding, work: &work)
            var undecided: [Int] = []
            for (j, r) in chosen.enumerated() {
                decoded.samples += work[j].samples
                decoded.argmaxRows += work[j].argmaxRows
                r.pending.drawn += work[j].samples
                r.pending.argmaxRows += work[j].argmaxRows
                r.pending.selector = selectors[j]
                let entry = batch.entries[r.entry]
                guard let d = draws[j] else { undecided.append(j); continue }
                entry.state.value = nil
                outcomes[r.entry] = .committed(StepCommit(tokens: d.chunk.map(Int.init), samplesDrawn: r.pending.drawn,
                                                          level: d.selection?.level, truncated: d.truncated,
                                                          argmaxRows: r.pending.argmaxRows))
            }
            return undecided
        }
        // Fixed-cost samplers (one head sample, or N for the batch approximation) decide in one round.
        _ = try sample(rows.filter(\.pending.fixedCost), maxRounds: nil)
        // Exact-rejection chunks run rounds on credit earned from the rest of the step's work.
        var exact = rows.filter { !$0.pending.fixedCost }
        let earned = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 * Self.exactRoundShare
        // With no other work in the step there is nobody to hold up: one round runs regardless.
        let exactEntries = Set(exact.map(\.entry))
        let alone = exact.count == rows.count && fed.allSatisfy { exactEntries.contains($0) }
        for r in exact { r.pending.credit = min(r.pending.credit + earned, max(earned, r.pending.lastRound) * 4) }
        var first = true
        while !exact.isEmpty {
            let eligible = exact.filter { $0.pending.credit >= $0.pending.lastRound || (alone && first) }
            guard !eligible.isEmpty else { break }
            first = false
            let roundStart = DispatchTime.now().uptimeNanoseconds
            let undecided = Set(try sample(eligible, maxRounds: 1))
            let took = Double(DispatchTime.now().uptimeNanoseconds - roundStart) / 1e9
            var still: [(entry: Int, pending: PendingChunk)] = []
            for (j, r) in eligible.enumerated() {
                r.pending.credit -= took
                r.pending.lastRound = took
                if undecided.contains(j) { still.append(r) }
            }
            exact = exact.filter { r in !eligible.contains { $0.entry == r.entry } } + still
        }
        // Undecided chunks go on at the next step.
        for r in rows where { if case .fed = outcomes[r.entry] { return true } else { return false } }() {
            batch.entries[r.entry].state.value = r.pending
            outcomes[r.entry] = .pending
        }
        return outcomes
    }
}
