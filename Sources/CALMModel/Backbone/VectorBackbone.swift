/// One sequence's share of a batched backbone pass: its cache, how many new rows (consecutive in
/// the batch, in `slices` order) it contributes, how many of them stay in the cache, and the
/// absolute position of its first row.
///
/// The rows' keys/values are written at cache slots `cache.count ..< cache.count + rows`; row `i`
/// attends to slots `0 … cache.count + i` (causal over the cache). After the pass `cache.count`
/// grows by `persist`; the other rows are scratch that the next pass overwrites (Token Maturation's
/// liquid tail, spec §6.3). `firstPosition` defaults to `cache.count`; a pass whose rows sit at
/// other positions than their slots (the tail-only CFG pass on an empty scratch cache) sets it.
public struct BackboneSlice {
    public let cache: KVCache
    public let rows: Int
    public let persist: Int
    public let firstPosition: Int
    public init(cache: KVCache, rows: Int, persist: Int? = nil, firstPosition: Int? = nil) {
        self.cache = cache
        self.rows = rows
        self.persist = min(max(persist ?? rows, 0), rows)
        self.firstPosition = firstPosition ?? cache.count
    }
}

/// A decoder stack that takes vectors (`inputs_embeds`) instead of token ids: the part CALM,
/// Token Maturation and the discrete models share. Llama (RoPE, RMSNorm, SwiGLU) and GPT-2 (learned
/// absolute positions, LayerNorm, GELU) implement it.
public protocol VectorBackbone: AnyObject, Sendable {
    /// Model width (input and output rows have this many floats).
    var hidden: Int { get }
    /// Number of decoder layers.
    var layerCount: Int { get }
    /// Bytes of weights one pass reads.
    var weightBytes: Int { get }
    /// The KV geometry with blocks of `blockPositions` positions.
    func kvLayout(blockPositions: Int) -> KVLayout
    /// Adds learned absolute position embeddings to the rows (row `i` of a slice sits at
    /// `firstPosition + i`); nothing for RoPE backbones, which rotate inside attention. Callers
    /// that condition the summed input (Token Maturation's FiLM) call this before forward.
    func addPositionEmbeddings(_ x: inout [Float], slices: [BackboneSlice])
    /// Runs the stack over `inputs` (Σ rows × hidden) and returns the final-norm hidden states
    /// (same shape). Every cache must have room for its rows (`KVCache.reserve`).
    func forward(_ inputs: [Float], slices: [BackboneSlice], pool: ComputePool, record: ActivationRecorder?) -> [Float]
}

extension VectorBackbone {
    /// `forward` without recording activations.
    public func forward(_ inputs: [Float], slices: [BackboneSlice], pool: ComputePool) -> [Float] {
        forward(inputs, slices: slices, pool: pool, record: nil)
    }
}
