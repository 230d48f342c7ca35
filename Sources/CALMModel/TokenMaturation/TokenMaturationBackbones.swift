import Foundation

/// The one place a TM model's `backbone` choice becomes a decoder stack and an embedding tensor name.
enum TokenMaturationBackbones {
    /// The embedding matrix E's tensor (Hugging Face names).
    static func embeddingKey(_ backbone: TokenMaturationConfig.Backbone) -> String {
        backbone.embeddingTensorName
    }

    /// The decoder stack, read from `reader` under the backbone's Hugging Face prefix.
    static func make(config: TokenMaturationConfig, reader: WeightReader, file: String) throws -> any VectorBackbone {
        switch config.backbone {
        case .llama:
            guard let llama = config.llama else {
                throw ModelError.invalidConfig(file: file, key: "backbone", reason: "llama backbone without its sizes")
            }
            return try LlamaBackbone(shape: llama.backboneShape, reader: reader, prefix: "model")
        case .gpt2:
            guard let gpt2 = config.gpt2 else {
                throw ModelError.invalidConfig(file: file, key: "backbone", reason: "gpt2 backbone without its sizes")
            }
            return try GPT2Backbone(config: gpt2, reader: reader.prefixed("transformer."))
        }
    }
}
