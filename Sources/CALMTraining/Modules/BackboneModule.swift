import CALMModel

/// The Llama decoder stack over full sequences (training: no cache). Rows are (sequence,
/// position) row-major; positions are chunk indices 0 ..< length.
public struct BackboneModule: Sendable {
    public struct Layer: Sendable {
        public let inputNorm: RMSNormOp
        public let q: LinearOp, k: LinearOp, v: LinearOp, o: LinearOp
        public let mlp: ResidualMLPBlock
    }

    public let hidden: Int
    public let heads: Int
    public let kvHeads: Int
    public let headDim: Int
    public let layers: [Layer]
    public let finalNorm: RMSNormOp
    public let rope: RotaryOp
    public let attention: CausalAttentionOp

    public init(config: CALMConfig, parameters p: ParameterSet, prefix: String = "transformer") {
        hidden = config.hiddenSize
        heads = config.numAttentionHeads
        kvHeads = config.kvHeads
        headDim = config.headDim
        let eps = Float(config.rmsNormEps)
        layers = (0..<config.numHiddenLayers).map { l in
            let pre = "\(prefix).layers.\(l)"
            return Layer(inputNorm: RMSNormOp(weight: p["\(pre).input_layernorm.weight"], eps: eps),
                         q: LinearOp(weight: p["\(pre).self_attn.q_proj.weight"], bias: nil),
                         k: LinearOp(weight: p["\(pre).self_attn.k_proj.weight"], bias: nil),
                         v: LinearOp(weight: p["\(pre).self_attn.v_proj.weight"], bias: nil),
                         o: LinearOp(weight: p["\(pre).self_attn.o_proj.weight"], bias: nil),
                         mlp: ResidualMLPBlock(p, prefix: pre, normName: "post_attention_layernorm", eps: eps))
        }
        finalNorm = RMSNormOp(weight: p["\(prefix).norm.weight"], eps: eps)
        rope = RotaryOp(headDim: headDim, theta: config.ropeTheta)
        attention = CausalAttentionOp(heads: heads, kvHeads: kvHeads, headDim: headDim)
    }

    struct LayerSaved: Sendable {
        var input: [Float]
        var norm: RMSNormOp.Saved
        var normed: [Float]
        var q: [Float], k: [Float], v: [Float]
        var attn: AttentionSaved
        var attnOut: [Float]
        var mlp: ResidualMLPBlock.Saved
    }
    typealias AttentionSaved = CausalAttentionOp.Saved

    public struct Saved: Sendable {
        var layers: [LayerSaved]
        var finalIn: [Float]
        var finalNorm: RMSNormOp.Saved
        var sequences: Int, length: Int
    }

    func positions(sequences: Int, length: Int) -> [Int] {
        (0..<(sequences * length)).map { $0 % length }
    }

    /// inputs (sequences·length × H) → last_hidden_state (after the final norm). `keyStart` (one entry
    /// per row) limits the keys each row attends to (`CausalAttentionOp`); nil is plain causal.
    public func forward(_ inputs: [Float], sequences: Int, length: Int, keyStart: [Int32]? = nil,
                        pool: ComputePool?) -> (y: [Float], saved: Saved) {
        let rows = sequences * length
        precondition(inputs.count == rows * hidden)
        let pos = positions(sequences: sequences, length: length)
        let table = rope.table(count: length)
        var x = inputs
        var saved: [LayerSaved] = []
        for layer in layers {
            let (n, ns) = layer.inputNorm.forward(x, rows: rows)
            var q = layer.q.forward(n, rows: rows, pool: pool)
            var k = layer.k.forward(n, rows: rows, pool: pool)
            let v = layer.v.forward(n, rows: rows, pool: pool)
            rope.forward(&q, heads: heads, positions: pos, table: table)
            rope.forward(&k, heads: kvHeads, positions: pos, table: table)
            let (a, asv) = attention.forward(q: q, k: k, v: v, sequences: sequences, length: length, keyStart: keyStart, pool: pool)
            var h = layer.o.forward(a, rows: rows, pool: pool)
            for i in 0..<h.count { h[i] += x[i] }
            let (y, ms) = layer.mlp.forward(h, rows: rows, pool: pool)
            saved.append(LayerSaved(input: x, norm: ns, normed: n, q: q, k: k, v: v, attn: asv, attnOut: a, mlp: ms))
            x = y
        }
        let (y, fs) = finalNorm.forward(x, rows: rows)
        return (y, Saved(layers: saved, finalIn: x, finalNorm: fs, sequences: sequences, length: length))
    }

    /// Returns d inputs.
    public func backward(_ dy: [Float], saved s: Saved, pool: ComputePool?) -> [Float] {
        let rows = s.sequences * s.length
        let pos = positions(sequences: s.sequences, length: s.length)
        let table = rope.table(count: s.length)
        var d = finalNorm.backward(dy, input: s.finalIn, saved: s.finalNorm, rows: rows)
        for (layer, ls) in zip(layers, s.layers).reversed() {
            // h = x + o(attn); y = mlp(h) (residual inside).
            let dh = layer.mlp.backward(d, saved: ls.mlp, rows: rows, pool: pool)
            let da = layer.o.backward(dh, input: ls.attnOut, rows: rows, pool: pool)!
            var (dq, dk, dv) = attention.backward(da, q: ls.q, k: ls.k, v: ls.v, saved: ls.attn,
                                                  sequences: s.sequences, length: s.length, pool: pool)
            rope.backward(&dq, heads: heads, positions: pos, table: table)
            rope.backward(&dk, heads: kvHeads, positions: pos, table: table)
            var dn = layer.q.backward(dq, input: ls.normed, rows: rows, pool: pool)!
            let dnk = layer.k.backward(dk, input: ls.normed, rows: rows, pool: pool)!
            let dnv = layer.v.backward(dv, input: ls.normed, rows: rows, pool: pool)!
            for i in 0..<dn.count { dn[i] += dnk[i] + dnv[i] }
            var dx = layer.inputNorm.backward(dn, input: ls.input, saved: ls.norm, rows: rows)
            for i in 0..<dx.count { dx[i] += dh[i] }
            d = dx
        }
        return d
    }
}
