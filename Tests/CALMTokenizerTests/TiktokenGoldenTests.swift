import CALMTestSupport
import CALMTokenizer
import Foundation
import Testing

@Suite("Llama 3 tiktoken golden")
struct TiktokenGoldenTests {
    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func loadsLlama3() throws {
        _ = try SharedFixtures.require()
        let tokenizer = try Llama3.tokenizer()
        #expect(tokenizer.mergeableRankCount == 128_000)
        #expect(tokenizer.vocabularySize == 128_256)
        #expect(tokenizer.bosTokenID == 128_000)
        #expect(tokenizer.eosTokenID == 128_001)
        #expect(tokenizer.padTokenID == nil)
        #expect(tokenizer.addsBOSByDefault)
        #expect(tokenizer.tokenID(forSpecial: "<|eot_id|>") == 128_009)
        #expect(tokenizer.tokenID(forSpecial: "<|reserved_special_token_250|>") == 128_255)
        #expect(tokenizer.addedTokens.count == 256)
    }

    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func goldenIDs() throws {
        _ = try SharedFixtures.require()
        let tokenizer = try Llama3.tokenizer()
        let cases = try Llama3.goldenCases()
        #expect(cases.count == 64)
        for c in cases {
            #expect(tokenizer.encode(c.text, addBOS: false, allowSpecialTokens: true) == c.ids, "\(c.text.debugDescription)")
            #expect(tokenizer.encode(c.text, addBOS: true, allowSpecialTokens: true) == c.idsHF, "\(c.text.debugDescription)")
            #expect(tokenizer.encode(c.text) == c.idsHF, "\(c.text.debugDescription)")
            #expect(tokenizer.encode(c.text, addBOS: false, allowSpecialTokens: false) == c.idsOrdinary,
                    "\(c.text.debugDescription)")
            #expect(tokenizer.decode(c.ids) == c.text, "\(c.text.debugDescription)")
            #expect(tokenizer.decode(c.idsOrdinary) == c.text, "\(c.text.debugDescription)")
            #expect(c.ids.map { tokenizer.tokenBytes($0) ?? [] } == c.pieces, "\(c.text.debugDescription)")
        }
    }

    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func wikiTextTotal() throws {
        _ = try SharedFixtures.require()
        let tokenizer = try Llama3.tokenizer()
        let documents = try Llama3.wikiTextDocuments()
        #expect(documents.count == 62)
        var total = 0
        for document in documents {
            let ids = tokenizer.encode(document, addBOS: true, allowSpecialTokens: true)
            #expect(ids.first == 128_000)
            total += ids.count
        }
        #expect(total == 289_145)
    }

    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func padToken() throws {
        _ = try SharedFixtures.require()
        let base = try Llama3.tokenizer()
        let padded = base.addingPadTokenIfMissing()
        #expect(padded.padTokenID == 128_256)
        #expect(padded.vocabularySize == 128_257)
        #expect(padded.tokenID(forSpecial: "[PAD]") == 128_256)
        #expect(padded.addingPadTokenIfMissing().vocabularySize == 128_257)
        #expect(padded.encode("[PAD]", addBOS: false, allowSpecialTokens: true) == [128_256])
        #expect(padded.decode([128_256]) == "[PAD]")
        #expect(padded.tokenBytes(128_256) == Array("[PAD]".utf8))
        let text = "[PAD] is not special to the base tokenizer"
        let rest = base.encode(" is not special to the base tokenizer", addBOS: false, allowSpecialTokens: true)
        #expect(padded.encode(text, addBOS: false, allowSpecialTokens: true) == [128_256] + rest)
        #expect(padded.encode(text, addBOS: false, allowSpecialTokens: false)
            == base.encode(text, addBOS: false, allowSpecialTokens: false))
        #expect(base.encode(text, addBOS: false, allowSpecialTokens: true).first != 128_256)
        // Through the protocol existential too.
        let any: any TextTokenizer = base
        #expect(any.addingPadTokenIfMissing().padTokenID == 128_256)
    }
}
