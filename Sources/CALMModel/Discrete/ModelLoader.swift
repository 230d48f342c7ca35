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
        /// A CALM energy transformer.
        case calm
        /// A discrete Llama causal LM.
        case llama
        /// A GPT-2 (`GPT2LMHeadModel`); load it with `GPT2CausalLM.load` (or its backbone alone):
        /// `load(directory:)` has no GPT-2 case yet.
        case gpt2
    }

    /// The kind of model in `directory` (reads only `config.json`). Autoencoder folders and
    /// unknown configs are errors naming the file.
    public static func kind(directory: URL) throws -> Kind {
        let (_, json, path) = try ModelFolder.configData(directory)
        switch try ModelFolder.kind(of: json, path: path) {
        case .calm: return .calm
        case .llama: return .llama
        case .gpt2: return .gpt2
        case .autoencoder:
            throw ModelError.unknownModel(path: path, reason: "config.json describes an autoencoder, not a language model")
        }
    }

    /// Loads the model in `directory`, CALM or Llama according to its `config.json`. A GPT-2
    /// folder is `ModelError.unknownModel` saying to use `GPT2CausalLM.load`: no evaluator or
    /// engine family takes GPT-2 yet.
    public static func load(directory: URL, options: LoadOptions = LoadOptions()) throws -> AnyLanguageModel {
        switch try kind(directory: directory) {
        case .calm: return .calm(try CALMModel.load(directory: directory, options: options))
        case .llama: return .llama(try LlamaCausalLM.load(directory: directory, options: options))
        case .gpt2:
            throw ModelError.unknownModel(path: directory.appendingPathComponent("config.json").path,
                                          reason: "a GPT-2 folder: load it with GPT2CausalLM.load; GPT-2 is not yet served as a language model by this loader")
        }
    }
}
