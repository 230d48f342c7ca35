import CALMModel
import CALMTestSupport
import Foundation
import Testing

/// Single-sequence generation: seeded determinism, streaming, limits, and that a sequence's
/// result does not depend on the batch it runs in.
@Suite("Generation", .enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
struct GenerationTests {
    let model: CALMModel
    init() throws { model = try CALMModel.load(directory: try FixtureModels.folder("calm_k4_mha")) }

    @Test(arguments: [1.0, 0.5, 1.0 / 3])
    func seededRunsRepeatAndStreamEverything(temperature: Double) throws {
        let p = GenerationParameters(maxTokens: 22, temperature: temperature, sampler: .batchApproximation(samples: 16), seed: 42, stopAtEndToken: false)
        var streamed: [Int] = []
        var chunks = 0
        let a = try model.generate(promptIDs: [3, 1, 4, 1, 5, 9], parameters: p) { chunk in
            streamed += chunk; chunks += 1; return true
        }
        let b = try model.generate(promptIDs: [3, 1, 4, 1, 5, 9], parameters: p)
        #expect(a.tokens == b.tokens)
        #expect(streamed == a.tokens)
        #expect(a.tokens.count == 22, "cut to maxTokens")
        #expect(a.stopReason == .maxTokens)
        #expect(chunks == a.steps && a.steps == 6)
        let c = try model.generate(promptIDs: [3, 1, 4, 1, 5, 9], parameters: GenerationParameters(
            maxTokens: 22, temperature: temperature, sampler: .batchApproximation(samples: 16), seed: 43, stopAtEndToken: false))
        #expect(c.tokens != a.tokens, "another seed gives another sample")
    }

    @Test func stopsOnEndToken() throws {
        // Find a seed whose first chunk contains some token, then make that token the EOS.
        let p = GenerationParameters(maxTokens: 40, temperature: 1, seed: 7, stopAtEndToken: true)
        let free = try model.generate(promptIDs: [10, 11, 12, 13], parameters: GenerationParameters(maxTokens: 40, temperature: 1, seed: 7, stopAtEndToken: false))
        let target = free.tokens[5]
        let dir = try TemporaryDirectory()
        let copy = try FixtureModels.copy("calm_k4_mha", to: dir.url) { $0["eos_token_id"] = target }
        let eosModel = try CALMModel.load(directory: copy)
        let r = try eosModel.generate(promptIDs: [10, 11, 12, 13], parameters: p)
        #expect(r.stopReason == .endToken)
        #expect(r.tokens.contains(target))
        #expect(r.tokens.count <= 8 && r.tokens.count % 4 == 0)
        #expect(Array(free.tokens.prefix(r.tokens.count)) == r.tokens)
    }

    @Test func callbackCanStop() throws {
        let r = try model.generate(promptIDs: [1, 2], parameters: GenerationParameters(maxTokens: 100, temperature: 1, seed: 1)) { _ in false }
        #expect(r.steps == 1 && r.stopReason == .cancelled)
    }

    @Test func rowsAreIndependentOfTheBatch() throws {
        // Batch invariance at the model level: a prompt's hidden states are bit-identical alone
        // and batched with others of different lengths.
        let prompts = [[1, 2, 3, 4, 5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24]]
        let alone = try model.forward(chunks: [prompts[0]], caches: [model.makeCache()])
        let batched = try model.forward(chunks: prompts, caches: prompts.map { _ in model.makeCache() })
        #expect(Array(batched.prefix(alone.count)) == alone)
        let serial = try CALMModel.load(directory: try FixtureModels.folder("calm_k4_mha"), options: LoadOptions(pool: .serial))
        #expect(try serial.forward(chunks: [prompts[0]], caches: [serial.makeCache()]) == alone, "thread count must not change results")
    }
}
