import Foundation

/// Hyper-parameters of a Hugging Face `LlamaForCausalLM` (`config.json` with `model_type`
/// "llama"): the discrete Transformer baseline the CALM paper compares against. Encodes back to
/// the same Hugging Face keys (`eos_token_id` as a number when there is one id, a list otherwise).
public struct LlamaCausalLMConfig: Sendable, Equatable, Codable {
    public var vocabSize: Int = 32000
    public var hiddenSize: Int = 4096
    public var intermediateSize: Int = 11008
    public var numHiddenLayers: Int = 32
    public var numAttentionHeads: Int = 32
    public var numKeyValueHeads: Int?
    public var headDim: Int?
    public var rmsNormEps: Double = 1e-6
    public var ropeTheta: Double = 10000
    public var maxPositionEmbeddings: Int = 2048
    public var hiddenAct: String = "silu"
    public var attentionBias: Bool = false
    public var mlpBias: Bool = false
    public var tieWordEmbeddings: Bool = false
    public var bosTokenID: Int?
    /// End-of-text ids (Llama 3 configs may list several).
    public var eosTokenIDs: [Int] = []
    public var padTokenID: Int?
    public var ropeScalingType: String?
    public var modelType: String = "llama"
    public var architectures: [String] = []
    public var torchDType: String?

    public init() {}

    /// Key/value heads (defaults to the attention heads).
    public var kvHeads: Int { numKeyValueHeads ?? numAttentionHeads }

    /// The decoder stack's sizes.
    public var backboneShape: BackboneShape {
        BackboneShape(hidden: hiddenSize, intermediate: intermediateSize, layers: numHiddenLayers, heads: numAttentionHeads,
                      kvHeads: kvHeads, ropeTheta: ropeTheta, rmsNormEps: rmsNormEps)
    }

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act"
        case attentionBias = "attention_bias", mlpBias = "mlp_bias", tieWordEmbeddings = "tie_word_embeddings"
        case bosTokenID = "bos_token_id", eosTokenID = "eos_token_id", padTokenID = "pad_token_id"
        case ropeScaling = "rope_scaling", modelType = "model_type", architectures, torchDType = "torch_dtype"
    }

    struct RopeScaling: Codable {
        var type: String?
        var ropeType: String?
        enum CodingKeys: String, CodingKey { case type, ropeType = "rope_type" }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        // Written even when it equals the heads: readers that default it differently exist.
        try c.encode(kvHeads, forKey: .numKeyValueHeads)
        try c.encodeIfPresent(headDim, forKey: .headDim)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encode(mlpBias, forKey: .mlpBias)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encodeIfPresent(bosTokenID, forKey: .bosTokenID)
        if eosTokenIDs.count == 1 {
            try c.encode(eosTokenIDs[0], forKey: .eosTokenID)
        } else if !eosTokenIDs.isEmpty {
            try c.encode(eosTokenIDs, forKey: .eosTokenID)
        }
        try c.encodeIfPresent(padTokenID, forKey: .padTokenID)
        if let ropeScalingType { try c.encode(RopeScaling(type: nil, ropeType: ropeScalingType), forKey: .ropeScaling) }
        try c.encode(modelType, forKey: .modelType)
        if !architectures.isEmpty { try c.encode(architectures, forKey: .architectures) }
        try c.encodeIfPresent(torchDType, forKey: .torchDType)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = LlamaCausalLMConfig()
        d.vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        d.hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        d.intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        d.numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        d.numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        d.numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads)
        d.headDim = try c.decodeIfPresent(Int.self, forKey: .headDim)
        d.rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? d.rmsNormEps
        d.ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? d.ropeTheta
        d.maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
        d.hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        d.attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? d.attentionBias
        d.mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? d.mlpBias
        d.tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? d.tieWordEmbeddings
        d.bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        if let one = try? c.decodeIfPresent(Int.self, forKey: .eosTokenID) {
            d.eosTokenIDs = [one]
        } else {
            d.eosTokenIDs = try c.decodeIfPresent([Int].self, forKey: .eosTokenID) ?? []
        }
        d.padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID)
        if let scaling = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeScaling) {
            d.ropeScalingType = scaling.ropeType ?? scaling.type ?? "unknown"
        }
        d.modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? d.modelType
        d.architectures = try c.decodeIfPresent([String].self, forKey: .architectures) ?? []
        d.torchDType = try c.decodeIfPresent(String.self, forKey: .torchDType)
        self = d
    }

    /// Reads and validates `<directory>/config.json` of a Hugging Face Llama folder.
    ///
    /// - Throws: `ModelError.unknownModel` when the folder or its `config.json` is missing or the
    ///   config does not describe a `LlamaForCausalLM`; `ModelError.invalidConfig` naming the file and
    ///   key for a bad value.
    public static func load(directory: URL) throws -> LlamaCausalLMConfig {
        let (data, json, path) = try ModelFolder.configData(directory)
        guard describes(json) else {
            throw ModelError.unknownModel(path: path, reason: "config.json does not describe a LlamaForCausalLM (architectures \(json["architectures"] ?? "none"), model_type \(json["model_type"] ?? "none"))")
        }
        let config = try ModelFolder.decode(LlamaCausalLMConfig.self, from: data, path: path)
        try config.validate(file: path)
        return config
    }

    /// Whether a parsed `config.json` describes a Llama causal LM (architectures
    /// `LlamaForCausalLM` or `model_type` "llama").
    public static func describes(_ json: [String: Any]) -> Bool {
        let architectures = json["architectures"] as? [String] ?? []
        return architectures.contains("LlamaForCausalLM") || (json["model_type"] as? String) == "llama"
    }

    /// Checks the sizes are usable by this engine; errors name the config file and key.
    public func validate(file: String) throws {
        func fail(_ key: String, _ reason: String) -> ModelError { .invalidConfig(file: file, key: key, reason: reason) }
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                             ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
                             ("num_key_value_heads", kvHeads), ("max_position_embeddings", maxPositionEmbeddings)] where value <= 0 {
            throw fail(key, "must be positive, got \(value)")
        }
        if hiddenSize % numAttentionHeads != 0 {
            throw fail("num_attention_heads", "hidden_size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        }
        if let headDim, headDim != hiddenSize / numAttentionHeads {
            throw fail("head_dim", "\(headDim) differs from hidden_size / num_attention_heads = \(hiddenSize / numAttentionHeads); not supported")
        }
        if numAttentionHeads % kvHeads != 0 {
            throw fail("num_key_value_heads", "\(numAttentionHeads) attention heads are not a multiple of \(kvHeads) key/value heads")
        }
        if (hiddenSize / numAttentionHeads) % 2 != 0 { throw fail("num_attention_heads", "head size must be even for rotary embeddings") }
        if hiddenAct != "silu" { throw fail("hidden_act", "only \"silu\" is supported, got \"\(hiddenAct)\"") }
        if attentionBias { throw fail("attention_bias", "true is not supported") }
        if mlpBias { throw fail("mlp_bias", "true is not supported") }
        if let type = ropeScalingType, type != "default" {
            throw fail("rope_scaling", "scaling type \"\(type)\" is not supported (only unscaled RoPE)")
        }
        // NaN and infinity fail too: a JSON number such as 1e999 decodes to infinity
        if !(ropeTheta > 0 && ropeTheta.isFinite) { throw fail("rope_theta", "must be a positive finite number, got \(ropeTheta)") }
        if !(rmsNormEps >= 0 && rmsNormEps.isFinite) { throw fail("rms_norm_eps", "must be a finite number ≥ 0, got \(rmsNormEps)") }
        for (key, id) in [("bos_token_id", bosTokenID), ("pad_token_id", padTokenID)] + eosTokenIDs.map({ ("eos_token_id", Optional($0)) }) {
            if let id, id < 0 || id >= vocabSize { throw fail(key, "\(id) is outside the vocabulary (size \(vocabSize))") }
        }
    }
}
