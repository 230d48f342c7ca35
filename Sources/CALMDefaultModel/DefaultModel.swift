import CALMEngine
import CALMModel
import CALMTokenizer
import Foundation

/// The trained CALM model that ships with the package: K = 4 chunks, a 5-layer backbone
/// (14.9 M parameters) and an energy head trained in Swift on the public-domain English corpus
/// that `calm corpus` builds, with its byte-level BPE tokenizer (8,192 tokens). Weights are bf16
/// (38.5 MB with the autoencoder); the model card is `MODEL_CARD.md` in the model folder and, with
/// samples and the retraining recipe, in the README. It is small and briefly trained: English
/// words and punctuation, not sense. A Token Maturation model (24 MB, the same tokenizer) ships
/// beside it: `DefaultModel.engine(family: .tokenMaturation)`.
///
/// An app that depends on the package gets it through `Bundle.module` and needs no files of its
/// own:
///
/// ```swift
/// import CALMDefaultModel
/// import CALMEngine
///
/// let engine = try DefaultModel.engine()
/// for await event in try engine.generate(prompt: "Once upon a time",
///                                        parameters: SamplingParameters(maxTokens: 64, temperature: 0.5)) {
///     if case let .chunk(chunk) = event { print(chunk.text, terminator: "") }
/// }
/// ```
public enum DefaultModel {
    /// Name of the model folder inside the resource bundle.
    public static let folderName = "DefaultModel"

    /// Environment variable naming a model folder to use instead of the bundled one (for an
    /// executable copied somewhere without its resource bundle).
    public static let environmentOverride = "CALM_DEFAULT_MODEL"

    /// The model folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json).
    ///
    /// Looked up in `$CALM_DEFAULT_MODEL` if set, else through `Bundle.module`, else in the
    /// package's source folder (the same files, for a checkout whose build folder moved).
    ///
    /// - Throws: `ModelError.unknownModel` naming the places looked at when none holds the model
    ///   (an executable copied away from its `…_CALMDefaultModel.resources` folder, say).
    public static func directory() throws -> URL {
        try directory(family: .calm)
    }

    /// The lookup behind `directory()`, with its inputs injectable for tests.
    ///
    /// `Bundle.module` traps when its bundle is missing, so it is only asked once a
    /// `*_CALMDefaultModel.resources` folder is known to sit next to the executable (where it
    /// looks first).
    static func resolve(environment: [String: String], mainBundle: URL, sourceFolder: URL,
                        moduleBundle: () -> URL, folderName: String = folderName,
                        environmentOverride: String = environmentOverride) throws -> URL {
        let fm = FileManager.default
        func holdsModel(_ url: URL) -> Bool { fm.fileExists(atPath: url.appendingPathComponent("config.json").path) }
        if let path = environment[environmentOverride], !path.isEmpty {
            let url = URL(fileURLWithPath: path)
            guard holdsModel(url) else {
                throw ModelError.unknownModel(path: url.path, reason: "\(environmentOverride) names a folder without config.json")
            }
            return url
        }
        let bundles = (try? fm.contentsOfDirectory(atPath: mainBundle.path))?.filter { $0.hasSuffix("_CALMDefaultModel.resources") } ?? []
        if !bundles.isEmpty {
            let url = moduleBundle().appendingPathComponent(folderName)
            if holdsModel(url) { return url }
        }
        if holdsModel(sourceFolder) { return sourceFolder }
        throw ModelError.unknownModel(
            path: mainBundle.appendingPathComponent("…_CALMDefaultModel.resources").path,
            reason: "the built-in model was not found (no resource bundle next to the executable, no package source folder "
                + "\(sourceFolder.path)); copy the resource bundle next to the executable or set \(environmentOverride) to a model folder")
    }

    /// Loads the model (memory-mapped; about 40 MB).
    public static func load(options: LoadOptions = LoadOptions()) throws -> CALMModel {
        try CALMModel.load(directory: directory(), options: options)
    }

    /// Loads the model's tokenizer.
    public static func tokenizer() throws -> any TextTokenizer {
        try TokenizerLoader.load(directory: directory())
    }

    /// One call from nothing to a running engine over the built-in model and its tokenizer.
    public static func engine(configuration: EngineConfiguration = EngineConfiguration(),
                              options: LoadOptions = LoadOptions()) throws -> CALMEngine {
        try engine(family: .calm, configuration: configuration, options: options)
    }
}
