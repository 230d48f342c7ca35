import CALMModel
import CALMTensor
import Foundation

/// `calm random-model`: a complete model folder with random weights.
enum RandomModelCommand {
    static let help = """
    usage: calm random-model (--shape calm-m|calm-l|calm-xl|tiny | --config FILE) --out DIR [options]

      --shape NAME        the paper's shapes (calm-m: hidden 1024, 16 layers, 16 heads, intermediate 2752,
                          vocab 128257, autoencoder hidden 512 / latent 128), or tiny
      --config FILE       a CALM config.json to use instead (its autoencoder gets the default AE sizes
                          unless --ae-config is given)
      --ae-config FILE    autoencoder config.json
      --dtype D           f32, f16 or bf16 (default f32)
      --seed S            weight seed (default 0)
      --embed-autoencoder store the autoencoder under ae_model.* in the model file, as the reference does
      --out DIR           output folder
    """

    static func run(_ raw: [String]) throws {
        if raw.contains("--help") || raw.contains("-h") { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: ["embed-autoencoder"])
        let shapeName = a.string("shape")
        let configPath = a.string("config")
        let aeConfigPath = a.string("ae-config")
        let dtypeName = a.string("dtype") ?? "f32"
        let seed = a.string("seed")
        let out = URL(fileURLWithPath: try a.required("out"))
        let embed = a.flag("embed-autoencoder")
        try a.finish()
        guard let dtype = DType(userName: dtypeName) else { throw UsageError("option --dtype: '\(dtypeName)' is not f32, f16 or bf16") }
        var seedValue: UInt64 = 0
        if let seed {
            guard let s = UInt64(seed) else { throw UsageError("option --seed: '\(seed)' is not a non-negative integer") }
            seedValue = s
        }
        var model: CALMConfig, ae: AutoencoderConfig
        switch (shapeName, configPath) {
        case let (name?, nil):
            guard let shape = RandomModelWriter.Shape(rawValue: name) else {
                throw UsageError("option --shape: '\(name)' is not one of \(RandomModelWriter.Shape.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            (model, ae) = shape.configs
        case let (nil, path?):
            model = try JSONDecoder().decode(CALMConfig.self, from: try Data(contentsOf: URL(fileURLWithPath: path)))
            ae = AutoencoderConfig()
            ae.vocabSize = model.vocabSize; ae.patchSize = model.patchSize; ae.latentSize = model.latentSize
            ae.padTokenID = model.padTokenID; ae.bosTokenID = model.bosTokenID; ae.eosTokenID = model.eosTokenID
        default:
            throw UsageError("give exactly one of --shape or --config")
        }
        if let aeConfigPath {
            ae = try JSONDecoder().decode(AutoencoderConfig.self, from: try Data(contentsOf: URL(fileURLWithPath: aeConfigPath)))
        }
        let start = Date()
        try RandomModelWriter.write(model: model, autoencoder: ae, dtype: dtype, to: out, seed: seedValue, embedAutoencoder: embed)
        FileHandle.standardError.write(Data(String(format: "wrote %@ (%@) in %.1f s\n", out.path, dtype.rawValue, Date().timeIntervalSince(start)).utf8))
    }
}
