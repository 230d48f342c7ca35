// A model folder's `config.json`, for every model kind: detection (ModelLoader.kind), each kind's
// parser and validation (CALMConfig, AutoencoderConfig, LlamaCausalLMConfig, GPT2Config,
// TokenMaturationConfig), and the engine's loader on a folder without weights. When the config is
// valid and small, the harness writes random weights of its shapes (RandomModelWriter), loads the
// folder through ModelFamilyRegistry, and serves one request: admitted with maxTokens = Int.max
// (cancelled at once), and a short completion run to its end. Everything succeeds or throws a
// typed error (ModelError, CheckpointError, EngineError; DecodingError from JSONDecoder on the
// Codable configs).
import CALMEngine
import CALMModel
import CALMTensor
import Foundation
import EngineFuzzSupport
import FuzzSupport

nonisolated(unsafe) var bare: URL!
nonisolated(unsafe) var withWeights: URL!

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    Harness.writeSeedsIfAsked(seeds)
    bare = Harness.folder("bare")
    withWeights = Harness.scratch.appendingPathComponent("weights")
    return 0
}

func typed(_ context: String, _ body: () throws -> Void) {
    do { try body() } catch let e as ModelError { Harness.refused(e) } catch let e as CheckpointError { Harness.refused(e) }
    catch let e as EngineError { Harness.refused(e) } catch let e as DecodingError { Harness.refused(e) }
    catch { Harness.untyped(error, context) }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Data(UnsafeRawBufferPointer(start: data, count: size))
    Harness.write(UnsafeRawBufferPointer(start: data, count: size), to: "config.json", in: bare)
    var kind: ModelKind?
    typed("ModelLoader.kind") { kind = try ModelLoader.kind(directory: bare) }
    typed("CALMConfig") { try JSONDecoder().decode(CALMConfig.self, from: bytes).validate(file: "config.json") }
    typed("AutoencoderConfig") { try JSONDecoder().decode(AutoencoderConfig.self, from: bytes).validate(file: "config.json") }
    typed("LlamaCausalLMConfig") { _ = try LlamaCausalLMConfig.load(directory: bare) }
    typed("GPT2Config") { _ = try GPT2Config.parse(bytes, file: "config.json") }
    typed("TokenMaturationConfig") { _ = try TokenMaturationConfig(data: bytes, file: "config.json") }
    typed("ModelFamilyRegistry.load (no weights)") {
        _ = try ModelFamilyRegistry.load(directory: bare)
        Harness.fail("config: a folder without weights loaded")
    }
    guard let kind else { return 0 }
    typed("random weights for \(kind)") { try serve(kind, bytes) }
    return 0
}

/// Sizes small enough to write and run per input (the context length is left as it is).
func small(vocab: Int, hidden: Int, intermediate: Int, layers: Int) -> Bool {
    (1...1024).contains(vocab) && (1...128).contains(hidden) && (1...512).contains(intermediate) && (0...4).contains(layers)
}

func serve(_ kind: ModelKind, _ bytes: Data) throws {
    try? FileManager.default.removeItem(at: withWeights)
    switch kind {
    case .calm:
        let c = try JSONDecoder().decode(CALMConfig.self, from: bytes)
        try c.validate(file: "config.json")
        var a = try JSONDecoder().decode(AutoencoderConfig.self, from: bytes)
        a.vocabSize = c.vocabSize; a.patchSize = c.patchSize; a.latentSize = c.latentSize
        a.padTokenID = c.padTokenID; a.bosTokenID = c.bosTokenID; a.eosTokenID = c.eosTokenID
        try a.validate(file: "config.json")
        guard small(vocab: c.vocabSize, hidden: c.hiddenSize, intermediate: c.intermediateSize, layers: c.numHiddenLayers),
              small(vocab: a.vocabSize, hidden: a.hiddenSize, intermediate: a.intermediateSize, layers: max(a.numEncoderLayers, a.numDecoderLayers)),
              c.latentSize <= 128, c.noiseSize <= 128, c.numMLPLayers <= 4, c.patchSize <= 16, c.numAttentionHeads <= 64
        else { return }
        try RandomModelWriter.write(model: c, autoencoder: a, dtype: .f32, to: withWeights, seed: 1,
                                    embedAutoencoder: bytes.count % 2 == 0)
    case .llama:
        let c = try LlamaCausalLMConfig.load(directory: bare)
        guard small(vocab: c.vocabSize, hidden: c.hiddenSize, intermediate: c.intermediateSize, layers: c.numHiddenLayers) else { return }
        try RandomModelWriter.writeLlama(config: c, dtype: .f32, to: withWeights, seed: 1)
    case .gpt2:
        let c = try GPT2Config.parse(bytes, file: "config.json")
        guard small(vocab: c.vocabSize, hidden: c.nEmbd, intermediate: c.nInner ?? 4 * c.nEmbd, layers: c.nLayer),
              c.nPositions <= 4096 else { return }
        try RandomModelWriter.writeGPT2(config: c, dtype: .f32, to: withWeights, seed: 1)
    case .tokenMaturation:
        let c = try TokenMaturationConfig(data: bytes, file: "config.json")
        let sizes = c.llama.map { ($0.intermediateSize, $0.numHiddenLayers) } ?? c.gpt2.map { ($0.nInner ?? 4 * $0.nEmbd, $0.nLayer) } ?? (0, 0)
        guard small(vocab: c.vocabSize, hidden: c.hiddenSize, intermediate: sizes.0, layers: sizes.1),
              c.maxTailLength <= 64, c.alphaChannels <= 512, c.gpt2.map({ $0.nPositions <= 4096 }) ?? true else { return }
        try RandomModelWriter.writeTokenMaturation(config: c, dtype: .f32, to: withWeights, seed: 1)
    case .autoencoder:
        return
    }
    let family = try ModelFamilyRegistry.load(directory: withWeights)
    let engine = try CALMEngine(family: family, configuration: EngineConfiguration(kvCacheBytes: 1 << 20, blockChunks: 4))
    let start = [min(1, family.vocabularySize - 1)]
    var p = SamplingParameters(maxTokens: Int.max, temperature: 1, seed: 7)
    if family.name == "calm" { p.sampler = .single }
    // Admission arithmetic with the largest request (the context may be anything the config says).
    do {
        _ = try engine.generate(prompt: .tokens(start), parameters: p)   // dropped at once: cancelled
    } catch let e as EngineError { Harness.refused(e) }
    Request.waitForBlocks(engine, "config (\(family.name))")
    // A short run through the model.
    p.maxTokens = 2 * family.tokensPerPosition
    do {
        let info = try Request.run(engine, prompt: .tokens(start), parameters: p, maxEvents: 8, seconds: 30)
        if case .error(let message) = info?.reason { Harness.fail("config (\(family.name)): an accepted request failed: \(message)") }
    } catch let e as EngineError { Harness.refused(e) }
}

func seeds() throws -> [(String, [UInt8])] {
    func json(_ value: some Encodable, _ extra: [String: Any] = [:]) throws -> [UInt8] {
        var object = try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as! [String: Any]
        for (k, v) in extra { object[k] = v }
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
    var (c, a) = RandomModelWriter.Shape.tiny.configs
    c.vocabSize = 64; c.hiddenSize = 16; c.intermediateSize = 32; c.numAttentionHeads = 2; c.numKeyValueHeads = 1
    c.latentSize = 8; c.noiseSize = 8; c.numHiddenLayers = 1; c.numMLPLayers = 1; c.maxPositionEmbeddings = 64
    c.padTokenID = 63; c.eosTokenID = 62; c.bosTokenID = 61
    a.vocabSize = 64; a.hiddenSize = 16; a.intermediateSize = 32; a.latentSize = 8
    a.numEncoderLayers = 1; a.numDecoderLayers = 1
    var llama = RandomModelWriter.LlamaShape.llamaTiny.config
    llama.vocabSize = 64; llama.hiddenSize = 16; llama.intermediateSize = 32; llama.numHiddenLayers = 1
    llama.numAttentionHeads = 2; llama.numKeyValueHeads = 1; llama.maxPositionEmbeddings = 64
    llama.bosTokenID = 1; llama.eosTokenIDs = [2, 3]; llama.padTokenID = nil
    var gpt2 = RandomModelWriter.GPT2Shape.gpt2Tiny.config
    gpt2.vocabSize = 64; gpt2.nEmbd = 16; gpt2.nLayer = 1; gpt2.nHead = 2; gpt2.nPositions = 32
    gpt2.bosTokenID = 0; gpt2.eosTokenID = 0
    var tm = TokenMaturationConfig(llama: llama)
    tm.llama?.tieWordEmbeddings = true
    tm.tailLength = 4; tm.maxTailLength = 8; tm.alphaChannels = 8; tm.guidanceScale = 2
    var tmGPT2 = TokenMaturationConfig(gpt2: gpt2)
    tmGPT2.tailLength = 3; tmGPT2.maxTailLength = 4; tmGPT2.alphaChannels = 4; tmGPT2.alignment = .same
    return [
        ("calm", try json(c, ["architectures": ["EnergyTransformer"], "num_encoder_layers": 1, "num_decoder_layers": 1, "ae_path": "autoencoder"])),
        ("autoencoder", try json(a, ["architectures": ["Autoencoder"]])),
        ("llama", try json(llama, ["architectures": ["LlamaForCausalLM"], "rope_scaling": NSNull()])),
        ("gpt2", try json(gpt2, ["architectures": ["GPT2LMHeadModel"]])),
        ("tm-llama", Array(try JSONSerialization.data(withJSONObject: tm.jsonObject(), options: [.sortedKeys]))),
        ("tm-gpt2", Array(try JSONSerialization.data(withJSONObject: tmGPT2.jsonObject(), options: [.sortedKeys]))),
        // Regression: a context of Int.max positions once overflowed the engine's admission arithmetic.
        ("regression-calm-context-int-max", try json(c, ["architectures": ["EnergyTransformer"], "num_encoder_layers": 1, "num_decoder_layers": 1,
                                                         "max_position_embeddings": Int.max])),
        ("llama-context-int-max", try json(llama, ["architectures": ["LlamaForCausalLM"], "max_position_embeddings": Int.max])),
    ]
}
