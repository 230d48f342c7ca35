import Foundation

/// A request body's JSON object as a source of sampling options: the CLI's option names with `_`
/// for `-` (`max_tokens`, `top_p`, `samples`, `sampler`), strict types, `null` read as absent.
/// A field of the wrong type is an `APIError` naming it.
struct RequestFields: SamplingOptionSource {
    let body: JSONValue

    static func fieldName(_ option: String) -> String { option.replacingOccurrences(of: "-", with: "_") }

    private func value(_ option: String) -> (name: String, value: JSONValue)? {
        let name = Self.fieldName(option)
        guard let v = body[name], v != .null else { return nil }
        return (name, v)
    }

    func string(_ option: String) throws -> String? {
        guard let (name, v) = value(option) else { return nil }
        guard case let .string(s) = v else { throw APIError.invalidField(name, "must be a string, got \(v.typeName)") }
        return s
    }

    func int(_ option: String) throws -> Int? {
        guard let (name, v) = value(option) else { return nil }
        guard case let .integer(i) = v else { throw APIError.invalidField(name, "must be an integer, got \(v.typeName)") }
        return i
    }

    func double(_ option: String) throws -> Double? {
        guard let (name, v) = value(option) else { return nil }
        switch v {
        case let .integer(i): return Double(i)
        case let .number(d): return d
        default: throw APIError.invalidField(name, "must be a number, got \(v.typeName)")
        }
    }

    func fraction(_ option: String) throws -> Double? { try double(option) }

    func unsigned(_ option: String) throws -> UInt64? {
        guard let (name, v) = value(option) else { return nil }
        guard case let .integer(i) = v, i >= 0 else { throw APIError.invalidField(name, "must be a non-negative integer, got \(v.typeName == "a number" ? v.serialized : v.typeName)") }
        return UInt64(i)
    }

    /// A boolean; an integer counts as true when positive (OpenAI's `logprobs` is a count).
    func flag(_ option: String) throws -> Bool {
        guard let (name, v) = value(option) else { return false }
        switch v {
        case let .bool(b): return b
        case let .integer(i) where i >= 0: return i > 0
        default: throw APIError.invalidField(name, "must be a boolean, got \(v.typeName)")
        }
    }

    func invalidValue(_ option: String, _ reason: String) -> any Error { APIError.invalidField(Self.fieldName(option), reason) }
}
