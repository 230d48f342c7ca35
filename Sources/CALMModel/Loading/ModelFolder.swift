import CALMTensor
import Foundation

/// What kind of model a folder holds, judged from its `config.json`.
public enum ModelKind: String, Sendable {
    /// A CALM energy transformer (`EnergyTransformer`).
    case calm
    /// A chunk autoencoder on its own (`Autoencoder`).
    case autoencoder
    /// A discrete Llama causal LM (Hugging Face `LlamaForCausalLM`, or `model_type` "llama").
    case llama
    /// A GPT-2 (Hugging Face `GPT2LMHeadModel` / `GPT2Model`, or `model_type` "gpt2").
    case gpt2
    /// A Token Maturation model (`model_type` "token_maturation"; `TokenMaturationModel`).
    case tokenMaturation = "token_maturation"

    /// What the folder holds, in words ("CALM energy transformer").
    public var displayName: String {
        switch self {
        case .calm: return "CALM energy transformer"
        case .autoencoder: return "autoencoder"
        case .llama: return "Llama causal LM"
        case .gpt2: return "GPT-2 causal LM"
        case .tokenMaturation: return "Token Maturation model"
        }
    }
}

/// Options for loading a model.
public struct LoadOptions: Sendable {
    /// Store packed weight matrices in this type (nil keeps each checkpoint tensor's own type).
    public var weightDType: DType?
    /// Overrides `ae_path` from the config (the released CALM configs point to a training server).
    public var autoencoderPath: URL?
    /// The worker pool the model's kernels use.
    public var pool: ComputePool
    public init(weightDType: DType? = nil, autoencoderPath: URL? = nil, pool: ComputePool = .shared) {
        self.weightDType = weightDType
        self.autoencoderPath = autoencoderPath
        self.pool = pool
    }
}

/// Reading `config.json` files and telling model kinds apart.
enum ModelFolder {
    static func configData(_ directory: URL) throws -> (data: Data, json: [String: Any], path: String) {
        let url = directory.appendingPathComponent("config.json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            if !FileManager.default.fileExists(atPath: directory.path) {
                throw ModelError.unknownModel(path: directory.path, reason: "model folder does not exist")
            }
            throw ModelError.unknownModel(path: directory.path, reason: "no config.json in the model folder")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError.unknownModel(path: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError.invalidConfig(file: url.path, key: "(root)", reason: "not a JSON object")
        }
        return (data, json, url.path)
    }

    static func kind(of json: [String: Any], path: String) throws -> ModelKind {
        // Checked first: a TM config carries its backbone's keys (Llama's or GPT-2's) at the top level.
        if TokenMaturationConfig.describes(json) { return .tokenMaturation }
        // Before CALM: a Llama config can carry keys that the CALM heuristics below look at.
        if LlamaCausalLMConfig.describes(json) { return .llama }
        if GPT2Config.describes(json) { return .gpt2 }
        let architectures = json["architectures"] as? [String] ?? []
        if architectures.contains("EnergyTransformer") || architectures.contains(where: { $0.hasPrefix("CALM") }) { return .calm }
        if architectures.contains("Autoencoder") { return .autoencoder }
        if json["num_encoder_layers"] != nil || json["num_decoder_layers"] != nil { return .autoencoder }
        if json["num_mlp_layers"] != nil || json["noise_size"] != nil || json["ae_path"] != nil { return .calm }
        throw ModelError.unknownModel(path: path, reason: "config.json describes neither a CALM model, an autoencoder, a Llama causal LM, a GPT-2 nor a Token Maturation model (architectures \(architectures))")
    }

    static func decode<T: Decodable>(_ type: T.Type, from data: Data, path: String) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: data) } catch let DecodingError.typeMismatch(_, context) {
            throw ModelError.invalidConfig(file: path, key: context.codingPath.map(\.stringValue).joined(separator: "."), reason: "wrong type: \(context.debugDescription)")
        } catch let DecodingError.dataCorrupted(context) {
            throw ModelError.invalidConfig(file: path, key: context.codingPath.map(\.stringValue).joined(separator: "."), reason: context.debugDescription)
        } catch {
            throw ModelError.invalidConfig(file: path, key: "(root)", reason: "\(error)")
        }
    }

    static func openWeights(_ directory: URL) throws -> any TensorSource {
        try CheckpointLoader.open(directory: directory)
    }

    /// Infers the autoencoder's sizes from its weights (for CALM checkpoints whose `ae_path`
    /// is unusable): vocabulary, hidden, intermediate, latent, chunk size, layer counts.
    static func inferAutoencoderConfig(source: any TensorSource, prefix: String, base: CALMConfig) throws -> AutoencoderConfig {
        let file = source.url.lastPathComponent
        func shape(_ names: [String]) throws -> [Int] {
            for n in names { if let info = source.info(prefix + n) { return info.shape } }
            throw ModelError.missingWeight(file: file, keys: names.map { prefix + $0 })
        }
        var c = AutoencoderConfig()
        let e = try shape(["encoder.embed_tokens.weight", "decoder.lm_head_weight"])
        c.vocabSize = e[0]; c.hiddenSize = e[1]
        c.intermediateSize = try shape(["encoder.encoder_layers.0.mlp.gate_proj.weight", "decoder.decoder_layers.0.mlp.gate_proj.weight"])[0]
        c.latentSize = try shape(["decoder.latent_to_hidden.weight"])[1]
        c.patchSize = try shape(["decoder.expand_layer.weight"])[0] / max(c.hiddenSize, 1)
        c.numEncoderLayers = (0...).first { source.info(prefix + "encoder.encoder_layers.\($0).layernorm.weight") == nil } ?? 0
        c.numDecoderLayers = (0...).first { source.info(prefix + "decoder.decoder_layers.\($0).layernorm.weight") == nil } ?? 0
        c.rmsNormEps = base.rmsNormEps
        c.padTokenID = base.padTokenID; c.bosTokenID = base.bosTokenID; c.eosTokenID = base.eosTokenID
        return c
    }
}
