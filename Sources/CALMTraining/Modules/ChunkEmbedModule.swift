import CALMModel

/// `transformer.embed_tokens` + `embed_proj`: K token embeddings of a chunk, concatenated in token
/// order, → Linear(K·H → 2H) → SiLU → Linear(2H → H) → LayerNorm. The `[PAD]` row is the
/// reference's `padding_idx`: it receives no gradient.
public struct ChunkEmbedModule: Sendable {
    public let tokens: EmbeddingOp
    public let linear0: LinearOp
    public let linear2: LinearOp
    public let norm: LayerNormOp
    public let patchSize: Int

    public init(config: CALMConfig, parameters p: ParameterSet) {
        patchSize = config.patchSize
        tokens = EmbeddingOp(table: p["transformer.embed_tokens.weight"], paddingIndex: config.padTokenID)
        linear0 = LinearOp(weight: p["embed_proj.0.weight"], bias: p["embed_proj.0.bias"])
        linear2 = LinearOp(weight: p["embed_proj.2.weight"], bias: p["embed_proj.2.bias"])
        norm = LayerNormOp(weight: p["embed_proj.3.weight"], bias: p["embed_proj.3.bias"], eps: 1e-6)
    }

    public struct Saved: Sendable {
        public var ids: [Int]
        /// (chunks × K·H)
        public var chunkEmbeds: [Float]
        var pre0: [Float], act0: [Float]
        var norm: LayerNormOp.Saved
    }

    /// ids (chunks·K) → inputs_embeds (chunks × H).
    public func forward(_ ids: [Int], pool: ComputePool?) -> (y: [Float], saved: Saved) {
        let chunks = ids.count / patchSize
        let e = tokens.forward(ids)
        let a = linear0.forward(e, rows: chunks, pool: pool)
        let s = SiLUOp.forward(a)
        let b = linear2.forward(s, rows: chunks, pool: pool)
        let (y, ns) = norm.forward(b, rows: chunks)
        return (y, Saved(ids: ids, chunkEmbeds: e, pre0: a, act0: s, norm: ns))
    }

    public func backward(_ dy: [Float], saved s: Saved, pool: ComputePool?) {
        let chunks = s.ids.count / patchSize
        var d = norm.backward(dy, saved: s.norm, rows: chunks)
        d = linear2.backward(d, input: s.act0, rows: chunks, pool: pool)!
        d = SiLUOp.backward(d, input: s.pre0)
        d = linear0.backward(d, input: s.chunkEmbeds, rows: chunks, inputGradient: tokens.table.requiresGrad, pool: pool) ?? []
        if tokens.table.requiresGrad { tokens.backward(d, ids: s.ids) }
    }
}
