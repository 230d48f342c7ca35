import CALMKernels
import CALMTensor
import Foundation

/// Sizes of a Llama decoder stack.
public struct BackboneShape: Sendable, Equatable {
    public var hidden: Int, intermediate: Int, layers: Int, heads: Int, kvHeads: Int
    public var ropeTheta: Double, rmsNormEps: Double
    public init(hidden: Int, intermediate: Int, layers: Int, heads: Int, kvHeads: Int, ropeTheta: Double, rmsNormEps: Double) {
        self.hidden = hidden; self.intermediate = intermediate; self.layers = layers; self.heads = heads
        self.kvHeads = kvHeads; self.ropeTheta = ropeTheta; self.rmsNormEps = rmsNormEps
    }
}

extension CALMConfig {
    /// The backbone's sizes.
    public var backboneShape: BackboneShape {
        BackboneShape(hidden: hiddenSize, intermediate: intermediateSize, layers: numHiddenLayers, heads: numAttentionHeads,
                      kvHeads: kvHeads, ropeTheta: ropeTheta, rmsNormEps: rmsNormEps)
    }
}

/// The Llama decoder stack (transformers 4.43 `LlamaModel` fed with `inputs_embeds`): pre-norm
/// attention with half-split RoPE over chunk positions and grouped-query heads, SwiGLU MLP, final
/// RMSNorm. Works on a batch of sequences with ragged cache lengths: every weight matrix is applied
/// once to all new rows of all sequences.
public final class LlamaBackbone: VectorBackbone, Sendable {
    struct Layer {
        let inputNorm: RMSNorm
        let qkv: QKVProjection
        let o: Linear
        let mlp: ResidualGatedMLP
    }

    public let hidden: Int
    public let heads: Int
    public let kvHeads: Int
    public let headDim: Int
    let layers: [Layer]
    let finalNorm: RMSNorm
    let rope: RotaryEmbedding
    let attention: BlockAttention

    /// Reads `<prefix>.layers.{l}.*` and `<prefix>.norm` (`transformer` in CALM checkpoints,
    /// `model` in Hugging Face `LlamaForCausalLM` ones).
    init(shape: BackboneShape, reader: WeightReader, prefix: String) throws {
        hidden = shape.hidden
        heads = shape.heads
        kvHeads = shape.kvHeads
        headDim = shape.hidden / shape.heads
        let kvDim = kvHeads * headDim
        layers = try (0..<shape.layers).map { l in
            let p = "\(prefix).layers.\(l)"
            let qkv = try reader.fusedLinears(["\(p).self_attn.q_proj", "\(p).self_attn.k_proj", "\(p).self_attn.v_proj"],
                                              outs: [shape.hidden, kvDim, kvDim], in: shape.hidden)
            return Layer(
                inputNorm: try reader.rmsNorm("\(p).input_layernorm", size: shape.hidden, eps: shape.rmsNormEps),
                qkv: QKVProjection(q: qkv.parts[0], k: qkv.parts[1], v: qkv.parts[2], fused: qkv.fused),
                o: try reader.linear("\(p).self_attn.o_proj", out: shape.hidden, in: shape.hidden, bias: false),
                mlp: try ResidualGatedMLP(reader: reader, prefix: p, normName: "post_attention_layernorm",
                                          hidden: shape.hidden, intermediate: shape.intermediate,
                                          eps: shape.rmsNormEps))
        }
        finalNorm = try reader.rmsNorm("\(prefix).norm", size: shape.hidden, eps: shape.rmsNormEps)
        rope = RotaryEmbedding(headDim: headDim, theta: shape.ropeTheta)
        attention = BlockAttention(heads: heads, kvHeads: kvHeads, headDim: headDim)
    }

    /// Number of decoder layers.
    public var layerCount: Int { layers.count }

    /// KV geometry with blocks of `blockPositions` positions.
    public func kvLayout(blockPositions: Int) -> KVLayout {
        KVLayout(layers: layers.count, kvHeads: kvHeads, headDim: headDim, blockPositions: blockPositions)
    }

    /// Bytes of weights one pass reads.
    public var weightBytes: Int {
        layers.reduce(0) { $0 + $1.qkv.weightBytes + $1.o.weightBytes + $1.mlp.weightBytes }
    }

    /// Rotary tables for a position (for conformance checks).
    public func ropeTables(position: Int) -> (cos: [Float], sin: [Float]) { rope.tables(position: position) }

    /// RoPE backbones take positions inside attention: nothing to add to the inputs.
    public func addPositionEmbeddings(_ x: inout [Float], slices: [BackboneSlice]) {}

    /// Runs the stack over `inputs` (Σ rows × hidden, sequences' rows in `slices` order), writing
    /// each sequence's new keys/values at `cache.count…` and keeping its first `persist` rows, and
    /// returns the final-norm hidden states. Every cache must already have room
    /// (`KVCache.reserve`) for its rows.
    public func forward(_ inputs: [Float], slices: [BackboneSlice], pool: ComputePool,
                        record: ActivationRecorder? = nil) -> [Float] {
        let rows = slices.reduce(0) { $0 + $1.rows }
        precondition(inputs.count == rows * hidden)
        for s in slices { precondition(s.cache.capacity >= s.cache.count + s.rows, "KV cache not reserved") }
        let kvDim = kvHeads * headDim
        var x = inputs
        var q = [Float](repeating: 0, count: rows * hidden)
        var k = [Float](repeating: 0, count: rows * kvDim)
        var v = [Float](repeating: 0, count: rows * kvDim)
        var attn = [Float](repeating: 0, count: rows * hidden)
        var qkv: [Float] = []
        // Rotary tables per row (positions are chunk indices continuing each sequence's cache).
        var cosTables = [[Float]](), sinTables = [[Float]]()
        cosTables.reserveCapacity(rows); sinTables.reserveCapacity(rows)
        for s in slices {
            for i in 0..<s.rows {
                let t = rope.tables(position: s.firstPosition + i)
                cosTables.append(t.cos); sinTables.append(t.sin)
            }
        }
        for (l, layer) in layers.enumerated() {
            record?("layer\(l)_input", x)
            let normed = layer.inputNorm(x, rows: rows)
            layer.qkv.apply(normed, rows: rows, q: &q, k: &k, v: &v, scratch: &qkv, pool: pool)
            // RoPE on each row's queries and keys, then store keys/values into each sequence's cache.
            q.withUnsafeMutableBufferPointer { qp in
                k.withUnsafeMutableBufferPointer { kp in
                    for row in 0..<rows {
                        cosTables[row].withUnsafeBufferPointer { c in
                            sinTables[row].withUnsafeBufferPointer { sn in
                                calm_rope_half(qp.baseAddress! + row * hidden, Int32(heads), Int32(headDim), c.baseAddress!, sn.baseAddress!)
                                calm_rope_half(kp.baseAddress! + row * kvDim, Int32(kvHeads), Int32(headDim), c.baseAddress!, sn.baseAddress!)
                            }
                        }
                    }
                }
            }
            k.withUnsafeBufferPointer { kp in
                v.withUnsafeBufferPointer { attention.store(layer: l, keys: kp.baseAddress!, values: $0.baseAddress!, slices: slices) }
            }
            attention.run(layer: l, q: q, slices: slices, out: &attn, pool: pool)
            attn.withUnsafeBufferPointer { a in
                x.withUnsafeMutableBufferPointer { layer.o.apply(a.baseAddress!, rows: rows, into: $0.baseAddress!, accumulate: true, pool: pool) }
            }
            layer.mlp.apply(&x, rows: rows, pool: pool)
            record?("layer\(l)_output", x)
        }
        for s in slices { s.cache.count += s.persist }
        finalNorm.apply(&x, rows: rows)
        return x
    }
}
