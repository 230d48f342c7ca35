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

/// A Token Maturation model being trained (spec §3) on a Llama or a GPT-2 backbone: the decoder stack
/// and embedding matrix W of a discrete checkpoint in its Hugging Face names (`model.*` for a
/// `LlamaForCausalLM`, `transformer.*` for a `GPT2LMHeadModel`, GPT-2's `Conv1D` weights in their
/// stored in × out layout; no LM head) plus the TM modules (`tm.alpha_mlp.*`, `tm.tail_length.*`,
/// `tm.head.*`). The tensor list is `RandomModelWriter.tokenMaturationTensors`, the one the inference
/// loader reads, so a saved folder is a `model_type: "token_maturation"` folder (`backbone` "llama" or
/// "gpt2") that `TokenMaturationModel.load` runs.
///
/// The embedding matrix the model works in is E = R · rownormalize(W) (spec §3.5): inputs, targets
/// and negatives are rows of E; W is frozen unless `trainEmbeddings` (then gradients reach W through
/// the row normalisation). The folder stores W and `embedding_radius` = R, and the inference loader
/// rescales the rows the same way.
public final class TrainableTokenMaturation: Sendable {
    /// The tail-length table (`tm.tail_length.embedding.weight`): a table, not a matrix every row
    /// passes through.
    public static let tailLengthTableName = "tm.tail_length.embedding.weight"
    /// GPT-2's learned position table.
    public static let gpt2PositionTableName = "transformer.wpe.weight"

    /// The folder's config (the backbone's keys at the top level, the TM keys, `embedding_radius` always set).
    public let config: TokenMaturationConfig
    /// Every tensor of the folder, by its name (`model.*` or `transformer.*`, and `tm.*`).
    public let parameters: ParameterSet

    /// R.
    public var radius: Float { config.embeddingRadius ?? 1 }
    /// d.
    public var hidden: Int { config.hiddenSize }
    /// W's tensor name (`model.embed_tokens.weight` or `transformer.wte.weight`).
    public var embeddingName: String { config.backbone.embeddingTensorName }
    /// Whether W receives gradients.
    public var trainsEmbeddings: Bool { parameters[embeddingName].requiresGrad }
    /// The beginning-of-text id of the backbone's config, if it names one.
    public var bosTokenID: Int? {
        switch config.backbone {
        case .llama: return config.llama?.bosTokenID
        case .gpt2: return config.gpt2?.bosTokenID
        }
    }

    /// Lookup tables rather than matrices every row passes through: W, GPT-2's position table and
    /// the tail-length table. They get no weight decay (spec §3.6) and are not counted in
    /// `matmulParameterCount`.
    public var tableNames: Set<String> {
        var names: Set<String> = [embeddingName, Self.tailLengthTableName]
        if config.backbone == .gpt2 { names.insert(Self.gpt2PositionTableName) }
        return names
    }

    /// Checks `parameters` against the config's tensor list and the backbone's limits; `file` names
    /// the config in errors.
    public init(config: TokenMaturationConfig, parameters: ParameterSet, file: String = "config.json") throws {
        switch config.backbone {
        case .llama:
            guard let llama = config.llama else {
                throw TrainingError.invalidModelFolder(path: file, reason: "backbone \"llama\" without its sizes")
            }
            try llama.validate(file: file)
        case .gpt2:
            guard let gpt2 = config.gpt2 else {
                throw TrainingError.invalidModelFolder(path: file, reason: "backbone \"gpt2\" without its sizes")
            }
            try gpt2.validate(file: file)
        }
        try config.validate(file: file)
        guard let r = config.embeddingRadius, r.isFinite, r > 0 else {
            throw TrainingError.invalidModelFolder(path: file, reason: "embedding_radius must be set to a positive number for training")
        }
        for (name, shape) in try RandomModelWriter.tokenMaturationTensors(config) {
            guard parameters.contains(name) else { throw TrainingError.missingWeight(file: file, keys: [name]) }
            let p = parameters[name]
            guard p.shape == shape else { throw TrainingError.shapeMismatch(file: file, key: name, expected: shape, actual: p.shape) }
        }
        let name = config.backbone.embeddingTensorName
        let w = parameters[name]
        let d = config.hiddenSize
        for row in 0..<config.vocabSize {
            var s: Float = 0
            for j in 0..<d { let x = w.value[row * d + j]; s += x * x }
            guard s > 0 && s.isFinite else {
                throw TrainingError.invalidModelFolder(path: file, reason: "\(name) row \(row) has norm \(s.squareRoot()): it cannot be rescaled to the embedding radius")
            }
        }
        self.config = config
        self.parameters = parameters
    }

    /// The decoder stack over `parameters` (the only part of the TM training step that depends on
    /// the backbone).
    func backboneModule() throws -> TokenMaturationBackboneModule {
        switch config.backbone {
        case .llama:
            guard let llama = config.llama else { throw TrainingError.invalidInput("llama backbone without its sizes") }
            return .llama(BackboneModule(config: llama.trainingBackboneConfig, parameters: parameters, prefix: "model"))
        case .gpt2:
            guard let gpt2 = config.gpt2 else { throw TrainingError.invalidInput("gpt2 backbone without its sizes") }
            return .gpt2(GPT2BackboneModule(config: gpt2, parameters: parameters, prefix: "transformer"))
        }
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
    /// start so that step 0 equals the discrete backbone (`initialized(config:backbone:…)`).
    ///
    /// - Throws: `ModelError` naming the baseline's `config.json` and key for an unusable config,
    ///   checkpoint errors naming the file and tensor, `TrainingError` for a zero embedding row.
    public static func fromBaseline(directory: URL, settings: TokenMaturationSettings = TokenMaturationSettings(),
                                    trainEmbeddings: Bool = false, seed: UInt64 = 0) throws -> TrainableTokenMaturation {
        var llama = try LlamaCausalLMConfig.load(directory: directory)
        llama.tieWordEmbeddings = true   // E is the only vocabulary matrix: no lm_head
        llama.architectures = []
        llama.torchDType = nil
        let source = try CheckpointLoader.open(directory: directory)
        let loaded = try ParameterLoader.load(RandomModelWriter.llamaTensors(llama), source: source, prefix: "",
                                              aliases: { [$0] }, requiresGrad: true)
        return try initialized(config: TokenMaturationConfig(llama: llama), backbone: loaded, settings: settings,
                               trainEmbeddings: trainEmbeddings, seed: seed,
                               file: directory.appendingPathComponent("config.json").path)
    }

    /// Starts a TM model from a pretrained Hugging Face `GPT2LMHeadModel` folder, as the paper does
    /// (GPT-2 Medium, spec §1.2): `wte` (W), `wpe`, every block and `ln_f` are copied, from either
    /// checkpoint layout (`save_pretrained`'s `transformer.*` keys or the original Hub checkpoints'
    /// unprefixed keys, whose `h.N.attn.bias` mask buffers are ignored; an `lm_head.weight` is
    /// ignored too: E is the only vocabulary matrix). `Conv1D` weights keep their in × out layout
    /// (`LinearOp(conv1D:bias:)` trains them as stored), so the saved folder has the tensors
    /// `TokenMaturationModel.load` reads. The TM modules start as in `fromBaseline`, so step 0 is
    /// GPT-2's final hidden state for the same input vectors.
    ///
    /// - Throws: `ModelError` naming `config.json` and the key for a folder that is not a usable
    ///   GPT-2, `TrainingError` naming the weight file and tensor for a missing or mis-shaped weight
    ///   (both layouts' names are listed) or a zero embedding row.
    public static func fromGPT2(directory: URL, settings: TokenMaturationSettings = TokenMaturationSettings(),
                                trainEmbeddings: Bool = false, seed: UInt64 = 0) throws -> TrainableTokenMaturation {
        var gpt2 = try GPT2Config.load(directory: directory)
        gpt2.tieWordEmbeddings = true   // E (wte) is the only vocabulary matrix: no lm_head
        gpt2.architectures = []
        gpt2.torchDType = nil
        let source = try CheckpointLoader.open(directory: directory)
        let prefix = "transformer."
        let loaded = try ParameterLoader.load(RandomModelWriter.gpt2Tensors(gpt2), source: source, prefix: "",
                                              aliases: { [$0, String($0.dropFirst(prefix.count))] }, requiresGrad: true)
        return try initialized(config: TokenMaturationConfig(gpt2: gpt2), backbone: loaded, settings: settings,
                               trainEmbeddings: trainEmbeddings, seed: seed,
                               file: directory.appendingPathComponent("config.json").path)
    }

    /// The TM initialisation shared by every backbone (spec §1.3, §1.4, §3.6): the backbone's tensors
    /// (`backbone`, W included) are used as they are; the `tm.*` modules start as
    /// `TokenMaturationInitializer.moduleTensor` says (no conditioning, identity head; the same
    /// values the inference-side initializer writes for the same seed). R =
    /// `settings.embeddingRadius` or W's mean row norm.
    static func initialized(config base: TokenMaturationConfig, backbone loaded: ParameterSet, settings: TokenMaturationSettings,
                            trainEmbeddings: Bool, seed: UInt64, file: String) throws -> TrainableTokenMaturation {
        var config = base
        settings.apply(to: &config)
        let d = config.hiddenSize
        let embeddingName = config.backbone.embeddingTensorName
        config.embeddingRadius = settings.embeddingRadius ?? meanRowNorm(loaded[embeddingName].value, rows: config.vocabSize, width: d)
        try config.validate(file: file)
        let set = ParameterSet()
        for (index, (name, shape)) in try RandomModelWriter.tokenMaturationTensors(config).enumerated() {
            if loaded.contains(name) {
                set.add(Parameter(name: name, shape: shape, value: loaded[name].value))
                continue
            }
            let value = TokenMaturationInitializer.moduleTensor(name, shape: shape, config: config, seed: seed, index: index)
            set.add(Parameter(name: name, shape: shape, value: value))
        }
        set[embeddingName].requiresGrad = trainEmbeddings
        return try TrainableTokenMaturation(config: config, parameters: set, file: file)
    }

    /// Loads a TM folder of either backbone (a checkpoint of this trainer, to continue or resume; or
    /// any TM folder: a missing `embedding_radius` becomes the stored matrix's mean row norm).
    public static func load(directory: URL, trainEmbeddings: Bool = false) throws -> TrainableTokenMaturation {
        var config = try TokenMaturationConfig.load(directory: directory)
        let file = directory.appendingPathComponent("config.json").path
        let source = try CheckpointLoader.open(directory: directory)
        let set = try ParameterLoader.load(try RandomModelWriter.tokenMaturationTensors(config), source: source, prefix: "",
                                           aliases: { [$0] }, requiresGrad: true)
        let embeddingName = config.backbone.embeddingTensorName
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

    /// Whether a parameter gets AdamW weight decay (spec §3.6): matrices, but not the lookup tables
    /// (`tableNames`: W, GPT-2's positions, the tail-length table); biases and norm weights are 1-D
    /// and never decay.
    public var decays: @Sendable (Parameter) -> Bool {
        let tables = tableNames
        return { p in p.shape.count >= 2 && !tables.contains(p.name) }
    }

    /// Parameters in matrices every row passes through (not the lookup tables).
    public var matmulParameterCount: Int {
        let tables = tableNames
        return parameters.parameters.filter { $0.shape.count == 2 && !tables.contains($0.name) }.reduce(0) { $0 + $1.count }
    }
}
