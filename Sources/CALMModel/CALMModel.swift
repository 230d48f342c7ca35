import CALMKernels
import CALMTensor
import Foundation

/// A loaded CALM model: the autoencoder, chunk embedding, Llama backbone and energy head.
///
/// Load once and share; the model is immutable after loading (sequence state lives in
/// `KVCache`s), so any number of generations may use it, one forward pass at a time per pool.
///
/// ```swift
/// let model = try CALMModel.load(directory: URL(fileURLWithPath: "CALM-M"))
/// let result = try model.generate(promptIDs: [128000, 9906], parameters: .init(maxTokens: 32))
/// print(result.tokens)
/// ```
public final class CALMModel: Sendable {
    public let config: CALMConfig
    public let autoencoder: Autoencoder
    public let chunkEmbedding: ChunkEmbedding
    public let backbone: LlamaBackbone
    public let head: EnergyHead
    public let pool: ComputePool
    /// Folder the model was loaded from.
    public let directory: URL

    /// Loads a CALM model folder (`config.json` plus `model.safetensors`, a sharded index, or
    /// `pytorch_model.bin`). The autoencoder comes from the `ae_model.*` weights inside the
    /// checkpoint when present (as in the reference), else from `ae_path` (relative to the folder,
    /// or `options.autoencoderPath`).
    public static func load(directory: URL, options: LoadOptions = LoadOptions()) throws -> CALMModel {
        let (data, json, path) = try ModelFolder.configData(directory)
        let kind = try ModelFolder.kind(of: json, path: path)
        guard kind == .calm else {
            throw ModelError.unknownModel(path: directory.path, reason: "config.json describes \(kind == .autoencoder ? "an" : "a") \(kind.displayName), not a CALM model")
        }
        let config = try ModelFolder.decode(CALMConfig.self, from: data, path: path)
        try config.validate(file: path)
        let source = try ModelFolder.openWeights(directory)
        let aePrefix = "ae_model."
        let embedded = source.info(aePrefix + "encoder.embed_tokens.weight") != nil
            || source.info(aePrefix + "decoder.lm_head_weight") != nil
        let autoencoder: Autoencoder
        if embedded {
            var aeConfig: AutoencoderConfig
            if let aeDir = resolveAutoencoderDirectory(config: config, directory: directory, override: options.autoencoderPath),
               let (aeData, _, aePath) = try? ModelFolder.configData(aeDir) {
                aeConfig = try ModelFolder.decode(AutoencoderConfig.self, from: aeData, path: aePath)
            } else {
                aeConfig = try ModelFolder.inferAutoencoderConfig(source: source, prefix: aePrefix, base: config)
            }
            try aeConfig.validate(file: path)
            try config.validate(autoencoder: aeConfig, file: path)
            autoencoder = try Autoencoder(config: aeConfig, source: source, prefix: aePrefix, storageDType: options.weightDType)
        } else {
            guard let aeDir = resolveAutoencoderDirectory(config: config, directory: directory, override: options.autoencoderPath) else {
                throw ModelError.invalidConfig(file: path, key: "ae_path", reason: "the checkpoint has no ae_model.* weights and no ae_path is set")
            }
            autoencoder = try Autoencoder.load(directory: aeDir, options: options)
            try config.validate(autoencoder: autoencoder.config, file: path)
        }
        return try CALMModel(config: config, autoencoder: autoencoder, source: source, options: options, directory: directory)
    }

    /// Builds a model from any tensor source (a checkpoint, or tensors made in memory) whose
    /// autoencoder is already loaded.
    public convenience init(config: CALMConfig, autoencoder: Autoencoder, source: any TensorSource,
                            options: LoadOptions = LoadOptions(), directory: URL? = nil) throws {
        try config.validate(file: source.url.path)
        try config.validate(autoencoder: autoencoder.config, file: source.url.path)
        let reader = WeightReader(source: source, prefix: "", storageDType: options.weightDType)
        self.init(config: config, autoencoder: autoencoder,
                  chunkEmbedding: try ChunkEmbedding(config: config, reader: reader),
                  backbone: try LlamaBackbone(shape: config.backboneShape, reader: reader, prefix: "transformer"),
                  head: try EnergyHead(config: config, reader: reader),
                  pool: options.pool, directory: directory ?? source.url)
    }

    static func resolveAutoencoderDirectory(config: CALMConfig, directory: URL, override: URL?) -> URL? {
        if let override { return override }
        guard let aePath = config.aePath, !aePath.isEmpty else { return nil }
        let candidate = aePath.hasPrefix("/") ? URL(fileURLWithPath: aePath) : directory.appendingPathComponent(aePath).standardizedFileURL
        return FileManager.default.fileExists(atPath: candidate.path) ? candidate : nil
    }

    init(config: CALMConfig, autoencoder: Autoencoder, chunkEmbedding: ChunkEmbedding, backbone: LlamaBackbone,
         head: EnergyHead, pool: ComputePool, directory: URL) {
        self.config = config
        self.autoencoder = autoencoder
        self.chunkEmbedding = chunkEmbedding
        self.backbone = backbone
        self.head = head
        self.pool = pool
        self.directory = directory
    }

    /// Chunk length K.
    public var patchSize: Int { config.patchSize }
    /// Pad id used to fill prompts to whole chunks (the reference's `[PAD]`).
    public var padTokenID: Int { config.padTokenID ?? (config.vocabSize - 1) }
    /// End-of-text id.
    public var eosTokenID: Int? { config.eosTokenID }

    /// KV geometry for this model with blocks of `blockPositions` chunks.
    public func kvLayout(blockPositions: Int = 16) -> KVLayout {
        KVLayout(layers: config.numHiddenLayers, kvHeads: config.kvHeads, headDim: config.headDim, blockPositions: blockPositions)
    }

    /// A heap-backed cache for standalone use.
    public func makeCache(blockPositions: Int = 16) -> KVCache {
        let layout = kvLayout(blockPositions: blockPositions)
        return KVCache(layout: layout, source: HeapKVBlockSource(layout: layout))
    }

    /// Bytes of weights one T = 1 decode step must read (backbone, chunk embedding, head, decoder).
    public var decodeStepWeightBytes: Int {
        backbone.weightBytes + chunkEmbedding.weightBytes + head.weightBytes + autoencoder.decoderWeightBytes
    }

    /// Runs the backbone for several sequences at once: `chunks[i]` (whole chunks of ids) is
    /// appended to `caches[i]`. Returns the final hidden state of every new position, in order.
    public func forward(chunks: [[Int]], caches: [KVCache], record: ActivationRecorder? = nil) throws -> [Float] {
        precondition(chunks.count == caches.count)
        var ids: [Int] = []
        var slices: [BackboneSlice] = []
        for (c, cache) in zip(chunks, caches) {
            guard c.count % patchSize == 0 else {
                throw ModelError.invalidPrompt(reason: "\(c.count) ids are not whole chunks of \(patchSize)")
            }
            for id in c where id < 0 || id >= config.vocabSize {
                throw ModelError.invalidPrompt(reason: "token id \(id) is outside the vocabulary (size \(config.vocabSize))")
            }
            ids += c
            slices.append(BackboneSlice(cache: cache, rows: c.count / patchSize))
            try cache.prepare(rows: c.count / patchSize)
        }
        let inputs = chunkEmbedding(ids, pool: pool, record: record)
        let hidden = backbone.forward(inputs, slices: slices, pool: pool, record: record)
        record?("last_hidden_state", hidden)
        return hidden
    }
}

extension Autoencoder {
    /// Loads a standalone autoencoder folder (`config.json` + weights).
    public static func load(directory: URL, options: LoadOptions = LoadOptions()) throws -> Autoencoder {
        let (data, json, path) = try ModelFolder.configData(directory)
        let kind = try ModelFolder.kind(of: json, path: path)
        guard kind == .autoencoder else {
            throw ModelError.unknownModel(path: directory.path, reason: "config.json describes a \(kind.displayName), not an autoencoder")
        }
        let config = try ModelFolder.decode(AutoencoderConfig.self, from: data, path: path)
        try config.validate(file: path)
        let source = try ModelFolder.openWeights(directory)
        return try Autoencoder(config: config, source: source, prefix: "", storageDType: options.weightDType)
    }

    /// Builds an autoencoder from any tensor source; `prefix` is `ae_model.` for CALM checkpoints.
    public convenience init(config: AutoencoderConfig, source: any TensorSource, prefix: String = "", options: LoadOptions = LoadOptions()) throws {
        try config.validate(file: source.url.path)
        try self.init(config: config, source: source, prefix: prefix, storageDType: options.weightDType)
    }
}

extension CALMModel {
    /// Floating-point operations (2 per multiply-add) of the head and decoder for `samples`
    /// samples drawn from `rows` hidden states: what the temperature samplers must compute.
    /// `argmaxRows` is the vocabulary-argmax rows computed (nil: samples × K, a full decode).
    public func samplingFLOPs(samples: Int, rows: Int, argmaxRows: Int? = nil) -> Double {
        let h = Double(config.hiddenSize), z = Double(config.latentSize), e = Double(config.noiseSize)
        let m = Double(config.numMLPLayers)
        let headPerSample = h * e + m * (2 * h * h + h * h + 2 * h * h + h * h) + h * h + z * h
        let headPerRow = h * h
        let ae = autoencoder.config
        let ha = Double(ae.hiddenSize), ia = Double(ae.intermediateSize), k = Double(ae.patchSize), v = Double(ae.vocabSize)
        let half = Double(ae.numDecoderLayers / 2)
        let trunkPerSample = ha * z + half * 3 * ha * ia + k * ha * ha + k * half * 3 * ha * ia
        let argmax = Double(argmaxRows ?? samples * ae.patchSize) * v * ha
        return 2 * (Double(samples) * (headPerSample + trunkPerSample) + argmax + Double(rows) * headPerRow)
    }
}
