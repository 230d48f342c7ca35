// Arbitrary text through the real Llama 3 tokenizer (tiktoken ranks from ../shared/data/llama3 or
// $CALM_SHARED, loaded once). Checks, for every input string s:
// - decode(encode(s)) == s with special tokens off, and == "<|begin_of_text|>" + s with BOS and
//   special tokens on (every byte-level BPE encoding is lossless);
// - the heap merge (long pieces) and the scan merge give the same ids;
// - the Hugging Face pipeline built from the same ranks (TiktokenConversion, Split + ByteLevel,
//   ignore_merges) gives the same ids as tiktoken;
// - streaming detokenisation equals decode, and every id is in the vocabulary.
@_spi(Testing) import CALMTokenizer
import Foundation
import FuzzSupport

nonisolated(unsafe) var tiktoken: TiktokenTokenizer!
nonisolated(unsafe) var heapOnly: TiktokenTokenizer!
nonisolated(unsafe) var scanOnly: TiktokenTokenizer!
nonisolated(unsafe) var huggingFace: HuggingFaceBPETokenizer!

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    Harness.writeSeedsIfAsked(seeds)
    guard let shared = Harness.shared else {
        FileHandle.standardError.write(Data("fuzz-llama3-encode: the Llama 3 tokenizer is needed: ../shared/data/llama3 beside the repository, or $CALM_SHARED, was not found\n".utf8))
        exit(2)
    }
    do {
        tiktoken = try TiktokenTokenizer(directory: shared.appendingPathComponent("data/llama3"))
    } catch {
        FileHandle.standardError.write(Data("fuzz-llama3-encode: cannot load \(shared.path)/data/llama3: \(error)\n".utf8))
        exit(2)
    }
    heapOnly = tiktoken.settingHeapMergeThreshold(0)
    scanOnly = tiktoken.settingHeapMergeThreshold(Int.max)
    do {
        huggingFace = try HuggingFaceBPETokenizer(definition: tiktoken.huggingFaceDefinition())
    } catch {
        Harness.fail("llama3: the Hugging Face conversion of the Llama 3 ranks does not load: \(error)")
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    let plain = tiktoken.encode(text, addBOS: false, allowSpecialTokens: false)
    let back = tiktoken.decode(plain)
    if back != text { Harness.fail("llama3: decode(encode(s)) != s for \(text.debugDescription): \(back.debugDescription)") }
    let heap = heapOnly.encode(text, addBOS: false, allowSpecialTokens: false)
    let scan = scanOnly.encode(text, addBOS: false, allowSpecialTokens: false)
    if heap != plain || scan != plain { Harness.fail("llama3: heap \(heap) / scan \(scan) / default \(plain) merges differ for \(text.debugDescription)") }
    let special = tiktoken.encode(text, addBOS: true, allowSpecialTokens: true)
    if tiktoken.decode(special) != "<|begin_of_text|>" + text {
        Harness.fail("llama3: decode(encode(s, BOS, specials)) != BOS + s for \(text.debugDescription)")
    }
    let hf = huggingFace.encode(text, addBOS: true, allowSpecialTokens: true)
    if hf != special { Harness.fail("llama3: Hugging Face pipeline \(hf) != tiktoken \(special) for \(text.debugDescription)") }
    Harness.exercise(tiktoken, texts: [text], "llama3")
    return 0
}

func seeds() throws -> [(String, [UInt8])] {
    let texts: [(String, String)] = [
        ("english", "The quick brown fox jumps over the lazy dog. It's 12:30 — isn't it?"),
        ("code", "func f(x: Int) -> Int {\n    return x * 2 // double\n}\n\tlet y = [1, 2, 3]"),
        ("multilingual", "naïve café 東京タワー Привет мир مرحبا नमस्ते 🤖👩‍👩‍👧 e\u{301}"),
        ("specials", "<|begin_of_text|>Hi<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n<|reserved_special_token_250|>"),
        ("whitespace-digits", "   \n\n\n  \t\t 1234567890123 0.5e-10 1,000,000\r\n"),
        ("long-word", String(repeating: "supercalifragilistic", count: 16)),
        ("contractions", "I'M you'RE they'VE he'D she'LL it'S WE'd"),
    ]
    return texts.map { ($0.0, Array($0.1.utf8)) } + [("invalid-utf8", [0xF0, 0x9F, 0x98, 0xC3, 0x28, 0xFF, 0xE2, 0x82, 0x41])]
}
