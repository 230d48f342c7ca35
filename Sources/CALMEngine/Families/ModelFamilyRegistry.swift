import CALMModel
import Foundation

/// The model families the engine serves, in one table keyed by what a folder's `config.json`
/// says (`architectures` / `model_type`, read by `ModelLoader.kind`). Adding a family is one row
/// here plus its folder under Families/ (Docs/AddingAModelFamily.md).
///
/// ```swift
/// let family = try ModelFamilyRegistry.load(directory: url)
/// print(family.name)   // "calm", "llama", "gpt2" or "token_maturation"
/// ```
public enum ModelFamilyRegistry {
    /// One registered family.
    public struct Entry: Sendable {
        public let kind: ModelKind
        public let load: @Sendable (URL, LoadOptions) throws -> any ModelFamily
    }

    public static let entries: [Entry] = [
        Entry(kind: .calm) { dir, options in CALMFamily(model: try CALMModel.load(directory: dir, options: options)) },
        Entry(kind: .llama) { dir, options in DiscreteFamily(model: try LlamaCausalLM.load(directory: dir, options: options)) },
        Entry(kind: .gpt2) { dir, options in DiscreteFamily(model: try GPT2CausalLM.load(directory: dir, options: options)) },
        Entry(kind: .tokenMaturation) { dir, options in TokenMaturationFamily(model: try TokenMaturationModel.load(directory: dir, options: options)) },
    ]

    /// Loads the family the folder's `config.json` names; unknown folders are errors naming the file.
    public static func load(directory: URL, options: LoadOptions = LoadOptions()) throws -> any ModelFamily {
        let kind = try ModelLoader.kind(directory: directory)
        guard let entry = entries.first(where: { $0.kind == kind }) else {
            throw ModelError.unknownModel(path: directory.appendingPathComponent("config.json").path,
                                          reason: "no engine family is registered for \(kind.rawValue) models")
        }
        return try entry.load(directory, options)
    }

    /// The family of an already loaded model.
    public static func family(for model: AnyLanguageModel) -> any ModelFamily {
        switch model {
        case let .calm(m): return CALMFamily(model: m)
        case let .llama(m): return DiscreteFamily(model: m)
        case let .tokenMaturation(m): return TokenMaturationFamily(model: m)
        }
    }
}
