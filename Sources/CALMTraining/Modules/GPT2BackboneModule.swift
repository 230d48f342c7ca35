import CALMModel

/// The GPT-2 decoder stack over full sequences (training: no cache), the trainable counterpart of
/// the engine's `GPT2Backbone` with the same order of operations: learned absolute positions
/// (`wpe`) added to the input by `addPositionEmbeddings` (callers that condition the summed input,
/// Token Maturation's FiLM, do so in between), then per layer pre-LayerNorm attention
/// (`ln_1`, fused `c_attn` split into q, k, v, causal softmax(q·kᵀ/√head_dim)·v, `c_proj`, residual)
/// and a pre-LayerNorm GELU-tanh MLP (`ln_2`, `c_fc`, `gelu_new`, `mlp.c_proj`, residual), then
/// `ln_f`. Every projection is a `Conv1D` (weight in × out, with bias), trained in that layout.
/// Rows are (sequence, position) row-major; positions are 0 ..< length in every sequence.
public struct GPT2BackboneModule: Sendable {
    /// One decoder block's ops.
    public struct Layer: Sendable {
        /// `ln_1` (before attention).
        public let ln1: LayerNormOp
        /// `attn.c_attn`: n_embd → 3·n_embd (q, then k, then v).
        public let qkv: LinearOp
        /// `attn.c_proj`.
        public let attnProj: LinearOp
        /// `ln_2` (before the MLP).
        public let ln2: LayerNormOp
        /// `mlp.c_fc`: n_embd → inner.
        public let fc: LinearOp
        /// `mlp.c_proj`: inner → n_embd.
        public let mlpProj: LinearOp
    }

    /// Model width (`n_embd`).
    public let hidden: Int
    /// Attention heads (one key/value head per query head).
    public let heads: Int
    /// Width of one head.
    public let headDim: Int
    /// `wpe`: row p is added to every row at position p.
    public let positions: EmbeddingOp
    /// `h.0 …`, in order.
    public let layers: [Layer]
    /// `ln_f`.
    public let finalNorm: LayerNormOp
    /// Causal multi-head attention, scale 1/√head_dim (no rotary embedding).
    public let attention: CausalAttentionOp

    /// The stack over `<prefix>.wpe.weight`, `<prefix>.h.N.*` and `<prefix>.ln_f.*` of `p` (the
    /// names and shapes of `RandomModelWriter.gpt2Tensors`).
    public init(config: GPT2Config, parameters p: ParameterSet, prefix: String = "transformer") {
        hidden = config.nEmbd
        heads = config.nHead
        headDim = config.headDim
        let eps = Float(config.layerNormEpsilon)
        func norm(_ name: String) -> LayerNormOp { LayerNormOp(weight: p["\(name).weight"], bias: p["\(name).bias"], eps: eps) }
        func conv(_ name: String) -> LinearOp { LinearOp(conv1D: p["\(name).weight"], bias: p["\(name).bias"]) }
        positions = EmbeddingOp(table: p["\(prefix).wpe.weight"])
        layers = (0..<config.nLayer).map { l in
            let pre = "\(prefix).h.\(l)"
            return Layer(ln1: norm("\(pre).ln_1"), qkv: conv("\(pre).attn.c_attn"), attnProj: conv("\(pre).attn.c_proj"),
                         ln2: norm("\(pre).ln_2"), fc: conv("\(pre).mlp.c_fc"), mlpProj: conv("\(pre).mlp.c_proj"))
        }
        finalNorm = norm("\(prefix).ln_f")
        attention = CausalAttentionOp(heads: heads, kvHeads: heads, headDim: headDim)
    }

    /// Positions the table covers (`n_positions`).
    public var maxPositions: Int { positions.rows }

    func positionIDs(sequences: Int, length: Int) -> [Int] {
        (0..<(sequences * length)).map { $0 % length }
    }

    /// x[(s, t)] += wpe[t]. `length` must not exceed `maxPositions` (callers check it with a typed error).
    public func addPositionEmbeddings(_ x: inout [Float], sequences: Int, length: Int) {
        precondition(x.count == sequences * length * hidden && length <= maxPositions)
        let p = positions.forward(Array(0..<length))
        for s in 0..<sequences {
            let base = s * length * hidden
            for i in 0..<(length * hidden) { x[base + i] += p[i] }
        }
    }

    /// Accumulates `wpe`'s gradient from the gradient of the summed input (the same rows as
    /// `addPositionEmbeddings`).
    public func positionEmbeddingBackward(_ dx: [Float], sequences: Int, length: Int) {
        positions.backward(dx, ids: positionIDs(sequences: sequences, length: length))
    }

    struct LayerSaved: Sendable {
        var norm1: LayerNormOp.Saved, normed1: [Float]
        var q: [Float], k: [Float], v: [Float]
        var attn: CausalAttentionOp.Saved
        var attnOut: [Float]
        var norm2: LayerNormOp.Saved, normed2: [Float]
        var preActivation: [Float], activation: [Float]
    }

    /// What the backward needs.
    public struct Saved: Sendable {
        var layers: [LayerSaved]
        var finalNorm: LayerNormOp.Saved
        var sequences: Int, length: Int
    }

    /// inputs (sequences·length × n_embd, position embeddings already added) → `ln_f` output.
    /// `keyStart` (one entry per row) limits the keys each row attends to (`CausalAttentionOp`); nil
    /// is plain causal.
    public func forward(_ inputs: [Float], sequences: Int, length: Int, keyStart: [Int32]? = nil,
                        pool: ComputePool?) -> (y: [Float], saved: Saved) {
        let rows = sequences * length, e = hidden
        precondition(inputs.count == rows * e)
        var x = inputs
        var saved: [LayerSaved] = []
        saved.reserveCapacity(layers.count)
        for layer in layers {
            let (n1, ns1) = layer.ln1.forward(x, rows: rows)
            let fused = layer.qkv.forward(n1, rows: rows, pool: pool)
            var q = [Float](repeating: 0, count: rows * e), k = q, v = q
            for r in 0..<rows {
                for j in 0..<e {
                    q[r * e + j] = fused[r * 3 * e + j]
                    k[r * e + j] = fused[r * 3 * e + e + j]
                    v[r * e + j] = fused[r * 3 * e + 2 * e + j]
                }
            }
            let (a, asv) = attention.forward(q: q, k: k, v: v, sequences: sequences, length: length, keyStart: keyStart, pool: pool)
            var h = layer.attnProj.forward(a, rows: rows, pool: pool)
            for i in 0..<h.count { h[i] += x[i] }
            let (n2, ns2) = layer.ln2.forward(h, rows: rows)
            let f = layer.fc.forward(n2, rows: rows, pool: pool)
            let g = GELUTanhOp.forward(f)
            var y = layer.mlpProj.forward(g, rows: rows, pool: pool)
            for i in 0..<y.count { y[i] += h[i] }
            saved.append(LayerSaved(norm1: ns1, normed1: n1, q: q, k: k, v: v, attn: asv, attnOut: a, norm2: ns2, normed2: n2,
                                    preActivation: f, activation: g))
            x = y
        }
        let (y, fs) = finalNorm.forward(x, rows: rows)
        return (y, Saved(layers: saved, finalNorm: fs, sequences: sequences, length: length))
    }

    /// Accumulates every block's and `ln_f`'s gradients and returns d inputs (not `wpe`'s: see
    /// `positionEmbeddingBackward`).
    public func backward(_ dy: [Float], saved s: Saved, pool: ComputePool?) -> [Float] {
        let rows = s.sequences * s.length, e = hidden
        var d = finalNorm.backward(dy, saved: s.finalNorm, rows: rows)
        for (layer, ls) in zip(layers, s.layers).reversed() {
            // y = h + mlpProj(gelu(fc(ln2(h)))), h = x + attnProj(attention(c_attn(ln1(x))))
            let dg = layer.mlpProj.backward(d, input: ls.activation, rows: rows, pool: pool) ?? []
            let df = GELUTanhOp.backward(dg, input: ls.preActivation)
            let dn2 = layer.fc.backward(df, input: ls.normed2, rows: rows, pool: pool) ?? []
            var dh = layer.ln2.backward(dn2, saved: ls.norm2, rows: rows)
            for i in 0..<dh.count { dh[i] += d[i] }
            let da = layer.attnProj.backward(dh, input: ls.attnOut, rows: rows, pool: pool) ?? []
            let (dq, dk, dv) = attention.backward(da, q: ls.q, k: ls.k, v: ls.v, saved: ls.attn,
                                                  sequences: s.sequences, length: s.length, pool: pool)
            var fused = [Float](repeating: 0, count: rows * 3 * e)
            for r in 0..<rows {
                for j in 0..<e {
                    fused[r * 3 * e + j] = dq[r * e + j]
                    fused[r * 3 * e + e + j] = dk[r * e + j]
                    fused[r * 3 * e + 2 * e + j] = dv[r * e + j]
                }
            }
            let dn1 = layer.qkv.backward(fused, input: ls.normed1, rows: rows, pool: pool) ?? []
            var dx = layer.ln1.backward(dn1, saved: ls.norm1, rows: rows)
            for i in 0..<dx.count { dx[i] += dh[i] }
            d = dx
        }
        return d
    }
}
