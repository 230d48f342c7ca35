import CALMServer
import Testing

/// The server reads request bodies with the package's one JSON reader; these pin what it gives the
/// request code: integers apart from fractions, the last of repeated keys, and typed errors with the
/// byte offset for everything else.
@Suite("Request body JSON")
struct JSONValueParsingTests {
    static func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    @Test func valuesKeepIntegersApartFromFractions() throws {
        let v = try Self.parse(#" {"a": 3, "b": 3.0, "c": -0, "d": 1e2, "e": [true, null, "x\u00e9\ud83d\ude00"], "f": 9223372036854775808} "#)
        #expect(v["a"] == .integer(3))
        #expect(v["b"] == .number(3))
        #expect(v["c"] == .integer(0))
        #expect(v["d"] == .number(100))
        #expect(v["e"] == .array([.bool(true), .null, .string("xé😀")]))
        #expect(v["f"] == .number(9_223_372_036_854_775_808))  // past Int: a Double, as before
    }

    @Test func aRepeatedKeyKeepsItsLastValue() throws {
        let v = try Self.parse(#"{"max_tokens": 1, "prompt": "p", "max_tokens": 7}"#)
        #expect(v["max_tokens"] == .integer(7))
        #expect(v.serialized == #"{"max_tokens":7,"prompt":"p"}"#)
    }

    @Test func nestingIsBounded() throws {
        let ok = String(repeating: "[", count: JSONValue.maxDepth) + String(repeating: "]", count: JSONValue.maxDepth)
        #expect(throws: Never.self) { try Self.parse(ok) }
        let deep = String(repeating: "[", count: 100_000)
        let error = #expect(throws: JSONSyntaxError.self) { try Self.parse(deep) }
        #expect(error?.offset == JSONValue.maxDepth)
        #expect(error?.reason.contains("nesting deeper than \(JSONValue.maxDepth)") == true)
    }

    @Test func syntaxErrorsNameTheByte() throws {
        let cases: [(String, Int)] = [(#"{"prompt": [1, 2"#, 16), (#"{"a" 1}"#, 5), ("[01]", 2), (#""\q""#, 3), ("[1] x", 4), ("", 0)]
        for (text, offset) in cases {
            let error = #expect(throws: JSONSyntaxError.self, "\(text)") { try Self.parse(text) }
            #expect(error?.offset == offset, "\(text): \(String(describing: error))")
            #expect(error?.description.hasPrefix("invalid JSON at byte \(offset): ") == true)
        }
        let huge = #expect(throws: JSONSyntaxError.self) { try Self.parse(#"{"temperature": 1e400}"#) }
        #expect(huge?.description == "invalid JSON: number out of range: 1e400")
    }
}
