import CALMTensor
import Foundation

/// Starts a Token Maturation model from a pretrained Hugging Face `GPT2LMHeadModel` folder, as the
/// paper does (spec §1.2, §3.6): the GPT-2 backbone and its `wte` (as E) are copied, the maturity
/// MLP's output layer and the tail-length FiLM projection are zero (so the conditioning adds
/// nothing and FiLM is the identity) and the vector head is the identity. Before any training the
/// model's prediction for a slot is therefore GPT-2's final hidden state for the same inputs.
///
/// ```swift
/// try TokenMaturationInitializer.write(fromGPT2: URL(fileURLWithPath: "gpt2-medium"), to: URL(fileURLWithPath: "tm-init"))
/// let tm = try TokenMaturationModel.load(directory: URL(fileURLWithPath: "tm-init"))
/// ```
public enum TokenMaturationInitializer {
    /// Writes `<directory>/config.json` (the GPT-2 keys plus every TM key at its default) and
    /// `model.safetensors` (the GPT-2 tensors under `transformer.*`, whichever layout the source
    /// folder used, without the Hub checkpoints' attention-mask buffers, plus the `tm.*` modules).
    /// `seed` draws the maturity MLP's first layer and the tail-length embedding (their outputs are
    /// zeroed by the layers after them). Errors name the source file and key.
    public static func write(fromGPT2 source: URL, to directory: URL, seed: UInt64 = 0) throws {
        let gpt2 = try GPT2Config.load(directory: source)
        let weights = try ModelFolder.openWeights(source)
        let prefix = try GPT2Backbone.weightPrefix(of: weights)
        var config = TokenMaturationConfig(gpt2: gpt2)
        config.gpt2?.tieWordEmbeddings = true
        try config.validate(file: source.appendingPathComponent("config.json").path)
        let d = config.hiddenSize, channels = config.alphaChannels
        var writer = SafetensorsWriter(metadata: ["format": "pt", "source": "GPT2LMHeadModel at \(source.lastPathComponent)"])
        for name in weights.tensorNames where name.hasPrefix(prefix) {
            let stem = String(name.dropFirst(prefix.count))
            // the Hub layout's causal-mask buffers and a separate LM head are not part of the backbone
            if stem.hasSuffix(".attn.bias") || stem.hasSuffix(".attn.masked_bias") || stem.hasPrefix("lm_head") { continue }
            writer.add(try weights.tensor(name), as: "transformer." + stem)
        }
        guard writer.count > 0 else {
            throw ModelError.missingWeight(file: weights.url.lastPathComponent, keys: ["transformer.h.0.attn.c_attn.weight"])
        }
        let rng = SeededRandomness(seed: seed)
        func normal(_ count: Int, scale: Float) -> [Float] {
            (0..<count).map { _ in
                let u1 = max(rng.uniformDouble(), 1e-12), u2 = rng.uniformDouble()
                return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)) * scale
            }
        }
        var identity = [Float](repeating: 0, count: d * d)
        for i in 0..<d { identity[i * d + i] = 1 }
        try writer.add(name: "tm.alpha_mlp.0.weight", shape: [d, channels], floats: normal(d * channels, scale: 1 / Float(channels).squareRoot()))
        try writer.add(name: "tm.alpha_mlp.0.bias", shape: [d], floats: [Float](repeating: 0, count: d))
        try writer.add(name: "tm.alpha_mlp.2.weight", shape: [d, d], floats: [Float](repeating: 0, count: d * d))
        try writer.add(name: "tm.alpha_mlp.2.bias", shape: [d], floats: [Float](repeating: 0, count: d))
        try writer.add(name: "tm.tail_length.embedding.weight", shape: [config.maxTailLength, d],
                       floats: normal(config.maxTailLength * d, scale: 1))
        try writer.add(name: "tm.tail_length.proj.weight", shape: [2 * d, d], floats: [Float](repeating: 0, count: 2 * d * d))
        try writer.add(name: "tm.tail_length.proj.bias", shape: [2 * d], floats: [Float](repeating: 0, count: 2 * d))
        try writer.add(name: "tm.head.weight", shape: [d, d], floats: identity)
        try writer.add(name: "tm.head.bias", shape: [d], floats: [Float](repeating: 0, count: d))
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw ModelError.unknownModel(path: directory.path, reason: "cannot create the folder: \(error.localizedDescription)")
        }
        try writer.write(to: directory.appendingPathComponent("model.safetensors"))
        let data = try JSONSerialization.data(withJSONObject: try config.jsonObject(), options: [.prettyPrinted, .sortedKeys])
        do { try data.write(to: directory.appendingPathComponent("config.json")) } catch {
            throw ModelError.unknownModel(path: directory.appendingPathComponent("config.json").path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
