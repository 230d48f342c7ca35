import CALMModel

/// The chunk autoencoder on trainable parameters (`encoder.*`, `decoder.*`; one tied matrix
/// `encoder.embed_tokens.weight` used as the encoder embedding and the decoder's output projection).
public struct AutoencoderModule: Sendable {
    public let config: AutoencoderConfig
    public let embedding: EmbeddingOp
    public let encoderLayers: [ResidualMLPBlock]
    public let squeeze: LinearOp
    public let encoderNorm: RMSNormOp
    public let hiddenToLatent: LinearOp
    public let latentToHidden: LinearOp
    public let decoderLayers: [ResidualMLPBlock]
    public let expand: LinearOp
    public let decoderNorm: RMSNormOp
    /// The tied matrix (V × H).
    public var tied: Parameter { embedding.table }

    public init(config: AutoencoderConfig, parameters p: ParameterSet) {
        self.config = config
        let eps = Float(config.rmsNormEps)
        embedding = EmbeddingOp(table: p["encoder.embed_tokens.weight"])
        encoderLayers = (0..<config.numEncoderLayers).map {
            ResidualMLPBlock(p, prefix: "encoder.encoder_layers.\($0)", normName: "layernorm", eps: eps)
        }
        squeeze = LinearOp(weight: p["encoder.squeeze_layer.weight"], bias: p["encoder.squeeze_layer.bias"])
        encoderNorm = RMSNormOp(weight: p["encoder.norm.weight"], eps: eps)
        hiddenToLatent = LinearOp(weight: p["encoder.hidden_to_latent.weight"], bias: p["encoder.hidden_to_latent.bias"])
        latentToHidden = LinearOp(weight: p["decoder.latent_to_hidden.weight"], bias: p["decoder.latent_to_hidden.bias"])
        decoderLayers = (0..<config.numDecoderLayers).map {
            ResidualMLPBlock(p, prefix: "decoder.decoder_layers.\($0)", normName: "layernorm", eps: eps)
        }
        expand = LinearOp(weight: p["decoder.expand_layer.weight"], bias: p["decoder.expand_layer.bias"])
        decoderNorm = RMSNormOp(weight: p["decoder.norm.weight"], eps: eps)
    }

    // MARK: encoder

    public struct EncoderSaved: Sendable {
        var ids: [Int]
        var stage0: [ResidualMLPBlock.Saved]
        var squeezeIn: [Float]
        var stage1: [ResidualMLPBlock.Saved]
        var normIn: [Float]
        var norm: RMSNormOp.Saved
        var normed: [Float]
    }

    /// ids (chunks·K) → latent states (chunks × 2z).
    public func encode(_ ids: [Int], pool: ComputePool?) -> (latent: [Float], saved: EncoderSaved) {
        let k = config.patchSize
        precondition(ids.count % k == 0)
        let chunks = ids.count / k
        var x = embedding.forward(ids)
        let half = config.numEncoderLayers / 2
        var s0: [ResidualMLPBlock.Saved] = []
        for i in 0..<half {
            let r = encoderLayers[i].forward(x, rows: chunks * k, pool: pool)
            x = r.y; s0.append(r.saved)
        }
        // (chunks·K, H) → (chunks, K·H): same memory.
        let squeezeIn = x
        var h = squeeze.forward(x, rows: chunks, pool: pool)
        var s1: [ResidualMLPBlock.Saved] = []
        for i in half..<(2 * half) {
            let r = encoderLayers[i].forward(h, rows: chunks, pool: pool)
            h = r.y; s1.append(r.saved)
        }
        let (n, ns) = encoderNorm.forward(h, rows: chunks)
        let latent = hiddenToLatent.forward(n, rows: chunks, pool: pool)
        return (latent, EncoderSaved(ids: ids, stage0: s0, squeezeIn: squeezeIn, stage1: s1, normIn: h, norm: ns, normed: n))
    }

    /// Backward from d latent (chunks × 2z), ending with the scatter into the embedding.
    public func encodeBackward(_ dLatent: [Float], saved s: EncoderSaved, pool: ComputePool?) {
        let k = config.patchSize
        let chunks = s.ids.count / k
        var d = hiddenToLatent.backward(dLatent, input: s.normed, rows: chunks, pool: pool)!
        d = encoderNorm.backward(d, input: s.normIn, saved: s.norm, rows: chunks)
        let half = config.numEncoderLayers / 2
        for i in stride(from: 2 * half - 1, through: half, by: -1) {
            d = encoderLayers[i].backward(d, saved: s.stage1[i - half], rows: chunks, pool: pool)
        }
        d = squeeze.backward(d, input: s.squeezeIn, rows: chunks, pool: pool)!
        for i in stride(from: half - 1, through: 0, by: -1) {
            d = encoderLayers[i].backward(d, saved: s.stage0[i], rows: chunks * k, pool: pool)
        }
        embedding.backward(d, ids: s.ids)
    }

    // MARK: decoder

    public struct DecoderSaved: Sendable {
        var latent: [Float]
        var l2h: [Float]
        var stage0: [ResidualMLPBlock.Saved]
        var expandIn: [Float]
        var stage1: [ResidualMLPBlock.Saved]
        var normIn: [Float]
        var norm: RMSNormOp.Saved
        var normed: [Float]
    }

    /// latents (rows × z) → logits (rows·K × V).
    public func decode(_ latent: [Float], rows: Int, pool: ComputePool?) -> (logits: [Float], saved: DecoderSaved) {
        let k = config.patchSize, h = config.hiddenSize, v = config.vocabSize
        var x = latentToHidden.forward(latent, rows: rows, pool: pool)
        let l2h = x
        let half = config.numDecoderLayers / 2
        var s0: [ResidualMLPBlock.Saved] = []
        for i in 0..<half {
            let r = decoderLayers[i].forward(x, rows: rows, pool: pool)
            x = r.y; s0.append(r.saved)
        }
        let expandIn = x
        var t = expand.forward(x, rows: rows, pool: pool)
        var s1: [ResidualMLPBlock.Saved] = []
        for i in half..<(2 * half) {
            let r = decoderLayers[i].forward(t, rows: rows * k, pool: pool)
            t = r.y; s1.append(r.saved)
        }
        let (n, ns) = decoderNorm.forward(t, rows: rows * k)
        let logits = Matmul.xWt(n, rows: rows * k, w: tied.value, out: v, in: h, pool: pool)
        _ = l2h
        return (logits, DecoderSaved(latent: latent, l2h: l2h, stage0: s0, expandIn: expandIn, stage1: s1, normIn: t, norm: ns, normed: n))
    }

    /// Backward from d logits; accumulates the output-projection use of the tied matrix and
    /// returns d latent (rows × z).
    public func decodeBackward(_ dLogits: [Float], saved s: DecoderSaved, rows: Int, pool: ComputePool?) -> [Float] {
        let k = config.patchSize, h = config.hiddenSize, v = config.vocabSize
        if tied.requiresGrad {
            Matmul.dyTx(dLogits, x: s.normed, rows: rows * k, out: v, in: h, into: &tied.grad, pool: pool)
        }
        var d = Matmul.dyW(dLogits, rows: rows * k, w: tied.value, out: v, in: h, pool: pool)
        d = decoderNorm.backward(d, input: s.normIn, saved: s.norm, rows: rows * k)
        let half = config.numDecoderLayers / 2
        for i in stride(from: 2 * half - 1, through: half, by: -1) {
            d = decoderLayers[i].backward(d, saved: s.stage1[i - half], rows: rows * k, pool: pool)
        }
        d = expand.backward(d, input: s.expandIn, rows: rows, pool: pool)!
        for i in stride(from: half - 1, through: 0, by: -1) {
            d = decoderLayers[i].backward(d, saved: s.stage0[i], rows: rows, pool: pool)
        }
        return latentToHidden.backward(d, input: s.latent, rows: rows, pool: pool)!
    }
}
