import CALMEvaluation
import CALMTestSupport
import CALMTokenizer
import Foundation
import Testing

@Suite("Corpus and blocks")
struct CorpusTests {
    @Test func jsonLinesAndPlainText() throws {
        let dir = try TemporaryDirectory()
        let jsonl = dir.url.appendingPathComponent("docs.jsonl")
        try Data("{\"text\": \"a b\"}\n\n{\"text\": \"c\", \"id\": 3}\n".utf8).write(to: jsonl)
        #expect(try EvaluationCorpus.readDocuments(jsonl) == ["a b", "c"])
        let txt = dir.url.appendingPathComponent("doc.txt")
        try Data("line one\n{not json}\n".utf8).write(to: txt)
        #expect(try EvaluationCorpus.readDocuments(txt) == ["line one\n{not json}\n"])
        // Detection by first character when the extension says nothing.
        let noExt = dir.url.appendingPathComponent("docs")
        try Data("  {\"text\": \"x\"}\n".utf8).write(to: noExt)
        #expect(try EvaluationCorpus.readDocuments(noExt) == ["x"])
        #expect(try EvaluationCorpus.readDocuments(noExt, format: .plainText) == ["  {\"text\": \"x\"}\n"])
    }

    @Test func errorsNameFileAndLine() throws {
        let dir = try TemporaryDirectory()
        let url = dir.url.appendingPathComponent("bad.jsonl")
        func expectError(_ content: String, _ expected: CorpusError) throws {
            try Data(content.utf8).write(to: url)
            #expect(throws: expected) { try EvaluationCorpus.readDocuments(url) }
        }
        try expectError("{\"text\": \"ok\"}\n{\"text\": 3}\n", .invalidLine(file: url.path, line: 2, reason: "\"text\" is not a string"))
        try expectError("{\"text\": \"ok\"}\n\n{oops\n", .invalidLine(file: url.path, line: 3, reason: "not valid JSON"))
        try expectError("[1, 2]\n", .invalidLine(file: url.path, line: 1, reason: "expected a JSON object with a \"text\" string"))
        try expectError("{\"body\": \"x\"}\n", .invalidLine(file: url.path, line: 1, reason: "no \"text\" key"))
        try expectError("\n\n", .empty(file: url.path))
        let missing = dir.url.appendingPathComponent("missing.jsonl")
        #expect(throws: CorpusError.unreadable(file: missing.path, reason: "no such file")) { try EvaluationCorpus.readDocuments(missing) }
        let message = CorpusError.invalidLine(file: "/x/y.jsonl", line: 7, reason: "not valid JSON").description
        #expect(message == "/x/y.jsonl:7: not valid JSON")
    }

    @Test func blocksDropTheTail() throws {
        let blocks = try TokenBlocks(stream: Array(0..<25), blockSize: 8)
        #expect(blocks.blocks == [Array(0..<8), Array(8..<16), Array(16..<24)])
        #expect(blocks.droppedIDs == 1 && blocks.totalIDs == 25)
        let limited = try TokenBlocks(stream: Array(0..<25), blockSize: 8, maxBlocks: 2)
        #expect(limited.blocks.count == 2 && limited.droppedIDs == 1)
        #expect(throws: CorpusError.self) { try TokenBlocks(stream: [1, 2], blockSize: 1) }
    }

    /// The reference's WikiText stream: 62 documents, [BOS] + BPE each, 289,145 ids → 35 blocks
    /// of 8192 with 2,425 ids dropped (spec §6.3).
    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func wikiTextBlocksMatchTheReference() throws {
        let shared = try SharedFixtures.require()
        let tokenizer = try TokenizerLoader.load(directory: shared.appendingPathComponent("data/llama3"))
        let documents = try EvaluationCorpus.readDocuments(shared.appendingPathComponent("data/wikitext/wikitext_document_level-test.json"))
        #expect(documents.count == 62)
        let blocks = try TokenBlocks.tokenize(documents, tokenizer: tokenizer, blockSize: 8192)
        #expect(blocks.totalIDs == 289_145)
        #expect(blocks.blocks.count == 35)
        #expect(blocks.droppedIDs == 2_425)
        #expect(blocks.blocks[0].first == 128_000)
        #expect(blocks.blocks.allSatisfy { $0.count == 8192 })
        // Document boundaries: BOS count equals the documents that start inside the kept blocks.
        #expect(blocks.blocks.joined().filter { $0 == 128_000 }.count <= 62)
    }
}
