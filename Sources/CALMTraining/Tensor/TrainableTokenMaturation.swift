import CALMModel
import CALMTensor
import Foundation

/// The Token Maturation hyper-parameters a training run writes into its folder's `config.json`
/// (and trains with: the corruption uses the same α profile and noise scale as decoding).
public struct TokenMaturationSettings: Sendable, Equatable {
    /// α_max (`maturity_max`): maturity of the front tail slot (spec §5 C).
    public var maturityMax: Float = 0.5
    /// ρ (`embryo_scale`): corruption noise and embryos are N(0, (ρR)²/d·I) (spec §3.2, §5 F).
    public var embryoScale: Float = 0.1
    /// Default K for generation (`tail_length`).
    public var tailLength: Int = 16
    /// Rows of the tail-length table (`max_tail_length`); training draws K ~ U{1 … this}.
    public var maxTailLength: Int = 64
    /// R (`embedding_radius`); nil: the mean row norm of the backbone's embedding matrix (spec §5 E).
    public var embeddingRadius: Float?
    /// Sinusoid channels of the maturity embedding (`alpha_embedding_channels`).
    public var alphaChannels: Int = 256

    /// The defaults above.
    public init() {}

    /// These values on `config` (the keys not named here keep their defaults).
    func apply(to config: inout TokenMaturationConfig) {
        config.maturityMax = maturityMax
        config.embryoScale = embryoScale
        config.tailLength = tailLength
        config.maxTailLength = maxTailLength
        config.alphaChannels = alphaChannels
    }
}

/// A Token Maturation model being trained (spec §3) on the Llama backbone: the decoder stack and
/// embedding matrix W of a discrete `LlamaForCausalLM` (`model.*`, Hugging Face names, no `lm_head`)
/// plus the TM modules (`tm.alpha_mlp.*`, `tm.tail_length.*`, `tm.head.*`). The tensor list is
/// `RandomModelWriter.tokenMaturationTensors`, the one the inference loader reads, so a saved folder
/// is a `model_type: "token_maturation"` folder that `TokenMaturationModel.load` runs.
///
/// The embedding matrix the model works in is E = R · rownormalize(W) (spec §3.5): inputs, targets
/// and negatives are rows of E; W is frozen unless `trainEmbeddings` (then gradients reach W through
/// the row normalisation). The folder stores W and `embedding_radius` = R, and the inference loader
/// rescales the rows the same way.
public final class TrainableTokenMaturation: Sendable {
    /// The embedding matrix's tensor name (Llama backbone).
    public static let embeddingName = "model.embed_tokens.weight"

    /// The folder's config (Llama keys at the top level, the TM keys, `embedding_radius` always set).
    public let config: TokenMaturationConfig
    /// The Llama stack's sizes for `BackboneModule`.
    let backbone: CALMConfig
    /// Every tensor of the folder, by its name (`model.*`, `tm.*`).
    public let parameters: ParameterSet

    /// R.
    public var radius: Float { config.embeddingRadius ?? 1 }
    /// d.
    public var hidden: Int { config.hiddenSize }
    /// Whether W receives gradients.
    public var trainsEmbeddings: Bool { parameters[Self.embeddingName].requiresGrad }

    /// Checks `parameters` against the config's tensor list and the backbone's limits; `file` names
    /// the config in errors.
    public init(config: TokenMaturationConfig, parameters: ParameterSet, file: String = "config.json") throws {
        guard config.backbone == .llama, let llama = config.llama else {
            throw TrainingError.invalidModelFolder(path: file, reason: "backbone \"\(config.backbone.rawValue)\": Token Maturation training supports the \"llama\" backbone only")
        }
        try llama.validate(file: file)
        try config.validate(file: file)
        guard let r = config.embeddingRadius, r.isFinite, r > 0 else {
            throw TrainingError.invalidModelFolder(path: file, reason: "embedding_radius must be set to a positive number for training")
        }
        for (name, shape) in try RandomModelWriter.tokenMaturationTensors(config) {
            guard parameters.contains(name) else { throw TrainingError.missingWeight(file: file, keys: [name]) }
            let p = parameters[name]
            guard p.shape == shape else { throw TrainingError.shapeMismatch(file: file, key: name, expected: shape, actual: p.shape) }
        }
        let w = parameters[Self.embeddingName]
        let d = config.hiddenSize
        for row in 0..<config.vocabSize {
            var s: Float = 0
            for j in 0..<d { let x = w.value[row * d + j]; s += x * x }
            guard s > 0 && s.isFinite else {
                throw TrainingError.invalidModelFolder(path: file, reason: "\(Self.embeddingName) row \(row) has norm \(s.squareRoot()): it cannot be rescaled to the embedding radius")
            }
        }
        self.config = config
        backbone = llama.trainingBackboneConfig
        self.parameters = parameters
    }

    /// The mean row norm of a V × d matrix (R's default, as the inference loader computes it).
    static func meanRowNorm(_ w: [Float], rows: Int, width d: Int) -> Float {
        var total = 0.0
        for r in 0..<rows {
            var s: Float = 0
            for j in 0..<d { let x = w[r * d + j]; s += x * x }
            total += Double(s.squareRoot())
        }
        return Float(total / Double(max(rows, 1)))
    }

    /// Starts a TM model from a discrete Llama checkpoint (a `calm train-baseline` folder, or any
    /// Hugging Face `LlamaForCausalLM` folder): the decoder stack and W are copied; the TM modules
    /// start so that step 0 equals the discrete backbone (spec §1.3, §1.4, §3.6): the last layer of
    /// MLP_α and the FiLM projection are zero (no conditioning), the head is the identity.
    /// `tm.alpha_mlp.0.weight` ~ N(0, 1/channels) and the K table ~ N(0, 1) (PyTorch's
    /// `nn.Embedding` default) are random, deterministic in `seed`; biases are zero.
    ///
    /// - Throws: `ModelError` naming the baseline's `config.json` and key for an unusable config,
    ///   checkpoint errors naming the file and tensor, `TrainingError` for a zero embedding row.
    public static func fromBaseline(directory: URL, settings: TokenMaturationSettings = TokenMaturationSettings(),
                                    trainEmbeddings: Bool = false, seed: UInt64 = 0) throws -> TrainableTokenMaturation {
        var llama = try LlamaCausalLMConfig.load(directory: directory)
        let file = directory.appendingPathComponent("config.json").path
        llama.tieWordEmbeddings = true   // E is the only vocabulary matrix: no lm_head
        llama.architectures = []
        llama.torchDType = nil
        var config = TokenMaturationConfig(llama: llama)
        settings.apply(to: &config)
        let source = try CheckpointLoader.open(directory: directory)
        let backboneTensors = RandomModelWriter.llamaTensors(llama)
        let loaded = try ParameterLoader.load(backboneTensors, source: source, prefix: "", aliases: { [$0] }, requiresGrad: true)
        let d = config.hiddenSize
        let w = loaded[embeddingName].value
        config.embeddingRadius = settings.embeddingRadius ?? meanRowNorm(w, rows: config.vocabSize, width: d)
        try config.validate(file: file)
        let set = ParameterSet()
        for (index, (name, shape)) in try RandomModelWriter.tokenMaturationTensors(config).enumerated() {
            if loaded.contains(name) {
                set.add(Parameter(name: name, shape: shape, value: loaded[name].value))
                continue
            }
            let count = shape.reduce(1, *)
            var value = [Float](repeating: 0, count: count)
            let rng = SeededRandomness(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index + 1))
            switch name {
            case "tm.alpha_mlp.0.weight":
                let std = 1 / Float(config.alphaChannels).squareRoot()
                value = rng.normalFloats(count: count).map { $0 * std }
            case "tm.tail_length.embedding.weight":
                value = rng.normalFloats(count: count)
            case "tm.head.weight":
                for i in 0..<d { value[i * d + i] = 1 }
            default:
                break   // biases, the last layer of MLP_α and the FiLM projection: zero
            }
            set.add(Parameter(name: name, shape: shape, value: value))
        }
        set[embeddingName].requiresGrad = trainEmbeddings
        return try TrainableTokenMaturation(config: config, parameters: set, file: file)
    }

    /// Loads a TM folder (a checkpoint of this trainer, to continue or resume; or any Llama-backbone TM
    /// folder: a missing `embedding_radius` becomes the stored matrix's mean row norm).
    public static func load(directory: URL, trainEmbeddings: Bool = false) throws -> TrainableTokenMaturation {
        var config = try TokenMaturationConfig.load(directory: directory)
        let file = directory.appendingPathComponent("config.json").path
        guard config.backbone == .llama else {
            throw TrainingError.invalidModelFolder(path: file, reason: "backbone \"\(config.backbone.rawValue)\": Token Maturation training supports the \"llama\" backbone only")
        }
        let source = try CheckpointLoader.open(directory: directory)
        let set = try ParameterLoader.load(try RandomModelWriter.tokenMaturationTensors(config), source: source, prefix: "",
                                           aliases: { [$0] }, requiresGrad: true)
        if config.embeddingRadius == nil {
            config.embeddingRadius = meanRowNorm(set[embeddingName].value, rows: config.vocabSize, width: config.hiddenSize)
        }
        set[embeddingName].requiresGrad = trainEmbeddings
        return try TrainableTokenMaturation(config: config, parameters: set, file: file)
    }

    /// Writes `config.json` (every TM key, `embedding_radius` included) and `model.safetensors`.
    public func save(to directory: URL, dtype: DType = .f32) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        try ParameterLoader.add(parameters, prefix: "", to: &writer, dtype: dtype)
        try writer.write(to: directory.appendingPathComponent("model.safetensors"))
        var object = try config.jsonObject()
        object["torch_dtype"] = dtype.torchName
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: directory.appendingPathComponent("config.json"))
    }

    /// Parameters that get AdamW weight decay (spec §3.6): matrices, but not the embedding matrix nor
    /// the tail-length table (biases and norm weights are 1-D and never decay).
    public static let decays: @Sendable (Parameter) -> Bool = { p in
        p.shape.count >= 2 && p.name != embeddingName && p.name != "tm.tail_length.embedding.weight"
    }

    /// Parameters in matrices every row passes through (not the embedding or tail-length tables).
    public var matmulParameterCount: Int {
        parameters.parameters.filter { $0.shape.count == 2 && $0.name != Self.embeddingName && $0.name != "tm.tail_length.embedding.weight" }
            .reduce(0) { $0 + $1.count }
    }
}
