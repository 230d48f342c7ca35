import CALMKernels
import CALMTensor
import Foundation

/// A Hugging Face `GPT2LMHeadModel`: the `GPT2Backbone` plus the LM head tied to `wte` (or
/// `lm_head.weight` when `tie_word_embeddings` is false). Runs token ids or vectors
/// (`inputs_embeds`) at any absolute positions through per-sequence KV caches; it is what the
/// GPT-2 conformance checks drive, and the engine's discrete family serves (`DiscreteLanguageModel`).
///
/// ```swift
/// let model = try GPT2CausalLM.load(directory: URL(fileURLWithPath: "gpt2-medium"))
/// let logits = try model.logits(ids: [464, 2068, 7586])   // 3 × 50257
/// ```
public final class GPT2CausalLM: DiscreteLanguageModel, Sendable {
    /// The folder's config.
    public let config: GPT2Config
    /// The decoder stack, with `wte` and `wpe`.
    public let backbone: GPT2Backbone
    /// The vocabulary projection: `wte` packed as a matrix (tied), or `lm_head`.
    public let lmHead: Linear
    /// Whether `lmHead` is `wte`.
    public let tiedEmbeddings: Bool
    /// The worker pool the kernels use.
    public let pool: ComputePool
    /// Folder (or file) the model was loaded from.
    public let directory: URL

    /// Loads a GPT-2 folder (`config.json` + `model.safetensors`, a sharded index or
    /// `pytorch_model.bin`) in either key layout. Config problems are `ModelError.invalidConfig`
    /// naming the file and key; weight problems name the weight file and key.
    public static func load(directory: URL, options: LoadOptions = LoadOptions()) throws -> GPT2CausalLM {
        let config = try GPT2Config.load(directory: directory)
        return try GPT2CausalLM(config: config, source: try ModelFolder.openWeights(directory), options: options, directory: directory)
    }

    /// Builds the model from any tensor source holding GPT-2 names (with or without `transformer.`).
    public init(config: GPT2Config, source: any TensorSource, options: LoadOptions = LoadOptions(), directory: URL? = nil) throws {
        try config.validate(file: source.url.path)
        let prefix = try GPT2Backbone.weightPrefix(of: source)
        let reader = WeightReader(source: source, prefix: prefix, storageDType: options.weightDType)
        self.config = config
        backbone = try GPT2Backbone(config: config, reader: reader)
        let v = config.vocabSize, e = config.nEmbd
        if config.tieWordEmbeddings {
            lmHead = try reader.linear("wte", out: v, in: e, bias: false)
            tiedEmbeddings = true
        } else {
            // The head is a plain Linear (vocab × n_embd) outside the `transformer.` prefix.
            let headReader = WeightReader(source: source, prefix: "", storageDType: options.weightDType)
            lmHead = try headReader.linear("lm_head", out: v, in: e, bias: false)
            tiedEmbeddings = false
        }
        pool = options.pool
        self.directory = directory ?? source.url
    }

    /// Vocabulary size.
    public var vocabSize: Int { config.vocabSize }
    /// Context length (`n_positions`).
    public var maxPositions: Int { config.nPositions }

    /// KV geometry with blocks of `blockPositions` tokens.
    public func kvLayout(blockPositions: Int = 16) -> KVLayout { backbone.kvLayout(blockPositions: blockPositions) }

    public var familyName: String { "gpt2" }
    public var hiddenSize: Int { config.nEmbd }
    /// `eos_token_id` (GPT-2: `<|endoftext|>` = 50256).
    public var endTokenIDs: [Int] { config.eosTokenID.map { [$0] } ?? [] }

    /// Bytes of weights one decode step reads (the stack and the vocabulary projection).
    public var decodeStepWeightBytes: Int { backbone.weightBytes + lmHead.weightBytes }

    /// Runs several sequences at once: `tokens[i]` is appended to `caches[i]` at positions
    /// `caches[i].count…`. Returns the `ln_f` hidden state of every new position (Σ counts ×
    /// n_embd), in order. Ids outside the vocabulary and positions past `n_positions` are typed
    /// errors.
    public func forward(tokens: [[Int]], caches: [KVCache], record: ActivationRecorder? = nil) throws -> [Float] {
        let (ids, slices) = try TokenBatch.prepare(tokens: tokens, caches: caches, vocabSize: config.vocabSize)
        try checkPositions(slices)
        var inputs = backbone.wte.lookup(ids)
        record?("inputs_embeds", inputs)
        backbone.addPositionEmbeddings(&inputs, slices: slices)
        let hidden = backbone.forward(inputs, slices: slices, pool: pool, record: record)
        record?("last_hidden_state", hidden)
        return hidden
    }

    /// Runs vectors (`inputs_embeds`, Σ rows × n_embd in `slices` order) through the model:
    /// each slice's rows sit at `firstPosition…` (which need not be the cache length), and only
    /// its first `persist` rows stay in the cache. Reserves the caches; positions past
    /// `n_positions` and a wrong input size are typed errors. Returns the `ln_f` output.
    public func forward(inputsEmbeds: [Float], slices: [BackboneSlice], record: ActivationRecorder? = nil) throws -> [Float] {
        let rows = slices.reduce(0) { $0 + $1.rows }
        guard inputsEmbeds.count == rows * config.nEmbd else {
            throw ModelError.invalidParameter(name: "inputsEmbeds", reason: "\(inputsEmbeds.count) floats for \(rows) rows of \(config.nEmbd)")
        }
        try checkPositions(slices)
        for s in slices { try s.cache.prepare(rows: s.rows) }
        var inputs = inputsEmbeds
        backbone.addPositionEmbeddings(&inputs, slices: slices)
        let hidden = backbone.forward(inputs, slices: slices, pool: pool, record: record)
        record?("last_hidden_state", hidden)
        return hidden
    }

    /// Vocabulary logits (rows × V) of `rows` hidden states.
    public func logits(_ hidden: [Float], rows: Int) -> [Float] {
        lmHead(hidden, rows: rows, pool: pool)
    }

    /// Logits (ids.count × V) of one sequence run from position 0 on a fresh cache, as
    /// `GPT2LMHeadModel(input_ids).logits` gives them.
    public func logits(ids: [Int]) throws -> [Float] {
        let cache = makeCache()
        defer { cache.release() }
        let hidden = try forward(tokens: [ids], caches: [cache])
        return logits(hidden, rows: ids.count)
    }

    private func checkPositions(_ slices: [BackboneSlice]) throws {
        for s in slices where s.firstPosition < 0 || s.firstPosition + s.rows > config.nPositions {
            throw ModelError.invalidPrompt(reason: "positions \(s.firstPosition)..<\(s.firstPosition + s.rows) are outside the model's \(config.nPositions) positions (n_positions)")
        }
    }
}
