import CALMTestSupport
import CALMTokenizer
import Foundation
import Testing

/// One golden case from `llama3_tokenizer_golden.json`.
struct GoldenCase: Sendable {
    var text: String
    var ids: [Int]
    var idsHF: [Int]
    var idsOrdinary: [Int]
    var pieces: [[UInt8]]
}

/// Shared, lazily loaded Llama 3 material.
enum Llama3 {
    static var directory: URL {
        get throws { try SharedFixtures.require().appendingPathComponent("data/llama3") }
    }

    private static let cached: Result<TiktokenTokenizer, any Error> = Result {
        try TiktokenTokenizer(directory: directory)
    }

    /// The tiktoken tokenizer loaded from `shared/data/llama3` (once per test process).
    static func tokenizer() throws -> TiktokenTokenizer { try cached.get() }

    private static let cachedCases: Result<[GoldenCase], any Error> = Result {
        let url = try SharedFixtures.require()
            .appendingPathComponent("fixtures/tokenizer/llama3_tokenizer_golden.json")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        return (json["cases"] as! [[String: Any]]).map { entry in
            GoldenCase(
                text: entry["text"] as! String,
                ids: (entry["ids"] as! [Any]).map { ($0 as! NSNumber).intValue },
                idsHF: (entry["ids_hf"] as! [Any]).map { ($0 as! NSNumber).intValue },
                idsOrdinary: (entry["ids_ordinary"] as! [Any]).map { ($0 as! NSNumber).intValue },
                pieces: (entry["pieces_b64"] as! [String]).map { [UInt8](Data(base64Encoded: $0)!) })
        }
    }

    /// The 64 golden cases.
    static func goldenCases() throws -> [GoldenCase] { try cachedCases.get() }

    /// WikiText test documents (62 `{"text": …}` JSON lines).
    static func wikiTextDocuments() throws -> [String] {
        let url = try SharedFixtures.require()
            .appendingPathComponent("data/wikitext/wikitext_document_level-test.json")
        let data = try Data(contentsOf: url)
        return try data.split(separator: UInt8(ascii: "\n")).compactMap { line in
            guard !line.isEmpty else { return nil }
            let object = try JSONSerialization.jsonObject(with: Data(line)) as! [String: Any]
            return object["text"] as? String
        }
    }
}

let sharedEnabled = SharedFixtures.enabled
let sharedSkip = Comment(rawValue: SharedFixtures.skipMessage)
