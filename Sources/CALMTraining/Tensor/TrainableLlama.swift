import CALMModel
import CALMTensor
import Foundation

/// Sizes of the discrete baseline, a standard Llama causal LM, written as a Hugging Face
/// `LlamaForCausalLM` `config.json` (`model_type` "llama").
public struct LlamaBaselineConfig: Sendable, Equatable, Codable {
    public var vocabSize: Int = 32000
    public var hiddenSize: Int = 512
    public var intermediateSize: Int = 1365
    public var numHiddenLayers: Int = 8
    public var numAttentionHeads: Int = 8
    public var numKeyValueHeads: Int = 8
    public var rmsNormEps: Double = 1e-6
    public var ropeTheta: Double = 10000
    public var maxPositionEmbeddings: Int = 2048
    public var hiddenAct: String = "silu"
    public var tieWordEmbeddings: Bool = false
    public var attentionBias: Bool = false
    public var mlpBias: Bool = false
    public var initializerRange: Double = 0.02
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    public var padTokenID: Int?
    public var modelType: String = "llama"
    public var torchDType: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act"
        case tieWordEmbeddings = "tie_word_embeddings", attentionBias = "attention_bias", mlpBias = "mlp_bias"
        case initializerRange = "initializer_range"
        case bosTokenID = "bos_token_id", eosTokenID = "eos_token_id", padTokenID = "pad_token_id"
        case modelType = "model_type", torchDType = "torch_dtype"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = LlamaBaselineConfig()
        d.vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        d.hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        d.intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        d.numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        d.numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        d.numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? d.numAttentionHeads
        d.rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? d.rmsNormEps
        d.ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? d.ropeTheta
        d.maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
        d.hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        d.tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? d.tieWordEmbeddings
        d.attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false
        d.mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? false
        d.initializerRange = try c.decodeIfPresent(Double.self, forKey: .initializerRange) ?? d.initializerRange
        d.bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        d.eosTokenID = try? c.decodeIfPresent(Int.self, forKey: .eosTokenID)
        d.padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID)
        d.modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? d.modelType
        d.torchDType = try c.decodeIfPresent(String.self, forKey: .torchDType)
        self = d
    }

    /// The same decoder stack expressed as a CALM backbone config (shared training code).
    var backboneConfig: CALMConfig { causalLMConfig.trainingBackboneConfig }

    /// The engine's view of the same `config.json` (names and shapes of the checkpoint come
    /// from `RandomModelWriter.llamaTensors`, shared with random model folders).
    var causalLMConfig: LlamaCausalLMConfig {
        var c = LlamaCausalLMConfig()
        c.vocabSize = vocabSize; c.hiddenSize = hiddenSize; c.intermediateSize = intermediateSize
        c.numHiddenLayers = numHiddenLayers; c.numAttentionHeads = numAttentionHeads; c.numKeyValueHeads = numKeyValueHeads
        c.rmsNormEps = rmsNormEps; c.ropeTheta = ropeTheta; c.maxPositionEmbeddings = maxPositionEmbeddings
        c.hiddenAct = hiddenAct; c.tieWordEmbeddings = tieWordEmbeddings; c.attentionBias = attentionBias; c.mlpBias = mlpBias
        c.bosTokenID = bosTokenID; c.eosTokenIDs = eosTokenID.map { [$0] } ?? []; c.padTokenID = padTokenID
        c.modelType = modelType; c.torchDType = torchDType
        return c
    }

    public func validate() throws {
        guard vocabSize > 0, hiddenSize > 0, intermediateSize > 0, numHiddenLayers > 0, numAttentionHeads > 0,
              numKeyValueHeads > 0, hiddenSize % numAttentionHeads == 0, numAttentionHeads % numKeyValueHeads == 0,
              (hiddenSize / numAttentionHeads) % 2 == 0 else {
            throw TrainingError.invalidInput("baseline config: sizes must be positive, hidden divisible by heads (even head size), heads by kv heads")
        }
        guard !tieWordEmbeddings else { throw TrainingError.invalidInput("baseline config: tie_word_embeddings is not supported for training") }
    }
}

extension LlamaCausalLMConfig {
    /// The decoder stack as the training `BackboneModule`'s config (sizes, RMSNorm ε, RoPE θ): the
    /// baseline and Token Maturation training both build their Llama stack from this.
    var trainingBackboneConfig: CALMConfig {
        var c = CALMConfig()
        c.vocabSize = vocabSize; c.hiddenSize = hiddenSize; c.intermediateSize = intermediateSize
        c.numHiddenLayers = numHiddenLayers; c.numAttentionHeads = numAttentionHeads; c.numKeyValueHeads = kvHeads
        c.rmsNormEps = rmsNormEps; c.ropeTheta = ropeTheta; c.maxPositionEmbeddings = maxPositionEmbeddings
        return c
    }
}

/// A discrete Llama causal LM (the paper's Transformer baseline) in the Hugging Face
/// `LlamaForCausalLM` layout: `model.embed_tokens.weight`, `model.layers.*`, `model.norm.weight`,
/// `lm_head.weight`.
public final class TrainableLlama: Sendable {
    public let config: LlamaBaselineConfig
    public let parameters: ParameterSet

    public init(config: LlamaBaselineConfig, parameters: ParameterSet) {
        self.config = config
        self.parameters = parameters
    }

    /// Names and shapes in the Hugging Face layout (the same list random Llama folders are
    /// written with). Training keeps `lm_head` untied (`validate` rejects tied embeddings).
    public static func parameterShapes(_ c: LlamaBaselineConfig) -> [(String, [Int])] {
        RandomModelWriter.llamaTensors(c.causalLMConfig)
    }

    public static func initialized(config: LlamaBaselineConfig, seed: UInt64 = 0, std: Float? = nil) -> TrainableLlama {
        TrainableLlama(config: config, parameters: ModelInit.parameters(parameterShapes(config), seed: seed,
                                                                        std: std ?? Float(config.initializerRange)))
    }

    /// Parameters in matrices that every token passes through (all but the embedding table), the
    /// usual "non-embedding + head" count for the 6·N·D compute estimate.
    public var matmulParameterCount: Int {
        parameters.parameters.filter { $0.shape.count == 2 && $0.name != "model.embed_tokens.weight" }.reduce(0) { $0 + $1.count }
    }

    public static func load(directory: URL) throws -> TrainableLlama {
        let (data, _) = try ParameterLoader.readConfig(directory)
        let config = try JSONDecoder().decode(LlamaBaselineConfig.self, from: data)
        try config.validate()
        let source = try CheckpointLoader.open(directory: directory)
        let set = try ParameterLoader.load(parameterShapes(config), source: source, prefix: "", aliases: { [$0] }, requiresGrad: true)
        return TrainableLlama(config: config, parameters: set)
    }

    /// Writes `config.json` (architectures ["LlamaForCausalLM"], model_type "llama") and `model.safetensors`.
    public func save(to directory: URL, dtype: DType = .f32) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        try ParameterLoader.add(parameters, prefix: "", to: &writer, dtype: dtype)
        try writer.write(to: directory.appendingPathComponent("model.safetensors"))
        var c = config
        c.torchDType = dtype.torchName
        try ParameterLoader.writeConfig(c, architecture: "LlamaForCausalLM", to: directory.appendingPathComponent("config.json"))
    }
}

/// Next-token cross-entropy of the baseline (Hugging Face `LlamaForCausalLM` with labels =
/// input_ids: position i predicts token i+1, mean over the B·(T−1) predictions).
public enum CausalLMTrainingStep {
    public struct Result: Sendable {
        public var loss: Float
        public var predictions: Int
        public var tokens: Int
    }

    /// With `gradients: false` only the loss is computed (held-out evaluation); the parameters'
    /// gradients are left as they are.
    public static func lossAndGradients(model: TrainableLlama, inputIDs: [[Int]], accumulate: Bool = false,
                                        gradients: Bool = true, pool: ComputePool? = .shared) throws -> Result {
        let c = model.config
        let b = inputIDs.count
        guard b > 0, let width = inputIDs.first?.count, width >= 2, inputIDs.allSatisfy({ $0.count == width }) else {
            throw TrainingError.invalidInput("input rows must have equal lengths of at least 2 tokens")
        }
        if let bad = inputIDs.joined().first(where: { $0 < 0 || $0 >= c.vocabSize }) {
            throw TrainingError.invalidInput("token id \(bad) outside the vocabulary (\(c.vocabSize))")
        }
        if gradients && !accumulate { model.parameters.zeroGrad() }
        let t = width - 1, rows = b * t, h = c.hiddenSize, v = c.vocabSize
        let inputs = inputIDs.flatMap { $0[0..<t] }
        let labels = inputIDs.flatMap { $0[1...] }
        let p = model.parameters
        let embed = EmbeddingOp(table: p["model.embed_tokens.weight"])
        let backbone = BackboneModule(config: c.backboneConfig, parameters: p, prefix: "model")
        let head = p["lm_head.weight"]
        let x = embed.forward(inputs)
        let (last, saved) = backbone.forward(x, sequences: b, length: t, pool: pool)
        // Vocabulary projection and fused cross-entropy, in row blocks so at most `blockRows`·V
        // logits exist at once.
        let blockRows = max(1, min(rows, (1 << 22) / max(v, 1)))
        var dLast = [Float](repeating: 0, count: rows * h)
        var logits = [Float](repeating: 0, count: blockRows * v)
        var total = 0.0
        var r0 = 0
        while r0 < rows {
            let n = min(blockRows, rows - r0)
            let blockLabels = Array(labels[r0..<(r0 + n)])
            last.withUnsafeBufferPointer { lp in head.value.withUnsafeBufferPointer { wp in logits.withUnsafeMutableBufferPointer { op in
                Matmul.xWt(lp.baseAddress! + r0 * h, rows: n, w: wp.baseAddress!, out: v, in: h, into: op.baseAddress!, pool: pool)
            } } }
            var rowLoss = [Float](repeating: 0, count: n)
            let l32 = blockLabels.map { Int32($0) }
            logits.withUnsafeMutableBufferPointer { op in rowLoss.withUnsafeMutableBufferPointer { rp in
                calm_train_softmax_xent_shim(pool, op.baseAddress!, l32, n, v, 1 / Float(rows), rp.baseAddress!)
            } }
            for l in rowLoss { total += Double(l) }
            defer { r0 += n }
            guard gradients else { continue }
            logits.withUnsafeBufferPointer { dp in last.withUnsafeBufferPointer { lp in
                head.grad.withUnsafeMutableBufferPointer { gp in
                    Matmul.dyTx(dp.baseAddress!, x: lp.baseAddress! + r0 * h, rows: n, out: v, in: h, into: gp.baseAddress!, pool: pool)
                }
                head.value.withUnsafeBufferPointer { wp in dLast.withUnsafeMutableBufferPointer { xp in
                    Matmul.dyW(dp.baseAddress!, rows: n, w: wp.baseAddress!, out: v, in: h, into: xp.baseAddress! + r0 * h, pool: pool)
                } }
            } }
        }
        if gradients {
            let dx = backbone.backward(dLast, saved: saved, pool: pool)
            embed.backward(dx, ids: inputs)
        }
        return Result(loss: Float(total / Double(rows)), predictions: rows, tokens: b * width)
    }

    /// Mean next-token cross-entropy of the first `batches` batches of `rows` blocks of `data` (the
    /// same blocks at every call, unshuffled, so evaluations during a run compare), without gradients.
    public static func evaluate(model: TrainableLlama, data: TokenData, batches: Int, rows: Int, length: Int,
                                pool: ComputePool? = .shared) throws -> Result {
        let available = max(1, data.blockCount(length: length) / max(rows, 1))
        let n = max(1, min(batches, available))
        var total = Result(loss: 0, predictions: 0, tokens: 0)
        for i in 0..<n {
            let r = try lossAndGradients(model: model, inputIDs: try data.batch(step: i, rows: rows, length: length),
                                         gradients: false, pool: pool)
            total.loss += r.loss / Float(n); total.predictions += r.predictions; total.tokens += r.tokens
        }
        return total
    }
}

extension CausalLMTrainingStep.Result {
    /// `held-out cross-entropy 4.1234 (perplexity 61.8; 8188 predictions)`
    public var heldOutLine: String {
        String(format: "held-out cross-entropy %.4f (perplexity %.1f; %d predictions)", loss, exp(Double(loss)), predictions)
    }
}
