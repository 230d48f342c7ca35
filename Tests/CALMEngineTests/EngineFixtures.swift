import CALMEngine
import CALMModel
import CALMTestSupport
import Foundation

/// The model families the engine tests run over: a tiny random CALM model, a tiny random Llama
/// and a tiny random Token Maturation model (no ../shared needed).
enum TestFamily: String, CaseIterable, Sendable, CustomStringConvertible {
    case calm, llama, tm
    var description: String { rawValue }

    static let calmModel: CALMModel? = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("calm-engine-tests-\(ProcessInfo.processInfo.processIdentifier)")
        var (c, a) = RandomModelWriter.Shape.tiny.configs
        c.maxPositionEmbeddings = 256
        do {
            try RandomModelWriter.write(model: c, autoencoder: a, dtype: .f32, to: dir, seed: 21, embedAutoencoder: true)
            return try CALMModel.load(directory: dir)
        } catch { return nil }
    }()

    static let llamaModel: LlamaCausalLM? = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("llama-engine-tests-\(ProcessInfo.processInfo.processIdentifier)")
        var shape = TinyLlama.Shape()
        shape.vocab = 512; shape.hidden = 32; shape.intermediate = 64; shape.heads = 4; shape.kvHeads = 2
        shape.maxPositions = 1024; shape.logitScale = 3
        return try? TinyLlama.load(try TinyLlama.write(to: dir, shape: shape, seed: 5))
    }()

    static let tmModel: TokenMaturationModel? = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tm-engine-tests-\(ProcessInfo.processInfo.processIdentifier)")
        var config = RandomModelWriter.TokenMaturationShape.tmTiny.config
        config.maxPositions = 1024
        config.llama?.maxPositionEmbeddings = 1024
        do {
            try RandomModelWriter.writeTokenMaturation(config: config, dtype: .f32, to: dir, seed: 9)
            return try TokenMaturationModel.load(directory: dir)
        } catch { return nil }
    }()

    struct FixtureMissing: Error {}

    func makeFamily() throws -> any ModelFamily {
        switch self {
        case .calm: guard let m = Self.calmModel else { throw FixtureMissing() }; return CALMFamily(model: m)
        case .llama: guard let m = Self.llamaModel else { throw FixtureMissing() }; return DiscreteFamily(model: m)
        case .tm: guard let m = Self.tmModel else { throw FixtureMissing() }; return TokenMaturationFamily(model: m)
        }
    }

    /// Tokens one KV position holds.
    var unit: Int { self == .calm ? 4 : 1 }

    /// Scratch KV positions `plain` requests use during a step (Token Maturation: K − 1 tail rows).
    var scratchPositions: Int { self == .tm ? 3 : 0 }

    /// T = 1 sampling, the family's plainest sampler (Token Maturation: a tail of 4, no guidance).
    func plain(maxTokens: Int, seed: UInt64, stopAtEndToken: Bool = false) -> SamplingParameters {
        SamplingParameters(maxTokens: maxTokens, temperature: 1, seed: seed, stopAtEndToken: stopAtEndToken,
                           sampler: self == .calm ? .single : nil,
                           maturation: self == .tm ? TokenMaturationParameters(tailLength: 4, guidanceScale: 1) : nil)
    }

    /// Every sampler of the family (name, parameters without maxTokens/seed).
    var samplers: [(String, SamplingParameters)] {
        switch self {
        case .calm:
            return [("single", SamplingParameters(temperature: 1, sampler: .single)),
                    ("batch", SamplingParameters(temperature: 0.5, sampler: .batchApproximation(samples: 12))),
                    ("exact", SamplingParameters(temperature: 0.7, sampler: .exactRejection(maxDraws: 64)))]
        case .llama:
            return [("greedy", SamplingParameters(temperature: 0)),
                    ("temperature", SamplingParameters(temperature: 0.8)),
                    ("topK+topP", SamplingParameters(temperature: 0.9, topK: 20, topP: 0.8)),
                    ("minP+penalties", SamplingParameters(temperature: 0.7, minP: 0.05, repetitionPenalty: 1.3,
                                                          presencePenalty: 0.2, frequencyPenalty: 0.1, logprobs: true))]
        case .tm:
            func tm(_ k: Int, _ s: Float, _ edit: (inout TokenMaturationParameters) -> Void = { _ in }) -> SamplingParameters {
                var m = TokenMaturationParameters(tailLength: k, guidanceScale: s)
                edit(&m)
                return SamplingParameters(temperature: 1, maturation: m)
            }
            return [("K4", tm(4, 1)),
                    ("K3+guidance", tm(3, 2)),
                    ("K2 same+guidance", tm(2, 2) { $0.alignment = .same }),
                    ("K5 perturbed+diagnostics", tm(5, 1.5) { $0.tailNoise = 0.1; $0.targetEMA = 0.3; $0.historyEMA = 0.2; $0.diagnostics = true }),
                    ("K3 history noise", tm(3, 1) { $0.historyNoise = 0.05 })]
        }
    }

    func engine(kvCacheBytes: Int = 64 << 20, blockChunks: Int = 4, streamBufferLimit: Int = 8, prefill: Int = 64) throws -> CALMEngine {
        try CALMEngine(family: makeFamily(), configuration: EngineConfiguration(
            kvCacheBytes: kvCacheBytes, blockChunks: blockChunks, prefillChunksPerStep: prefill, streamBufferLimit: streamBufferLimit))
    }

    /// Bytes of one KV block.
    func blockBytes(blockChunks: Int) throws -> Int { try makeFamily().kvLayout(blockPositions: blockChunks).blockFloats * 4 }
}

enum EngineFixtures {
    static func engine(kvCacheBytes: Int = 64 << 20, blockChunks: Int = 4, streamBufferLimit: Int = 8,
                       prefill: Int = 64) throws -> CALMEngine {
        try TestFamily.calm.engine(kvCacheBytes: kvCacheBytes, blockChunks: blockChunks, streamBufferLimit: streamBufferLimit, prefill: prefill)
    }

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
