import CALMModel
import CALMTensor
import Foundation

/// A small deterministic generator for test data (SplitMix64).
public struct TestRandom: RandomNumberGenerator {
    public var state: UInt64
    public init(_ seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func normal() -> Float {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self), u2 = Double.random(in: 0..<1, using: &self)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
}

/// Writes a tiny Hugging Face `LlamaForCausalLM` folder with random weights.
public enum TinyLlama {
    public struct Shape: Sendable {
        public var vocab = 6, hidden = 16, intermediate = 32, layers = 2, heads = 2, kvHeads = 1
        public var tied = false
        /// Scales the logits (embedding / lm_head std) so the softmax is neither flat nor one-hot.
        public var logitScale: Float = 1
        public var maxPositions = 256
        public init(vocab: Int = 6, hidden: Int = 16, intermediate: Int = 32, layers: Int = 2, heads: Int = 2, kvHeads: Int = 1,
                    tied: Bool = false, logitScale: Float = 1, maxPositions: Int = 256) {
            self.vocab = vocab; self.hidden = hidden; self.intermediate = intermediate; self.layers = layers
            self.heads = heads; self.kvHeads = kvHeads; self.tied = tied; self.logitScale = logitScale; self.maxPositions = maxPositions
        }
    }

    public static func write(to dir: URL, shape s: Shape = Shape(), seed: UInt64 = 1, omitLMHead: Bool = false,
                      configEdits: [String: Any] = [:]) throws -> URL {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var random = TestRandom(seed)
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        func matrix(_ name: String, _ rows: Int, _ cols: Int, std: Float) throws {
            try writer.add(name: name, shape: [rows, cols], floats: (0..<(rows * cols)).map { _ in random.normal() * std })
        }
        func norm(_ name: String, _ n: Int) throws {
            try writer.add(name: name, shape: [n], floats: (0..<n).map { _ in 1 + 0.1 * random.normal() })
        }
        let h = s.hidden, kv = s.kvHeads * (h / s.heads)
        try matrix("model.embed_tokens.weight", s.vocab, h, std: 1)
        for l in 0..<s.layers {
            let p = "model.layers.\(l)"
            try norm("\(p).input_layernorm.weight", h)
            try matrix("\(p).self_attn.q_proj.weight", h, h, std: 1 / Float(h).squareRoot())
            try matrix("\(p).self_attn.k_proj.weight", kv, h, std: 1 / Float(h).squareRoot())
            try matrix("\(p).self_attn.v_proj.weight", kv, h, std: 1 / Float(h).squareRoot())
            try matrix("\(p).self_attn.o_proj.weight", h, h, std: 1 / Float(h).squareRoot())
            try norm("\(p).post_attention_layernorm.weight", h)
            try matrix("\(p).mlp.gate_proj.weight", s.intermediate, h, std: 1 / Float(h).squareRoot())
            try matrix("\(p).mlp.up_proj.weight", s.intermediate, h, std: 1 / Float(h).squareRoot())
            try matrix("\(p).mlp.down_proj.weight", h, s.intermediate, std: 1 / Float(s.intermediate).squareRoot())
        }
        try norm("model.norm.weight", h)
        if !s.tied && !omitLMHead { try matrix("lm_head.weight", s.vocab, h, std: s.logitScale / Float(h).squareRoot()) }
        try writer.write(to: dir.appendingPathComponent("model.safetensors"))
        var config: [String: Any] = [
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "vocab_size": s.vocab, "hidden_size": h, "intermediate_size": s.intermediate,
            "num_hidden_layers": s.layers, "num_attention_heads": s.heads, "num_key_value_heads": s.kvHeads,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": s.maxPositions,
            "hidden_act": "silu", "tie_word_embeddings": s.tied, "bos_token_id": 0, "eos_token_id": [s.vocab - 1],
            "rope_scaling": NSNull(), "torch_dtype": "float32",
        ]
        for (k, v) in configEdits { config[k] = v }
        try JSONSerialization.data(withJSONObject: config).write(to: dir.appendingPathComponent("config.json"))
        return dir
    }

    public static func load(_ dir: URL) throws -> LlamaCausalLM {
        guard case .llama(let model) = try ModelLoader.load(directory: dir) else {
            throw ModelError.unknownModel(path: dir.path, reason: "not loaded as llama")
        }
        return model
    }
}

