import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// Random tensors with some scaled (a head whose noise barely reaches the latent makes chunks repeat).
private final class ScaledTensorSource: TensorSource, Sendable {
    let base: RandomTensorSource
    let scales: [String: Float]
    init(base: RandomTensorSource, scales: [String: Float]) { self.base = base; self.scales = scales }
    var url: URL { base.url }
    var tensorNames: [String] { base.tensorNames }
    var metadata: [String: String] { base.metadata }
    func info(_ name: String) -> (dtype: DType, shape: [Int])? { base.info(name) }
    func tensor(_ name: String) throws -> TensorData {
        let t = try base.tensor(name)
        guard let s = scales[name] else { return t }
        return try TensorData(name: name, shape: t.shape, floats: try t.floats().map { $0 * s }, dtype: t.dtype)
    }
}

/// Logs every draw from a seeded stream, so two runs can be shown to consume the same draws.
private final class RecordingRandomness: SequenceRandomness, @unchecked Sendable {
    let base: SeededRandomness
    var log: [Int] = []   // floats drawn per call; -1 for a double
    init(seed: UInt64) { base = SeededRandomness(seed: seed) }
    func uniformFloats(count: Int) -> [Float] { log.append(count); return base.uniformFloats(count: count) }
    func uniformDouble() -> Double { log.append(-1); return base.uniformDouble() }
}

/// Small random CALM models whose chunks repeat seldom, often, or always.
enum LazyFixtures {
    struct Variant: CustomStringConvertible, Sendable {
        let name: String
        let model: CALMModel
        var description: String { name }
    }

    /// The tiny shape (K = 4), with `vocab` ids and the head's noise scaled by `noiseGain`
    /// (`norm_noise` is the LayerNorm after the noise embedding: 0 makes every sample equal).
    static func model(vocab: Int = 512, noiseGain: Float = 1, seed: UInt64) throws -> CALMModel {
        var (c, a) = RandomModelWriter.Shape.tiny.configs
        if vocab != c.vocabSize {
            c.vocabSize = vocab; c.padTokenID = vocab - 1; c.eosTokenID = vocab - 2; c.bosTokenID = vocab - 3
            a.vocabSize = vocab; a.padTokenID = c.padTokenID; a.eosTokenID = c.eosTokenID; a.bosTokenID = c.bosTokenID
        }
        let source = ScaledTensorSource(base: RandomTensorSource(model: c, autoencoder: a, dtype: .f32, seed: seed),
                                        scales: noiseGain == 1 ? [:] : ["mlp_generator.norm_noise.weight": noiseGain])
        let autoencoder = try Autoencoder(config: a, source: source, prefix: "ae_model.")
        return try CALMModel(config: c, autoencoder: autoencoder, source: source)
    }

    static let variants: [Variant] = {
        do {
            return [Variant(name: "tiny V=512", model: try model(seed: 5)),
                    Variant(name: "V=6 (shared prefixes)", model: try model(vocab: 6, seed: 6)),
                    Variant(name: "quiet head (noise ×0.02)", model: try model(noiseGain: 0.02, seed: 7)),
                    Variant(name: "no noise (every chunk equal)", model: try model(noiseGain: 0, seed: 8))]
        } catch { fatalError("fixture models: \(error)") }
    }()

    /// The samplers and temperatures compared (name, sampler, temperature, draws per round).
    static let samplers: [(name: String, sampler: Sampler, temperature: Double, drawsPerRound: Int)] = [
        ("single", .single, 1, 8),
        ("batch T=1/2 N=16", .batchApproximation(samples: 16), 0.5, 8),
        ("batch T=1/3 N=24", .batchApproximation(samples: 24), 1.0 / 3, 8),
        ("batch T=1/4 N=7", .batchApproximation(samples: 7), 0.25, 8),
        ("batch T=1/2 N=2", .batchApproximation(samples: 2), 0.5, 8),
        ("exact T=0.7 8/round", .exactRejection(maxDraws: 32), 0.7, 8),
        ("exact T=1/2 1/round", .exactRejection(maxDraws: 24), 0.5, 1),
        ("exact T=1/3 3/round", .exactRejection(maxDraws: 30), 1.0 / 3, 3),
        ("exact T=0.4 5/round", .exactRejection(maxDraws: 25), 0.4, 5),
    ]

    /// The last hidden state of `rows` different prompts.
    static func hidden(_ model: CALMModel, rows: Int, seed: Int) throws -> [Float] {
        let k = model.patchSize, h = model.config.hiddenSize
        var out: [Float] = []
        for r in 0..<rows {
            let prompt = (0..<(2 * k)).map { (seed * 131 + r * 17 + $0 * 29) % (model.config.vocabSize - 3) }
            let states = try model.forward(chunks: [prompt], caches: [model.makeCache()])
            out += states.suffix(h)
        }
        return out
    }
}

/// Lazy, prefix-grouped decoding (`DecodingStrategy.lazy`) against the full decode: the same
/// tokens, the same selections and the same random draws for every sampler, with fewer argmax rows.
@Suite("Lazy decoding")
struct LazyDecodingTests {
    /// The argmax kernel's id for a row does not depend on which rows are batched with it, so the
    /// lazy decoder may argmax any subset of a decode's rows (row counts 1, 2, 3 and more take
    /// different kernel paths: one row two panels at a time, split panels, streamed tiles).
    @Test(arguments: [false, true])
    func argmaxRowsDoNotDependOnTheirNeighbours(serial: Bool) throws {
        var (c, a) = RandomModelWriter.Shape.tiny.configs
        c.vocabSize = 5000; a.vocabSize = 5000; c.padTokenID = 4999; c.eosTokenID = 4998; c.bosTokenID = 4997
        a.padTokenID = 4999; a.eosTokenID = 4998; a.bosTokenID = 4997
        let pool = serial ? ComputePool.serial : ComputePool.shared
        let ae = try Autoencoder(config: a, source: RandomTensorSource(model: c, autoencoder: a, dtype: .f32, seed: 2), prefix: "ae_model.",
                                 options: LoadOptions(pool: pool))
        var random = TestRandom(11)
        let latentsCount = 13
        let latents = (0..<(latentsCount * a.latentSize)).map { _ in random.normal() }
        let hidden = ae.decodeHidden(latents, rows: latentsCount, pool: pool)
        let m = latentsCount * a.patchSize, w = a.hiddenSize
        let all = ae.vocabularyArgmax(hidden, rows: m, pool: pool)
        #expect(all == ae.decodeTokens(latents, rows: latentsCount, pool: pool))
        #expect(Set(all).count > 5, "random rows have different ids")
        func rows(_ indices: [Int]) -> [Float] { indices.flatMap { hidden[($0 * w)..<(($0 + 1) * w)] } }
        var subsets: [[Int]] = (0..<m).map { [$0] }
        for size in [2, 3, 5, 7, 13, 31] {
            for _ in 0..<6 { subsets.append((0..<m).shuffled(using: &random).prefix(size).map { $0 }) }
        }
        for subset in subsets {
            #expect(ae.vocabularyArgmax(rows(subset), rows: subset.count, pool: pool) == subset.map { all[$0] }, "rows \(subset)")
        }
    }

    /// Single-sequence generation over many seeds: identical tokens, identical random draws (every
    /// call, in order), the same samples drawn; full decoding computes samples × K argmax rows and
    /// lazy decoding never more.
    @Test(arguments: LazyFixtures.variants.indices)
    func generationIsTheSame(variant: Int) throws {
        let v = LazyFixtures.variants[variant]
        let model = v.model, k = model.patchSize
        var fullRows = 0, lazyRows = 0
        for s in LazyFixtures.samplers {
            for seed in UInt64(1)...4 {
                let prompt = (0..<(3 + Int(seed))).map { (Int(seed) * 37 + $0 * 11) % (model.config.vocabSize - 3) }
                let parameters = GenerationParameters(maxTokens: 12, temperature: s.temperature, sampler: s.sampler, stopAtEndToken: false)
                let rf = RecordingRandomness(seed: seed), rl = RecordingRandomness(seed: seed)
                let full = try model.generate(promptIDs: prompt, parameters: parameters, randomness: rf, drawsPerRound: s.drawsPerRound, decoding: .full)
                let lazy = try model.generate(promptIDs: prompt, parameters: parameters, randomness: rl, drawsPerRound: s.drawsPerRound, decoding: .lazy)
                let what = "\(v), \(s.name), seed \(seed)"
                #expect(lazy.tokens == full.tokens, "\(what)")
                #expect(lazy.samplesDrawn == full.samplesDrawn && lazy.steps == full.steps, "\(what)")
                #expect(rl.log == rf.log, "\(what): random draws differ")
                #expect(rl.base.next() == rf.base.next(), "\(what): streams left in different states")
                #expect(full.argmaxRows == full.samplesDrawn * k, "\(what)")
                #expect(lazy.argmaxRows <= full.argmaxRows, "\(what)")
                fullRows += full.argmaxRows
                lazyRows += lazy.argmaxRows
            }
        }
        if v.name.hasPrefix("no noise") {
            // Every sample equal: every position of every sample must be compared.
            #expect(lazyRows == fullRows)
        } else {
            #expect(lazyRows < fullRows, "\(v): lazy \(lazyRows) rows, full \(fullRows)")
        }
    }

    /// One call over several sequences at once, sampler by sampler: the draws agree field by field,
    /// and the lazy pool is honest — each entry a prefix of the full decode's chunk, whole where the
    /// chunk occurs twice or was chosen, entries comparing like their chunks.
    @Test(arguments: LazyFixtures.variants.indices)
    func roundsAgreeFieldByField(variant: Int) throws {
        let v = LazyFixtures.variants[variant]
        let model = v.model, k = model.patchSize
        var depths = [Int](repeating: 0, count: k + 1)
        for s in LazyFixtures.samplers {
            for seed in 0..<3 {
                let rows = 3
                let hidden = try LazyFixtures.hidden(model, rows: rows, seed: seed)
                let selectors = try (0..<rows).map { _ in try s.sampler.makeSelector(temperature: s.temperature) }
                let rf = (0..<rows).map { RecordingRandomness(seed: UInt64(100 * seed + $0)) }
                let rl = (0..<rows).map { RecordingRandomness(seed: UInt64(100 * seed + $0)) }
                let full = try model.sampleChunks(hidden: hidden, selectors: selectors, randomness: rf, drawsPerRound: s.drawsPerRound, decoding: .full)
                let lazy = try model.sampleChunks(hidden: hidden, selectors: selectors, randomness: rl, drawsPerRound: s.drawsPerRound, decoding: .lazy)
                #expect(full.count == rows && lazy.count == rows)
                for (r, (f, l)) in zip(full, lazy).enumerated() {
                    let what = "\(v), \(s.name), seed \(seed), row \(r)"
                    #expect(l.chunk == f.chunk && l.chunk.count == k, "\(what)")
                    #expect(l.samplesDrawn == f.samplesDrawn && l.truncated == f.truncated && l.latent == f.latent, "\(what)")
                    #expect(l.selection?.level == f.selection?.level && l.selection?.weights == f.selection?.weights
                            && l.selection?.index == f.selection?.index && l.selection?.chunk == f.selection?.chunk, "\(what)")
                    #expect(rl[r].log == rf[r].log, "\(what): random draws differ")
                    #expect(f.argmaxRows == f.samplesDrawn * k && l.argmaxRows <= f.argmaxRows, "\(what)")
                    #expect(l.pool.count == f.pool.count && f.pool.allSatisfy(\.isComplete), "\(what)")
                    let chunks = f.pool.map(\.tokens)
                    var counts: [[Int32]: Int] = [:]
                    for c in chunks { counts[c, default: 0] += 1 }
                    var problems: [String] = []
                    for (i, entry) in l.pool.enumerated() {
                        depths[entry.tokens.count] += 1
                        if Array(chunks[i].prefix(entry.tokens.count)) != entry.tokens { problems.append("entry \(i) \(entry) is not a prefix of \(chunks[i])") }
                        if counts[chunks[i], default: 0] > 1 && !entry.isComplete { problems.append("entry \(i) repeats but is \(entry)") }
                        for j in l.pool.indices where j != i && (l.pool[j] == entry) != (chunks[j] == chunks[i]) {
                            problems.append("entries \(i), \(j) compare unlike their chunks")
                        }
                    }
                    #expect(problems.isEmpty, "\(what): \(problems.prefix(3))")
                    if let sel = l.selection { #expect(sel.candidates[sel.index].count == k && l.pool.contains { $0.tokens == l.chunk }, "\(what)") }
                }
            }
        }
        if v.name.hasPrefix("V=6") || v.name.hasPrefix("quiet") {
            // Prefixes shared beyond the first position, then told apart: the deep path ran.
            #expect(depths[2] + depths[3] > 0, "\(v): pool entries by decoded length \(depths)")
        }
        if v.name.hasPrefix("no noise") { #expect(depths[k] > 0 && depths[0..<k].allSatisfy { $0 == 0 }, "\(depths)") }
        if v.name.hasPrefix("tiny") { #expect(depths[1] > 0, "\(depths)") }
    }

    /// The engine runs the exact sampler one round per call and resumes it later (kept draws and
    /// all): lazily, round by round, it gives the chunk and the draws of one uninterrupted full call.
    @Test(arguments: LazyFixtures.variants.indices)
    func exactRoundsResumeAcrossCalls(variant: Int) throws {
        let v = LazyFixtures.variants[variant]
        let model = v.model
        for (t, perRound) in [(0.5, 1), (1.0 / 3, 2), (0.3, 4)] {
            for seed in 0..<4 {
                let rows = 2
                let hidden = try LazyFixtures.hidden(model, rows: rows, seed: seed)
                let sampler = Sampler.exactRejection(maxDraws: 30)
                let rf = (0..<rows).map { RecordingRandomness(seed: UInt64(7 + 10 * seed + $0)) }
                let rl = (0..<rows).map { RecordingRandomness(seed: UInt64(7 + 10 * seed + $0)) }
                let full = try model.sampleChunks(hidden: hidden, selectors: try (0..<rows).map { _ in try sampler.makeSelector(temperature: t) },
                                                  randomness: rf, drawsPerRound: perRound, decoding: .full)
                var selectors = try (0..<rows).map { _ in try sampler.makeSelector(temperature: t) }
                var result = [ChunkDraw?](repeating: nil, count: rows)
                var samples = [Int](repeating: 0, count: rows)
                var pending = Array(0..<rows)
                var calls = 0
                while !pending.isEmpty && calls < 100 {
                    calls += 1
                    var sel = pending.map { selectors[$0] }
                    var work: [SamplingWork] = []
                    let draws = try model.sampleChunks(hidden: pending.flatMap { Array(hidden[($0 * model.config.hiddenSize)..<(($0 + 1) * model.config.hiddenSize)]) },
                                                       selectors: &sel, randomness: pending.map { rl[$0] }, drawsPerRound: perRound,
                                                       maxRounds: 1, decoding: .lazy, work: &work)
                    var still: [Int] = []
                    for (j, r) in pending.enumerated() {
                        selectors[r] = sel[j]
                        samples[r] += work[j].samples
                        if let d = draws[j] { result[r] = d } else { still.append(r) }
                    }
                    pending = still
                }
                for r in 0..<rows {
                    let what = "\(v), T=\(t), \(perRound)/round, seed \(seed), row \(r)"
                    #expect(result[r]?.chunk == full[r].chunk, "\(what)")
                    #expect(samples[r] == full[r].samplesDrawn && result[r]?.truncated == full[r].truncated, "\(what)")
                    #expect(rl[r].log == rf[r].log, "\(what): random draws differ")
                }
            }
        }
    }
}
