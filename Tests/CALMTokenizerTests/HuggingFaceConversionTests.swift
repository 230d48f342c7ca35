import CALMTestSupport
import CALMTokenizer
import Foundation
import Testing

@Suite("tiktoken → tokenizer.json conversion")
struct HuggingFaceConversionTests {
    /// Converts the Llama 3 ranks to a tokenizer.json, loads it back through the loader and
    /// checks the golden ids and the WikiText total on the Hugging Face path. (The written file
    /// was also loaded offline with the Python `tokenizers` 0.23.3: all 64 `ids_hf` and the
    /// WikiText total of 289,145 matched.)
    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func convertedLlama3ReproducesGolden() throws {
        _ = try SharedFixtures.require()
        let tiktoken = try Llama3.tokenizer()
        let definition = tiktoken.huggingFaceDefinition()
        #expect(definition.vocabulary.count == 128_000)
        #expect(definition.merges.count > 127_000)
        let directory = try TemporaryDirectory("calm-tokenizer-json")
        try definition.write(to: directory.url.appendingPathComponent("tokenizer.json"))

        let loaded = try TokenizerLoader.load(directory: directory.url)
        let tokenizer = try #require(loaded as? HuggingFaceBPETokenizer)
        #expect(tokenizer.vocabularySize == 128_256)
        #expect(tokenizer.bosTokenID == 128_000)
        #expect(tokenizer.addsBOSByDefault)
        #expect(tokenizer.templatePrefixIDs == [128_000])
        for c in try Llama3.goldenCases() {
            #expect(tokenizer.encode(c.text, addBOS: false, allowSpecialTokens: true) == c.ids, "\(c.text.debugDescription)")
            #expect(tokenizer.encode(c.text) == c.idsHF, "\(c.text.debugDescription)")
            #expect(tokenizer.encodeWithPostProcessor(c.text) == c.idsHF, "\(c.text.debugDescription)")
            #expect(tokenizer.encode(c.text, addBOS: false, allowSpecialTokens: false) == c.idsOrdinary,
                    "\(c.text.debugDescription)")
            #expect(tokenizer.decode(c.ids) == c.text, "\(c.text.debugDescription)")
        }
        var total = 0
        for document in try Llama3.wikiTextDocuments() {
            total += tokenizer.encode(document, addBOS: true, allowSpecialTokens: true).count
        }
        #expect(total == 289_145)

        // Without ignore_merges the merge list alone must still reproduce tiktoken on the golden set.
        var merged = definition
        merged.ignoreMerges = false
        let pure = try HuggingFaceBPETokenizer(definition: merged)
        for c in try Llama3.goldenCases() {
            #expect(pure.encode(c.text, addBOS: false, allowSpecialTokens: true) == c.ids, "\(c.text.debugDescription)")
        }
    }
}
