// A tiktoken `tokenizer.model` (TiktokenRanks: "base64(bytes) rank" lines; TiktokenTokenizer with
// the Llama 3 special tokens after the ranks): loading succeeds and the tokenizer keeps its
// promises on the sample texts and the input, or it throws a TokenizerError. Loaded tokenizers are
// also converted to a Hugging Face definition (TiktokenConversion), which must load.
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
    let url = Harness.write(bytes, to: "tokenizer.model")
    do {
        let tokenizer = try TiktokenTokenizer(modelFile: url, config: nil)
        Harness.exercise(tokenizer, texts: Harness.sampleTexts + [String(decoding: bytes, as: UTF8.self)], "tokenizer.model")
        if tokenizer.mergeableRankCount <= 4096 {
            do { _ = try HuggingFaceBPETokenizer(definition: tokenizer.huggingFaceDefinition()) } catch {
                Harness.fail("tokenizer.model: its Hugging Face conversion does not load: \(error)")
            }
        }
    } catch let error as TokenizerError {
            Harness.refused(error)
    } catch {
        Harness.untyped(error, "tokenizer.model")
    }
    return 0
}

func seeds() throws -> [(String, [UInt8])] {
    let definition = TokenizerSeeds.definition(pattern: .llama3)
    let ranks = TokenizerSeeds.tiktokenRanks(definition)
    let text = String(decoding: ranks, as: UTF8.self)
    let lines = text.split(separator: "\n")
    return [
        ("ranks", ranks),
        ("ranks-crlf-holes", Array(lines.enumerated().filter { $0.offset % 7 != 3 }.map { $0.element + "\r\n" }.joined().utf8)),
        ("ranks-shuffled-blank-lines", Array((lines.reversed().joined(separator: "\n\n") + "\n").utf8)),
        ("bytes-only", Array((0..<256).map { "\(Data([UInt8($0)]).base64EncodedString()) \($0)\n" }.joined().utf8)),
    ]
}
