import CALMModel
import Foundation

/// Floating-point operations (multiply and add counted separately) one evaluation block needs,
/// for throughput-versus-peak reports.
public struct EvaluationCost: Sendable {
    public var embedding = 0.0, backboneLinear = 0.0, attention = 0.0, head = 0.0, decoder = 0.0
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
}
