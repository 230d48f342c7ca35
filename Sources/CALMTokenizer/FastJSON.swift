import Foundation

/// A small, fast JSON reader producing native Swift values: `[String: Any]`, `[Any]`, `String`,
/// `Int` (integers that fit), `Double`, `Bool` and `NSNull`.
///
/// Used instead of `JSONSerialization`, which is several times slower on the multi-megabyte
/// `tokenizer.json` files. Errors give the line and column.
struct FastJSON {
    /// Parse failure at a 1-based line and column.
    struct Failure: Error, CustomStringConvertible {
        var line: Int
        var column: Int
        var message: String
        var description: String { "line \(line), column \(column): \(message)" }
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Parses one JSON document.
    static func parse(_ data: Data) throws -> Any {
        try data.withUnsafeBytes { raw in
            var parser = FastJSON(raw.bindMemory(to: UInt8.self))
            // Skip a UTF-8 byte order mark.
            if parser.bytes.count >= 3, parser.bytes[0] == 0xEF, parser.bytes[1] == 0xBB, parser.bytes[2] == 0xBF {
                parser.i = 3
            }
            parser.skipWhitespace()
            let value = try parser.value()
            parser.skipWhitespace()
            guard parser.i == parser.bytes.count else { throw parser.failure("unexpected text after the document") }
            return value
        }
    }

    private func failure(_ message: String) -> Failure {
        var line = 1, column = 1
        for k in 0 ..< min(i, bytes.count) {
            if bytes[k] == 0x0A { line += 1; column = 1 } else { column += 1 }
        }
        return Failure(line: line, column: column, message: message)
    }

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x0A, 0x0D, 0x09: i += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8) throws {
        skipWhitespace()
        guard i < bytes.count, bytes[i] == byte else {
            throw failure("expected '\(Character(Unicode.Scalar(byte)))'")
        }
        i += 1
    }

    private mutating func value() throws -> Any {
        guard i < bytes.count else { throw failure("unexpected end of input") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return try string()
        case UInt8(ascii: "t"): return try literal("true", true)
        case UInt8(ascii: "f"): return try literal("false", false)
        case UInt8(ascii: "n"): return try literal("null", NSNull())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw failure("unexpected character")
        }
    }

    private mutating func literal(_ text: StaticString, _ value: Any) throws -> Any {
        let count = text.utf8CodeUnitCount
        guard i + count <= bytes.count,
              memcmp(bytes.baseAddress! + i, text.utf8Start, count) == 0 else {
            throw failure("invalid literal")
        }
        i += count
        return value
    }

    private mutating func nest() throws {
        depth += 1
        if depth > 512 { throw failure("nesting deeper than 512") }
    }

    private mutating func object() throws -> [String: Any] {
        try nest()
        i += 1
        var result: [String: Any] = [:]
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            depth -= 1
            return result
        }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw failure("expected a string key") }
            let key = try string()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            result[key] = try value()
            skipWhitespace()
            guard i < bytes.count else { throw failure("unterminated object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; break }
            throw failure("expected ',' or '}'")
        }
        depth -= 1
        return result
    }

    private mutating func array() throws -> [Any] {
        try nest()
        i += 1
        var result: [Any] = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
            i += 1
            depth -= 1
            return result
        }
        while true {
            skipWhitespace()
            result.append(try value())
            skipWhitespace()
            guard i < bytes.count else { throw failure("unterminated array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; break }
            throw failure("expected ',' or ']'")
        }
        depth -= 1
        return result
    }

    private mutating func string() throws -> String {
        i += 1
        let start = i
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start ..< i]), as: UTF8.self)
                i += 1
                return text
            }
            if b == UInt8(ascii: "\\") { break }
            if b < 0x20 { throw failure("control character in string") }
            i += 1
        }
        // Slow path with escapes.
        var buffer = Array(bytes[start ..< i])
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: buffer, as: UTF8.self)
            }
            if b < 0x20 { throw failure("control character in string") }
            if b != UInt8(ascii: "\\") {
                buffer.append(b)
                i += 1
                continue
            }
            i += 1
            guard i < bytes.count else { break }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): buffer.append(e)
            case UInt8(ascii: "b"): buffer.append(0x08)
            case UInt8(ascii: "f"): buffer.append(0x0C)
            case UInt8(ascii: "n"): buffer.append(0x0A)
            case UInt8(ascii: "r"): buffer.append(0x0D)
            case UInt8(ascii: "t"): buffer.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if scalar >= 0xD800, scalar < 0xDC00 {
                    // A high surrogate must be followed by \u low surrogate.
                    if i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        if low >= 0xDC00, low < 0xE000 {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            buffer.append(contentsOf: [0xEF, 0xBF, 0xBD])
                            scalar = low
                        }
                    } else {
                        scalar = 0xFFFD
                    }
                }
                let value = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                buffer.append(contentsOf: String(Character(value)).utf8)
            default:
                throw failure("invalid escape")
            }
        }
        throw failure("unterminated string")
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw failure("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw failure("invalid \\u escape")
            }
            value = value << 4 | digit
            i += 1
        }
        return value
    }

    private mutating func number() throws -> Any {
        let start = i
        var isInteger = true
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        while i < bytes.count {
            let c = bytes[i]
            if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                i += 1
            } else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E")
                        || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                isInteger = false
                i += 1
            } else {
                break
            }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start ..< i]), as: UTF8.self)
        if isInteger, let value = Int(text) { return value }
        guard let value = Double(text) else { throw failure("invalid number '\(text)'") }
        return value
    }
}
