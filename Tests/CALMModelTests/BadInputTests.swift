import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// Malformed models and requests fail with typed errors that name the file, key or parameter.
@Suite("Bad inputs", .enabled(if: SharedFixtures.enabled, Comment(rawValue: SharedFixtures.skipMessage)))
struct BadInputTests {
    @Test func inconsistentConfigNamesTheKey() throws {
        let dir = try TemporaryDirectory()
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url) { $0["num_key_value_heads"] = 3 }
        #expect {
            try CALMModel.load(directory: copy)
        } throws: { error in
            guard case let ModelError.invalidConfig(file, key, _) = error else { return false }
            return key == "num_key_value_heads" && file.hasSuffix("config.json")
        }
    }

    @Test func configWithWrongTypeNamesTheKey() throws {
        let dir = try TemporaryDirectory()
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url) { $0["hidden_size"] = "thirty-two" }
        #expect {
            try CALMModel.load(directory: copy)
        } throws: { error in
            guard case let ModelError.invalidConfig(_, key, _) = error else { return false }
            return key == "hidden_size"
        }
    }

    @Test func autoencoderThatDoesNotFitTheModel() throws {
        let dir = try TemporaryDirectory()
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url) { $0["latent_size"] = 16 }
        #expect(throws: (any Error).self) { try CALMModel.load(directory: copy) }
    }

    @Test func missingWeightNamesTheKey() throws {
        let dir = try TemporaryDirectory()
        let key = "transformer.layers.1.self_attn.k_proj.weight"
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url, drop: [key])
        #expect(throws: ModelError.missingWeight(file: "model.safetensors", keys: [key])) {
            try CALMModel.load(directory: copy)
        }
    }

    @Test func missingHeadUnderBothNames() throws {
        let dir = try TemporaryDirectory()
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url,
                                          drop: ["mlp_generator.noise_embd.weight", "generative_head.noise_embd.weight"])
        #expect(throws: ModelError.missingWeight(file: "model.safetensors",
                                                 keys: ["mlp_generator.noise_embd.weight", "generative_head.noise_embd.weight"])) {
            try CALMModel.load(directory: copy)
        }
    }

    @Test func headUnderOneNameOnlyLoads() throws {
        let dir = try TemporaryDirectory()
        let source = try SafetensorsFile(url: try FixtureModels.folder("calm_k4_gqa").appendingPathComponent("model.safetensors"))
        let drop = Set(source.tensorNames.filter { $0.hasPrefix("mlp_generator.") })
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url, drop: drop)
        _ = try CALMModel.load(directory: copy)
    }

    @Test func wrongShapeNamesKeyAndShapes() throws {
        let dir = try TemporaryDirectory()
        let key = "embed_proj.2.weight"
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url, reshape: [key: [32, 63]])
        #expect(throws: ModelError.weightShapeMismatch(file: "model.safetensors", key: key, expected: [32, 64], actual: [32, 63])) {
            try CALMModel.load(directory: copy)
        }
    }

    @Test func integerWeightIsAnUnsupportedDType() throws {
        let dir = try TemporaryDirectory()
        let key = "embed_proj.0.bias"
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url, drop: [key])
        // Re-add the bias as I64.
        let file = copy.appendingPathComponent("model.safetensors")
        let source = try SafetensorsFile(url: file)
        var writer = SafetensorsWriter()
        for name in source.tensorNames { writer.add(try source.tensor(name)) }
        writer.add(try TensorData(name: key, shape: [64], int64s: [Int64](repeating: 1, count: 64)))
        try FileManager.default.removeItem(at: file)
        try writer.write(to: file)
        #expect(throws: ModelError.unsupportedWeightDType(file: "model.safetensors", key: key, dtype: "I64")) {
            try CALMModel.load(directory: copy)
        }
    }

    @Test func autoencoderPathOverride() throws {
        // A checkpoint without ae_model.* weights needs ae_path; a wrong one fails, an override works.
        let dir = try TemporaryDirectory()
        let source = try SafetensorsFile(url: try FixtureModels.folder("calm_k4_gqa").appendingPathComponent("model.safetensors"))
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url, drop: Set(source.tensorNames.filter { $0.hasPrefix("ae_model.") })) {
            $0["ae_path"] = "/nonexistent/autoencoder"
        }
        #expect {
            try CALMModel.load(directory: copy)
        } throws: { error in
            guard case let ModelError.invalidConfig(_, key, _) = error else { return false }
            return key == "ae_path"
        }
        let model = try CALMModel.load(directory: copy, options: LoadOptions(autoencoderPath: try FixtureModels.folder("ae_k4_h32")))
        let reference = try CALMModel.load(directory: try FixtureModels.folder("calm_k4_gqa"))
        let h = model.head.sample(hiddenStates: [Float](repeating: 0.1, count: 32), rows: 1, samplesPerRow: 1,
                                      noise: [Float](repeating: 0.2, count: 8), pool: .shared)
        #expect(model.autoencoder.decodeTokens(h, rows: 1, pool: .shared) == reference.autoencoder.decodeTokens(h, rows: 1, pool: .shared))
    }

    @Test func tiedMatricesThatDifferAreRefused() throws {
        let dir = try TemporaryDirectory()
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url, reshape: ["ae_model.decoder.lm_head_weight": [256, 32]])
        #expect(throws: ModelError.aliasMismatch(file: "model.safetensors",
                                                 keys: ["ae_model.encoder.embed_tokens.weight", "ae_model.decoder.lm_head_weight"])) {
            try CALMModel.load(directory: copy)
        }
    }

    @Test func missingFolderAndMissingWeights() throws {
        let dir = try TemporaryDirectory()
        #expect(throws: (any Error).self) { try CALMModel.load(directory: dir.url.appendingPathComponent("nope")) }
        let copy = try FixtureModels.copy("calm_k4_gqa", to: dir.url)
        try FileManager.default.removeItem(at: copy.appendingPathComponent("model.safetensors"))
        #expect(throws: CheckpointError.self) { try CALMModel.load(directory: copy) }
    }

    @Test func badPrompts() throws {
        let model = try CALMModel.load(directory: try FixtureModels.folder("calm_k4_gqa"))
        let p = GenerationParameters(maxTokens: 8, temperature: 1, seed: 1)
        #expect(throws: ModelError.self) { try model.generate(promptIDs: [], parameters: p) }
        #expect(throws: ModelError.self) { try model.generate(promptIDs: [1, 9999], parameters: p) }
        #expect(throws: ModelError.self) { try model.generate(promptIDs: [-1], parameters: p) }
        let tooLong = [Int](repeating: 5, count: model.contextTokens + 1)
        #expect {
            try model.generate(promptIDs: tooLong, parameters: p)
        } throws: { error in
            guard case let ModelError.invalidPrompt(reason) = error else { return false }
            return reason.contains("context")
        }
    }

    @Test func badParameters() throws {
        let model = try CALMModel.load(directory: try FixtureModels.folder("calm_k4_gqa"))
        for (parameters, name) in [(GenerationParameters(maxTokens: 0), "maxTokens"),
                                   (GenerationParameters(temperature: 0), "temperature"),
                                   (GenerationParameters(temperature: 1.5), "temperature"),
                                   (GenerationParameters(temperature: 0.7), "temperature"),
                                   (GenerationParameters(temperature: 1e-20, sampler: .exactRejection(maxDraws: 10)), "temperature"),
                                   (GenerationParameters(temperature: 1e-20), "temperature"),
                                   (GenerationParameters(temperature: 0.5, sampler: .batchApproximation(samples: 0)), "samples")] {
            #expect {
                try model.generate(promptIDs: [1, 2, 3], parameters: parameters)
            } throws: { error in
                guard case let ModelError.invalidParameter(n, _) = error else { return false }
                return n == name
            }
        }
    }
}
