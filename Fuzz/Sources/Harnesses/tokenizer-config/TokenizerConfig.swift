// A `tokenizer_config.json` (TokenizerConfig: added_tokens_decoder, bos/eos/pad as strings or
// objects, add_bos_token) beside a fixed small tokenizer.model and tokenizer.json: both kinds
// and TokenizerLoader (with a pad token added) load and keep their promises, or throw a
// TokenizerError.
import CALMTokenizer
import Foundation
import FuzzSupport

nonisolated(unsafe) var tiktokenFolder: URL!
nonisolated(unsafe) var jsonFolder: URL!

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    Harness.writeSeedsIfAsked(seeds)
    let definition = TokenizerSeeds.definition(pattern: .llama3, specials: ["<|begin_of_text|>", "<|end_of_text|>"])
    tiktokenFolder = Harness.folder("tiktoken")
    Harness.write(TokenizerSeeds.tiktokenRanks(definition), to: "tokenizer.model", in: tiktokenFolder)
    jsonFolder = Harness.folder("json")
    Harness.write(Array(definition.jsonData()), to: "tokenizer.json", in: jsonFolder)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    for folder in [tiktokenFolder!, jsonFolder!] {
        Harness.write(bytes, to: "tokenizer_config.json", in: folder)
        do {
            let tokenizer = try TokenizerLoader.load(directory: folder, addPadToken: true)
            Harness.exercise(tokenizer, texts: Harness.sampleTexts, "tokenizer_config.json (\(folder.lastPathComponent))")
        } catch let error as TokenizerError {
            Harness.refused(error)
        } catch {
            Harness.untyped(error, "tokenizer_config.json (\(folder.lastPathComponent))")
        }
    }
    return 0
}

func seeds() throws -> [(String, [UInt8])] {
    let llama = #"""
    {"add_bos_token": true, "add_eos_token": false,
     "added_tokens_decoder": {"318": {"content": "<|begin_of_text|>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true},
                              "319": {"content": "<|end_of_text|>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true},
                              "320": {"content": "<|eot_id|>", "special": true}},
     "bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|end_of_text|>", "lstrip": false}, "pad_token": null,
     "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"}
    """#
    return [
        ("llama-style", Array(llama.utf8)),
        ("empty-object", Array("{}".utf8)),
        ("pad-and-no-bos", Array(#"{"added_tokens_decoder":{"400":{"content":"[PAD]"}},"pad_token":"[PAD]","add_bos_token":false,"bos_token":null}"#.utf8)),
        // Regression: an added token at Int.max once made vocabularySize overflow (a trap).
        ("regression-id-int-max", Array(#"{"added_tokens_decoder":{"9223372036854775807":{"content":"x"}}}"#.utf8)),
        ("largest-id", Array(#"{"added_tokens_decoder":{"16777215":{"content":"x"}},"eos_token":"x"}"#.utf8)),
    ]
}
