import CALMModel
import Foundation

/// Fresh parameters for training from scratch, as Hugging Face's `_init_weights` does:
/// matrices and embedding tables ~ N(0, std²) (std = `initializer_range`, 0.02), 1-D weights
/// (RMSNorm / LayerNorm scales) = 1, biases = 0. Deterministic in `seed`.
public enum ModelInit {
    public static func parameters(_ shapes: [(String, [Int])], seed: UInt64, std: Float = 0.02,
                                  requiresGrad: Bool = true) -> ParameterSet {
        let set = ParameterSet()
        for (index, (name, shape)) in shapes.enumerated() {
            let count = shape.reduce(1, *)
            let values: [Float]
            if name.hasSuffix("bias") {
                values = [Float](repeating: 0, count: count)
            } else if shape.count == 1 {
                values = [Float](repeating: 1, count: count)
            } else {
                let rng = SeededRandomness(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index + 1))
                values = rng.normalFloats(count: count).map { $0 * std }
            }
            set.add(Parameter(name: name, shape: shape, value: values, requiresGrad: requiresGrad))
        }
        return set
    }
}

extension TrainableAutoencoder {
    /// A freshly initialised autoencoder.
    public static func initialized(config: AutoencoderConfig, seed: UInt64 = 0, std: Float = 0.02) -> TrainableAutoencoder {
        TrainableAutoencoder(config: config, parameters: ModelInit.parameters(parameterShapes(config), seed: seed, std: std))
    }
}

extension TrainableCALM {
    /// The energy head's last Linear, zero at initialisation in the reference (the head outputs 0).
    static let zeroInitializedPrefix = "mlp_generator.final_layer.linears.2."

    /// A freshly initialised CALM model around a (frozen) trained autoencoder, initialised as the
    /// reference does: N(0, std²) matrices, except the energy head's last Linear (zero, so the head
    /// starts at 0) and the backbone embedding's `[PAD]` row (zero; `padding_idx`, so it stays zero).
    public static func initialized(config: CALMConfig, autoencoder: TrainableAutoencoder, seed: UInt64 = 0,
                                   std: Float = 0.02) -> TrainableCALM {
        let set = ModelInit.parameters(parameterShapes(config), seed: seed, std: std)
        for p in set.parameters where p.name.hasPrefix(zeroInitializedPrefix) {
            p.value.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        }
        let table = set["transformer.embed_tokens.weight"]
        if let pad = config.padTokenID, table.shape.count == 2, pad >= 0, pad < table.shape[0] {
            let d = table.shape[1]
            table.value.withUnsafeMutableBufferPointer { $0[(pad * d)..<((pad + 1) * d)].update(repeating: 0) }
        }
        return TrainableCALM(config: config, parameters: set, autoencoder: autoencoder)
    }
}
