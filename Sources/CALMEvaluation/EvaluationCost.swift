import CALMModel
import Foundation

/// Floating-point operations (multiply and add counted separately) one evaluation block needs,
/// for throughput-versus-peak reports.
public struct EvaluationCost: Sendable {
    /// Chunk embedding (CALM), backbone matrices, attention (q·k and the weighted sum of v), the
    /// head (CALM's energy head; Token Maturation's vector head) and the decoder (CALM's
    /// autoencoder decoder; the discrete LM head; Token Maturation's nearest-embedding commit).
    public var embedding = 0.0, backboneLinear = 0.0, attention = 0.0, head = 0.0, decoder = 0.0
    /// Everything together.
    public var total: Double { embedding + backboneLinear + attention + head + decoder }

    /// A CALM block of `blockSize` tokens (K ≥ 4 path): `samples` head samples per position, the
    /// first two decoded (the energy loss's encoder and distances are not counted).
    public static func calm(_ c: CALMConfig, autoencoder a: AutoencoderConfig, blockSize: Int, samples: Int = 2) -> EvaluationCost {
        let k = Double(c.patchSize), h = Double(c.hiddenSize), i = Double(c.intermediateSize), z = Double(c.latentSize)
        let eps = Double(c.noiseSize), kv = Double(c.kvHeads * c.headDim), layers = Double(c.numHiddenLayers)
        let p = Double(blockSize / c.patchSize - 1)
        let ha = Double(a.hiddenSize), ia = Double(a.intermediateSize), v = Double(a.vocabSize)
        let s = Double(samples), decodeLayers = Double(a.numDecoderLayers / 2)
        var cost = EvaluationCost()
        cost.embedding = p * 2 * (k * h * 2 * h + 2 * h * h)
        cost.backboneLinear = p * 2 * layers * (2 * h * h + 2 * h * kv + 3 * h * i)
        // Causal: position t (0-based) attends over t + 1 keys; q·k and the weighted sum of v.
        cost.attention = layers * Double(c.numAttentionHeads) * Double(c.headDim) * 2 * 2 * (p * (p + 1) / 2)
        cost.head = p * 2 * h * h + p * s * 2 * (eps * h + Double(c.numMLPLayers) * 6 * h * h + h * h + h * z)
        cost.decoder = 2 * p * 2 * (z * ha + decodeLayers * 3 * ha * ia + ha * k * ha + k * decodeLayers * 3 * ha * ia + k * ha * v)
        return cost
    }

    /// A discrete Llama block's teacher-forced pass (two softmax samples per position; the K < 4
    /// continuation steps, which depend on how often samples collide, are not counted).
    public static func llama(_ c: LlamaCausalLMConfig, blockSize: Int) -> EvaluationCost {
        let h = Double(c.hiddenSize), i = Double(c.intermediateSize), kv = Double(c.kvHeads * c.hiddenSize / c.numAttentionHeads)
        let layers = Double(c.numHiddenLayers), p = Double(blockSize - 1)
        var cost = EvaluationCost()
        cost.backboneLinear = p * 2 * layers * (2 * h * h + 2 * h * kv + 3 * h * i)
        cost.attention = layers * h * 2 * 2 * (p * (p + 1) / 2)
        cost.decoder = p * 2 * h * Double(c.vocabSize)
        return cost
    }

    /// A Token Maturation block of `blockSize` ids under `TokenMaturationBrierModel`'s teacher-forced
    /// pass: two runs (one per sample), each stepping every position once. A step at committed
    /// position i runs that row plus the tail's scratch rows (K − 1 with shift alignment, K with
    /// same) at positions i + 1…, each attending causally to everything before it; with guidance
    /// (`guidanceScale` ≠ 1) the tail rows run again attending only to each other. Every step
    /// maps K predictions (plus the guided ones) through the d × d head and projects one front
    /// vector onto the vocabulary. Continuation steps (Brier-2…4), which depend on how often the
    /// samples agree, are not counted; nor are the per-run conditioning tables.
    public static func tokenMaturation(_ c: TokenMaturationConfig, blockSize: Int, tailLength: Int? = nil,
                                       guidanceScale: Float? = nil, alignment: TokenMaturationAlignment? = nil) -> EvaluationCost {
        let h = Double(c.hiddenSize), v = Double(c.vocabSize), p = Double(max(blockSize - 1, 0))
        let k = Double(tailLength ?? c.tailLength)
        let same = (alignment ?? c.alignment) == .same
        let t = same ? k : k - 1
        let guided = (guidanceScale ?? c.guidanceScale) != 1 && t > 0 ? 1.0 : 0.0
        let layers: Double, perLayer: Double, attentionWidth: Double
        switch c.backbone {
        case .llama:
            let l = c.llama ?? LlamaCausalLMConfig()
            let kv = Double(l.kvHeads * l.hiddenSize / l.numAttentionHeads), i = Double(l.intermediateSize)
            layers = Double(l.numHiddenLayers)
            perLayer = 2 * h * h + 2 * h * kv + 3 * h * i
            attentionWidth = h
        case .gpt2:
            let g = c.gpt2 ?? GPT2Config()
            layers = Double(g.nLayer)
            perLayer = 4 * h * h + 2 * h * Double(g.innerSize)
            attentionWidth = h
        }
        let runs = 2.0
        let rows = p * (1 + t) + guided * p * t
        // Keys per run: Σ over steps i of Σ over window rows at positions q = i…i+t of (q + 1), plus
        // the guided rows' t(t + 1)/2 per step.
        let keys = (t + 1) * p * (p + 1) / 2 + p * t * (t + 1) / 2 + guided * p * t * (t + 1) / 2
        var cost = EvaluationCost()
        cost.backboneLinear = runs * rows * 2 * layers * perLayer
        cost.attention = runs * layers * attentionWidth * 2 * 2 * keys
        cost.head = runs * (p * k + guided * p * t) * 2 * h * h
        cost.decoder = runs * p * 2 * v * h
        return cost
    }
}
