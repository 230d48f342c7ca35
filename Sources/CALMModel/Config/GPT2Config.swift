import Foundation

/// Hyper-parameters of a Hugging Face GPT-2 (`config.json` with `model_type` "gpt2", architectures
/// `GPT2LMHeadModel`): the backbone of Token Maturation (GPT-2 Medium: 24 layers, 1024 wide, 16
/// heads, 1024 positions, vocabulary 50257).
///
/// `GPT2Config.load(directory:)` / `parse(_:file:)` require the five keys that fix the shapes
/// (`vocab_size`, `n_positions`, `n_embd`, `n_layer`, `n_head`) instead of silently assuming GPT-2
/// small; other keys take transformers' defaults. Encodes back to the same Hugging Face keys.
///
/// ```swift
/// let config = try GPT2Config.load(directory: URL(fileURLWithPath: "gpt2-medium"))
/// print(config.nEmbd, config.innerSize)   // 1024 4096
/// ```
public struct GPT2Config: Sendable, Equatable, Codable {
    /// Vocabulary size (rows of `wte`).
    public var vocabSize: Int = 50257
    /// Learned absolute positions (rows of `wpe`): the context length.
    public var nPositions: Int = 1024
    /// Model width.
    public var nEmbd: Int = 768
    /// Decoder layers.
    public var nLayer: Int = 12
    /// Attention heads.
    public var nHead: Int = 12
    /// MLP inner width; nil means 4 · `nEmbd`.
    public var nInner: Int?
    /// MLP activation; only "gelu_new" (the tanh approximation) is supported.
    public var activationFunction: String = "gelu_new"
    /// LayerNorm ε of every LayerNorm (`ln_1`, `ln_2`, `ln_f`).
    public var layerNormEpsilon: Double = 1e-5
    /// Scores are divided by √head_dim (transformers' default; false is not supported).
    public var scaleAttnWeights: Bool = true
    /// Scores also divided by layer index + 1 (not supported).
    public var scaleAttnByInverseLayerIdx: Bool = false
    /// Upcast attention to f32 (already the case here; accepted either way).
    public var reorderAndUpcastAttn: Bool = false
    /// Cross-attention blocks (encoder–decoder use; not supported).
    public var addCrossAttention: Bool = false
    /// Whether the LM head is `wte` (GPT-2 checkpoints are tied and store no `lm_head.weight`).
    public var tieWordEmbeddings: Bool = true
    /// Beginning-of-text id (GPT-2: 50256, the same as end-of-text).
    public var bosTokenID: Int?
    /// End-of-text id (GPT-2: 50256).
    public var eosTokenID: Int?
    /// `model_type` ("gpt2").
    public var modelType: String = "gpt2"
    /// `architectures` (e.g. ["GPT2LMHeadModel"]).
    public var architectures: [String] = []
    /// `torch_dtype` of the checkpoint, if recorded.
    public var torchDType: String?

    /// transformers' defaults (GPT-2 small's sizes).
    public init() {}

    /// Keys a `config.json` must have: they fix every weight's shape.
    public static let requiredKeys = ["vocab_size", "n_positions", "n_embd", "n_layer", "n_head"]

    /// The MLP's inner width (`n_inner`, or 4 · `n_embd` when absent or null).
    public var innerSize: Int { nInner ?? 4 * nEmbd }
    /// Width of one attention head.
    public var headDim: Int { nEmbd / max(nHead, 1) }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", nPositions = "n_positions", nEmbd = "n_embd", nLayer = "n_layer", nHead = "n_head"
        case nInner = "n_inner", activationFunction = "activation_function", layerNormEpsilon = "layer_norm_epsilon"
        case scaleAttnWeights = "scale_attn_weights", scaleAttnByInverseLayerIdx = "scale_attn_by_inverse_layer_idx"
        case reorderAndUpcastAttn = "reorder_and_upcast_attn", addCrossAttention = "add_cross_attention"
        case tieWordEmbeddings = "tie_word_embeddings", bosTokenID = "bos_token_id", eosTokenID = "eos_token_id"
        case modelType = "model_type", architectures, torchDType = "torch_dtype"
    }

    /// Decodes Hugging Face keys; absent keys (and a null `n_inner`) take transformers' defaults.
    /// Use `parse(_:file:)` to also require the shape keys and validate.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = GPT2Config()
        d.vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        d.nPositions = try c.decodeIfPresent(Int.self, forKey: .nPositions) ?? d.nPositions
        d.nEmbd = try c.decodeIfPresent(Int.self, forKey: .nEmbd) ?? d.nEmbd
        d.nLayer = try c.decodeIfPresent(Int.self, forKey: .nLayer) ?? d.nLayer
        d.nHead = try c.decodeIfPresent(Int.self, forKey: .nHead) ?? d.nHead
        d.nInner = try c.decodeIfPresent(Int.self, forKey: .nInner)
        d.activationFunction = try c.decodeIfPresent(String.self, forKey: .activationFunction) ?? d.activationFunction
        d.layerNormEpsilon = try c.decodeIfPresent(Double.self, forKey: .layerNormEpsilon) ?? d.layerNormEpsilon
        d.scaleAttnWeights = try c.decodeIfPresent(Bool.self, forKey: .scaleAttnWeights) ?? d.scaleAttnWeights
        d.scaleAttnByInverseLayerIdx = try c.decodeIfPresent(Bool.self, forKey: .scaleAttnByInverseLayerIdx) ?? d.scaleAttnByInverseLayerIdx
        d.reorderAndUpcastAttn = try c.decodeIfPresent(Bool.self, forKey: .reorderAndUpcastAttn) ?? d.reorderAndUpcastAttn
        d.addCrossAttention = try c.decodeIfPresent(Bool.self, forKey: .addCrossAttention) ?? d.addCrossAttention
        d.tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? d.tieWordEmbeddings
        d.bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        d.eosTokenID = try c.decodeIfPresent(Int.self, forKey: .eosTokenID)
        d.modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? d.modelType
        d.architectures = try c.decodeIfPresent([String].self, forKey: .architectures) ?? []
        d.torchDType = try c.decodeIfPresent(String.self, forKey: .torchDType)
        self = d
    }

    /// Writes the Hugging Face keys (`n_inner` as null when it is the default 4 · `n_embd`).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(nPositions, forKey: .nPositions)
        try c.encode(nEmbd, forKey: .nEmbd)
        try c.encode(nLayer, forKey: .nLayer)
        try c.encode(nHead, forKey: .nHead)
        if let nInner { try c.encode(nInner, forKey: .nInner) } else { try c.encodeNil(forKey: .nInner) }
        try c.encode(activationFunction, forKey: .activationFunction)
        try c.encode(layerNormEpsilon, forKey: .layerNormEpsilon)
        try c.encode(scaleAttnWeights, forKey: .scaleAttnWeights)
        try c.encode(scaleAttnByInverseLayerIdx, forKey: .scaleAttnByInverseLayerIdx)
        try c.encode(reorderAndUpcastAttn, forKey: .reorderAndUpcastAttn)
        if addCrossAttention { try c.encode(addCrossAttention, forKey: .addCrossAttention) }
        if !tieWordEmbeddings { try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings) }
        try c.encodeIfPresent(bosTokenID, forKey: .bosTokenID)
        try c.encodeIfPresent(eosTokenID, forKey: .eosTokenID)
        try c.encode(modelType, forKey: .modelType)
        if !architectures.isEmpty { try c.encode(architectures, forKey: .architectures) }
        try c.encodeIfPresent(torchDType, forKey: .torchDType)
    }

    /// Whether a parsed `config.json` describes a GPT-2 (architectures `GPT2LMHeadModel` or
    /// `GPT2Model`, or `model_type` "gpt2").
    public static func describes(_ json: [String: Any]) -> Bool {
        let architectures = json["architectures"] as? [String] ?? []
        return architectures.contains("GPT2LMHeadModel") || architectures.contains("GPT2Model")
            || (json["model_type"] as? String) == "gpt2"
    }

    /// Parses and validates the bytes of a `config.json`: missing shape keys, wrong types and
    /// unsupported values are `ModelError.invalidConfig` naming `file` and the key.
    public static func parse(_ data: Data, file: String) throws -> GPT2Config {
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError.invalidConfig(file: file, key: "(root)", reason: "not a JSON object")
        }
        for key in requiredKeys where json[key] == nil || json[key] is NSNull {
            throw ModelError.invalidConfig(file: file, key: key, reason: "missing (GPT-2 configs must give every size)")
        }
        let config = try ModelFolder.decode(GPT2Config.self, from: data, path: file)
        try config.validate(file: file)
        return config
    }

    /// Reads and validates `<directory>/config.json` (see `parse(_:file:)`); a folder that is not
    /// a GPT-2 is `ModelError.unknownModel` naming the file.
    public static func load(directory: URL) throws -> GPT2Config {
        let (data, json, path) = try ModelFolder.configData(directory)
        guard describes(json) else {
            throw ModelError.unknownModel(path: path, reason: "config.json does not describe a GPT-2 (architectures \(json["architectures"] ?? "none"), model_type \(json["model_type"] ?? "none"))")
        }
        return try parse(data, file: path)
    }

    /// Checks the values are usable by this engine; errors name the config file and key.
    public func validate(file: String) throws {
        func fail(_ key: String, _ reason: String) -> ModelError { .invalidConfig(file: file, key: key, reason: reason) }
        for (key, value) in [("vocab_size", vocabSize), ("n_positions", nPositions), ("n_embd", nEmbd),
                             ("n_layer", nLayer), ("n_head", nHead), ("n_inner", innerSize)] where value <= 0 {
            throw fail(key, "must be positive, got \(value)")
        }
        if nEmbd % nHead != 0 { throw fail("n_head", "n_embd \(nEmbd) is not divisible by \(nHead) heads") }
        if activationFunction != "gelu_new" {
            throw fail("activation_function", "only \"gelu_new\" (GELU, tanh approximation) is supported, got \"\(activationFunction)\"")
        }
        if !(layerNormEpsilon > 0) || !layerNormEpsilon.isFinite { throw fail("layer_norm_epsilon", "must be positive, got \(layerNormEpsilon)") }
        if !scaleAttnWeights { throw fail("scale_attn_weights", "false (unscaled attention scores) is not supported") }
        if scaleAttnByInverseLayerIdx { throw fail("scale_attn_by_inverse_layer_idx", "true is not supported") }
        if addCrossAttention { throw fail("add_cross_attention", "true (cross-attention blocks) is not supported") }
        for (key, id) in [("bos_token_id", bosTokenID), ("eos_token_id", eosTokenID)] {
            if let id, id < 0 || id >= vocabSize { throw fail(key, "\(id) is outside the vocabulary (size \(vocabSize))") }
        }
    }
}
