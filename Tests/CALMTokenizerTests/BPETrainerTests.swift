import Foundation
import Testing
@testable import CALMTokenizer

@Suite struct BPETrainerTests {
    static let sample = """
    It is a truth universally acknowledged, that a single man in possession of a good fortune,
    must be in want of a wife. However little known the feelings or views of such a man may be
    on his first entering a neighbourhood, this truth is so well fixed in the minds of the
    surrounding families, that he is considered the rightful property of some one or other of
    their daughters. Call me Ishmael. Some years ago—never mind how long precisely—having little
    or no money in my purse, and nothing particular to interest me on shore, I thought I would
    sail about a little and see the watery part of the world. 1234 5678 naïve café.
    """

    func options(_ size: Int, minFrequency: Int = 2, threads: Int = 2) -> BPETrainer.Options {
        .init(vocabularySize: size, minFrequency: minFrequency, threads: threads)
    }

    @Test func mergesMostFrequentPairFirst() {
        let counts: [[UInt8]: Int] = [Array("xyz".utf8): 10, Array("xy".utf8): 2, Array("ab".utf8): 3, Array("cd".utf8): 3]
        let result = BPETrainer.train(pieceCounts: counts, options: options(300, minFrequency: 1))
        let m = result.definition.merges
        let x = 120, y = 121, z = 122, a = 97, b = 98, c = 99, d = 100
        // (x,y)=12, then (xy,z)=10, then the tie (a,b)=3 / (c,d)=3 goes to the smaller ids.
        #expect(m == [BPEMerge(x, y), BPEMerge(256, z), BPEMerge(a, b), BPEMerge(c, d)])
        #expect(result.definition.vocabulary[256] == Array("xy".utf8))
        #expect(result.definition.vocabulary[257] == Array("xyz".utf8))
        // Vocabulary: 256 bytes + 4 merges + 2 special tokens.
        #expect(result.definition.vocabulary.count == 262)
        #expect(result.definition.addedTokens.map(\.content) == ["<|endoftext|>", "[PAD]"])
        #expect(result.definition.addedTokens.map(\.id) == [260, 261])
    }

    @Test func minFrequencyAndTargetSizeStopTraining() {
        let counts: [[UInt8]: Int] = [Array("xyz".utf8): 10, Array("ab".utf8): 1]
        let stopped = BPETrainer.train(pieceCounts: counts, options: options(1000, minFrequency: 2))
        #expect(stopped.definition.merges.count == 2)
        let capped = BPETrainer.train(pieceCounts: counts, options: options(259, minFrequency: 1))
        #expect(capped.definition.merges.count == 1)
        #expect(capped.definition.vocabulary.count == 259)
    }

    @Test func trainingIsDeterministic() throws {
        var one = BPETrainer(options: options(400, threads: 1))
        one.add(Self.sample.components(separatedBy: "\n"))
        var two = BPETrainer(options: options(400, threads: 2))
        two.add(Self.sample.components(separatedBy: "\n"))
        #expect(one.pieceCounts == two.pieceCounts)
        let a = one.train().definition, b = two.train().definition
        #expect(a == b)
        #expect(a.merges.count > 50)
    }

    @Test func encodeDecodeRoundTripsArbitraryText() throws {
        var trainer = BPETrainer(options: options(420, minFrequency: 1))
        trainer.add(Self.sample)
        let result = trainer.train()
        #expect(result.definition.vocabulary.count == 420)
        let tokenizer = try result.tokenizer()
        var generator = SystemRandomNumberGenerator()
        var texts = [Self.sample, "", " ", "\n\n\t", "unseen 🤖 日本語 Ω≈ç√ \u{0301}e", "<|endoftext|> [PAD]"]
        for _ in 0..<50 {
            let scalars = (0..<Int.random(in: 1...40, using: &generator)).map { _ -> Character in
                let pool: [ClosedRange<UInt32>] = [0x20...0x7E, 0xA0...0x2FF, 0x4E00...0x4E80, 0x1F600...0x1F64F, 0x0A...0x0A]
                let range = pool.randomElement(using: &generator)!
                return Character(Unicode.Scalar(UInt32.random(in: range, using: &generator))!)
            }
            texts.append(String(scalars))
        }
        for text in texts {
            let ids = tokenizer.encode(text, addBOS: false, allowSpecialTokens: false)
            #expect(tokenizer.decode(ids) == text)
            #expect(ids.allSatisfy { $0 < 418 })  // ordinary text never yields a special id
        }
        // Training words come out as the tokens the merges built.
        let the = tokenizer.encode(" the", addBOS: false, allowSpecialTokens: false)
        #expect(the.count == 1)
        #expect(tokenizer.encode("<|endoftext|>", addBOS: false, allowSpecialTokens: true) == [418])
    }

    @Test func writtenFileReloadsWithIdenticalIds() throws {
        var trainer = BPETrainer(options: options(360, minFrequency: 1))
        trainer.add(Self.sample)
        let result = trainer.train()
        #expect(result.definition.vocabulary.count == 360)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bpe-trainer-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try result.write(to: dir)
        let reloaded = try TokenizerLoader.load(directory: dir)
        let original = try result.tokenizer()
        #expect(reloaded.vocabularySize == 360)
        #expect(reloaded.bosTokenID == 358)
        #expect(reloaded.eosTokenID == 358)
        #expect(reloaded.padTokenID == 359)
        #expect(reloaded.addsBOSByDefault == false)
        for text in [Self.sample, "Hello <|endoftext|> world [PAD]", "ünïcödé 🤖"] {
            #expect(reloaded.encode(text, addBOS: false, allowSpecialTokens: true) == original.encode(text, addBOS: false, allowSpecialTokens: true))
        }
        let definition = try HuggingFaceTokenizerParser.parse(dir.appendingPathComponent("tokenizer.json"))
        #expect(definition.merges == result.definition.merges)
        #expect(definition.vocabulary == result.definition.vocabulary)
    }
}
