@_spi(Testing) import CALMTokenizer
import CALMTestSupport
import Foundation
import Testing

/// The heap merge (used for long pieces) must give exactly the quadratic scan's result.
@Suite("Heap merge for long pieces")
struct HeapMergeTests {
    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func heapMergeMatchesScanOnGoldenAndWikiText() throws {
        _ = try SharedFixtures.require()
        let scan = try Llama3.tokenizer().settingHeapMergeThreshold(Int.max)
        let heap = scan.settingHeapMergeThreshold(1)
        for c in try Llama3.goldenCases() {
            #expect(heap.encode(c.text, addBOS: false, allowSpecialTokens: true) == c.ids, "\(c.text.debugDescription)")
        }
        let documents = try Llama3.wikiTextDocuments()
        for document in documents.prefix(8) {
            #expect(heap.encode(document) == scan.encode(document))
        }
    }

    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func longPiecesAgree() throws {
        _ = try SharedFixtures.require()
        let scan = try Llama3.tokenizer().settingHeapMergeThreshold(Int.max)
        let heap = scan.settingHeapMergeThreshold(1)
        var state: UInt64 = 99
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33)
        }
        let letters = Array("abcdefghijklmnopqrstuvwxyzéßà中".unicodeScalars)
        for length in [130, 400, 1500] {
            let word = String(String.UnicodeScalarView((0..<length).map { _ in letters[next() % letters.count] }))
            let expected = scan.encode(word, addBOS: false, allowSpecialTokens: true)
            #expect(heap.encode(word, addBOS: false, allowSpecialTokens: true) == expected)
            #expect(scan.decode(expected) == word)
        }
        // A very long single piece stays fast with the default threshold.
        let long = String(repeating: "ab", count: 50_000)
        let ids = try Llama3.tokenizer().encode(long, addBOS: false, allowSpecialTokens: true)
        #expect(try Llama3.tokenizer().decode(ids) == long)
    }

    @Test func mergeListHeapMatchesScan() throws {
        let definition = HuggingFaceTokenizerTests.smallDefinition(prefixSpace: false)
        let scan = try HuggingFaceBPETokenizer(definition: definition).settingHeapMergeThreshold(Int.max)
        let heap = scan.settingHeapMergeThreshold(1)
        let text = String(repeating: "hellohehellllo", count: 20) + " wow hello"
        #expect(heap.encode(text, addBOS: false, allowSpecialTokens: true) == scan.encode(text, addBOS: false, allowSpecialTokens: true))
        #expect(heap.decode(heap.encode(text, addBOS: false, allowSpecialTokens: true)) == text)
    }
}
