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
        let h = model.config.hiddenSize, k = model.patchSize
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

        let selectors = try samplers.map { s -> any ChunkSelector in
            let p = batch.entries[s.entry].parameters
            return try Self.sampler(p).makeSelector(temperature: p.temperature)
        }
        let draws = try model.sampleChunks(hidden: samplers.flatMap(\.hidden), selectors: selectors,
                                           randomness: samplers.map { batch.entries[$0.entry].randomness },
                                           drawsPerRound: batch.exactRejectionDrawsPerRound)
        for (s, d) in zip(samplers, draws) {
            decoded += d.samplesDrawn
            outcomes[s.entry] = .committed(StepCommit(tokens: d.chunk.map(Int.init), samplesDrawn: d.samplesDrawn,
                                                      level: d.selection?.level, truncated: d.truncated))
        }
        return outcomes
    }
}
