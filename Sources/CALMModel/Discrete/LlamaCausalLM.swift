import CALMKernels
import CALMTensor
import Foundation

/// A discrete Llama causal language model in the Hugging Face layout (`LlamaForCausalLM`:
/// `model.embed_tokens`, `model.layers.*`, `model.norm`, `lm_head`, or the embedding matrix when
/// `tie_word_embeddings` is set): the paper's Transformer baseline, run on the same backbone code
/// as CALM with one position per token.
///
/// ```swift
/// let model = try LlamaCausalLM.load(directory: URL(fileURLWithPath: "baseline"))
/// let result = try model.generate(promptIDs: [1, 2, 3], maxTokens: 16, temperature: 0.8, seed: 7) { _ in true }
/// ```
public final class LlamaCausalLM: DiscreteLanguageModel, Sendable {
    public let config: LlamaCausalLMConfig
    public let embedding: EmbeddingTable
    public let backbone: LlamaBackbone
    /// The vocabulary projection (`lm_head`, or the tied embedding matrix).
    public let lmHead: Linear
    /// Whether `lmHead` is the embedding matrix.
    public let tiedEmbeddings: Bool
    public let pool: ComputePool
    public let directory: URL

    /// Loads a Hugging Face Llama folder (`config.json` + `model.safetensors`, a sharded index or
    /// `pytorch_model.bin`).
    public static func load(directory: URL, options: LoadOptions = LoadOptions()) throws -> LlamaCausalLM {
        let config = try LlamaCausalLMConfig.load(directory: directory)
        return try LlamaCausalLM(config: config, source: try ModelFolder.openWeights(directory), options: options, directory: directory)
    }

    /// Builds the model from any tensor source holding Hugging Face names.
    public init(config: LlamaCausalLMConfig, source: any TensorSource, options: LoadOptions = LoadOptions(),
                directory: URL? = nil) throws {
        try config.validate(file: source.url.path)
        let reader = WeightReader(source: source, prefix: "", storageDType: options.weightDType)
        let v = config.vocabSize, h = config.hiddenSize
        self.config = config
        embedding = try EmbeddingTable(tensor: try reader.tensor(["model.embed_tokens.weight"], shape: [v, h]))
        backbone = try LlamaBackbone(shape: config.backboneShape, reader: reader, prefix: "model")
        // Tied models may or may not store lm_head.weight (equal to the embedding); untied ones must.
        if config.tieWordEmbeddings {
            lmHead = try reader.linear("model.embed_tokens", out: v, in: h, bias: false)
            tiedEmbeddings = true
        } else {
            lmHead = try reader.linear("lm_head", out: v, in: h, bias: false)
            tiedEmbeddings = false
        }
        pool = options.pool
        self.directory = directory ?? source.url
    }

    public var vocabSize: Int { config.vocabSize }

    /// KV geometry with blocks of `blockPositions` tokens.
    public func kvLayout(blockPositions: Int = 16) -> KVLayout {
        KVLayout(layers: config.numHiddenLayers, kvHeads: config.kvHeads, headDim: config.hiddenSize / config.numAttentionHeads,
                 blockPositions: blockPositions)
    }

    public var familyName: String { "llama" }
    public var hiddenSize: Int { config.hiddenSize }
    public var maxPositions: Int { config.maxPositionEmbeddings }
    public var endTokenIDs: [Int] { config.eosTokenIDs }

    /// Bytes of weights one decode step reads.
    public var decodeStepWeightBytes: Int { backbone.weightBytes + lmHead.weightBytes }

    /// Runs the backbone for several sequences at once: `tokens[i]` is appended to `caches[i]`.
    /// Returns the final hidden state of every new position (Σ counts × hidden), in order.
    public func forward(tokens: [[Int]], caches: [KVCache], record: ActivationRecorder? = nil) throws -> [Float] {
        let (ids, slices) = try TokenBatch.prepare(tokens: tokens, caches: caches, vocabSize: config.vocabSize)
        let inputs = embedding.lookup(ids)
        record?("inputs_embeds", inputs)
        let hidden = backbone.forward(inputs, slices: slices, pool: pool, record: record)
        record?("last_hidden_state", hidden)
        return hidden
    }

    /// Vocabulary logits (rows × V) of `rows` hidden states.
    public func logits(_ hidden: [Float], rows: Int) -> [Float] {
        lmHead(hidden, rows: rows, pool: pool)
    }

    /// Logits of rows [first, first + rows) of `hidden` into `out` (rows × V floats).
    public func logits(_ hidden: [Float], first: Int, rows: Int, into out: UnsafeMutablePointer<Float>) {
        precondition((first + rows) * config.hiddenSize <= hidden.count)
        hidden.withUnsafeBufferPointer { h in
            lmHead.apply(h.baseAddress! + first * config.hiddenSize, rows: rows, into: out, pool: pool)
        }
    }

}

/// Sampling from vocabulary logits.
public enum CategoricalSampling {
    /// Draws one id from softmax(logits / T) by inversion with `uniform` in [0, 1); T = 0 is the
    /// argmax (first maximum).
    public static func sample(logits: UnsafeBufferPointer<Float>, temperature: Double, uniform: Double) -> Int {
        let n = logits.count
        if temperature == 0 { return Int(calm_argmax(logits.baseAddress!, Int32(n))) }
        let maxLogit = logits.max() ?? 0
        let inverse = 1 / temperature
        var total = 0.0
        for l in logits { total += exp(Double(l - maxLogit) * inverse) }
        let target = uniform * total
        var cumulative = 0.0
        for (i, l) in logits.enumerated() {
            cumulative += exp(Double(l - maxLogit) * inverse)
            if cumulative > target { return i }
        }
        // Rounding left the target at the very top: the last id with positive weight.
        return n - 1
    }

    /// Softmax statistics of one row at T = 1: the maximum and log Σ exp(l − max), so
    /// log p(i) = l_i − max − logSumExp.
    public static func logNormalizer(logits: UnsafeBufferPointer<Float>) -> (max: Float, logSumExp: Double) {
        let maxLogit = logits.max() ?? 0
        var total = 0.0
        for l in logits { total += exp(Double(l - maxLogit)) }
        return (maxLogit, log(total))
    }

    /// Draws one id per uniform from softmax(logits) (T = 1), sharing the normaliser: each draw
    /// is the id whose cumulative probability first exceeds its uniform.
    public static func sample(logits: UnsafeBufferPointer<Float>, uniforms: [Double], maxLogit: Float, logSumExp: Double) -> [Int] {
        let total = exp(logSumExp)
        let order = uniforms.indices.sorted { uniforms[$0] < uniforms[$1] }
        var result = [Int](repeating: logits.count - 1, count: uniforms.count)
        var next = 0
        var cumulative = 0.0
        for (i, l) in logits.enumerated() where next < order.count {
            cumulative += exp(Double(l - maxLogit))
            while next < order.count && cumulative > uniforms[order[next]] * total {
                result[order[next]] = i
                next += 1
            }
        }
        return result
    }
}
