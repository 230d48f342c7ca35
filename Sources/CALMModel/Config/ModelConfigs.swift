import Foundation

/// Hyper-parameters of the context-free chunk autoencoder (`AutoencoderConfig` in the reference).
///
/// Decoded from the `config.json` the reference's `save_pretrained` writes; absent keys take the
/// reference constructor's defaults.
public struct AutoencoderConfig: Sendable, Equatable, Codable {
    public var vocabSize: Int = 32000
    public var hiddenSize: Int = 512
    public var intermediateSize: Int = 1280
    public var latentSize: Int = 128
    public var patchSize: Int = 4
    public var numEncoderLayers: Int = 2
    public var numDecoderLayers: Int = 2
    public var rmsNormEps: Double = 1e-6
    public var hiddenAct: String = "silu"
    public var aeDropout: Double = 0.15
    public var klClamp: Double = 0.5
    public var klWeight: Double = 1e-3
    public var padTokenID: Int?
    public var bosTokenID: Int? = 1
    public var eosTokenID: Int? = 2
    public var mlpBias: Bool = false
    public var torchDType: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case latentSize = "latent_size", patchSize = "patch_size"
        case numEncoderLayers = "num_encoder_layers", numDecoderLayers = "num_decoder_layers"
        case rmsNormEps = "rms_norm_eps", hiddenAct = "hidden_act", aeDropout = "ae_dropout"
        case klClamp = "kl_clamp", klWeight = "kl_weight", padTokenID = "pad_token_id"
        case bosTokenID = "bos_token_id", eosTokenID = "eos_token_id", mlpBias = "mlp_bias"
        case torchDType = "torch_dtype"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = AutoencoderConfig()
        d.vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        d.hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        d.intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        d.latentSize = try c.decodeIfPresent(Int.self, forKey: .latentSize) ?? d.latentSize
        d.patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
        d.numEncoderLayers = try c.decodeIfPresent(Int.self, forKey: .numEncoderLayers) ?? d.numEncoderLayers
        d.numDecoderLayers = try c.decodeIfPresent(Int.self, forKey: .numDecoderLayers) ?? d.numDecoderLayers
        d.rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? d.rmsNormEps
        d.hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        d.aeDropout = try c.decodeIfPresent(Double.self, forKey: .aeDropout) ?? d.aeDropout
        d.klClamp = try c.decodeIfPresent(Double.self, forKey: .klClamp) ?? d.klClamp
        d.klWeight = try c.decodeIfPresent(Double.self, forKey: .klWeight) ?? d.klWeight
        d.padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID)
        d.bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID) ?? d.bosTokenID
        d.eosTokenID = try c.decodeIfPresent(Int.self, forKey: .eosTokenID) ?? d.eosTokenID
        d.mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? d.mlpBias
        d.torchDType = try c.decodeIfPresent(String.self, forKey: .torchDType)
        self = d
    }

    /// Checks the sizes are usable; errors name the config file and key.
    public func validate(file: String) throws {
        func positive(_ value: Int, _ key: String) throws {
            if value <= 0 { throw ModelError.invalidConfig(file: file, key: key, reason: "must be positive, got \(value)") }
        }
        try positive(vocabSize, "vocab_size")
        try positive(hiddenSize, "hidden_size")
        try positive(intermediateSize, "intermediate_size")
        try positive(latentSize, "latent_size")
        try positive(patchSize, "patch_size")
        if numEncoderLayers < 0 { throw ModelError.invalidConfig(file: file, key: "num_encoder_layers", reason: "must be ≥ 0") }
        if numDecoderLayers < 0 { throw ModelError.invalidConfig(file: file, key: "num_decoder_layers", reason: "must be ≥ 0") }
        if hiddenAct != "silu" {
            throw ModelError.invalidConfig(file: file, key: "hidden_act", reason: "only \"silu\" is supported, got \"\(hiddenAct)\"")
        }
        if mlpBias { throw ModelError.invalidConfig(file: file, key: "mlp_bias", reason: "true is not supported by the reference model") }
        if !(rmsNormEps >= 0 && rmsNormEps.isFinite) {
            throw ModelError.invalidConfig(file: file, key: "rms_norm_eps", reason: "must be a finite number ≥ 0, got \(rmsNormEps)")
        }
        for (key, id) in [("pad_token_id", padTokenID), ("bos_token_id", bosTokenID), ("eos_token_id", eosTokenID)] {
            if let id, id < 0 || id >= vocabSize {
                throw ModelError.invalidConfig(file: file, key: key, reason: "\(id) is outside the vocabulary (size \(vocabSize))")
            }
        }
        if !(klWeight >= 0 && klWeight.isFinite) {
            throw ModelError.invalidConfig(file: file, key: "kl_weight", reason: "must be a finite number ≥ 0, got \(klWeight)")
        }
        if !klClamp.isFinite { throw ModelError.invalidConfig(file: file, key: "kl_clamp", reason: "must be finite, got \(klClamp)") }
        if !(aeDropout >= 0 && aeDropout < 1) {
            throw ModelError.invalidConfig(file: file, key: "ae_dropout", reason: "must be in [0, 1), got \(aeDropout)")
        }
    }
}

/// Hyper-parameters of the CALM energy transformer (`CALMConfig` in the reference).
public struct CALMConfig: Sendable, Equatable, Codable {
    public var aePath: String?
    public var vocabSize: Int = 32000
    public var hiddenSize: Int = 768
    public var intermediateSize: Int = 2048
    public var numHiddenLayers: Int = 12
    public var numAttentionHeads: Int = 12
    public var numKeyValueHeads: Int?
    public var latentSize: Int = 128
    public var patchSize: Int = 4
    public var numMLPLayers: Int = 4
    public var numSamples: Int = 8
    public var beta: Double = 1.0
    public var noiseSize: Int = 64
    public var rmsNormEps: Double = 1e-6
    public var ropeTheta: Double = 10000
    public var maxPositionEmbeddings: Int = 2048
    public var hiddenAct: String = "silu"
    public var attentionBias: Bool = false
    public var mlpBias: Bool = false
    public var padTokenID: Int?
    public var bosTokenID: Int? = 1
    public var eosTokenID: Int? = 2
    public var modelType: String = "energy"
    public var ropeScalingType: String?
    public var torchDType: String?

    public init() {}

    /// Key/value heads (defaults to the attention heads, as in the reference).
    public var kvHeads: Int { numKeyValueHeads ?? numAttentionHeads }
    /// Size of one attention head.
    public var headDim: Int { hiddenSize / max(numAttentionHeads, 1) }

    enum CodingKeys: String, CodingKey {
        case aePath = "ae_path", vocabSize = "vocab_size", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads"
        case latentSize = "latent_size", patchSize = "patch_size", numMLPLayers = "num_mlp_layers"
        case numSamples = "num_samples", beta, noiseSize = "noise_size", rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta", maxPositionEmbeddings = "max_position_embeddings"
        case hiddenAct = "hidden_act", attentionBias = "attention_bias", mlpBias = "mlp_bias"
        case padTokenID = "pad_token_id", bosTokenID = "bos_token_id", eosTokenID = "eos_token_id"
        case modelType = "model_type", ropeScaling = "rope_scaling", torchDType = "torch_dtype"
    }

    struct RopeScaling: Codable { var type: String? }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = CALMConfig()
        d.aePath = try c.decodeIfPresent(String.self, forKey: .aePath)
        d.vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        d.hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        d.intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        d.numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        d.numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        d.numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads)
        d.latentSize = try c.decodeIfPresent(Int.self, forKey: .latentSize) ?? d.latentSize
        d.patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
        d.numMLPLayers = try c.decodeIfPresent(Int.self, forKey: .numMLPLayers) ?? d.numMLPLayers
        d.numSamples = try c.decodeIfPresent(Int.self, forKey: .numSamples) ?? d.numSamples
        d.beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? d.beta
        d.noiseSize = try c.decodeIfPresent(Int.self, forKey: .noiseSize) ?? d.noiseSize
        d.rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? d.rmsNormEps
        d.ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? d.ropeTheta
        d.maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
        d.hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        d.attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? d.attentionBias
        d.mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? d.mlpBias
        d.padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID)
        d.bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID) ?? d.bosTokenID
        d.eosTokenID = try c.decodeIfPresent(Int.self, forKey: .eosTokenID) ?? d.eosTokenID
        d.modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? d.modelType
        d.ropeScalingType = try c.decodeIfPresent(RopeScaling.self, forKey: .ropeScaling)?.type
        d.torchDType = try c.decodeIfPresent(String.self, forKey: .torchDType)
        self = d
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(aePath, forKey: .aePath)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(kvHeads, forKey: .numKeyValueHeads)
        try c.encode(latentSize, forKey: .latentSize)
        try c.encode(patchSize, forKey: .patchSize)
        try c.encode(numMLPLayers, forKey: .numMLPLayers)
        try c.encode(numSamples, forKey: .numSamples)
        try c.encode(beta, forKey: .beta)
        try c.encode(noiseSize, forKey: .noiseSize)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encode(mlpBias, forKey: .mlpBias)
        try c.encodeIfPresent(padTokenID, forKey: .padTokenID)
        try c.encodeIfPresent(bosTokenID, forKey: .bosTokenID)
        try c.encodeIfPresent(eosTokenID, forKey: .eosTokenID)
        try c.encodeIfPresent(torchDType, forKey: .torchDType)
    }

    /// Checks the sizes are usable; errors name the config file and key.
    public func validate(file: String) throws {
        func fail(_ key: String, _ reason: String) -> ModelError {
            .invalidConfig(file: file, key: key, reason: reason)
        }
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize),
                             ("intermediate_size", intermediateSize), ("num_hidden_layers", numHiddenLayers),
                             ("num_attention_heads", numAttentionHeads), ("num_key_value_heads", kvHeads),
                             ("latent_size", latentSize), ("patch_size", patchSize),
                             ("num_mlp_layers", numMLPLayers), ("noise_size", noiseSize),
                             ("max_position_embeddings", maxPositionEmbeddings)] where value <= 0 {
            throw fail(key, "must be positive, got \(value)")
        }
        if hiddenSize % numAttentionHeads != 0 {
            throw fail("num_attention_heads", "hidden_size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        }
        if numAttentionHeads % kvHeads != 0 {
            throw fail("num_key_value_heads", "\(numAttentionHeads) attention heads are not a multiple of \(kvHeads) key/value heads")
        }
        if headDim % 2 != 0 { throw fail("num_attention_heads", "head size \(headDim) must be even for rotary embeddings") }
        if hiddenAct != "silu" { throw fail("hidden_act", "only \"silu\" is supported, got \"\(hiddenAct)\"") }
        if attentionBias { throw fail("attention_bias", "true is not supported") }
        if mlpBias { throw fail("mlp_bias", "true is not supported") }
        if let type = ropeScalingType { throw fail("rope_scaling", "scaling type \"\(type)\" is not supported") }
        if modelType != "energy" { throw fail("model_type", "only the \"energy\" head is supported, got \"\(modelType)\"") }
        for (key, id) in [("pad_token_id", padTokenID), ("bos_token_id", bosTokenID), ("eos_token_id", eosTokenID)] {
            if let id, id < 0 || id >= vocabSize {
                throw fail(key, "\(id) is outside the vocabulary (size \(vocabSize))")
            }
        }
        // NaN and infinity fail too: a JSON number such as 1e999 decodes to infinity
        if !(ropeTheta > 0 && ropeTheta.isFinite) { throw fail("rope_theta", "must be a positive finite number, got \(ropeTheta)") }
        if !(rmsNormEps >= 0 && rmsNormEps.isFinite) { throw fail("rms_norm_eps", "must be a finite number ≥ 0, got \(rmsNormEps)") }
    }

    /// Checks that the autoencoder fits this model (same vocabulary, chunk size and latent size).
    public func validate(autoencoder ae: AutoencoderConfig, file: String) throws {
        if ae.vocabSize != vocabSize {
            throw ModelError.invalidConfig(file: file, key: "vocab_size", reason: "autoencoder has \(ae.vocabSize), model has \(vocabSize)")
        }
        if ae.patchSize != patchSize {
            throw ModelError.invalidConfig(file: file, key: "patch_size", reason: "autoencoder has \(ae.patchSize), model has \(patchSize)")
        }
        if ae.latentSize != latentSize {
            throw ModelError.invalidConfig(file: file, key: "latent_size", reason: "autoencoder has \(ae.latentSize), model has \(latentSize)")
        }
    }
}
