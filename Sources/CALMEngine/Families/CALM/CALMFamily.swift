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
    static func sampler(_ p: SamplingParameters) -> Sampler { p.sampler ?? .batchApproximation(samples: 200) }

    public func validate(_ p: SamplingParameters) throws {
        if let name = p.discreteControlsSet.first {
            throw EngineError.invalidParameter(name: name, reason: "CALM has no logits, so it has no \(name); temperature works through the sampler (batch approximation or exact rejection)")
        }
        guard p.temperature > 0, p.temperature <= 1 else {
            throw EngineError.invalidParameter(name: "temperature", reason: "CALM samples at T in (0, 1], got \(p.temperature)")
        }
        switch Self.sampler(p) {
        case .single:
            guard p.temperature == 1 else {
                throw EngineError.invalidParameter(name: "sampler", reason: "the single sampler draws at T = 1; use the batch approximation or exact rejection for temperature \(p.temperature)")
            }
        case let .batchApproximation(samples):
            guard samples >= 1 else { throw EngineError.invalidParameter(name: "samples", reason: "must be at least 1, got \(samples)") }
            do { _ = try BatchApproximation.level(forTemperature: p.temperature) } catch let ModelError.invalidParameter(_, reason) {
                throw EngineError.invalidParameter(name: "temperature", reason: reason)
            }
        case let .exactRejection(maxDraws):
            guard maxDraws >= 1 else { throw EngineError.invalidParameter(name: "maxDraws", reason: "must be at least 1, got \(maxDraws)") }
        }
    }

    public func step(_ batch: StepBatch) throws -> [StepOutcome] {
        let start = DispatchTime.now().uptimeNanoseconds
        let hidden = try model.forward(chunks: batch.entries.map(\.tokens), caches: batch.entries.map(\.cache))
        let forwardDone = DispatchTime.now().uptimeNanoseconds
        var decoded = 0
        defer {
            let end = DispatchTime.now().uptimeNanoseconds
            batch.recordTimes(backbone: Double(forwardDone - start) / 1e9, sampling: Double(end - forwardDone) / 1e9,
                              samples: decoded, rows: hidden.count / model.config.hiddenSize)
        }
        let h = model.config.hiddenSize, k = model.patchSize, eps = model.config.noiseSize
        var outcomes = [StepOutcome](repeating: .fed, count: batch.entries.count)
        // The last position of each committing sequence; a non-finite state fails that sequence only.
        var samplers: [(entry: Int, hidden: ArraySlice<Float>)] = []
        var row = 0
        for (i, e) in batch.entries.enumerated() {
            row += e.tokens.count / k
            guard e.commits else { continue }
            let last = hidden[((row - 1) * h)..<(row * h)]
            if last.contains(where: { !$0.isFinite }) {
                outcomes[i] = .failed(ModelError.nonFinite(what: "backbone hidden state of request \(e.requestID)").description)
                continue
            }
            samplers.append((i, last))
        }
        guard !samplers.isEmpty else { return outcomes }

        enum Mode { case single, batch(level: Int, samples: Int), exact(ExactRejectionSampler<[Int32]>) }
        var modes: [Mode] = []
        for s in samplers {
            let p = batch.entries[s.entry].parameters
            switch Self.sampler(p) {
            case .single: modes.append(.single)
            case let .batchApproximation(n):
                let level = try BatchApproximation.level(forTemperature: p.temperature)
                modes.append(level == 1 ? .single : .batch(level: level, samples: n))
            case let .exactRejection(maxDraws):
                modes.append(p.temperature == 1 ? .single
                             : .exact(try ExactRejectionSampler<[Int32]>(temperature: p.temperature, maxDraws: maxDraws)))
            }
        }
        var unresolved = Array(samplers.indices)
        var drawn = [Int](repeating: 0, count: samplers.count)
        while !unresolved.isEmpty {
            let counts = unresolved.map { j -> Int in
                switch modes[j] {
                case .single: return 1
                case let .batch(_, n): return n
                case let .exact(s): return min(batch.exactRejectionDrawsPerRound, s.maxDraws - s.draws)
                }
            }
            var rowsHidden: [Float] = []
            var noise: [Float] = []
            for (j, c) in zip(unresolved, counts) {
                rowsHidden += samplers[j].hidden
                noise += batch.entries[samplers[j].entry].randomness.uniformFloats(count: c * eps).map { $0 - 0.5 }
            }
            let latents = model.head.sample(hiddenStates: rowsHidden, sampleCounts: counts, noise: noise, pool: model.pool)
            let tokens = model.autoencoder.decodeTokens(latents, rows: counts.reduce(0, +), pool: model.pool)
            decoded += counts.reduce(0, +)
            var offset = 0
            var still: [Int] = []
            for (j, c) in zip(unresolved, counts) {
                let chunks = (0..<c).map { Array(tokens[((offset + $0) * k)..<((offset + $0 + 1) * k)]) }
                offset += c
                drawn[j] += c
                let e = samplers[j].entry
                let rng = batch.entries[e].randomness
                switch modes[j] {
                case .single:
                    outcomes[e] = .committed(StepCommit(tokens: chunks[0].map(Int.init)))
                case let .batch(level, n):
                    let s = BatchApproximation.select(pool: chunks, level: level, u: rng.uniformDouble())
                    outcomes[e] = .committed(StepCommit(tokens: s.chunk.map(Int.init), samplesDrawn: n, level: s.level))
                case var .exact(sampler):
                    var accepted: [Int32]?
                    for chunk in chunks where accepted == nil {
                        accepted = sampler.consume(chunk) { rng.uniformDouble() }
                    }
                    modes[j] = .exact(sampler)
                    if let accepted {
                        outcomes[e] = .committed(StepCommit(tokens: accepted.map(Int.init), samplesDrawn: drawn[j],
                                                            truncated: sampler.truncated))
                    } else {
                        still.append(j)
                    }
                }
            }
            unresolved = still
        }
        return outcomes
    }
}
