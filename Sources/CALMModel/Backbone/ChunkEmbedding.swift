import CALMKernels
import Foundation

/// Input compression (`embed_proj`): the K token embeddings of a chunk, concatenated in token
/// order, go through Linear(K·H→2H) → SiLU → Linear(2H→H) → LayerNorm into one backbone input.
public final class ChunkEmbedding: Sendable {
    public let patchSize: Int
    public let hidden: Int
    let tokens: EmbeddingTable
    let linear0: Linear
    let linear2: Linear
    let norm: LayerNorm

    init(config: CALMConfig, reader: WeightReader) throws {
        patchSize = config.patchSize
        hidden = config.hiddenSize
        let h = config.hiddenSize
        tokens = try EmbeddingTable(tensor: try reader.tensor(["transformer.embed_tokens.weight"], shape: [config.vocabSize, h]))
        linear0 = try reader.linear("embed_proj.0", out: 2 * h, in: config.patchSize * h, bias: true)
        linear2 = try reader.linear("embed_proj.2", out: h, in: 2 * h, bias: true)
        norm = try reader.layerNorm(["embed_proj.3"], size: h)
    }

    /// Bytes of weights one pass reads (the embedding rows aside).
    public var weightBytes: Int { linear0.weightBytes + linear2.weightBytes }

    /// Embeds whole chunks of ids into chunks × hidden backbone inputs.
    public func callAsFunction(_ ids: [Int], pool: ComputePool, record: ActivationRecorder? = nil) -> [Float] {
        precondition(ids.count % patchSize == 0)
        let chunks = ids.count / patchSize
        // Token rows of a chunk are contiguous, so the lookup is already the (chunks, K·H) view.
        let embeds = tokens.lookup(ids)
        record?("token_embeds", embeds)
        record?("chunk_embeds", embeds)
        var a = linear0(embeds, rows: chunks, pool: pool)
        record?("embed_proj_linear0_out", a)
        Activation.silu(&a)
        var b = linear2(a, rows: chunks, pool: pool)
        norm.apply(&b, rows: chunks)
        record?("inputs_embeds", b)
        return b
    }
}
