import CALMModel
import Foundation

/// The model families that may ship a built-in model, by the names the CLI's `--family` takes.
/// Only CALM has one today (`DefaultModel`); `DefaultModel.directory(family:)` is the one place a
/// family becomes a folder, so the Token Maturation and discrete-baseline built-ins are one case
/// there each when they land.
///
/// ```swift
/// let folder = try DefaultModel.directory(family: .calm)
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
        switch family {
        case .calm: return true
        case .tokenMaturation, .llama: return false
        }
    }

    /// The built-in model folder of `family`: the one function `--family` resolves through.
    ///
    /// - Throws: `BuiltInModelError.notAvailable` for a family without a built-in model yet, and
    ///   what `directory()` throws when the CALM model's files are missing.
    public static func directory(family: BuiltInFamily) throws -> URL {
        switch family {
        case .calm: return try directory()
        case .tokenMaturation, .llama: throw BuiltInModelError.notAvailable(family: family)
        }
    }
}
