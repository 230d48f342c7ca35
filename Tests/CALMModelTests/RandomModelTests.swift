import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// `RandomModelWriter` folders load, generate and inspect, in every dtype and both layouts, and
/// its Llama folders load as Hugging Face `LlamaForCausalLM` checkpoints.
@Suite("Random models")
struct RandomModelTests {
    @Test(arguments: [DType.f32, .f16, .bf16], [false, true])
    func tinyModelRoundTrip(dtype: DType, embed: Bool) throws {
        let dir = try TemporaryDirectory()
        let (c, a) = RandomModelWriter.Shape.tiny.configs
        try RandomModelWriter.write(model: c, autoencoder: a, dtype: dtype, to: dir.url, seed: 3, embedAutoencoder: embed)
        let model = try CALMModel.load(directory: dir.url)
        #expect(model.config.hiddenSize == 64 && model.config.kvHeads == 2)
        let r = try model.generate(promptIDs: [1, 2, 3, 4, 5], parameters: GenerationParameters(maxTokens: 12, temperature: 1, seed: 5, stopAtEndToken: false))
        #expect(r.tokens.count == 12)
        let inspection = try ModelInspection(directory: dir.url)
        #expect(inspection.dtypes.keys.sorted() == [dtype.rawValue])
        let all: [(String, [Int])] = RandomModelWriter.calmTensors(c) + RandomModelWriter.autoencoderTensors(a)
        var expected = 0
        for (_, shape) in all { expected += shape.reduce(1, *) }
        #expect(inspection.parameters.values.reduce(0, +) == expected)
    }

    @Test func sameSeedSameFile() throws {
        let d1 = try TemporaryDirectory(), d2 = try TemporaryDirectory()
        let (c, a) = RandomModelWriter.Shape.tiny.configs
        try RandomModelWriter.write(model: c, autoencoder: a, dtype: .bf16, to: d1.url, seed: 11)
        try RandomModelWriter.write(model: c, autoencoder: a, dtype: .bf16, to: d2.url, seed: 11)
        let f1 = try Data(contentsOf: d1.url.appendingPathComponent("model.safetensors"))
        let f2 = try Data(contentsOf: d2.url.appendingPathComponent("model.safetensors"))
        #expect(f1 == f2)
    }

    @Test(arguments: [DType.f32, .bf16])
    func llamaTinyLoadsRunsAndInspects(dtype: DType) throws {
        let dir = try TemporaryDirectory()
        let config = RandomModelWriter.LlamaShape.llamaTiny.config
        try RandomModelWriter.writeLlama(config: config, dtype: dtype, to: dir.url, seed: 4)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.url.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(json?["architectures"] as? [String] == ["LlamaForCausalLM"])
        #expect(json?["model_type"] as? String == "llama")
        #expect(try ModelLoader.kind(directory: dir.url) == .llama)

        let model = try LlamaCausalLM.load(directory: dir.url)
        #expect(model.config.hiddenSize == 64 && model.config.kvHeads == 2 && model.vocabSize == 512)
        #expect(model.config.bosTokenID == 510 && model.config.eosTokenIDs == [511] && !model.tiedEmbeddings)
        #expect(model.config.maxPositionEmbeddings >= 512)
        // A full pass and a token-by-token pass through the cache agree: the written k/v shapes
        // (2 key/value heads for 4 query heads) are the ones the backbone reads.
        let tokens = [510, 7, 300, 42, 42, 99]
        let full = try model.forward(tokens: [tokens], caches: [model.makeCache()])
        let cache = model.makeCache(blockPositions: 4)
        var incremental: [Float] = []
        for t in tokens { incremental += try model.forward(tokens: [[t]], caches: [cache]) }
        #expect(full.count == tokens.count * 64)
        #expect(zip(full, incremental).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($0)) })
        let logits = model.logits(full, rows: tokens.count)
        #expect(logits.count == tokens.count * 512 && logits.allSatisfy(\.isFinite))
        #expect(Set(logits.prefix(512)).count > 400, "random weights give distinct logits")

        let inspection = try ModelInspection(directory: dir.url)
        #expect(inspection.kind == .llama)
        #expect(inspection.dtypes == [dtype.rawValue: RandomModelWriter.llamaTensors(config).count])
        let expected = RandomModelWriter.llamaTensors(config).reduce(0) { $0 + $1.1.reduce(1, *) }
        #expect(inspection.parameters.values.reduce(0, +) == expected)
        #expect(inspection.parameters["token_embedding"] == 512 * 64 && inspection.parameters["lm_head"] == 512 * 64)
        #expect(inspection.parameters["other"] == nil)
        #expect(inspection.text.contains("(Llama causal LM)"))
        // CALM loaders name what the folder is instead of failing on a missing key.
        #expect(throws: ModelError.unknownModel(path: dir.url.path, reason: "config.json describes a Llama causal LM, not a CALM model")) {
            try CALMModel.load(directory: dir.url)
        }
    }

    @Test func llamaShapesAreTheDocumentedOnes() throws {
        let s = RandomModelWriter.LlamaShape.llamaS.config
        #expect(s.hiddenSize == 768 && s.numHiddenLayers == 12 && s.numAttentionHeads == 12 && s.kvHeads == 12)
        #expect(s.intermediateSize == 2048 && s.vocabSize == 128_256 && s.bosTokenID == 128_000 && s.eosTokenIDs == [128_001])
        try s.validate(file: "llama-s")
        // 2 × 128256 × 768 for the untied embedding and head, 12 × (4·768² + 3·768·2048 + 2·768) + 768 for the stack.
        let parameters = RandomModelWriter.llamaTensors(s).reduce(0) { $0 + $1.1.reduce(1, *) }
        #expect(parameters == 2 * 128_256 * 768 + 12 * (4 * 768 * 768 + 3 * 768 * 2048 + 2 * 768) + 768)
        // The config survives encoding to config.json and back.
        var tiny = RandomModelWriter.LlamaShape.llamaTiny.config
        tiny.torchDType = "bfloat16"
        #expect(try JSONDecoder().decode(LlamaCausalLMConfig.self, from: JSONEncoder().encode(tiny)) == tiny)
        var several = tiny
        several.eosTokenIDs = [509, 511]
        #expect(try JSONDecoder().decode(LlamaCausalLMConfig.self, from: JSONEncoder().encode(several)) == several)
    }
}
