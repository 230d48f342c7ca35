import CALMTestSupport
import CALMTokenizer
import Foundation
import Testing

@Suite("Streaming detokenizer")
struct StreamingTests {
    /// A deterministic generator so failures reproduce.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func randomSplitsOfGoldenIDsReassemble() throws {
        _ = try SharedFixtures.require()
        let tokenizer = try Llama3.tokenizer()
        var rng = SplitMix(state: 42)
        var heldBack = 0
        for c in try Llama3.goldenCases() {
            let expected = tokenizer.decode(c.ids)
            for _ in 0..<20 {
                var stream = StreamingDetokenizer(tokenizer: tokenizer)
                var output = ""
                var index = 0
                while index < c.ids.count {
                    let length = Int.random(in: 0...3, using: &rng)
                    let end = min(c.ids.count, index + length)
                    let chunk = stream.append(Array(c.ids[index..<end]))
                    #expect(!chunk.unicodeScalars.contains("\u{FFFD}"), "\(c.text.debugDescription)")
                    output += chunk
                    if stream.pendingByteCount > 0 { heldBack += 1 }
                    index = end
                }
                output += stream.finish()
                #expect(output == expected, "\(c.text.debugDescription)")
                #expect(Array(output.utf8) == Array(expected.utf8))
            }
        }
        // The emoji / CJK cases split characters across tokens, so holding back must happen.
        #expect(heldBack > 0)
    }

    @Test(.enabled(if: sharedEnabled, sharedSkip))
    func tokenByTokenEmoji() throws {
        _ = try SharedFixtures.require()
        let tokenizer = try Llama3.tokenizer()
        let ids = tokenizer.encode("emoji 😀🎉👍🏽", addBOS: false, allowSpecialTokens: true)
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in ids { pieces.append(stream.append(id)) }
        pieces.append(stream.finish())
        #expect(pieces.joined() == "emoji 😀🎉👍🏽")
        #expect(!pieces.contains { $0.contains("\u{FFFD}") })
    }

    /// Ill-formed byte streams: whatever the split, streaming equals decoding the whole.
    @Test func illFormedBytesMatchWholeDecode() throws {
        // Single-byte tokens 0…255 and no merges: ids are bytes.
        let definition = HuggingFaceBPEDefinition(vocabulary: (0..<256).map { [UInt8($0)] }, merges: [])
        let tokenizer = try HuggingFaceBPETokenizer(definition: definition)
        var rng = SplitMix(state: 7)
        let alphabet: [UInt8] = [0x41, 0x80, 0xBF, 0xC2, 0xC3, 0xA9, 0xE0, 0xA0, 0xED, 0x9F, 0xA0,
                                 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xF4, 0x90, 0xF5, 0xFF, 0xC0]
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let ids = bytes.map(Int.init)
            var stream = StreamingDetokenizer(tokenizer: tokenizer)
            var output = ""
            var index = 0
            while index < ids.count {
                let end = min(ids.count, index + Int.random(in: 1...3, using: &rng))
                output += stream.append(Array(ids[index..<end]))
                index = end
            }
            output += stream.finish()
            #expect(Array(output.utf8) == Array(tokenizer.decode(ids).utf8), "\(bytes)")
        }
    }

    @Test func finishFlushesIncompleteSequence() throws {
        let definition = HuggingFaceBPEDefinition(vocabulary: (0..<256).map { [UInt8($0)] }, merges: [])
        let tokenizer = try HuggingFaceBPETokenizer(definition: definition)
        var stream = StreamingDetokenizer(tokenizer: tokenizer)
        #expect(stream.append([0x41, 0xF0, 0x9F]) == "A")
        #expect(stream.pendingByteCount == 2)
        #expect(stream.append([0x98]) == "")
        #expect(stream.append([0x80, 0x42]) == "😀B")
        #expect(stream.append([0xE2, 0x82]) == "")
        #expect(stream.finish() == "\u{FFFD}")
        #expect(stream.finish() == "")
    }
}
