import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// `ModelFolderExport`: a checkpoint becomes a bf16/f16 folder that loads and behaves like it.
@Suite("Model folder export")
struct ModelFolderExportTests {
    @Test(arguments: [DType.bf16, .f16])
    func exportedFolderLoadsAndMatchesWithinPrecision(dtype: DType) throws {
        let source = try TemporaryDirectory(), out = try TemporaryDirectory()
        let (c, a) = RandomModelWriter.Shape.tiny.configs
        try RandomModelWriter.write(model: c, autoencoder: a, dtype: .f32, to: source.url, seed: 9, embedAutoencoder: true)
        try Data("{\"model\": {}}".utf8).write(to: source.url.appendingPathComponent("tokenizer.json"))
        try Data("{\"not\": \"weights\"}".utf8).write(to: source.url.appendingPathComponent("optimizer.safetensors"))

        let report = try ModelFolderExport.export(from: source.url, to: out.url, dtype: dtype)
        #expect(report.tokenizerFiles == ["tokenizer.json"])
        #expect(!FileManager.default.fileExists(atPath: out.url.appendingPathComponent("optimizer.safetensors").path))

        let original = try CheckpointLoader.open(directory: source.url)
        let exported = try CheckpointLoader.open(directory: out.url)
        #expect(exported.tensorNames.sorted() == original.tensorNames.sorted())
        #expect(report.tensors == original.tensorNames.count)
        let tolerance: Float = dtype == .bf16 ? 1.0 / 128 : 1.0 / 1024   // relative rounding of 8 / 11 significant bits
        for name in original.tensorNames {
            let x = try original.tensor(name), y = try exported.tensor(name)
            #expect(y.dtype == dtype && y.shape == x.shape, "\(name)")
            for (u, v) in zip(try x.floats(), try y.floats()) where abs(u - v) > tolerance * max(abs(u), 1e-3) {
                Issue.record("\(name): \(u) exported as \(v)")
                break
            }
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: out.url.appendingPathComponent("config.json"))) as? [String: Any]
        #expect(config?["torch_dtype"] as? String == (dtype == .bf16 ? "bfloat16" : "float16"))

        // The exported folder is a working model.
        let model = try CALMModel.load(directory: out.url)
        let r = try model.generate(promptIDs: [1, 2, 3, 4], parameters: GenerationParameters(maxTokens: 8, temperature: 1, seed: 2, stopAtEndToken: false))
        #expect(r.tokens.count == 8)
    }

    @Test func rejectsNonFloatDTypeSameFolderAndMissingConfig() throws {
        let source = try TemporaryDirectory(), out = try TemporaryDirectory()
        #expect(throws: ModelError.invalidParameter(name: "dtype", reason: "'I32' is not f32, f16 or bf16")) {
            try ModelFolderExport.export(from: source.url, to: out.url, dtype: .i32)
        }
        #expect(throws: ModelError.self) { try ModelFolderExport.export(from: source.url, to: source.url, dtype: .bf16) }
        #expect(throws: ModelError.unknownModel(path: source.url.path, reason: "no config.json in the model folder")) {
            try ModelFolderExport.export(from: source.url, to: out.url, dtype: .bf16)
        }
        let missing = source.url.appendingPathComponent("absent")
        #expect(throws: ModelError.unknownModel(path: missing.path, reason: "model folder does not exist")) {
            try ModelFolderExport.export(from: missing, to: out.url, dtype: .bf16)
        }
    }
}
