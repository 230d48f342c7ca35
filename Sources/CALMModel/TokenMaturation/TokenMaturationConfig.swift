import Foundation

/// The `config.json` of a Token Maturation model (arXiv 2601.04854): `model_type`
/// "token_maturation", a `backbone` choice, the backbone's own Hugging Face keys **at the top
/// level** (so a pretrained GPT-2 or Llama `config.json` becomes a TM config by adding keys), and the
/// TM hyper-parameters. Every TM key is optional; its default fills a gap the paper leaves open
/// (spec §5; Docs/TokenMaturation.md lists which default fills which gap).
///
/// ```json
/// { "model_type": "token_maturation", "backbone": "llama",
///   "vocab_size": 512, "hidden_size": 64, "num_hidden_layers": 2, "...": "...",
///   "tail_length": 16, "maturity_max": 0.5 }
/// ```
public struct TokenMaturationConfig: Sendable, Equatable {
    /// The decoder stack under the TM modules.
    public enum Backbone: String, Sendable, CaseIterable {
        /// GPT-2 (the paper's backbone: learned positions, LayerNorm, GELU); keys `n_embd`,
        /// `n_layer`, `n_head`, `n_positions`, tensors `transformer.*`.
        case gpt2
        /// Llama (RoPE, RMSNorm, SwiGLU); keys `hidden_size`, `num_hidden_layers`, …, tensors `model.*`.
        case llama

        /// The tensor that holds the embedding matrix E (W before the row rescaling) in a TM folder:
        /// the backbone's Hugging Face token embedding.
        public var embeddingTensorName: String {
            switch self {
            case .gpt2: return "transformer.wte.weight"
            case .llama: return "model.embed_tokens.weight"
            }
        }
    }

    /// The `model_type` that marks a TM folder.
    public static let modelType = "token_maturation"
    /// The `architectures` entry the writer puts in TM folders.
    public static let architecture = "TokenMaturationModel"

    /// Which decoder stack runs under the TM modules (`backbone`).
    public var backbone: Backbone
    /// The Llama backbone's sizes (the top-level Hugging Face keys), when `backbone` is `.llama`.
    public var llama: LlamaCausalLMConfig?
    /// The GPT-2 backbone's sizes (the top-level Hugging Face keys), when `backbone` is `.gpt2`.
    public var gpt2: GPT2Config?
    /// |V| (`vocab_size`).
    public var vocabSize: Int
    /// d: embedding space = model space (`hidden_size` / `n_embd`).
    public var hiddenSize: Int
    /// Position limit: committed + tail ≤ this (`max_position_embeddings` / `n_positions`).
    public var maxPositions: Int
    /// End-of-text ids (`eos_token_id`, a number or a list).
    public var eosTokenIDs: [Int]
    /// R (`embedding_radius`): every embedding row is rescaled to this norm at load. nil: the mean
    /// row norm of the stored embedding matrix, which keeps the backbone's input scale (spec §5 E).
    public var embeddingRadius: Float?
    /// α_max (`maturity_max`, default 0.5): maturity of the front slot (spec §5 C).
    public var maturityMax: Float = 0.5
    /// r (`maturation_rate`, default 1): η(α) = clamp(r·α, 0, 1) (spec §5 B).
    public var maturationRate: Float = 1
    /// ρ (`embryo_scale`, default 0.1): embryos are N(0, (ρR)²/d·I) (spec §5 F).
    public var embryoScale: Float = 0.1
    /// Which output predicts a slot (`prediction_alignment`, default "shift"; spec §5 A).
    public var alignment: TokenMaturationAlignment = .shift
    /// Default K (`tail_length`, default 16; spec §1.6).
    public var tailLength: Int = 16
    /// Rows of the tail-length embedding table, K = 1…this (`max_tail_length`, default 64).
    public var maxTailLength: Int = 64
    /// Default guidance scale s (`guidance_scale`, default 1 = off; the paper's demos use 2).
    public var guidanceScale: Float = 1
    /// Sinusoid channels of the maturity embedding (`alpha_embedding_channels`, default 256).
    public var alphaChannels: Int = 256
    /// α is multiplied by this before the sinusoid (`alpha_embedding_scale`, default 1000, DDPM).
    public var alphaScale: Float = 1000
    /// Longest sinusoid period (`alpha_embedding_max_period`, default 10000).
    public var alphaMaxPeriod: Float = 10000

    /// The Llama-backbone config with the TM defaults (used by the random-model writer).
    public init(llama: LlamaCausalLMConfig) {
        backbone = .llama
        self.llama = llama
        vocabSize = llama.vocabSize
        hiddenSize = llama.hiddenSize
        maxPositions = llama.maxPositionEmbeddings
        eosTokenIDs = llama.eosTokenIDs
    }

    /// The GPT-2-backbone config (the paper's) with the TM defaults (used by the random-model writer
    /// and to start from a Hugging Face GPT-2 folder).
    public init(gpt2: GPT2Config) {
        backbone = .gpt2
        self.gpt2 = gpt2
        vocabSize = gpt2.vocabSize
        hiddenSize = gpt2.nEmbd
        maxPositions = gpt2.nPositions
        eosTokenIDs = gpt2.eosTokenID.map { [$0] } ?? []
    }

    /// Parses a `config.json`; errors are `ModelError.invalidConfig` naming `file` and the key.
    public init(data: Data, file: String) throws {
        let keys = try ModelFolder.decode(Keys.self, from: data, path: file)
        func fail(_ key: String, _ reason: String) -> ModelError { .invalidConfig(file: file, key: key, reason: reason) }
        guard keys.modelType == Self.modelType else {
            throw fail("model_type", "must be \"\(Self.modelType)\" for a Token Maturation model, got \(keys.modelType.map { "\"\($0)\"" } ?? "none")")
        }
        guard let name = keys.backbone else {
            throw fail("backbone", "missing: say which decoder stack the model uses (\(Backbone.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or ")))")
        }
        guard let backbone = Backbone(rawValue: name) else {
            throw fail("backbone", "\"\(name)\" is not one of \(Backbone.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        self.backbone = backbone
        switch backbone {
        case .llama:
            let llama = try ModelFolder.decode(LlamaCausalLMConfig.self, from: data, path: file)
            try llama.validate(file: file)
            self.llama = llama
            vocabSize = llama.vocabSize
            hiddenSize = llama.hiddenSize
            maxPositions = llama.maxPositionEmbeddings
            eosTokenIDs = llama.eosTokenIDs
        case .gpt2:
            let g = try GPT2Config.parse(data, file: file)
            gpt2 = g
            vocabSize = g.vocabSize
            hiddenSize = g.nEmbd
            maxPositions = g.nPositions
            eosTokenIDs = g.eosTokenID.map { [$0] } ?? []
        }
        embeddingRadius = keys.embeddingRadius.map(Float.init)
        if let v = keys.maturityMax { maturityMax = Float(v) }
        if let v = keys.maturationRate { maturationRate = Float(v) }
        if let v = keys.embryoScale { embryoScale = Float(v) }
        if let v = keys.predictionAlignment {
            guard let a = TokenMaturationAlignment(rawValue: v) else {
                throw fail("prediction_alignment", "\"\(v)\" is not \"shift\" or \"same\"")
            }
            alignment = a
        }
        if let v = keys.tailLength { tailLength = v }
        if let v = keys.maxTailLength { maxTailLength = v }
        if let v = keys.guidanceScale { guidanceScale = Float(v) }
        if let v = keys.alphaChannels { alphaChannels = v }
        if let v = keys.alphaScale { alphaScale = Float(v) }
        if let v = keys.alphaMaxPeriod { alphaMaxPeriod = Float(v) }
        try validate(file: file)
    }

    /// The maturity α_j of tail slots j = 0 (front) … K − 1 (newest): α_max·(K−1−j)/(K−1), or α_max
    /// when K = 1 (spec §2.1). Decoding and training (spec §3.2) both take the profile from here.
    public static func maturityProfile(tailLength k: Int, maturityMax alphaMax: Float) -> [Float] {
        (0..<max(k, 0)).map { j in k == 1 ? alphaMax : alphaMax * Float(k - 1 - j) / Float(k - 1) }
    }

    /// Reads `<directory>/config.json`.
    public static func load(directory: URL) throws -> TokenMaturationConfig {
        let (data, _, path) = try ModelFolder.configData(directory)
        return try TokenMaturationConfig(data: data, file: path)
    }

    /// Checks every value is usable; errors name `file` and the key.
    public func validate(file: String) throws {
        func fail(_ key: String, _ reason: String) -> ModelError { .invalidConfig(file: file, key: key, reason: reason) }
        let (vocabKey, hiddenKey, positionsKey) = backbone == .llama
            ? ("vocab_size", "hidden_size", "max_position_embeddings") : ("vocab_size", "n_embd", "n_positions")
        if vocabSize <= 0 { throw fail(vocabKey, "must be positive, got \(vocabSize)") }
        if hiddenSize <= 0 { throw fail(hiddenKey, "must be positive, got \(hiddenSize)") }
        if maxTailLength < 1 { throw fail("max_tail_length", "must be at least 1, got \(maxTailLength)") }
        if tailLength < 1 || tailLength > maxTailLength {
            throw fail("tail_length", "must be in 1…\(maxTailLength) (max_tail_length), got \(tailLength)")
        }
        if maxPositions < 2 { throw fail(positionsKey, "must be at least 2 (one committed position and one tail slot), got \(maxPositions)") }
        for id in eosTokenIDs where id < 0 || id >= vocabSize {
            throw fail("eos_token_id", "\(id) is outside the vocabulary (size \(vocabSize))")
        }
        if let r = embeddingRadius, !(r.isFinite && r > 0) { throw fail("embedding_radius", "must be a positive number, got \(r)") }
        if !(maturityMax >= 0 && maturityMax <= 1) { throw fail("maturity_max", "must be in [0, 1], got \(maturityMax)") }
        if !(maturationRate.isFinite && maturationRate >= 0) { throw fail("maturation_rate", "must be a finite number ≥ 0, got \(maturationRate)") }
        if !(embryoScale.isFinite && embryoScale >= 0) { throw fail("embryo_scale", "must be a finite number ≥ 0, got \(embryoScale)") }
        if !(guidanceScale.isFinite && guidanceScale >= 0) { throw fail("guidance_scale", "must be a finite number ≥ 0, got \(guidanceScale)") }
        if alphaChannels < 2 || alphaChannels % 2 != 0 { throw fail("alpha_embedding_channels", "must be an even number ≥ 2, got \(alphaChannels)") }
        if !(alphaScale.isFinite && alphaScale > 0) { throw fail("alpha_embedding_scale", "must be a positive number, got \(alphaScale)") }
        if !(alphaMaxPeriod.isFinite && alphaMaxPeriod > 1) { throw fail("alpha_embedding_max_period", "must be a number > 1, got \(alphaMaxPeriod)") }
    }

    /// The `config.json` contents: the backbone's keys, then the TM keys (all written, defaults
    /// included, so a folder states every value it runs with).
    public func jsonObject() throws -> [String: Any] {
        var object: [String: Any]
        switch backbone {
        case .llama:
            guard let llama else { throw ModelError.invalidConfig(file: "config", key: "backbone", reason: "llama backbone without its sizes") }
            let encoder = JSONEncoder()
            object = (try JSONSerialization.jsonObject(with: try encoder.encode(llama)) as? [String: Any]) ?? [:]
        case .gpt2:
            guard let gpt2 else { throw ModelError.invalidConfig(file: "config", key: "backbone", reason: "gpt2 backbone without its sizes") }
            object = (try JSONSerialization.jsonObject(with: try JSONEncoder().encode(gpt2)) as? [String: Any]) ?? [:]
        }
        object["model_type"] = Self.modelType
        object["architectures"] = [Self.architecture]
        object["backbone"] = backbone.rawValue
        if let embeddingRadius { object["embedding_radius"] = Double(embeddingRadius) }
        object["maturity_max"] = Double(maturityMax)
        object["maturation_rate"] = Double(maturationRate)
        object["embryo_scale"] = Double(embryoScale)
        object["prediction_alignment"] = alignment.rawValue
        object["tail_length"] = tailLength
        object["max_tail_length"] = maxTailLength
        object["guidance_scale"] = Double(guidanceScale)
        object["alpha_embedding_channels"] = alphaChannels
        object["alpha_embedding_scale"] = Double(alphaScale)
        object["alpha_embedding_max_period"] = Double(alphaMaxPeriod)
        return object
    }

    /// Whether a parsed `config.json` describes a TM model (`model_type` or `architectures`).
    public static func describes(_ json: [String: Any]) -> Bool {
        (json["model_type"] as? String) == modelType || (json["architectures"] as? [String] ?? []).contains(architecture)
    }

    /// The TM keys, typed so that a wrong type is an error naming the key.
    struct Keys: Decodable {
        var modelType: String?
        var backbone: String?
        var embeddingRadius: Double?
        var maturityMax: Double?
        var maturationRate: Double?
        var embryoScale: Double?
        var predictionAlignment: String?
        var tailLength: Int?
        var maxTailLength: Int?
        var guidanceScale: Double?
        var alphaChannels: Int?
        var alphaScale: Double?
        var alphaMaxPeriod: Double?
        enum CodingKeys: String, CodingKey {
            case modelType = "model_type", backbone, embeddingRadius = "embedding_radius", maturityMax = "maturity_max"
            case maturationRate = "maturation_rate", embryoScale = "embryo_scale", predictionAlignment = "prediction_alignment"
            case tailLength = "tail_length", maxTailLength = "max_tail_length", guidanceScale = "guidance_scale"
            case alphaChannels = "alpha_embedding_channels", alphaScale = "alpha_embedding_scale"
            case alphaMaxPeriod = "alpha_embedding_max_period"
        }
    }

    /// `eos_token_id` as one number or a list.
    struct TokenIDs: Decodable {
        var ids: [Int]
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let one = try? c.decode(Int.self) { ids = [one] } else { ids = try c.decode([Int].self) }
        }
    }
}
