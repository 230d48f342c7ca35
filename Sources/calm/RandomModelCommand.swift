import CALMModel
import CALMTensor
import Foundation

/// `calm random-model`: a complete model folder with random weights.
enum RandomModelCommand {
    static let help = """
    usage: calm random-model (--shape NAME | --config FILE) --out DIR [options]

      --shape NAME        calm-m, calm-l, calm-xl: the paper's CALM shapes (calm-m: hidden 1024, 16 layers,
                          16 heads, intermediate 2752, vocab 128257, autoencoder hidden 512 / latent 128);
                          tiny: a small CALM model for tests;
                          llama-s: the paper's Transformer-S baseline as a Hugging Face LlamaForCausalLM folder
                          (hidden 768, 12 layers, 12 heads, intermediate 2048, Llama 3 vocab 128256);
                          llama-tiny: a small LlamaForCausalLM for tests (hidden 64, 2 layers, vocab 512);
                          gpt2-medium: GPT-2 Medium (Token Maturation's backbone) as a Hugging Face
                          GPT2LMHeadModel folder (24 layers, 1024 wide, 16 heads, vocab 50257, 1024 positions);
                          gpt2-tiny: a small GPT2LMHeadModel for tests (2 layers, 64 wide, vocab 512);
                          tm-tiny: a small Token Maturation model for tests (Llama backbone, hidden 64,
                          2 layers, vocab 512; Docs/TokenMaturation.md); tm-gpt2-tiny: the same on a
                          GPT-2 backbone (2 layers, 64 wide); tm-gpt2-medium: the paper's size (GPT-2
                          Medium backbone: 24 layers, 1024 wide, vocab 50257)
      --config FILE       a CALM config.json to use instead (its autoencoder gets the default AE sizes
                          unless --ae-config is given)
      --ae-config FILE    autoencoder config.json (CALM shapes only)
      --dtype D           f32, f16 or bf16 (default f32)
      --seed S            weight seed (default 0)
      --embed-autoencoder store the autoencoder under ae_model.* in the model file, as the reference does
      --head-noise-scale G  CALM shapes: the energy head's norm_noise weight (default 1). Near 0 the head's
                          samples cluster and chunks repeat at T < 1, as on a trained model (e.g. 0.02);
                          0 makes every sample of a step equal
      --out DIR           output folder; must be empty or absent
      --force             write into a non-empty DIR (files of the same names are replaced, others kept)
    """

    static func run(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: ["embed-autoencoder", "force"],
                              values: ["shape", "config", "ae-config", "dtype", "seed", "out", "head-noise-scale"])
        let shapeName = a.string("shape")
        let configPath = a.string("config")
        let aeConfigPath = a.string("ae-config")
        let dtypeName = a.string("dtype") ?? "f32"
        let seed = a.string("seed")
        let out = URL(fileURLWithPath: try a.required("out"))
        let embed = a.flag("embed-autoencoder")
        let force = a.flag("force")
        let noiseScaleText = a.string("head-noise-scale")
        try a.finish()
        guard let dtype = DType(userName: dtypeName) else { throw UsageError("option --dtype: '\(dtypeName)' is not f32, f16 or bf16") }
        var seedValue: UInt64 = 0
        if let seed {
            guard let s = UInt64(seed) else { throw UsageError("option --seed: '\(seed)' is not a non-negative integer") }
            seedValue = s
        }
        let shapeNames = (RandomModelWriter.Shape.allCases.map(\.rawValue) + RandomModelWriter.LlamaShape.allCases.map(\.rawValue)
                          + RandomModelWriter.GPT2Shape.allCases.map(\.rawValue)
                          + RandomModelWriter.TokenMaturationShape.allCases.map(\.rawValue))
        var llama: LlamaCausalLMConfig?
        var gpt2: GPT2Config?
        var tokenMaturation: TokenMaturationConfig?
        var calm: (CALMConfig, AutoencoderConfig)?
        switch (shapeName, configPath) {
        case let (name?, nil):
            if let shape = RandomModelWriter.LlamaShape(rawValue: name) {
                if embed || aeConfigPath != nil {
                    throw UsageError("option --\(embed ? "embed-autoencoder" : "ae-config"): a Llama shape has no autoencoder")
                }
                llama = shape.config
            } else if let shape = RandomModelWriter.GPT2Shape(rawValue: name) {
                if embed || aeConfigPath != nil {
                    throw UsageError("option --\(embed ? "embed-autoencoder" : "ae-config"): a GPT-2 shape has no autoencoder")
                }
                gpt2 = shape.config
            } else if let shape = RandomModelWriter.TokenMaturationShape(rawValue: name) {
                if embed || aeConfigPath != nil {
                    throw UsageError("option --\(embed ? "embed-autoencoder" : "ae-config"): a Token Maturation shape has no autoencoder")
                }
                tokenMaturation = shape.config
            } else if let shape = RandomModelWriter.Shape(rawValue: name) {
                calm = shape.configs
            } else {
                throw UsageError("option --shape: '\(name)' is not one of \(shapeNames.joined(separator: ", "))")
            }
        case let (nil, path?):
            let model = try decode(CALMConfig.self, path: path, option: "config")
            var ae = AutoencoderConfig()
            ae.vocabSize = model.vocabSize; ae.patchSize = model.patchSize; ae.latentSize = model.latentSize
            ae.padTokenID = model.padTokenID; ae.bosTokenID = model.bosTokenID; ae.eosTokenID = model.eosTokenID
            calm = (model, ae)
        default:
            throw UsageError("give exactly one of --shape or --config")
        }
        if let aeConfigPath, calm != nil {
            calm?.1 = try decode(AutoencoderConfig.self, path: aeConfigPath, option: "ae-config")
        }
        var headNoiseScale: Float = 1
        if let noiseScaleText {
            guard let g = Float(noiseScaleText), g.isFinite, g >= 0 else {
                throw UsageError("option --head-noise-scale: '\(noiseScaleText)' is not a finite number ≥ 0")
            }
            guard calm != nil else { throw UsageError("option --head-noise-scale: only CALM shapes have an energy head") }
            headNoiseScale = g
        }
        try checkOutput(out, force: force)
        let start = Date()
        if let llama {
            try RandomModelWriter.writeLlama(config: llama, dtype: dtype, to: out, seed: seedValue)
        } else if let gpt2 {
            try RandomModelWriter.writeGPT2(config: gpt2, dtype: dtype, to: out, seed: seedValue)
        } else if let tokenMaturation {
            try RandomModelWriter.writeTokenMaturation(config: tokenMaturation, dtype: dtype, to: out, seed: seedValue)
        } else if let calm {
            try RandomModelWriter.write(model: calm.0, autoencoder: calm.1, dtype: dtype, to: out, seed: seedValue, embedAutoencoder: embed,
                                        headNoiseScale: headNoiseScale)
        }
        FileHandle.standardError.write(Data(String(format: "wrote %@ (%@) in %.1f s\n", out.path, dtype.rawValue, Date().timeIntervalSince(start)).utf8))
    }

    /// Refuses to write into an existing non-empty folder without `--force` (a mistyped --out must
    /// not overwrite a real model), and into a path that is a file.
    static func checkOutput(_ out: URL, force: Bool) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: out.path, isDirectory: &isDirectory) else { return }
        guard isDirectory.boolValue else { throw UsageError("option --out: \(out.path) is a file, not a folder") }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
        if !contents.isEmpty && !force {
            throw UsageError("option --out: \(out.path) is not empty; pass --force to write into it")
        }
    }

    /// A config file decoded, with errors that name the option and the file.
    static func decode<T: Decodable>(_ type: T.Type, path: String, option: String) throws -> T {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw UsageError("option --\(option): cannot read \(path): \(ErrorMessages.fileErrorReason(error))")
        }
        do { return try JSONDecoder().decode(T.self, from: data) } catch let error as DecodingError {
            throw UsageError("option --\(option): \(path): \(ErrorMessages.decodingReason(error))")
        }
    }
}
