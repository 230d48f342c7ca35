import Foundation

/// A parsed JSON value: what the package's one strict RFC 8259 reader returns (checkpoint headers,
/// index files, and the server's request bodies, which convert it to their own value type).
///
/// Numbers keep their source text so that integers of any size are read exactly; objects keep
/// their key order.
package enum JSONValue {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The value as an exact integer (no fraction, no exponent, fits in Int).
    package var intValue: Int? {
        if case .number(let text) = self { return Int(text) }
        return nil
    }

    package var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    package var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    package var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// Short name of the kind of value, for error messages.
    package var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A JSON object with its keys in source order.
package struct JSONObject {
    package var keys: [String] = []
    package var values: [String: JSONValue] = [:]
    package subscript(key: String) -> JSONValue? { values[key] }
}

/// A JSON syntax error at a byte offset.
package struct JSONParseError: Error, CustomStringConvertible {
    package var offset: Int
    package var message: String
    package var description: String { "invalid JSON at byte \(offset): \(message)" }
}

/// Strict recursive-descent JSON parser over UTF-8 bytes, with a nesting limit so that no input can
/// exhaust the stack.
///
/// The one reader of JSON documents that arrive whole (checkpoint headers, index files, request
/// bodies). `tokenizer.json` files, megabytes of vocabulary, go through the tokenizer's own
/// streaming-speed reader, which builds native values directly.
package struct MiniJSONParser {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private let maxDepth: Int
    private let rejectsDuplicateKeys: Bool

    /// Parses exactly one JSON value (surrounding whitespace allowed).
    ///
    /// - Parameters:
    ///   - maxDepth: arrays and objects nested deeper than this are an error.
    ///   - rejectingDuplicateKeys: a repeated object key is an error (checkpoint headers, where a
    ///     repeat means a corrupt file); when false, the last value wins, as in most HTTP APIs.
    package static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 128,
                              rejectingDuplicateKeys: Bool = true) throws -> JSONValue {
        var parser = MiniJSONParser(bytes: bytes, maxDepth: maxDepth, rejectsDuplicateKeys: rejectingDuplicateKeys)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("unexpected data after the value") }
        return value
    }

    package static func parse(_ bytes: [UInt8], maxDepth: Int = 128, rejectingDuplicateKeys: Bool = true) throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse($0, maxDepth: maxDepth, rejectingDuplicateKeys: rejectingDuplicateKeys) }
    }

    private init(bytes: UnsafeRawBufferPointer, maxDepth: Int, rejectsDuplicateKeys: Bool) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.rejectsDuplicateKeys = rejectsDuplicateKeys
    }

    private func error(_ message: String) -> JSONParseError { JSONParseError(offset: position, message: message) }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { position += 1 }
    }

    private mutating func expect(_ literal: StaticString) throws {
        let text = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        guard position + text.count <= bytes.count,
              bytes[position ..< position + text.count].elementsEqual(text) else {
            throw error("invalid literal")
        }
        position += text.count
    }

    private mutating func parseValue(depth: Int) throws -> JSONValue {
        guard depth < maxDepth else { throw error("nesting deeper than \(maxDepth)") }
        guard let c = current else { throw error("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"): return .object(try parseObject(depth: depth))
        case UInt8(ascii: "["): return .array(try parseArray(depth: depth))
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected character '\(Unicode.Scalar(c))'")
        }
    }

    private mutating func parseObject(depth: Int) throws -> JSONObject {
        position += 1
        var object = JSONObject()
        skipWhitespace()
        if current == UInt8(ascii: "}") { position += 1; return object }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let keyOffset = position
            let key = try parseString()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
            position += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            if object.values.updateValue(value, forKey: key) == nil {
                object.keys.append(key)
            } else if rejectsDuplicateKeys {
                throw JSONParseError(offset: keyOffset, message: "duplicate key '\(key)'")
            }
            skipWhitespace()
            guard let c = current else { throw error("unexpected end of input in an object") }
            position += 1
            if c == UInt8(ascii: "}") { return object }
            guard c == UInt8(ascii: ",") else { position -= 1; throw error("expected ',' or '}'") }
        }
    }

    private mutating func parseArray(depth: Int) throws -> [JSONValue] {
        position += 1
        var array: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { position += 1; return array }
        while true {
            skipWhitespace()
            array.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard let c = current else { throw error("unexpected end of input in an array") }
            position += 1
            if c == UInt8(ascii: "]") { return array }
            guard c == UInt8(ascii: ",") else { position -= 1; throw error("expected ',' or ']'") }
        }
    }

    private mutating func parseNumber() throws -> String {
        let start = position
        if current == UInt8(ascii: "-") { position += 1 }
        func digits(_ p: inout MiniJSONParser) -> Int {
            var n = 0
            while let c = p.current, c >= 0x30, c <= 0x39 { p.position += 1; n += 1 }
            return n
        }
        if current == UInt8(ascii: "0") {
            position += 1
        } else {
            guard digits(&self) > 0 else { throw error("invalid number") }
        }
        if current == UInt8(ascii: ".") {
            position += 1
            guard digits(&self) > 0 else { throw error("invalid number") }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard digits(&self) > 0 else { throw error("invalid number") }
        }
        return String(decoding: bytes[start ..< position], as: UTF8.self)
    }

    private mutating func hex4() throws -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let digit: UInt32
            switch c {
            case 0x30...0x39: digit = UInt32(c - 0x30)
            case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    private mutating func parseString() throws -> String {
        position += 1
        var out: [UInt8] = []
        while true {
            guard let c = current else { throw error("unterminated string") }
            position += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { position -= 1; throw error("control character in a string") }
            if c != UInt8(ascii: "\\") { out.append(c); continue }
            guard let e = current else { throw error("unterminated escape") }
            position += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800...0xDBFF).contains(scalar) {
                    guard position + 2 <= bytes.count, bytes[position] == 0x5C, bytes[position + 1] == UInt8(ascii: "u")
                    else { throw error("unpaired surrogate") }
                    position += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00...0xDFFF).contains(scalar) {
                    throw error("unpaired surrogate")
                }
                guard let u = Unicode.Scalar(scalar) else { throw error("invalid code point") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default:
                throw error("invalid escape")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw error("invalid UTF-8 in a string") }
        return s
    }
}

/// JSON text output matching serde_json's compact form (what Python `safetensors` writes).
enum MiniJSONWriter {
    /// Appends `s` as a JSON string literal: `"` and `\` escaped, control characters as
    /// `\b \f \n \r \t` or `\u00XX`, everything else raw UTF-8.
    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        for c in s.utf8 {
            switch c {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(c >> 4)], hex[Int(c & 15)]])
            default: out.append(c)
            }
        }
        out.append(0x22)
    }

    static func append(_ text: String, to out: inout [UInt8]) { out.append(contentsOf: text.utf8) }
}
