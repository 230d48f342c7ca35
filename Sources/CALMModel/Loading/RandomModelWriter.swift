import CALMKernels
import CALMTensor
import Foundation

/// Writes complete model folders with random weights in the paper's shapes, for benchmarks and
/// tests: `config.json` + `model.safetensors` for the CALM model, and the autoencoder in
/// `autoencoder/` (referenced by `ae_path`) or embedded under `ae_model.*`; or a discrete Llama
/// baseline in the Hugging Face `LlamaForCausalLM` layout (`writeLlama`); or a GPT-2 in the
/// `save_pretrained` layout of `GPT2LMHeadModel` (`writeGPT2`).
///
/// The tensor lists (`calmTensors`, `autoencoderTensors`, `llamaTensors`, `gpt2Tensors`) are the one statement of
/// each checkpoint's names and shapes: the trainable models in `CALMTraining` use them too.
public enum RandomModelWriter {
    /// Named shapes.
    public enum Shape: String, CaseIterable, Sendable {
        case tiny, calmM = "calm-m", calmL = "calm-l", calmXL = "calm-xl"

        /// (model config, autoencoder config) of this shape.
        public var configs: (CALMConfig, AutoencoderConfig) {
            var c = CALMConfig(), a = AutoencoderConfig()
            switch self {
            case .tiny:
                c.vocabSize = 512; c.hiddenSize = 64; c.intermediateSize = 128; c.numHiddenLayers = 2
                c.numAttentionHeads = 4; c.numKeyValueHeads = 2; c.latentSize = 16; c.noiseSize = 16; c.numMLPLayers = 2
                a.hiddenSize = 64; a.intermediateSize = 128
            case .calmM, .calmL, .calmXL:
                c.vocabSize = 128257; c.latentSize = 128; c.noiseSize = 64; c.numMLPLayers = 4; c.numHiddenLayers = 16
                a.hiddenSize = 512; a.intermediateSize = 1280
                switch self {
                case .calmM: c.hiddenSize = 1024; c.intermediateSize = 2752; c.numAttentionHeads = 16
                case .calmL: c.hiddenSize = 1536; c.intermediateSize = 4096; c.numAttentionHeads = 16
                default: c.hiddenSize = 2560; c.intermediateSize = 6880; c.numAttentionHeads = 20
                }
                c.numKeyValueHeads = c.numAttentionHeads
            }
            c.patchSize = 4
            c.padTokenID = c.vocabSize - 1; c.eosTokenID = c.vocabSize - 256; c.bosTokenID = c.vocabSize - 257
            if self == .tiny { c.eosTokenID = c.vocabSize - 2; c.bosTokenID = c.vocabSize - 3 }
            a.vocabSize = c.vocabSize; a.latentSize = c.latentSize; a.patchSize = c.patchSize
            a.padTokenID = c.padTokenID; a.eosTokenID = c.eosTokenID; a.bosTokenID = c.bosTokenID
            return (c, a)
        }
    }

    /// Named shapes of the discrete Llama baseline.
    public enum LlamaShape: String, CaseIterable, Sendable {
        /// Small and fast, for tests: hidden 64, 2 layers, 4 heads (2 key/value heads),
        /// intermediate 128, vocabulary 512.
        case llamaTiny = "llama-tiny"
        /// The paper's Transformer-S baseline: hidden 768, 12 layers, 12 heads, intermediate 2048,
        /// the Llama 3 vocabulary (128,256 ids; BOS 128000, EOS 128001).
        case llamaS = "llama-s"

        /// The `config.json` of this shape (architectures `LlamaForCausalLM`, untied `lm_head`).
        public var config: LlamaCausalLMConfig {
            var c = LlamaCausalLMConfig()
            switch self {
            case .llamaTiny:
                c.vocabSize = 512; c.hiddenSize = 64; c.intermediateSize = 128; c.numHiddenLayers = 2
                c.numAttentionHeads = 4; c.numKeyValueHeads = 2
                c.bosTokenID = 510; c.eosTokenIDs = [511]
            case .llamaS:
                c.vocabSize = 128_256; c.hiddenSize = 768; c.intermediateSize = 2048; c.numHiddenLayers = 12
                c.numAttentionHeads = 12; c.numKeyValueHeads = 12
                c.bosTokenID = 128_000; c.eosTokenIDs = [128_001]
            }
            // The same backbone settings as the CALM shapes (CALMConfig's defaults).
            c.rmsNormEps = 1e-6; c.ropeTheta = 10_000; c.maxPositionEmbeddings = 2048
            c.architectures = ["LlamaForCausalLM"]
            return c
        }
    }

    /// Named GPT-2 shapes.
    public enum GPT2Shape: String, CaseIterable, Sendable {
        /// Small and fast, for tests: 2 layers, 64 wide, 4 heads, vocabulary 512, 128 positions
        /// (the shape of the shared `gpt2_tiny` fixture).
        case gpt2Tiny = "gpt2-tiny"
        /// GPT-2 Medium, Token Maturation's backbone: 24 layers, 1024 wide, 16 heads, vocabulary
        /// 50257, 1024 positions (end-of-text id 50256).
        case gpt2Medium = "gpt2-medium"

        /// The `config.json` of this shape (architectures `GPT2LMHeadModel`, tied head, gelu_new).
        public var config: GPT2Config {
            var c = GPT2Config()
            switch self {
            case .gpt2Tiny:
                c.vocabSize = 512; c.nEmbd = 64; c.nLayer = 2; c.nHead = 4; c.nPositions = 128
                c.bosTokenID = 511; c.eosTokenID = 511
            case .gpt2Medium:
                c.vocabSize = 50257; c.nEmbd = 1024; c.nLayer = 24; c.nHead = 16; c.nPositions = 1024
                c.bosTokenID = 50256; c.eosTokenID = 50256
            }
            c.layerNormEpsilon = 1e-5
            c.activationFunction = "gelu_new"
            c.architectures = ["GPT2LMHeadModel"]
            return c
        }
    }

    /// Every (name, shape) of a `GPT2LMHeadModel.save_pretrained` checkpoint with this config:
    /// `transformer.wte.weight`, `transformer.wpe.weight`, `transformer.h.N.*` (every `c_*`
    /// weight a `Conv1D`, stored (in, out), with its bias), `transformer.ln_f.*`, and
    /// `lm_head.weight` only when the head is untied.
    public static func gpt2Tensors(_ c: GPT2Config) -> [(String, [Int])] {
        let e = c.nEmbd, inner = c.innerSize
        var t: [(String, [Int])] = [("transformer.wte.weight", [c.vocabSize, e]), ("transformer.wpe.weight", [c.nPositions, e])]
        for l in 0..<c.nLayer {
            let p = "transformer.h.\(l)"
            t += [("\(p).ln_1.weight", [e]), ("\(p).ln_1.bias", [e]),
                  ("\(p).attn.c_attn.weight", [e, 3 * e]), ("\(p).attn.c_attn.bias", [3 * e]),
                  ("\(p).attn.c_proj.weight", [e, e]), ("\(p).attn.c_proj.bias", [e]),
                  ("\(p).ln_2.weight", [e]), ("\(p).ln_2.bias", [e]),
                  ("\(p).mlp.c_fc.weight", [e, inner]), ("\(p).mlp.c_fc.bias", [inner]),
                  ("\(p).mlp.c_proj.weight", [inner, e]), ("\(p).mlp.c_proj.bias", [e])]
        }
        t += [("transformer.ln_f.weight", [e]), ("transformer.ln_f.bias", [e])]
        if !c.tieWordEmbeddings { t.append(("lm_head.weight", [c.vocabSize, e])) }
        return t
    }

    /// Named shapes of Token Maturation models (spec: shared/spec/token-maturation.md).
    public enum TokenMaturationShape: String, CaseIterable, Sendable {
        /// Small and fast, for tests: a Llama backbone of hidden 64, 2 layers, 4 heads (2 key/value
        /// heads), intermediate 128, vocabulary 512 (EOS 511), and the TM defaults (K = 16, α_max 0.5).
        case tmTiny = "tm-tiny"
        /// The same on the paper's backbone kind: a GPT-2 of 2 layers, 64 wide, vocabulary 512.
        case tmGPT2Tiny = "tm-gpt2-tiny"
        /// The paper's size: GPT-2 Medium (24 layers, 1024 wide, 16 heads, vocabulary 50257, 1024
        /// positions) with the TM modules.
        case tmGPT2Medium = "tm-gpt2-medium"

        /// The `config.json` of this shape.
        public var config: TokenMaturationConfig {
            switch self {
            case .tmTiny:
                var llama = LlamaShape.llamaTiny.config
                llama.architectures = []
                llama.tieWordEmbeddings = true   // E is the only vocabulary matrix: no lm_head
                llama.maxPositionEmbeddings = 512
                return TokenMaturationConfig(llama: llama)
            case .tmGPT2Tiny: return TokenMaturationConfig(gpt2: GPT2Shape.gpt2Tiny.config)
            case .tmGPT2Medium: return TokenMaturationConfig(gpt2: GPT2Shape.gpt2Medium.config)
            }
        }
    }

    /// Every (name, shape) of a Token Maturation checkpoint: the backbone's Hugging Face tensors (its
    /// token embedding is E; no LM head) and the TM modules (`tm.alpha_mlp.*`, `tm.tail_length.*`,
    /// `tm.head.*`; Docs/TokenMaturation.md).
    public static func tokenMaturationTensors(_ c: TokenMaturationConfig) throws -> [(String, [Int])] {
        let d = c.hiddenSize
        var t: [(String, [Int])]
        switch c.backbone {
        case .llama:
            guard var llama = c.llama else {
                throw ModelError.invalidConfig(file: "config", key: "backbone", reason: "llama backbone without its sizes")
            }
            llama.tieWordEmbeddings = true
            t = llamaTensors(llama)
        case .gpt2:
            guard var gpt2 = c.gpt2 else {
                throw ModelError.invalidConfig(file: "config", key: "backbone", reason: "gpt2 backbone without its sizes")
            }
            gpt2.tieWordEmbeddings = true   // E (wte) is the only vocabulary matrix: no lm_head
            t = gpt2Tensors(gpt2)
        }
        t += [("tm.alpha_mlp.0.weight", [d, c.alphaChannels]), ("tm.alpha_mlp.0.bias", [d]),
              ("tm.alpha_mlp.2.weight", [d, d]), ("tm.alpha_mlp.2.bias", [d]),
              ("tm.tail_length.embedding.weight", [c.maxTailLength, d]),
              ("tm.tail_length.proj.weight", [2 * d, d]), ("tm.tail_length.proj.bias", [2 * d]),
              ("tm.head.weight", [d, d]), ("tm.head.bias", [d])]
        return t
    }

    /// Writes a Token Maturation folder (`config.json` with every TM key, `model.safetensors`) that
    /// `TokenMaturationModel.load` reads. All weights are random (the modules too, so every code path
    /// does something; a training run would zero-initialise the conditioning outputs and start the head
    /// at the identity).
    ///
    /// - Throws: `ModelError.invalidParameter` for a non-float dtype, `ModelError.invalidConfig` for
    ///   an unusable config or a backbone this build can't write.
    public static func writeTokenMaturation(config c: TokenMaturationConfig, dtype: DType, to directory: URL, seed: UInt64 = 0) throws {
        try requireFloatWeights(dtype)
        try c.validate(file: "config")
        var index: UInt64 = 0
        try writeWeights(try tokenMaturationTensors(c), dtype: dtype, seed: seed, index: &index, to: directory)
        var object = try c.jsonObject()
        object["torch_dtype"] = dtype.torchName
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: directory.appendingPathComponent("config.json"))
    }

    /// Every (name, shape) of a Hugging Face `LlamaForCausalLM` checkpoint with this config:
    /// `model.embed_tokens.weight`, `model.layers.N.*`, `model.norm.weight` and, unless the
    /// embeddings are tied, `lm_head.weight`.
    public static func llamaTensors(_ c: LlamaCausalLMConfig) -> [(String, [Int])] {
        let h = c.hiddenSize, i = c.intermediateSize, kv = c.kvHeads * (h / max(c.numAttentionHeads, 1))
        var t: [(String, [Int])] = [("model.embed_tokens.weight", [c.vocabSize, h])]
        for l in 0..<c.numHiddenLayers {
            let p = "model.layers.\(l)"
            t += [("\(p).self_attn.q_proj.weight", [h, h]), ("\(p).self_attn.k_proj.weight", [kv, h]),
                  ("\(p).self_attn.v_proj.weight", [kv, h]), ("\(p).self_attn.o_proj.weight", [h, h]),
                  ("\(p).mlp.gate_proj.weight", [i, h]), ("\(p).mlp.up_proj.weight", [i, h]),
                  ("\(p).mlp.down_proj.weight", [h, i]), ("\(p).input_layernorm.weight", [h]),
                  ("\(p).post_attention_layernorm.weight", [h])]
        }
        t.append(("model.norm.weight", [h]))
        if !c.tieWordEmbeddings { t.append(("lm_head.weight", [c.vocabSize, h])) }
        return t
    }

    /// Every (name, shape) of an autoencoder with this config, in state-dict order (one tied name).
    public static func autoencoderTensors(_ a: AutoencoderConfig) -> [(String, [Int])] {
        let h = a.hiddenSize, i = a.intermediateSize, z = a.latentSize, k = a.patchSize
        var t: [(String, [Int])] = [("encoder.embed_tokens.weight", [a.vocabSize, h])]
        func layer(_ p: String) {
            t += [("\(p).mlp.gate_proj.weight", [i, h]), ("\(p).mlp.up_proj.weight", [i, h]),
                  ("\(p).mlp.down_proj.weight", [h, i]), ("\(p).layernorm.weight", [h])]
        }
        for l in 0..<a.numEncoderLayers { layer("encoder.encoder_layers.\(l)") }
        t += [("encoder.hidden_to_latent.weight", [2 * z, h]), ("encoder.hidden_to_latent.bias", [2 * z]),
              ("encoder.squeeze_layer.weight", [h, k * h]), ("encoder.squeeze_layer.bias", [h]),
              ("encoder.norm.weight", [h]),
              ("decoder.latent_to_hidden.weight", [h, z]), ("decoder.latent_to_hidden.bias", [h])]
        for l in 0..<a.numDecoderLayers { layer("decoder.decoder_layers.\(l)") }
        t += [("decoder.expand_layer.weight", [k * h, h]), ("decoder.expand_layer.bias", [k * h]),
              ("decoder.norm.weight", [h])]
        return t
    }

    /// Every (name, shape) a CALM checkpoint owns (no autoencoder, head under `mlp_generator.`).
    public static func calmTensors(_ c: CALMConfig) -> [(String, [Int])] {
        let h = c.hiddenSize, i = c.intermediateSize, kv = c.kvHeads * c.headDim
        var t: [(String, [Int])] = [("transformer.embed_tokens.weight", [c.vocabSize, h])]
        for l in 0..<c.numHiddenLayers {
            let p = "transformer.layers.\(l)"
            t += [("\(p).self_attn.q_proj.weight", [h, h]), ("\(p).self_attn.k_proj.weight", [kv, h]),
                  ("\(p).self_attn.v_proj.weight", [kv, h]), ("\(p).self_attn.o_proj.weight", [h, h]),
                  ("\(p).mlp.gate_proj.weight", [i, h]), ("\(p).mlp.up_proj.weight", [i, h]),
                  ("\(p).mlp.down_proj.weight", [h, i]), ("\(p).input_layernorm.weight", [h]),
                  ("\(p).post_attention_layernorm.weight", [h])]
        }
        t.append(("transformer.norm.weight", [h]))
        let g = "mlp_generator"
        t += [("\(g).noise_embd.weight", [h, c.noiseSize]), ("\(g).noise_embd.bias", [h]),
              ("\(g).hidden_embd.weight", [h, h]), ("\(g).hidden_embd.bias", [h]),
              ("\(g).norm_hidden.weight", [h]), ("\(g).norm_hidden.bias", [h]),
              ("\(g).norm_noise.weight", [h]), ("\(g).norm_noise.bias", [h])]
        for m in 0..<c.numMLPLayers {
            let p = "\(g).mlp_blocks.\(m)"
            t += [("\(p).in_ln.weight", [h]), ("\(p).in_ln.bias", [h]),
                  ("\(p).linears.0.weight", [h, 2 * h]), ("\(p).linears.0.bias", [h]),
                  ("\(p).linears.2.weight", [h, h]), ("\(p).linears.2.bias", [h]),
                  ("\(p).linears.4.weight", [2 * h, h]), ("\(p).linears.4.bias", [2 * h]),
                  ("\(p).down_proj.weight", [h, h]), ("\(p).down_proj.bias", [h])]
        }
        t += [("\(g).final_layer.in_ln.weight", [h]), ("\(g).final_layer.in_ln.bias", [h]),
              ("\(g).final_layer.linears.0.weight", [h, h]), ("\(g).final_layer.linears.0.bias", [h]),
              ("\(g).final_layer.linears.2.weight", [c.latentSize, h]), ("\(g).final_layer.linears.2.bias", [c.latentSize]),
              ("embed_proj.0.weight", [2 * h, c.patchSize * h]), ("embed_proj.0.bias", [2 * h]),
              ("embed_proj.2.weight", [h, 2 * h]), ("embed_proj.2.bias", [h]),
              ("embed_proj.3.weight", [h]), ("embed_proj.3.bias", [h])]
        return t
    }

    /// Writes a model folder. `embedAutoencoder` puts the autoencoder under `ae_model.*` in the
    /// CALM file (as the reference saves it) instead of a separate `autoencoder/` folder.
    ///
    /// `headNoiseScale` sets the energy head's `norm_noise` weight (1 by default): near 0 the head's
    /// noise barely reaches its samples, so at T < 1 they cluster and chunks repeat, as on a
    /// well-trained model (random weights otherwise make every sample distinct); 0 makes every
    /// sample of a step equal. Benchmarks of repeat-sensitive work (lazy decoding) use it.
    public static func write(model c: CALMConfig, autoencoder a: AutoencoderConfig, dtype: DType, to directory: URL,
                             seed: UInt64 = 0, embedAutoencoder: Bool = false, headNoiseScale: Float = 1) throws {
        try requireFloatWeights(dtype)
        try c.validate(file: "config"); try a.validate(file: "autoencoder config")
        guard headNoiseScale.isFinite, headNoiseScale >= 0 else {
            throw ModelError.invalidParameter(name: "headNoiseScale", reason: "must be finite and ≥ 0, got \(headNoiseScale)")
        }
        let constants = headNoiseScale == 1 ? [:] : ["mlp_generator.norm_noise.weight": headNoiseScale]
        var config = c
        config.torchDType = dtype.torchName
        var aeConfig = a
        aeConfig.torchDType = dtype.torchName
        var index: UInt64 = 0
        if embedAutoencoder {
            // The reference's layout: one file, the autoencoder's names under `ae_model.`.
            let embedded = autoencoderTensors(a).map { ("ae_model." + $0.0, $0.1) }
            try writeWeights(calmTensors(c) + embedded, dtype: dtype, seed: seed, index: &index, to: directory, constants: constants)
            config.aePath = nil
        } else {
            try writeWeights(calmTensors(c), dtype: dtype, seed: seed, index: &index, to: directory, constants: constants)
            let aeDir = directory.appendingPathComponent("autoencoder")
            try writeWeights(autoencoderTensors(a), dtype: dtype, seed: seed, index: &index, to: aeDir)
            try writeJSON(aeConfig, architecture: "Autoencoder", to: aeDir.appendingPathComponent("config.json"))
            config.aePath = "autoencoder"
        }
        try writeJSON(config, architecture: "EnergyTransformer", to: directory.appendingPathComponent("config.json"))
    }

    /// Writes a Hugging Face `LlamaForCausalLM` folder (`config.json` with architectures
    /// ["LlamaForCausalLM"] and model_type "llama", `model.safetensors` with the Hugging Face
    /// names) that `LlamaCausalLM.load` and `ModelLoader` read. Tensors are streamed to the file,
    /// so the Llama 3 vocabulary of `llama-s` costs no memory beyond one chunk.
    ///
    /// - Throws: `ModelError.invalidParameter` for a non-float dtype, `ModelError.invalidConfig`
    ///   for sizes the engine cannot run, file-system errors naming the path.
    public static func writeLlama(config c: LlamaCausalLMConfig, dtype: DType, to directory: URL, seed: UInt64 = 0) throws {
        try requireFloatWeights(dtype)
        try c.validate(file: "config")
        var config = c
        config.torchDType = dtype.torchName
        config.modelType = "llama"
        var index: UInt64 = 0
        try writeWeights(llamaTensors(c), dtype: dtype, seed: seed, index: &index, to: directory)
        try writeJSON(config, architecture: "LlamaForCausalLM", to: directory.appendingPathComponent("config.json"))
    }

    /// Writes a GPT-2 folder as `GPT2LMHeadModel.save_pretrained` does (`config.json` with
    /// architectures ["GPT2LMHeadModel"] and model_type "gpt2"; `model.safetensors` with
    /// `transformer.` keys, `Conv1D` weights (in, out), no `lm_head.weight` when tied) that
    /// `GPT2CausalLM.load` and `ModelLoader.kind` read. Streamed, so `gpt2-medium` costs no memory
    /// beyond one chunk. Random contents: biases 0, LayerNorm weights 1, matrices N(0, 1/fan-in).
    ///
    /// - Throws: `ModelError.invalidParameter` for a non-float dtype, `ModelError.invalidConfig`
    ///   for sizes the engine cannot run, file-system errors naming the path.
    public static func writeGPT2(config c: GPT2Config, dtype: DType, to directory: URL, seed: UInt64 = 0) throws {
        try requireFloatWeights(dtype)
        try c.validate(file: "config")
        var config = c
        config.torchDType = dtype.torchName
        config.modelType = "gpt2"
        var index: UInt64 = 0
        // Conv1D weights are (in, out): their fan-in is the first dimension; wte/wpe/lm_head the second.
        try writeWeights(gpt2Tensors(c), dtype: dtype, seed: seed, index: &index, to: directory,
                         fanIn: { name, shape in name.contains(".c_") ? shape[0] : shape[1] })
        try writeJSON(config, architecture: "GPT2LMHeadModel", to: directory.appendingPathComponent("config.json"))
    }

    enum Init { case zero, constant(Float), normal(Float) }

    /// How a random tensor is filled (the writers and `RandomTensorSource` share it): biases 0,
    /// norm weights 1, embeddings N(0, 1), other matrices N(0, 1/fan-in).
    static func initialisation(name: String, shape: [Int], fanIn: (String, [Int]) -> Int = { $1[1] }) -> Init {
        name.hasSuffix("bias") ? .zero
            : shape.count == 1 ? .constant(1)
            : name.contains("embed_tokens") ? .normal(1)
            : .normal(1 / Float(fanIn(name, shape)).squareRoot())
    }

    /// Every writer takes float weights only.
    static func requireFloatWeights(_ dtype: DType) throws {
        guard dtype.isFloatingWeight else {
            throw ModelError.invalidParameter(name: "dtype", reason: "must be f32, f16 or bf16, got \(dtype.rawValue)")
        }
    }

    /// Creates `directory` and streams `tensors`, with `addRandom`'s contents, to its
    /// `model.safetensors`; tensors named in `constants` are filled with that value instead.
    static func writeWeights(_ tensors: [(String, [Int])], dtype: DType, seed: UInt64, index: inout UInt64, to directory: URL,
                             fanIn: (String, [Int]) -> Int = { $1[1] }, constants: [String: Float] = [:]) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var writer = SafetensorsWriter(metadata: ["format": "pt"])
        addRandom(tensors, dtype: dtype, seed: seed, index: &index, to: &writer, fanIn: fanIn, constants: constants)
        try writer.write(to: directory.appendingPathComponent("model.safetensors"))
    }

    /// Queues `list` on `w` with deterministic random contents: biases 0, norm weights 1,
    /// embeddings N(0, 1), other matrices N(0, 1/fan-in) (`fanIn`: the second dimension, as in
    /// a Linear's (out, in), unless given). `index` numbers the tensors across calls, so each
    /// gets its own stream from `seed`.
    static func addRandom(_ list: [(String, [Int])], dtype: DType, seed: UInt64, index: inout UInt64,
                          to w: inout SafetensorsWriter, fanIn: (String, [Int]) -> Int = { $1[1] }, constants: [String: Float] = [:]) {
        for (name, shape) in list {
            index += 1
            let tensorSeed = seed &* 0x9E37_79B9_7F4A_7C15 &+ index
            let kind = constants[name].map { .constant($0) } ?? initialisation(name: name, shape: shape, fanIn: fanIn)
            w.add(name: name, dtype: dtype, shape: shape) { byteOffset, chunk in
                fill(chunk, dtype: dtype, seed: tensorSeed, elementOffset: byteOffset / dtype.size, kind: kind)
            }
        }
    }

    static func writeJSON<T: Encodable>(_ value: T, architecture: String, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard var object = try JSONSerialization.jsonObject(with: try encoder.encode(value)) as? [String: Any] else {
            throw ModelError.invalidConfig(file: url.path, key: "", reason: "a config did not encode as a JSON object")
        }
        object["architectures"] = [architecture]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: url)
    }

    /// Deterministic per-element values: element e of a tensor depends only on (seed, e), so
    /// chunked writing gives the same file whatever the chunk size.
    static func fill(_ chunk: UnsafeMutableRawBufferPointer, dtype: DType, seed: UInt64, elementOffset: Int, kind: Init) {
        let count = chunk.count / dtype.size
        var values = [Float](repeating: 0, count: count)
        switch kind {
        case .zero: break
        case let .constant(c): for i in 0..<count { values[i] = c }
        case let .normal(std):
            for i in 0..<count {
                // Counter-based: hash (seed, index) to two uniforms, Box–Muller.
                let x = mix(seed &+ UInt64(elementOffset + i) &* 0xD1B5_4A32_D192_ED03)
                let u1 = (Float(x >> 40) + 1) * 0x1p-24
                let u2 = Float((x >> 16) & 0xFF_FFFF) * 0x1p-24
                values[i] = std * (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
            }
        }
        values.withUnsafeBufferPointer { v in
            calm_convert_from_f32(v.baseAddress!, chunk.baseAddress!, dtype.kernelDType!, count)
        }
    }

    static func mix(_ v: UInt64) -> UInt64 {
        var z = v &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
