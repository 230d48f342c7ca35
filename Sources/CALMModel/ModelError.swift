import Foundation

/// Errors from loading or running a model. Every case names the file, key, parameter or request
/// at fault.
public enum ModelError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// A config value is missing, malformed or inconsistent.
    case invalidConfig(file: String, key: String, reason: String)
    /// A weight has the wrong shape for the config.
    case weightShapeMismatch(file: String, key: String, expected: [Int], actual: [Int])
    /// A required weight is absent (all accepted names are listed).
    case missingWeight(file: String, keys: [String])
    /// A weight's element type can't be used as a model weight.
    case unsupportedWeightDType(file: String, key: String, dtype: String)
    /// Two names that must hold the same tensor (tied/aliased) hold different values.
    case aliasMismatch(file: String, keys: [String])
    /// The folder is not a model this engine knows.
    case unknownModel(path: String, reason: String)
    /// A generation or evaluation parameter is invalid.
    case invalidParameter(name: String, reason: String)
    /// The prompt can't be used (empty, too long, ids out of range).
    case invalidPrompt(reason: String)
    /// The model produced NaN or infinite values where it must not (names what).
    case nonFinite(what: String)

    public var description: String {
        switch self {
        case let .invalidConfig(file, key, reason): return "\(file): config key '\(key)': \(reason)"
        case let .weightShapeMismatch(file, key, expected, actual):
            return "\(file): weight '\(key)' has shape \(actual), expected \(expected)"
        case let .missingWeight(file, keys):
            return "\(file): missing weight '\(keys.joined(separator: "' or '"))'"
        case let .unsupportedWeightDType(file, key, dtype):
            return "\(file): weight '\(key)' has dtype \(dtype); weights must be F32, F16 or BF16"
        case let .aliasMismatch(file, keys):
            return "\(file): tied weights '\(keys.joined(separator: "', '"))' differ"
        case let .unknownModel(path, reason): return "\(path): \(reason)"
        case let .invalidParameter(name, reason): return "parameter '\(name)': \(reason)"
        case let .invalidPrompt(reason): return "prompt: \(reason)"
        case let .nonFinite(what): return "the model produced non-finite values: \(what)"
        }
    }

    public var errorDescription: String? { description }
}
