import CALMTokenizer

extension Harness {
    /// Texts every loaded tokenizer encodes: ASCII, multi-byte and combining characters, special-token
    /// look-alikes, digits, whitespace runs, a long word (the heap merge path) and invalid-UTF-8 repairs.
    public static let sampleTexts: [String] = [
        "", " ", "Hello world", "  leading and trailing  \n\n\t", "naïve café – 東京 🤖👩‍👩‍👧 e\u{301}",
        "<|begin_of_text|>x<|end_of_text|><|eot_id|>[PAD]<s></s><unk>", "12345678901234567890 3.14159 1,000,000",
        "I'm you're we'LL O'NEIL's", String(repeating: "abcdefghij", count: 20), "\u{FFFD}\u{0}\u{7F}\u{80}\u{10FFFF}",
        String(decoding: [0xF0, 0x9F, 0x98, 0x80, 0xC3, 0x28, 0xE2, 0x82], as: UTF8.self),
    ]

    /// Encodes and decodes with `tokenizer`, checking what every tokenizer promises: ids lie in
    /// `0..<vocabularySize`, and streaming detokenisation equals `decode`.
    public static func exercise(_ tokenizer: any TextTokenizer, texts: [String], _ context: String) {
        let size = tokenizer.vocabularySize
        guard size >= 0 else { fail("\(context): vocabularySize \(size)") }
        for text in texts {
            for (bos, special) in [(false, false), (true, true)] {
                let ids = tokenizer.encode(text, addBOS: bos, allowSpecialTokens: special)
                if let bad = ids.first(where: { $0 < 0 || $0 >= size }) {
                    fail("\(context): encode gave id \(bad) outside 0..<\(size) for \(text.debugDescription)")
                }
                let whole = tokenizer.decode(ids)
                var stream = StreamingDetokenizer(tokenizer: tokenizer)
                var streamed = ""
                for id in ids { streamed += stream.append(id) }
                streamed += stream.finish()
                if streamed != whole {
                    fail("\(context): streamed \(streamed.debugDescription) != decoded \(whole.debugDescription)")
                }
            }
        }
        _ = tokenizer.encode(texts.joined())
        _ = tokenizer.decode([-1, Int.min, Int.max, size, size - 1, 0, 1 << 31])
        for id in [-1, Int.min, Int.max, size, 0] { _ = tokenizer.tokenBytes(id) }
        for special in ["<|begin_of_text|>", "[PAD]", ""] { _ = tokenizer.tokenID(forSpecial: special) }
        let padded = tokenizer.addingPadTokenIfMissing()
        guard let pad = padded.padTokenID, pad >= 0, pad < padded.vocabularySize else {
            fail("\(context): addingPadTokenIfMissing gave pad \(String(describing: padded.padTokenID)) of \(padded.vocabularySize)")
        }
        _ = padded.encode("[PAD] x [PAD]", addBOS: true, allowSpecialTokens: true)
    }
}
