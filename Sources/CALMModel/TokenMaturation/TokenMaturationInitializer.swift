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
    /// zeroed by the layers after them), as `moduleTensor` does for training (`calm train-tm`), so
    /// both start a model alike. Errors name the source file and key.
    public static func write(fromGPT2 source: URL, to directory: URL, seed: UInt64 = 0) throws {
        let gpt2 = try GPT2Config.load(directory: source)
        let weights = try ModelFolder.openWeights(source)
        let prefix = try GPT2Backbone.weightPrefix(of: weights)
        var config = TokenMaturationConfig(gpt2: gpt2)
        config.gpt2?.tieWordEmbeddings = true
        try config.validate(file: source.appendingPathComponent("config.json").path)
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
        for (index, (name, shape)) in try RandomModelWriter.tokenMaturationTensors(config).enumerated() where name.hasPrefix("tm.") {
            try writer.add(name: name, shape: shape, floats: moduleTensor(name, shape: shape, config: config, seed: seed, index: index))
        }
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

    /// The starting value of one `tm.*` tensor (spec §1.3, §1.4, §3.6), the one initialisation both
    /// this writer and the trainer (`TrainableTokenMaturation`) use: the last layer of MLP_α and the
    /// FiLM projection are zero (no conditioning), the head is the identity, biases are zero;
    /// `tm.alpha_mlp.0.weight` ~ N(0, 1/channels) and the K table ~ N(0, 1) (PyTorch's `nn.Embedding`
    /// default), drawn from a stream of `seed` and the tensor's `index` in
    /// `RandomModelWriter.tokenMaturationTensors(config)`.
    public static func moduleTensor(_ name: String, shape: [Int], config: TokenMaturationConfig, seed: UInt64, index: Int) -> [Float] {
        let count = shape.reduce(1, *), d = config.hiddenSize
        let rng = SeededRandomness(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index + 1))
        switch name {
        case "tm.alpha_mlp.0.weight":
            let std = 1 / Float(config.alphaChannels).squareRoot()
            return rng.normalFloats(count: count).map { $0 * std }
        case "tm.tail_length.embedding.weight":
            return rng.normalFloats(count: count)
        case "tm.head.weight":
            var identity = [Float](repeating: 0, count: count)
            for i in 0..<min(d, count / max(d, 1)) { identity[i * d + i] = 1 }
            return identity
        default:
            return [Float](repeating: 0, count: count)
        }
    }
}
