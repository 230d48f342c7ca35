import CALMEngine
import CALMModel
import CALMTestSupport
import Foundation

/// A tiny random CALM model shared by the engine tests (no ../shared needed).
enum EngineFixtures {
    static let model: CALMModel = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calm-engine-tests-\(ProcessInfo.processInfo.processIdentifier)")
        var (c, a) = RandomModelWriter.Shape.tiny.configs
        c.maxPositionEmbeddings = 256
        try! RandomModelWriter.write(model: c, autoencoder: a, dtype: .f32, to: dir, seed: 21, embedAutoencoder: true)
        return try! CALMModel.load(directory: dir)
    }()

    static func engine(kvCacheBytes: Int = 64 << 20, blockChunks: Int = 4, streamBufferLimit: Int = 8,
                       prefill: Int = 64) throws -> CALMEngine {
        try CALMEngine(model: model, configuration: EngineConfiguration(
            kvCacheBytes: kvCacheBytes, blockChunks: blockChunks, prefillChunksPerStep: prefill, streamBufferLimit: streamBufferLimit))
    }

    /// Bytes of one KV block of the tiny model.
    static func blockBytes(blockChunks: Int) -> Int { model.kvLayout(blockPositions: blockChunks).blockFloats * 4 }

    static func prompt(_ i: Int, length: Int = 7) -> [Int] {
        (0..<length).map { (i * 31 + $0 * 7) % 500 }
    }

    /// Collects a stream.
    static func collect(_ stream: GenerationStream) async -> (tokens: [Int], text: String, info: CompletionInfo?) {
        var tokens: [Int] = [], text = "", info: CompletionInfo?
        for await e in stream {
            switch e {
            case let .chunk(c): tokens += c.tokens; text += c.text
            case let .completed(i): info = i
            }
        }
        return (tokens, text, info)
    }
}
