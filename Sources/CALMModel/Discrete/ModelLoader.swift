import Foundation

/// A loaded language model of either kind this engine runs.
public enum AnyLanguageModel: Sendable {
    /// A CALM energy transformer (chunks of K tokens, implicit head).
    case calm(CALMModel)
    /// A discrete Llama causal LM (Hugging Face `LlamaForCausalLM`).
    case llama(LlamaCausalLM)
}

/// Chooses the model kind from a folder's `config.json` and loads it.
///
/// ```swift
/// switch try ModelLoader.load(directory: url) {
/// case .calm(let model): ...
/// case .llama(let model): ...
/// }
/// ```
public enum ModelLoader {
    /// Kinds of language model folder.
    public enum Kind: String, Sendable {
        case calm, llama
        /// A Token Maturation model: load it with `TokenMaturationModel.load` (it has no
        /// `AnyLanguageModel` case, evaluation adapter or engine family yet).
        case tokenMaturation = "token_maturation"
    }

    /// The kind of model in `directory` (reads only `config.json`). Autoencoder folders and
    /// unknown configs are errors naming the file.
    public static func kind(directory: URL) throws -> Kind {
        let (_, json, path) = try ModelFolder.configData(directory)
        switch try ModelFolder.kind(of: json, path: path) {
        case .calm: return .calm
        case .llama: return .llama
        case .tokenMaturation: return .tokenMaturation
        case .autoencoder:
            throw ModelError.unknownModel(path: path, reason: "config.json describes an autoencoder, not a language model")
        }
    }

    /// Loads the model in `directory`, CALM or Llama according to its `config.json`.
    public static func load(directory: URL, options: LoadOptions = LoadOptions()) throws -> AnyLanguageModel {
        switch try kind(directory: directory) {
        case .calm: return .calm(try CALMModel.load(directory: directory, options: options))
        case .llama: return .llama(try LlamaCausalLM.load(directory: directory, options: options))
        case .tokenMaturation:
            throw ModelError.unknownModel(path: directory.appendingPathComponent("config.json").path,
                                          reason: "a Token Maturation model has no token probabilities to serve here; load it with TokenMaturationModel.load")
        }
    }
}
