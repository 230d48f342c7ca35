import CALMTokenizer
import Foundation

/// Small synthetic tokenizers for seeds and fixed harness inputs, trained here by `BPETrainer`
/// on a few lines of our own text (nothing copied from ../shared).
public enum TokenizerSeeds {
    public static let trainingText = [
        "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs on.",
        "In the beginning was the word, and the word was written 1234 times over, 56.78 and 9,000.",
        "naïve café – 東京 🤖 It's what we'll do, isn't it? \n\n  Indented\tlines   and    spaces.",
    ]

    /// A trained byte-level BPE definition (`vocabularySize` ids, special tokens last).
    public static func definition(vocabularySize: Int = 320, pattern: PreTokenizationPattern = .gpt2,
                                  specials: [String] = ["<|endoftext|>", "[PAD]"]) -> HuggingFaceBPEDefinition {
        var trainer = BPETrainer(options: .init(vocabularySize: vocabularySize, minFrequency: 1,
                                                specialTokens: specials, pattern: pattern, threads: 1))
        trainer.add(trainingText)
        return trainer.train().definition
    }

    /// The same vocabulary as a tiktoken rank file ("base64(bytes) rank" lines), ranks = ids.
    public static func tiktokenRanks(_ definition: HuggingFaceBPEDefinition) -> [UInt8] {
        var text = ""
        for (rank, token) in definition.vocabulary.enumerated() {
            guard let token, !definition.addedTokens.contains(where: { $0.id == rank }) else { continue }
            text += Data(token).base64EncodedString() + " \(rank)\n"
        }
        return Array(text.utf8)
    }
}
