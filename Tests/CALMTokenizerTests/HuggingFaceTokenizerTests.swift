import CALMTestSupport
import CALMTokenizer
import Foundation
import Testing

@Suite("Hugging Face tokenizer.json")
struct HuggingFaceTokenizerTests {
    /// 256 byte tokens (id = byte), then "he", "ll", "hell", "hello", " w", plus added tokens.
    static func smallDefinition(prefixSpace: Bool = true) -> HuggingFaceBPEDefinition {
        var vocabulary: [[UInt8]?] = (0..<256).map { [UInt8($0)] }
        for word in ["he", "ll", "hell", "hello", " w"] { vocabulary.append(Array(word.utf8)) }
        return HuggingFaceBPEDefinition(
            vocabulary: vocabulary,
            merges: [BPEMerge(104, 101), BPEMerge(108, 108), BPEMerge(256, 257), BPEMerge(258, 111),
                     BPEMerge(32, 119)],
            addedTokens: [AddedToken(id: 261, content: "<|endoftext|>"),
                          AddedToken(id: 262, content: "<sep>", special: false),
                          AddedToken(id: 263, content: "<s>")],
            preTokenizer: [.byteLevel(addPrefixSpace: prefixSpace, useRegex: true)])
    }

    @Test func encodesWithMergesAndPrefixSpace() throws {
        let tokenizer = try HuggingFaceBPETokenizer(definition: Self.smallDefinition())
        #expect(tokenizer.vocabularySize == 264)
        #expect(tokenizer.bosTokenID == nil)
        #expect(!tokenizer.addsBOSByDefault)
        let ids = tokenizer.encode("hello world", addBOS: true, allowSpecialTokens: true)
        #expect(ids == [32, 259, 260, 111, 114, 108, 100])
        #expect(tokenizer.decode(ids) == " hello world")
        // add_prefix_space applies to every segment between added tokens (checked against the
        // Python `tokenizers` 0.23.3 reading this definition as written by `write(to:)`).
        #expect(tokenizer.encode("hello<|endoftext|>hello a<sep>b", addBOS: false, allowSpecialTokens: true)
            == [32, 259, 261, 32, 259, 32, 97, 262, 32, 98])
        let noPrefix = try HuggingFaceBPETokenizer(definition: Self.smallDefinition(prefixSpace: false))
        #expect(noPrefix.encode("hello world", addBOS: false, allowSpecialTokens: true) == [259, 260, 111, 114, 108, 100])
    }

    @Test func addedTokensSpecialAndNot() throws {
        let tokenizer = try HuggingFaceBPETokenizer(definition: Self.smallDefinition(prefixSpace: false))
        #expect(tokenizer.encode("hello<|endoftext|>hello", addBOS: false, allowSpecialTokens: true) == [259, 261, 259])
        let plain = tokenizer.encode("<|endoftext|>", addBOS: false, allowSpecialTokens: false)
        #expect(!plain.contains(261))
        #expect(tokenizer.decode(plain) == "<|endoftext|>")
        // Non-special added tokens are always recognised.
        #expect(tokenizer.encode("a<sep>b", addBOS: false, allowSpecialTokens: false) == [97, 262, 98])
        #expect(tokenizer.tokenID(forSpecial: "<s>") == 263)
        let padded = tokenizer.addingPadTokenIfMissing()
        #expect(padded.padTokenID == 264)
        #expect(padded.vocabularySize == 265)
        #expect(padded.encode("x[PAD]", addBOS: false, allowSpecialTokens: true) == [120, 264])
    }

    @Test(arguments: [MergesFormat.strings, .pairs, .automatic])
    func writeAndReloadRoundTrip(format: MergesFormat) throws {
        var definition = Self.smallDefinition()
        definition.templatePrefix = ["<s>"]
        definition.normalizers = [.nfc]
        let directory = try TemporaryDirectory("calm-hf-small")
        try definition.write(to: directory.url.appendingPathComponent("tokenizer.json"), merges: format)
        let loaded = try #require(try TokenizerLoader.load(directory: directory.url) as? HuggingFaceBPETokenizer)
        #expect(loaded.definition == definition)
        #expect(loaded.bosTokenID == 263)
        #expect(loaded.addsBOSByDefault)
        #expect(loaded.encode("hello") == [263, 32, 259])
        // NFC: "e" + U+0301 becomes "é" (C3 A9) before byte-level BPE.
        #expect(loaded.encode("e\u{301}", addBOS: false, allowSpecialTokens: true) == [32, 0xC3, 0xA9])
        let text = "hello <sep> wow<|endoftext|> 😀"
        let original = try HuggingFaceBPETokenizer(definition: definition)
        #expect(loaded.encode(text) == original.encode(text))
        #expect(loaded.decode(loaded.encode(text, addBOS: false, allowSpecialTokens: true)) == " hello <sep> wow<|endoftext|> 😀")
    }

    /// A hand-written GPT-2 style file: string merges, `Ġ` vocabulary, RoBERTa post-processor,
    /// tokenizer_config.json naming BOS/EOS.
    @Test func parsesHandWrittenFile() throws {
        let json = #"""
        {
          "version": "1.0", "truncation": null, "padding": null,
          "added_tokens": [
            {"id": 0, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 1, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 9, "content": "<mask>", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": true}
          ],
          "normalizer": null,
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
          "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 1], "cls": ["<s>", 0], "trim_offsets": true, "add_prefix_space": false},
          "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
          "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                    "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
                    "vocab": {"<s>": 0, "</s>": 1, "a": 2, "b": 3, "Ġ": 4, "Ġa": 5, "ab": 6, "Ġab": 7, "Ċ": 8, "<mask>": 9},
                    "merges": ["Ġ a", "a b", "Ġa b"]}
        }
        """#
        let directory = try TemporaryDirectory("calm-hf-hand")
        try Data(json.utf8).write(to: directory.url.appendingPathComponent("tokenizer.json"))
        let config = #"{"bos_token": "<s>", "eos_token": {"content": "</s>"}, "add_bos_token": false}"#
        try Data(config.utf8).write(to: directory.url.appendingPathComponent("tokenizer_config.json"))
        let tokenizer = try #require(try TokenizerLoader.load(directory: directory.url) as? HuggingFaceBPETokenizer)
        #expect(tokenizer.bosTokenID == 0)
        #expect(tokenizer.eosTokenID == 1)
        #expect(!tokenizer.addsBOSByDefault)
        #expect(tokenizer.templatePrefixIDs == [0])
        #expect(tokenizer.templateSuffixIDs == [1])
        #expect(tokenizer.encode("ab ab\n", addBOS: false, allowSpecialTokens: true) == [6, 7, 8])
        #expect(tokenizer.encodeWithPostProcessor("ab") == [0, 6, 1])
        #expect(tokenizer.encode("a <mask>", addBOS: false, allowSpecialTokens: true) == [2, 9])
        #expect(tokenizer.decode([6, 7, 8]) == "ab ab\n")
        #expect(tokenizer.tokenBytes(4) == [0x20])
        #expect(ByteLevelMapping.string(for: Array(" \n".utf8)) == "ĠĊ")
        #expect(ByteLevelMapping.bytes(for: "ĠĊ") == [0x20, 0x0A])
    }
}
