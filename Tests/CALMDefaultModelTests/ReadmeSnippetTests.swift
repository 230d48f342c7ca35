import CALMDefaultModel
import CALMEngine
import CALMModel
import Foundation
import Testing

/// The README's Swift snippets, as written there (imports and calls), so they keep compiling and
/// doing what the README says. Paths the README leaves to the reader are filled in with real folders.
@Suite("README snippets")
struct ReadmeSnippetTests {
    @Test func builtInModelSnippet() async throws {
        let engine = try DefaultModel.engine()                 // loads weights (bf16) and tokenizer
        let completion = try await engine.complete(prompt: "Once upon a time",
                                                   parameters: SamplingParameters(maxTokens: 8, temperature: 0.5, seed: 1))
        #expect(completion.info.generatedTokens == 8 && !completion.text.isEmpty)
    }

    @Test func servingSnippetWithAStringVariable() async throws {
        let engine = try DefaultModel.engine()
        var parameters = SamplingParameters(maxTokens: 8, temperature: 0.5, seed: 7)   // batch approximation, N = 200
        parameters.stopSequences = ["\n\n"]
        let prompt: String = "The history of"   // a String variable, not only a literal
        var chunks = 0
        var last: CompletionInfo?
        for await event in try engine.generate(prompt: prompt, parameters: parameters) {
            switch event {
            case .chunk: chunks += 1
            case let .completed(info): last = info
            }
        }
        #expect(chunks >= 1 && last != nil)
    }

    @Test func tokenMaturationSnippet() async throws {
        let engine = try DefaultModel.engine(family: .tokenMaturation)
        var parameters = SamplingParameters(maxTokens: 8, seed: 1)
        parameters.maturation = TokenMaturationParameters(tailLength: 16, guidanceScale: 1)
        let completion = try await engine.complete(prompt: "Once upon a time", parameters: parameters)
        #expect((1...8).contains(completion.info.generatedTokens) && !completion.text.isEmpty)
    }

    @Test func llamaSnippet() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("readme-llama-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try RandomModelWriter.writeLlama(config: RandomModelWriter.LlamaShape.llamaTiny.config, dtype: .f32, to: dir)
        let llama = try CALMEngine(directory: dir)
        var q = SamplingParameters(maxTokens: 16, temperature: 0.8, seed: 1)
        q.topP = 0.9; q.repetitionPenalty = 1.2; q.logprobs = true
        let completion = try await llama.complete(prompt: .tokens([1, 2, 3]), parameters: q)
        #expect(completion.tokens.count == 16 || completion.info.reason == .endToken)
    }
}
