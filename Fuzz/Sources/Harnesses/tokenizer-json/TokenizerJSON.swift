// A Hugging Face `tokenizer.json` (HuggingFaceTokenizerParser, FastJSON, HuggingFaceBPETokenizer):
// loading succeeds, and then the tokenizer encodes and decodes the sample texts and the input
// itself keeping its promises, or it throws a TokenizerError.
import CALMTokenizer
import Foundation
import FuzzSupport

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    Harness.writeSeedsIfAsked(seeds)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let url = Harness.write(bytes, to: "tokenizer.json")
    do {
        let tokenizer = try HuggingFaceBPETokenizer(file: url)
        Harness.exercise(tokenizer, texts: Harness.sampleTexts + [String(decoding: bytes, as: UTF8.self)], "tokenizer.json")
        // What the writer makes of it must load again.
        let again = Harness.write(Array(tokenizer.definition.jsonData(merges: .pairs)), to: "rewritten.json")
        do { _ = try HuggingFaceBPETokenizer(file: again) } catch {
            Harness.fail("tokenizer.json: the writer's copy of a loaded tokenizer does not load: \(error)")
        }
    } catch let error as TokenizerError {
            Harness.refused(error)
    } catch {
        Harness.untyped(error, "tokenizer.json")
    }
    return 0
}

func seeds() throws -> [(String, [UInt8])] {
    var out: [(String, [UInt8])] = []
    let gpt2 = TokenizerSeeds.definition()
    out.append(("gpt2-strings", Array(gpt2.jsonData(merges: .strings))))
    out.append(("gpt2-pairs", Array(gpt2.jsonData(merges: .pairs))))
    var llama = TokenizerSeeds.definition(pattern: .llama3, specials: ["<|begin_of_text|>", "<|end_of_text|>"])
    llama.preTokenizer = HuggingFaceBPEDefinition.llama3PreTokenizer
    llama.ignoreMerges = true
    llama.templatePrefix = ["<|begin_of_text|>"]
    out.append(("llama3-template", Array(llama.jsonData())))
    var variants = TokenizerSeeds.definition(vocabularySize: 280)
    variants.normalizers = [.nfkc]
    variants.preTokenizer = [.byteLevel(addPrefixSpace: true, useRegex: true)]
    variants.templateSuffix = ["<|endoftext|>"]
    variants.unknownToken = "[PAD]"
    variants.addedTokens.append(AddedToken(id: variants.vocabulary.count, content: " word ", special: false,
                                           lstrip: true, rstrip: true, singleWord: true, normalized: true))
    variants.vocabulary.append(Array(" word ".utf8))
    out.append(("nfkc-prefix-space-added", Array(variants.jsonData())))
    // Components written by hand: sequences, Roberta/Bert post-processors, decoders, nulls.
    let tiny = #"""
    {"version":"1.0","added_tokens":[{"id":3,"content":"<s>","special":true},{"id":4,"content":"</s>"}],
     "normalizer":{"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"NFC"}]},
     "pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},"behavior":"Isolated","invert":false},{"type":"ByteLevel","add_prefix_space":false,"use_regex":false}]},
     "post_processor":{"type":"Sequence","processors":[{"type":"ByteLevel"},{"type":"RobertaProcessing","cls":["<s>",3],"sep":["</s>",4]}]},
     "decoder":{"type":"Sequence","decoders":[{"type":"ByteLevel"}]},
     "model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":"","end_of_word_suffix":null,
              "ignore_merges":false,"vocab":{"a":0,"b":1,"ab":2,"Ġ":5,"Ġab":6},"merges":["a b",["Ġ","ab"]]}}
    """#
    out.append(("hand-sequence-roberta", Array(tiny.utf8)))
    let bert = #"{"model":{"vocab":{"x":0,"y":1,"[CLS]":2,"[SEP]":3},"merges":[]},"pre_tokenizer":{"type":"ByteLevel"},"post_processor":{"type":"BertProcessing","cls":["[CLS]",2],"sep":["[SEP]",3]},"normalizer":null,"decoder":null,"added_tokens":null}"#
    out.append(("hand-bert", Array(bert.utf8)))
    // Regression: an id of 2^30 − 1 once made this file allocate an 8 GiB table (now: ids < 2^24).
    out.append(("regression-vocab-id-2e30", Array(#"{"model":{"vocab":{"a":1073741823},"merges":[]},"pre_tokenizer":{"type":"ByteLevel"}}"#.utf8)))
    return out
}
