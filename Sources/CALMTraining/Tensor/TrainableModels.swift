import CALMModel
import CALMTensor
import Foundation

/// Errors of the training layer.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case missingWeight(file: String, keys: [String])
    case shapeMismatch(file: String, key: String, expected: [Int], actual: [Int])
    case invalidModelFolder(path: String, reason: String)
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .missingWeight(file, keys): return "\(file): missing weight (tried \(keys.joined(separator: ", ")))"
        case let .shapeMismatch(file, key, e, a): return "\(file): \(key) has shape \(a), expected \(e)"
        case let .invalidModelFolder(path, reason): return "\(path): \(reason)"
        case let .invalidInput(reason): return "invalid training input: \(reason)"
        }
    }
}

/// Reads parameters by name with the reference's aliases.
enum ParameterLoader {
    /// Loads every (name, shape) from `source` under `prefix`, trying `aliases(name)` in order.
    static func load(_ list: [(String, [Int])], source: any TensorSource, prefix: String,
                     aliases: (String) -> [String], requiresGrad: Bool) throws -> ParameterSet {
        let file = source.url.lastPathComponent
        let set = ParameterSet()
        for (name, shape) in list {
            let candidates = aliases(name).map { prefix + $0 }
            guard let key = candidates.first(where: { source.info($0) != nil }) else {
                throw TrainingError.missingWeight(file: file, keys: candidates)
            }
            let t = try source.tensor(key)
            guard t.shape == shape else { throw TrainingError.shapeMismatch(file: file, key: key, expected: shape, actual: t.shape) }
            set.add(Parameter(name: name, shape: shape, value: try t.floats(), requiresGrad: requiresGrad))
        }
        return set
    }

    static func readConfig(_ directory: URL) throws -> (data: Data, json: [String: Any]) {
        let url = directory.appendingPathComponent("config.json")
        guard let data = try? Data(contentsOf: url) else {
            throw TrainingError.invalidModelFolder(path: directory.path, reason: "no readable config.json")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw TrainingError.invalidModelFolder(path: url.path, reason: "config.json is not a JSON object")
        }
        return (data, json)
    }

    static func writeConfig<T: Encodable>(_ value: T, architecture: String, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        var object = try JSONSerialization.jsonObject(with: try encoder.encode(value)) as! [String: Any]
        object["architectures"] = [architecture]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: url)
    }

    static func add(_ set: ParameterSet, prefix: String, to writer: inout SafetensorsWriter, dtype: DType) throws {
        for p in set.parameters { try writer.add(name: prefix + p.name, shape: p.shape, floats: p.value, dtype: dtype) }
    }
}

/// The chunk autoencoder's parameters (27 unique tensors for 2+2 layers: the tied matrix once,
/// as `encoder.embed_tokens.weight`).
public final class TrainableAutoencoder: Sendable {
    public let config: AutoencoderConfig
    public let parameters: ParameterSet

    public init(config: AutoencoderConfig, parameters: ParameterSet) {
        self.config = config
        self.parameters = parameters
    }

    /// (name, shape) of every unique parameter.
    public static func parameterShapes(_ config: AutoencoderConfig) -> [(String, [Int])] {
        RandomModelWriter.autoencoderTensors(config)
    }

    static func aliases(_ name: String) -> [String] {
        name == "encoder.embed_tokens.weight" ? [name, "decoder.lm_head_weight"] : [name]
    }

    /// Loads an autoencoder folder (`config.json` + weights), or the autoencoder embedded under
    /// `ae_model.*` in a CALM folder (its shape inferred from the weights, its loss settings the
    /// defaults), so that a shipped CALM model's autoencoder can be trained further.
    public static func load(directory: URL, requiresGrad: Bool = true) throws -> TrainableAutoencoder {
        let (data, _) = try ParameterLoader.readConfig(directory)
        let path = directory.appendingPathComponent("config.json").path
        let source = try CheckpointLoader.open(directory: directory)
        if TrainableCALM.embedsAutoencoder(source) {
            let calm = try JSONDecoder().decode(CALMConfig.self, from: data)
            try calm.validate(file: path)
            let config = try TrainableCALM.inferAutoencoderConfig(source: source, base: calm)
            try config.validate(file: path + " (its ae_model.* weights)")
            return try load(config: config, source: source, prefix: "ae_model.", requiresGrad: requiresGrad)
        }
        let config = try JSONDecoder().decode(AutoencoderConfig.self, from: data)
        try config.validate(file: path)
        return try load(config: config, source: source, prefix: "", requiresGrad: requiresGrad)
    }

    /// Loads from any tensor source under `prefix` (`ae_model.` inside CALM checkpoints).
    public static func load(config: AutoencoderConfig, source: any TensorSource, prefix: String,
                            requiresGrad: Bool = true) throws -> TrainableAutoencoder {
        let set = try ParameterLoader.load(parameterShapes(config), source: source, prefix: prefix,
                                           aliases: aliases, requiresGrad: requiresGrad)
        return TrainableAutoencoder(config: config, parameters: set)
    }

    /// The forward/backward module over these parameters.
    public var module: AutoencoderModule { AutoencoderModule(config: config, parameters: parameters) }

    /// Writes `config.json` and `model.safetensors` (the engine's format).
    public func save(to directory: URL, dtype: DType = .f32) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        try ParameterLoader.add(parameters, prefix: "", to: &writer, dtype: dtype)
        try writer.write(to: directory.appendingPathComponent("model.safetensors"))
        var c = config
        c.torchDType = dtype.torchName
        try ParameterLoader.writeConfig(c, architecture: "Autoencoder", to: directory.appendingPathComponent("config.json"))
    }
}

/// A CALM model's trainable parameters (`transformer.*`, `embed_proj.*`, `mlp_generator.*`) plus
/// its frozen autoencoder.
public final class TrainableCALM: Sendable {
    public let config: CALMConfig
    public let parameters: ParameterSet
    public let autoencoder: TrainableAutoencoder

    public init(config: CALMConfig, parameters: ParameterSet, autoencoder: TrainableAutoencoder) {
        self.config = config
        self.parameters = parameters
        self.autoencoder = autoencoder
        autoencoder.parameters.setRequiresGrad(false)
    }

    public static func parameterShapes(_ config: CALMConfig) -> [(String, [Int])] {
        RandomModelWriter.calmTensors(config)
    }

    static func aliases(_ name: String) -> [String] {
        name.hasPrefix("mlp_generator.") ? [name, "generative_head." + name.dropFirst("mlp_generator.".count)] : [name]
    }

    /// Whether a checkpoint holds an autoencoder under `ae_model.*`.
    static func embedsAutoencoder(_ source: any TensorSource) -> Bool {
        source.info("ae_model.encoder.embed_tokens.weight") != nil || source.info("ae_model.decoder.lm_head_weight") != nil
    }

    /// Loads a CALM folder. The autoencoder comes from `ae_model.*` inside the checkpoint when
    /// present (its config from `ae_path` if readable, else inferred from the weights), otherwise
    /// from the `ae_path` folder (or `autoencoderPath`). `replacement` swaps in another trained
    /// autoencoder of the same vocabulary, K and latent size instead (the energy model is then
    /// trained on its latents: a warm start onto a new autoencoder).
    public static func load(directory: URL, autoencoderPath: URL? = nil,
                            replacingAutoencoder replacement: URL? = nil) throws -> TrainableCALM {
        let (data, _) = try ParameterLoader.readConfig(directory)
        let config = try JSONDecoder().decode(CALMConfig.self, from: data)
        let path = directory.appendingPathComponent("config.json").path
        try config.validate(file: path)
        let source = try CheckpointLoader.open(directory: directory)
        let params = try ParameterLoader.load(parameterShapes(config), source: source, prefix: "", aliases: aliases, requiresGrad: true)
        let aeDir: URL? = autoencoderPath ?? config.aePath.flatMap { p in
            p.isEmpty ? nil : (p.hasPrefix("/") ? URL(fileURLWithPath: p) : directory.appendingPathComponent(p).standardizedFileURL)
        }
        let ae: TrainableAutoencoder
        if let replacement {
            ae = try TrainableAutoencoder.load(directory: replacement, requiresGrad: false)
            try config.validate(autoencoder: ae.config, file: path + " (with the autoencoder in \(replacement.path))")
        } else if embedsAutoencoder(source) {
            var aeConfig: AutoencoderConfig
            if let aeDir, let (d, _) = try? ParameterLoader.readConfig(aeDir),
               let c = try? JSONDecoder().decode(AutoencoderConfig.self, from: d) {
                aeConfig = c
            } else {
                aeConfig = try inferAutoencoderConfig(source: source, base: config)
            }
            try config.validate(autoencoder: aeConfig, file: path)
            ae = try TrainableAutoencoder.load(config: aeConfig, source: source, prefix: "ae_model.", requiresGrad: false)
        } else {
            guard let aeDir else {
                throw TrainingError.invalidModelFolder(path: directory.path, reason: "no ae_model.* weights and no ae_path")
            }
            ae = try TrainableAutoencoder.load(directory: aeDir, requiresGrad: false)
            try config.validate(autoencoder: ae.config, file: path)
        }
        return TrainableCALM(config: config, parameters: params, autoencoder: ae)
    }

    static func inferAutoencoderConfig(source: any TensorSource, base: CALMConfig) throws -> AutoencoderConfig {
        let p = "ae_model."
        func shape(_ names: [String]) throws -> [Int] {
            for n in names { if let i = source.info(p + n) { return i.shape } }
            throw TrainingError.missingWeight(file: source.url.lastPathComponent, keys: names.map { p + $0 })
        }
        var c = AutoencoderConfig()
        let e = try shape(["encoder.embed_tokens.weight", "decoder.lm_head_weight"])
        c.vocabSize = e[0]; c.hiddenSize = e[1]
        c.intermediateSize = try shape(["encoder.encoder_layers.0.mlp.gate_proj.weight"])[0]
        c.latentSize = try shape(["decoder.latent_to_hidden.weight"])[1]
        c.patchSize = try shape(["decoder.expand_layer.weight"])[0] / max(c.hiddenSize, 1)
        c.numEncoderLayers = (0...).first { source.info(p + "encoder.encoder_layers.\($0).layernorm.weight") == nil } ?? 0
        c.numDecoderLayers = (0...).first { source.info(p + "decoder.decoder_layers.\($0).layernorm.weight") == nil } ?? 0
        c.rmsNormEps = base.rmsNormEps
        c.padTokenID = base.padTokenID; c.bosTokenID = base.bosTokenID; c.eosTokenID = base.eosTokenID
        return c
    }

    /// Writes the model folder: CALM parameters (head as `mlp_generator.*`) with the autoencoder
    /// embedded under `ae_model.*`, and `config.json` (no `ae_path`).
    public func save(to directory: URL, dtype: DType = .f32) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        try ParameterLoader.add(parameters, prefix: "", to: &writer, dtype: dtype)
        try ParameterLoader.add(autoencoder.parameters, prefix: "ae_model.", to: &writer, dtype: dtype)
        try writer.write(to: directory.appendingPathComponent("model.safetensors"))
        var c = config
        c.aePath = nil
        c.torchDType = dtype.torchName
        try ParameterLoader.writeConfig(c, architecture: "EnergyTransformer", to: directory.appendingPathComponent("config.json"))
    }
}
