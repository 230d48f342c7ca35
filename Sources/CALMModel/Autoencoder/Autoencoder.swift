import CALMKernels
import CALMTensor
import Foundation

/// Receives named intermediate activations (flattened f32) during a forward pass; used by the
/// conformance runner to compare every stage with the reference. Nil in production.
public typealias ActivationRecorder = (_ name: String, _ values: [Float]) -> Void

/// The frozen, context-free chunk autoencoder: K tokens ↔ one latent vector.
///
/// One matrix E (V × Hₐ) serves as the encoder's embedding and the decoder's output projection
/// (logits = h·Eᵀ), whichever of the two tied names the checkpoint stores.
public final class Autoencoder: Sendable {
    public let config: AutoencoderConfig
    /// Encoder embedding (the tied matrix, read in place from the file).
    let embedding: EmbeddingTable
    /// Decoder output projection (the tied matrix, packed).
    let lmHead: Linear
    let encoderLayers: [ResidualGatedMLP]
    let squeeze: Linear
    let encoderNorm: RMSNorm
    let hiddenToLatent: Linear
    let latentToHidden: Linear
    let decoderLayers: [ResidualGatedMLP]
    let expand: Linear
    let decoderNorm: RMSNorm

    /// Loads the autoencoder from `source`; `prefix` is `ae_model.` inside CALM checkpoints.
    init(config: AutoencoderConfig, source: any TensorSource, prefix: String, storageDType: DType?) throws {
        self.config = config
        let r = WeightReader(source: source, prefix: prefix, storageDType: storageDType)
        let h = config.hiddenSize, v = config.vocabSize, k = config.patchSize, z = config.latentSize
        let tiedNames = ["encoder.embed_tokens.weight", "decoder.lm_head_weight"]
        let tied = try r.tensor(tiedNames, shape: [v, h])
        if r.has(tiedNames[0]) && r.has(tiedNames[1]) {
            // Both names present: the reference treats them as one matrix; refuse files where they differ.
            let other = try r.tensor([tiedNames[1]], shape: [v, h])
            let equal = tied.withUnsafeBytes { a in other.withUnsafeBytes { b in a.elementsEqual(b) } }
            if !equal { throw ModelError.aliasMismatch(file: r.fileName, keys: tiedNames.map { prefix + $0 }) }
        }
        embedding = try EmbeddingTable(tensor: tied)
        lmHead = try WeightReader.pack(tied, out: v, in: h, bias: nil, storage: storageDType)
        let eps = config.rmsNormEps
        encoderLayers = try (0..<config.numEncoderLayers).map {
            try ResidualGatedMLP(reader: r, prefix: "encoder.encoder_layers.\($0)", normName: "layernorm",
                                 hidden: h, intermediate: config.intermediateSize, eps: eps)
        }
        squeeze = try r.linear("encoder.squeeze_layer", out: h, in: k * h, bias: true)
        encoderNorm = try r.rmsNorm("encoder.norm", size: h, eps: eps)
        hiddenToLatent = try r.linear("encoder.hidden_to_latent", out: 2 * z, in: h, bias: true)
        latentToHidden = try r.linear("decoder.latent_to_hidden", out: h, in: z, bias: true)
        decoderLayers = try (0..<config.numDecoderLayers).map {
            try ResidualGatedMLP(reader: r, prefix: "decoder.decoder_layers.\($0)", normName: "layernorm",
                                 hidden: h, intermediate: config.intermediateSize, eps: eps)
        }
        expand = try r.linear("decoder.expand_layer", out: k * h, in: h, bias: true)
        decoderNorm = try r.rmsNorm("decoder.norm", size: h, eps: eps)
    }

    /// Bytes of decoder weights one decode pass reads (including the vocabulary projection).
    public var decoderWeightBytes: Int {
        latentToHidden.weightBytes + decoderLayers.reduce(0) { $0 + $1.weightBytes } + expand.weightBytes + lmHead.weightBytes
    }

    /// Encodes chunks of K ids into latent statistics: returns (chunks × 2z) rows, mean in the first
    /// z features and log σ in the last z.
    public func encode(_ ids: [Int], pool: ComputePool, record: ActivationRecorder? = nil) -> [Float] {
        let k = config.patchSize, h = config.hiddenSize
        precondition(ids.count % k == 0, "ids must be whole chunks")
        let chunks = ids.count / k
        var x = embedding.lookup(ids)
        record?("enc_embeds", x)
        let half = config.numEncoderLayers / 2
        for i in 0..<half {
            encoderLayers[i].apply(&x, rows: chunks * k, pool: pool)
            record?("enc_layer\(i)_out", x)
        }
        // Token-major concatenation: a chunk's K rows are already contiguous, so the (chunks, K·H)
        // view is the same memory.
        var s = [Float](repeating: 0, count: chunks * h)
        x.withUnsafeBufferPointer { xp in
            s.withUnsafeMutableBufferPointer { squeeze.apply(xp.baseAddress!, rows: chunks, into: $0.baseAddress!, pool: pool) }
        }
        record?("enc_squeeze_out", s)
        for i in half..<(2 * half) {
            encoderLayers[i].apply(&s, rows: chunks, pool: pool)
            record?("enc_layer\(i)_out", s)
        }
        encoderNorm.apply(&s, rows: chunks)
        record?("enc_norm_out", s)
        let latent = hiddenToLatent(s, rows: chunks, pool: pool)
        record?("latent_states", latent)
        return latent
    }

    /// Decoder trunk: latents (rows × z) → normalised hidden states (rows·K × Hₐ).
    public func decodeHidden(_ latents: [Float], rows: Int, pool: ComputePool, record: ActivationRecorder? = nil) -> [Float] {
        let k = config.patchSize
        precondition(latents.count == rows * config.latentSize)
        var x = latentToHidden(latents, rows: rows, pool: pool)
        record?("dec_latent_to_hidden_out", x)
        let half = config.numDecoderLayers / 2
        for i in 0..<half {
            decoderLayers[i].apply(&x, rows: rows, pool: pool)
            record?("dec_layer\(i)_out", x)
        }
        var t = expand(x, rows: rows, pool: pool)
        record?("dec_expand_out", t)
        for i in half..<(2 * half) {
            decoderLayers[i].apply(&t, rows: rows * k, pool: pool)
            record?("dec_layer\(i)_out", t)
        }
        decoderNorm.apply(&t, rows: rows * k)
        record?("dec_norm_out", t)
        return t
    }

    /// Full vocabulary logits for each token of each latent: (rows·K × V).
    public func decodeLogits(_ latents: [Float], rows: Int, pool: ComputePool, record: ActivationRecorder? = nil) -> [Float] {
        let hidden = decodeHidden(latents, rows: rows, pool: pool, record: record)
        return lmHead(hidden, rows: rows * config.patchSize, pool: pool)
    }

    /// Argmax tokens for each latent: rows·K ids, without materialising the logits.
    public func decodeTokens(_ latents: [Float], rows: Int, pool: ComputePool) -> [Int32] {
        let hidden = decodeHidden(latents, rows: rows, pool: pool)
        return vocabularyArgmax(hidden, rows: rows * config.patchSize, pool: pool)
    }

    /// The id of each decoder hidden row (rows × Hₐ, from `decodeHidden`): the argmax of its
    /// logits over the vocabulary, without materialising them. Each row's id is the same whatever
    /// rows are passed with it (the kernel computes every logit as one FMA chain whatever the
    /// batch), so any subset of a decode's rows may be argmaxed on its own.
    public func vocabularyArgmax(_ hidden: [Float], rows: Int, pool: ComputePool) -> [Int32] {
        lmHead.argmax(hidden, rows: rows, pool: pool)
    }
}
