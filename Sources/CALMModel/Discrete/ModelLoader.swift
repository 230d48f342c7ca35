import Foundation

/// A loaded language model of either kind this engine runs.
public enum AnyLanguageModel: Sendable {
    /// A CALM energy transformer (chunks of K tokens, implicit head).
    case calm(CALMModel)
    /// A discrete Llama causal LM (Hugging Face `LlamaForCausalLM`).
    case llama(LlamaCausalLM)
    /// A Token Maturation model (liquid-tail decoding; no token probabilities, only seeded
    /// maturations, which is what BrierLM needs).
    case tokenMaturation(TokenMaturationModel)
}

/// Chooses the model kind from a folder's `config.json` and loads it.
///
/// ```swift
/// switch try ModelLoader.load(directory: url) {
/// case .calm(let model): print(model.patchSize)
/// case .llama(let model): print(model.vocabSize)
/// case .tokenMaturation(let model): print(model.config.tailLength)
/// }
/// ```
public enum ModelLoader {
    /// The kind of language model in `directory` (reads only `config.json`, through the one
    /// detector `ModelFolder.kind`). Autoencoder folders and unknown configs are errors naming the file.
    public static func kind(directory: URL) throws -> ModelKind {
        let (_, json, path) = try ModelFolder.configData(directory)
        let kind = try ModelFolder.kind(of: json, path: path)
        guard kind != .autoencoder else {
            throw ModelError.unknownModel(path: path, reason: "config.json describes an autoencoder, not a language model")
        }
        return kind
    }

    /// Loads the model in `directory`, CALM, Llama or Token Maturation according to its `config.json`. A GPT-2
    /// folder is `ModelError.unknownModel` saying to use `GPT2CausalLM.load`: no evaluator or
    /// engine family takes GPT-2 yet.
    public static func load(directory: URL, options: LoadOptions = LoadOptions()) throws -> AnyLanguageModel {
        switch try kind(directory: directory) {
        case .calm: return .calm(try CALMModel.load(directory: directory, options: options))
        case .llama: return .llama(try LlamaCausalLM.load(directory: directory, options: options))
        case .gpt2:
            throw ModelError.unknownModel(path: directory.appendingPathComponent("config.json").path,
                                          reason: "a GPT-2 folder: load it with GPT2CausalLM.load; GPT-2 is not yet served as a language model by this loader")
        case .autoencoder:
            throw ModelError.unknownModel(path: directory.appendingPathComponent("config.json").path,
                                          reason: "config.json describes an autoencoder, not a language model")
        case .tokenMaturation: return .tokenMaturation(try TokenMaturationModel.load(directory: directory, options: options))
        }
    }
}
