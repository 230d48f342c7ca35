import CALMEngine
import CALMModel
import Foundation

/// The model families that may ship a built-in model, by the names the CLI's `--family` takes.
/// CALM (`DefaultModel`) and Token Maturation (`TokenMaturationModel`) have one; the discrete
/// baseline does not (its 14 M parameters would break the package's 80 MB budget for model files).
/// `DefaultModel.directory(family:)` is the one place a family becomes a folder.
///
/// ```swift
/// let folder = try DefaultModel.directory(family: .tokenMaturation)
/// let engine = try CALMEngine(directory: folder)
/// ```
public enum BuiltInFamily: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Token Maturation (`tm`).
    case tokenMaturation = "tm"
    /// CALM (`calm`): the built-in `DefaultModel`.
    case calm
    /// The discrete Llama baseline (`llama`).
    case llama

    /// The name `--family` takes.
    public var description: String { rawValue }

    /// The family named `name` ("tm", "calm" or "llama").
    ///
    /// - Throws: `BuiltInModelError.unknownFamily` for any other name.
    public init(name: String) throws {
        guard let family = BuiltInFamily(rawValue: name) else { throw BuiltInModelError.unknownFamily(name) }
        self = family
    }

    /// The family's model folder inside the resource bundle (and the package's source folder) and
    /// the environment variable that names a folder to use instead; nil for a family that ships none.
    var builtInFolder: (name: String, environmentOverride: String)? {
        switch self {
        case .calm: return (DefaultModel.folderName, DefaultModel.environmentOverride)
        case .tokenMaturation: return ("TokenMaturationModel", "CALM_DEFAULT_TM_MODEL")
        case .llama: return nil
        }
    }
}

/// Why a family has no built-in model folder.
public enum BuiltInModelError: Error, Equatable, CustomStringConvertible {
    /// `family` is a known family that ships no built-in model yet.
    case notAvailable(family: BuiltInFamily)
    /// The name is not a family.
    case unknownFamily(String)

    /// The message, naming the family.
    public var description: String {
        let available = BuiltInFamily.allCases.filter(DefaultModel.hasBuiltInModel).map(\.rawValue).joined(separator: ", ")
        switch self {
        case let .notAvailable(family):
            return "family '\(family)' has no built-in model yet (families with one: \(available))"
        case let .unknownFamily(name):
            return "family '\(name)' is not one of \(BuiltInFamily.allCases.map(\.rawValue).joined(separator: ", "))"
        }
    }
}

extension DefaultModel {
    /// Whether `family` ships a built-in model.
    public static func hasBuiltInModel(_ family: BuiltInFamily) -> Bool {
        family.builtInFolder != nil
    }

    /// The built-in model folder of `family`: the one function `--family` resolves through.
    ///
    /// Looked up as `directory()` looks up the CALM model, under the family's own folder name and
    /// environment variable (`CALM_DEFAULT_TM_MODEL` for Token Maturation).
    ///
    /// - Throws: `BuiltInModelError.notAvailable` for a family without a built-in model, and
    ///   `ModelError.unknownModel` when the family's files are missing.
    public static func directory(family: BuiltInFamily) throws -> URL {
        guard let folder = family.builtInFolder else { throw BuiltInModelError.notAvailable(family: family) }
        return try resolve(environment: ProcessInfo.processInfo.environment, mainBundle: Bundle.main.bundleURL,
                           sourceFolder: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(folder.name),
                           moduleBundle: { Bundle.module.bundleURL }, folderName: folder.name,
                           environmentOverride: folder.environmentOverride)
    }

    /// One call from nothing to a running engine over `family`'s built-in model and its tokenizer
    /// (every built-in folder holds the same tokenizer files).
    ///
    /// ```swift
    /// let engine = try DefaultModel.engine(family: .tokenMaturation)
    /// var parameters = SamplingParameters(maxTokens: 48, seed: 1)
    /// parameters.maturation = TokenMaturationParameters(tailLength: 16)
    /// for await event in try engine.generate(prompt: "Once upon a time", parameters: parameters) {
    ///     if case let .chunk(chunk) = event { print(chunk.text, terminator: "") }
    /// }
    /// ```
    ///
    /// - Throws: what `directory(family:)` throws, and the loader's typed errors.
    public static func engine(family: BuiltInFamily, configuration: EngineConfiguration = EngineConfiguration(),
                              options: LoadOptions = LoadOptions()) throws -> CALMEngine {
        try CALMEngine(directory: directory(family: family), configuration: configuration, loadOptions: options)
    }
}
