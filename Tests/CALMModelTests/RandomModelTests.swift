import CALMModel
import CALMTensor
import CALMTestSupport
import Foundation
import Testing

/// `RandomModelWriter` folders load, generate and inspect, in every dtype and both layouts.
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
}
