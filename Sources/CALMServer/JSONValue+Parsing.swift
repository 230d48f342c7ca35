import CALMTensor

extension JSONValue {
    /// Deepest nesting of arrays and objects a request body may have.
    public static let maxDepth = 64

    /// Reads one JSON value filling all of `bytes` (surrounding whitespace allowed), with the
    /// package's one strict reader: nesting deeper than ``maxDepth`` is an error, and a repeated
    /// object key keeps its last value.
    ///
    /// ```swift
    /// let body = try JSONValue.parse(Array(#"{"prompt": "Hi", "max_tokens": 8}"#.utf8))
    /// body["max_tokens"]  // .integer(8)
    /// ```
    ///
    /// - Throws: ``JSONSyntaxError`` naming the byte offset and the reason.
    public static func parse(_ bytes: [UInt8]) throws -> JSONValue {
        let parsed: CALMTensor.JSONValue
        do {
            parsed = try MiniJSONParser.parse(bytes, maxDepth: maxDepth, rejectingDuplicateKeys: false)
        } catch let e as JSONParseError {
            throw JSONSyntaxError(reason: e.message, offset: e.offset)
        }
        return try JSONValue(parsed)
    }

    /// The server's value for the reader's: integral numbers that fit in `Int` become `.integer`,
    /// other numbers `.number`, and a number no `Double` holds is an error.
    private init(_ value: CALMTensor.JSONValue) throws {
        switch value {
        case .null: self = .null
        case let .bool(b): self = .bool(b)
        case let .string(s): self = .string(s)
        case let .number(text):
            if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let i = Int(text) {
                self = .integer(i)
            } else if let d = Double(text), d.isFinite {
                self = .number(d)
            } else {
                throw JSONSyntaxError(reason: "number out of range: \(text.prefix(40))", offset: nil)
            }
        case let .array(items): self = .array(try items.map(JSONValue.init))
        case let .object(object):
            self = .object(try object.keys.map { key in (key, try JSONValue(object.values[key] ?? .null)) })
        }
    }
}

/// Why a request body is not JSON: the reason and, for a syntax error, the byte offset.
public struct JSONSyntaxError: Error, Equatable, CustomStringConvertible {
    public let reason: String
    /// Where the reader stopped; nil for a value that is well formed but out of range.
    public let offset: Int?
    public var description: String {
        offset.map { "invalid JSON at byte \($0): \(reason)" } ?? "invalid JSON: \(reason)"
    }
}
