import CALMKernels
import CALMTensor
import Foundation

/// The GPT-2 decoder stack (transformers 4.43 `GPT2Model` fed with `inputs_embeds`): learned
/// absolute position embeddings added to the input (`addPositionEmbeddings`), then per layer
/// pre-LayerNorm multi-head attention with biases (`ln_1`, fused `c_attn` split into q, k, v,
/// `c_proj`) and a pre-LayerNorm GELU-tanh MLP (`ln_2`, `c_fc`, `gelu_new`, `c_proj`), and a final
/// LayerNorm `ln_f`. The backbone of Token Maturation (GPT-2 Medium).
///
/// Reads both checkpoint layouts: `save_pretrained` (`transformer.h.N.*`, `transformer.wte`, …) and
/// the original Hub one (no prefix; the `h.N.attn.bias` / `h.N.attn.masked_bias` mask buffers are
/// ignored). `Conv1D` weights, stored (in, out), are transposed into packed `Linear`s at load time.
/// Works on a batch of sequences with ragged cache lengths: every weight matrix is applied once
/// to all new rows of all sequences.
///
/// ```swift
/// let config = try GPT2Config.load(directory: url)
/// let backbone = try GPT2Backbone(config: config, source: try CheckpointLoader.open(directory: url))
/// var x = backbone.wte.lookup(ids)                           // or any vectors (inputs_embeds)
/// let cache = KVCache(layout: backbone.kvLayout(blockPositions: 16), source: HeapKVBlockSource(layout: backbone.kvLayout(blockPositions: 16)))
/// try cache.prepare(rows: ids.count)
/// let slice = BackboneSlice(cache: cache, rows: ids.count)
/// backbone.addPositionEmbeddings(&x, slices: [slice])
/// let hidden = backbone.forward(x, slices: [slice], pool: .shared)   // ln_f output
/// ```
public final class GPT2Backbone: VectorBackbone, Sendable {
    struct Layer {
        let ln1: LayerNorm
        let qkv: QKVProjection
        let attnProj: Linear
        let ln2: LayerNorm
        let fc: Linear
        let mlpProj: Linear
    }

    /// The config the weights were read with.
    public let config: GPT2Config
    /// Model width (`n_embd`).
    public let hidden: Int
    /// Attention heads.
    public let heads: Int
    /// Width of one head.
    public let headDim: Int
    /// Learned absolute positions (`n_positions`): positions `0 ..< maxPositions` exist.
    public let maxPositions: Int
    /// The token embedding `wte` (vocab × hidden), read in place from the checkpoint in its own
    /// dtype: GPT-2's input embedding, its tied LM head, and Token Maturation's embedding matrix.
    public let wte: EmbeddingTable
    /// The position embedding `wpe` as f32, row-major `maxPositions × hidden`.
    public let wpe: [Float]
    /// Key prefix the weights were found under: "transformer." (`save_pretrained`) or "" (Hub).
    public let weightPrefix: String
    let layers: [Layer]
    let finalNorm: LayerNorm
    let attention: BlockAttention

    /// The key prefix of a GPT-2 checkpoint: "transformer." when `transformer.wte.weight` is
    /// present (`save_pretrained` of `GPT2LMHeadModel`), "" when `wte.weight` is (Hub / `GPT2Model`).
    static func weightPrefix(of source: any TensorSource) throws -> String {
        if source.info("transformer.wte.weight") != nil { return "transformer." }
        if source.info("wte.weight") != nil { return "" }
        throw ModelError.missingWeight(file: source.url.lastPathComponent, keys: ["transformer.wte.weight", "wte.weight"])
    }

    /// Reads the stack from a checkpoint in either layout. `storageDType` (f32, f16, bf16) is the
    /// packed matrices' type; nil keeps each weight's own. Missing or mis-shaped weights are
    /// `ModelError`s naming the file and key.
    public convenience init(config: GPT2Config, source: any TensorSource, storageDType: DType? = nil) throws {
        try config.validate(file: source.url.path)
        let prefix = try Self.weightPrefix(of: source)
        try self.init(config: config, reader: WeightReader(source: source, prefix: prefix, storageDType: storageDType))
    }

    init(config: GPT2Config, reader: WeightReader) throws {
        self.config = config
        let e = config.nEmbd, inner = config.innerSize, eps = Float(config.layerNormEpsilon)
        hidden = e
        heads = config.nHead
        headDim = config.headDim
        maxPositions = config.nPositions
        weightPrefix = reader.prefix
        wte = try EmbeddingTable(tensor: try reader.tensor(["wte.weight"], shape: [config.vocabSize, e]))
        wpe = try reader.floats("wpe.weight", shape: [config.nPositions, e])
        layers = try (0..<config.nLayer).map { l in
            let p = "h.\(l)"
            return Layer(
                ln1: try reader.layerNorm(["\(p).ln_1"], size: e, eps: eps),
                qkv: try reader.conv1DQKV("\(p).attn.c_attn", width: e),
                attnProj: try reader.conv1D("\(p).attn.c_proj", in: e, out: e),
                ln2: try reader.layerNorm(["\(p).ln_2"], size: e, eps: eps),
                fc: try reader.conv1D("\(p).mlp.c_fc", in: e, out: inner),
                mlpProj: try reader.conv1D("\(p).mlp.c_proj", in: inner, out: e))
        }
        finalNorm = try reader.layerNorm(["ln_f"], size: e, eps: eps)
        attention = BlockAttention(heads: heads, kvHeads: heads, headDim: headDim)
    }

    /// Number of decoder layers.
    public var layerCount: Int { layers.count }

    /// KV geometry with blocks of `blockPositions` positions (one key/value head per query head).
    public func kvLayout(blockPositions: Int) -> KVLayout {
        KVLayout(layers: layers.count, kvHeads: heads, headDim: headDim, blockPositions: blockPositions)
    }

    /// Bytes of packed weights one pass reads (the embeddings are read per row, not counted).
    public var weightBytes: Int {
        layers.reduce(0) { $0 + $1.qkv.weightBytes + $1.attnProj.weightBytes
            + $1.fc.weightBytes + $1.mlpProj.weightBytes }
    }

    /// Row `position` of `wpe` (hidden floats); `position` must be in `0 ..< maxPositions`.
    public func positionEmbedding(_ position: Int) -> ArraySlice<Float> {
        precondition(position >= 0 && position < maxPositions, "position \(position) outside 0..<\(maxPositions)")
        return wpe[(position * hidden)..<((position + 1) * hidden)]
    }

    /// Adds `wpe[firstPosition + i]` to row `i` of every slice (rows in `slices` order). Callers
    /// check positions against `maxPositions` first (`GPT2CausalLM` throws a typed error); a
    /// position outside the table is a programming error.
    public func addPositionEmbeddings(_ x: inout [Float], slices: [BackboneSlice]) {
        let rows = slices.reduce(0) { $0 + $1.rows }
        precondition(x.count == rows * hidden, "inputs have \(x.count) floats, expected \(rows) rows × \(hidden)")
        var row = 0
        x.withUnsafeMutableBufferPointer { xp in
            wpe.withUnsafeBufferPointer { pp in
                for s in slices {
                    precondition(s.firstPosition >= 0 && s.firstPosition + s.rows <= maxPositions,
                                 "positions \(s.firstPosition)..<\(s.firstPosition + s.rows) outside GPT-2's \(maxPositions)")
                    for i in 0..<s.rows {
                        let dst = xp.baseAddress! + (row + i) * hidden
                        calm_add(dst, pp.baseAddress! + (s.firstPosition + i) * hidden, dst, hidden)
                    }
                    row += s.rows
                }
            }
        }
    }

    /// Runs the stack over `inputs` (Σ rows × hidden, sequences' rows in `slices` order, position
    /// embeddings already added), writing each sequence's new keys/values at `cache.count…` and
    /// keeping its first `persist` rows, and returns the `ln_f` output (same shape). Every cache
    /// must already have room (`KVCache.reserve`) for its rows. `record` receives
    /// `layer{l}_input` (the first is the embedding sum) and `layer{l}_output` (before `ln_f`).
    public func forward(_ inputs: [Float], slices: [BackboneSlice], pool: ComputePool,
                        record: ActivationRecorder? = nil) -> [Float] {
        let rows = slices.reduce(0) { $0 + $1.rows }
        precondition(inputs.count == rows * hidden, "inputs have \(inputs.count) floats, expected \(rows) rows × \(hidden)")
        for s in slices { precondition(s.cache.capacity >= s.cache.count + s.rows, "KV cache not reserved") }
        guard rows > 0 else { return [] }
        let inner = config.innerSize
        var x = inputs
        var q = [Float](repeating: 0, count: rows * hidden)
        var k = [Float](repeating: 0, count: rows * hidden)
        var v = [Float](repeating: 0, count: rows * hidden)
        var attn = [Float](repeating: 0, count: rows * hidden)
        var mlp = [Float](repeating: 0, count: rows * inner)
        var qkv: [Float] = []
        for (l, layer) in layers.enumerated() {
            record?("layer\(l)_input", x)
            let normed = layer.ln1(x, rows: rows)
            layer.qkv.apply(normed, rows: rows, q: &q, k: &k, v: &v, scratch: &qkv, pool: pool)
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { attention.store(layer: l, keys: kp.baseAddress!, values: $0.baseAddress!, slices: slices) }
            }
            attention.run(layer: l, q: q, slices: slices, out: &attn, pool: pool)
            attn.withUnsafeBufferPointer { a in
                x.withUnsafeMutableBufferPointer { layer.attnProj.apply(a.baseAddress!, rows: rows, into: $0.baseAddress!, accumulate: true, pool: pool) }
            }
            let normed2 = layer.ln2(x, rows: rows)
            normed2.withUnsafeBufferPointer { n in
                mlp.withUnsafeMutableBufferPointer { layer.fc.apply(n.baseAddress!, rows: rows, into: $0.baseAddress!, pool: pool) }
            }
            Activation.geluTanh(&mlp)
            mlp.withUnsafeBufferPointer { m in
                x.withUnsafeMutableBufferPointer { layer.mlpProj.apply(m.baseAddress!, rows: rows, into: $0.baseAddress!, accumulate: true, pool: pool) }
            }
            record?("layer\(l)_output", x)
        }
        for s in slices { s.cache.count += s.persist }
        finalNorm.apply(&x, rows: rows)
        return x
    }
}
