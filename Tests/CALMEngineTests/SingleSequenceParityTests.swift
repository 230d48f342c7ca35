import CALMEngine
import CALMModel
import CALMTestSupport
import Foundation
import Testing

/// The engine's tokens equal single-sequence generation's for the same seed and prompt, for every
/// family and every sampler (both sample through one seam: `Sampler.makeSelector` and
/// `CALMModel.sampleChunks`; `TokenSampler`).
@Suite("Engine = single-sequence generation")
struct SingleSequenceParityTests {
    static let prompts: [[Int]] = [EngineFixtures.prompt(1, length: 5), EngineFixtures.prompt(2, length: 8), EngineFixtures.prompt(3, length: 13)]

    @Test(arguments: TestFamily.calm.samplers.indices)
    func calm(samplerIndex: Int) async throws {
        let model = try #require(TestFamily.calmModel)
        let engine = try TestFamily.calm.engine()
        let (name, base) = TestFamily.calm.samplers[samplerIndex]
        let sampler = try #require(base.sampler)
        for (i, prompt) in Self.prompts.enumerated() {
            let seed = UInt64(40 + i)
            // The engine draws exact-rejection samples in rounds of this size; so must the single run.
            let single = try model.generate(promptIDs: prompt, parameters: GenerationParameters(
                maxTokens: 24, temperature: base.temperature, sampler: sampler, seed: seed, stopAtEndToken: true),
                drawsPerRound: engine.configuration.exactRejectionDrawsPerRound).tokens
            var p = base
            p.maxTokens = 24; p.seed = seed; p.stopAtEndToken = true
            let served = await EngineFixtures.collect(try engine.generate(prompt: .tokens(prompt), parameters: p)).tokens
            #expect(served == single, "\(name), prompt \(i)")
        }
    }

    @Test(arguments: TestFamily.llama.samplers.indices)
    func llama(samplerIndex: Int) async throws {
        let model = try #require(TestFamily.llamaModel)
        let engine = try TestFamily.llama.engine()
        let (name, base) = TestFamily.llama.samplers[samplerIndex]
        for (i, prompt) in Self.prompts.enumerated() {
            let seed = UInt64(70 + i)
            var p = base
            p.maxTokens = 20; p.seed = seed; p.stopAtEndToken = true
            let sampler = TokenSampler(temperature: p.temperature, topK: p.topK, topP: p.topP, minP: p.minP,
                                       repetitionPenalty: p.repetitionPenalty, presencePenalty: p.presencePenalty,
                                       frequencyPenalty: p.frequencyPenalty)
            let single = try model.generate(promptIDs: prompt, maxTokens: 20, sampler: sampler, seed: seed, stopAtEndToken: true).tokens
            var logprobs: [Double] = []
            var served: [Int] = []
            for await e in try engine.generate(prompt: .tokens(prompt), parameters: p) {
                if case let .chunk(c) = e { served += c.tokens; logprobs += c.logprobs ?? [] }
            }
            #expect(served == single, "\(name), prompt \(i)")
            if p.logprobs {
                #expect(logprobs.count == served.count && logprobs.allSatisfy { $0 <= 0 && $0.isFinite })
            }
        }
    }

    /// Greedy rows skip the logits and take the vocabulary projection's argmax, screened from 4096
    /// outputs: a batch of greedy requests (beside sampled ones and ones with a penalty, which take
    /// the logits) gives each one's single-sequence tokens, which come from the logits.
    @Test func greedyThroughTheScreenedArgmaxEqualsTheLogits() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llama-screened-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var shape = TinyLlama.Shape(vocab: 6000, hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2)
        shape.logitScale = 2
        let model = try TinyLlama.load(try TinyLlama.write(to: dir, shape: shape, seed: 9))
        #expect(model.vocabSize >= Linear.screenMinOutFeatures)
        let engine = try CALMEngine(family: DiscreteFamily(model: model), configuration: EngineConfiguration(kvCacheBytes: 32 << 20))
        let kinds: [(String, SamplingParameters)] = [
            ("greedy", SamplingParameters(maxTokens: 16, temperature: 0)),
            ("greedy with top-k", SamplingParameters(maxTokens: 16, temperature: 0, topK: 5)),
            ("greedy with a penalty", SamplingParameters(maxTokens: 16, temperature: 0, repetitionPenalty: 1.3)),
            ("sampled", SamplingParameters(maxTokens: 16, temperature: 0.8)),
        ]
        var streams: [(String, [Int], SamplingParameters, GenerationStream)] = []
        for i in 0..<12 {
            let (name, base) = kinds[i % kinds.count]
            var p = base
            p.seed = UInt64(100 + i); p.stopAtEndToken = false
            let prompt = (0..<(3 + i % 5)).map { (i * 977 + $0 * 131) % 6000 }
            streams.append((name, prompt, p, try engine.generate(prompt: .tokens(prompt), parameters: p)))
        }
        for (name, prompt, p, stream) in streams {
            let served = await EngineFixtures.collect(stream).tokens
            let sampler = TokenSampler(temperature: p.temperature, topK: p.topK, topP: p.topP, minP: p.minP,
                                       repetitionPenalty: p.repetitionPenalty, presencePenalty: p.presencePenalty,
                                       frequencyPenalty: p.frequencyPenalty)
            let single = try model.generate(promptIDs: prompt, maxTokens: 16, sampler: sampler, seed: p.seed, stopAtEndToken: false).tokens
            #expect(served == single, "\(name), prompt \(prompt)")
        }
        #expect(model.lmHead.argmaxScreenBytes > 0, "the greedy rows went through the screen")
    }

    /// The GPT-2 backbone through the same discrete family: a batch of seeded requests served
    /// together gives each one's single-sequence tokens (greedy and sampled).
    @Test func gpt2() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gpt2-engine-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try RandomModelWriter.writeGPT2(config: RandomModelWriter.GPT2Shape.gpt2Tiny.config, dtype: .f32, to: dir, seed: 3)
        let model = try GPT2CausalLM.load(directory: dir)
        let engine = try CALMEngine(directory: dir, configuration: EngineConfiguration(kvCacheBytes: 16 << 20))
        #expect(engine.family.name == "gpt2")
        let cases = Self.prompts.enumerated().flatMap { i, p in [0.0, 0.9].map { (i, p, $0) } }
        let served = try await withThrowingTaskGroup(of: (Int, Double, [Int]).self) { group in
            for (i, prompt, t) in cases {
                group.addTask {
                    let p = SamplingParameters(maxTokens: 20, temperature: t, seed: UInt64(90 + i), stopAtEndToken: false)
                    return (i, t, await EngineFixtures.collect(try engine.generate(prompt: .tokens(prompt), parameters: p)).tokens)
                }
            }
            var all: [String: [Int]] = [:]
            for try await (i, t, tokens) in group { all["\(i)/\(t)"] = tokens }
            return all
        }
        for (i, prompt, t) in cases {
            let single = try model.generate(promptIDs: prompt, maxTokens: 20, sampler: TokenSampler(temperature: t),
                                            seed: UInt64(90 + i), stopAtEndToken: false).tokens
            #expect(served["\(i)/\(t)"] == single, "prompt \(i), T = \(t)")
            #expect(single.count == 20)
        }
    }

    /// Token Maturation: the engine's tokens (and diagnostics) equal `TokenMaturationModel.generate`'s
    /// for the same seed, for every maturation setting the contract tests use.
    @Test(arguments: TestFamily.tm.samplers.indices)
    func tokenMaturation(samplerIndex: Int) async throws {
        let model = try #require(TestFamily.tmModel)
        let engine = try TestFamily.tm.engine()
        let (name, base) = TestFamily.tm.samplers[samplerIndex]
        for (i, prompt) in Self.prompts.enumerated() {
            let seed = UInt64(110 + i)
            var p = base
            p.maxTokens = 12; p.seed = seed; p.stopAtEndToken = true
            var single = try #require(p.maturation)
            single.maxTokens = 12; single.seed = seed; single.stopAtEndToken = true
            let alone = try model.generate(prompt: prompt, parameters: single)
            var served: [Int] = []
            var diagnostics: [TokenMaturationDiagnostics] = []
            for await e in try engine.generate(prompt: .tokens(prompt), parameters: p) {
                if case let .chunk(c) = e { served += c.tokens; diagnostics += c.diagnostics ?? [] }
            }
            #expect(served == alone.tokens, "\(name), prompt \(i)")
            #expect(diagnostics == alone.diagnostics, "\(name), prompt \(i)")
        }
    }
}
