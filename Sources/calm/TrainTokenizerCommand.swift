import CALMTokenizer
import CALMTraining
import Foundation

/// `calm train-tokenizer`: byte-level BPE from a corpus.
enum TrainTokenizerCommand {
    static let help = """
    usage: calm train-tokenizer --corpus DIR|FILE --vocab-size N --out DIR
                                [--min-frequency N] [--pattern gpt2|llama3]

      Trains a byte-level BPE tokenizer and writes DIR/tokenizer.json (Hugging Face format)
      and DIR/tokenizer_config.json.
      --corpus DIR|FILE   a `calm corpus` folder (its train.jsonl is used), a .jsonl file of
                          {"text": …} lines, or a plain UTF-8 text file
      --vocab-size N      vocabulary size including the special tokens (default 8192)
      --min-frequency N   do not merge pairs seen fewer times (default 2)
      --pattern NAME      pre-tokenisation: gpt2 (default) or llama3
      Special tokens: <|endoftext|> (BOS/EOS) and [PAD], the last two ids.
    """

    static func run(_ raw: [String]) throws {
        if Arguments.wantsHelp(raw) { writeStdout(help + "\n"); return }
        var a = try Arguments(raw, switches: [], values: ["corpus", "out", "vocab-size", "min-frequency", "pattern"])
        let corpus = URL(fileURLWithPath: try a.required("corpus"))
        let out = URL(fileURLWithPath: try a.required("out"))
        let vocabularySize = try a.int("vocab-size") ?? 8192
        let minFrequency = try a.int("min-frequency") ?? 2
        let patternName = a.string("pattern") ?? "gpt2"
        try a.finish()
        guard let pattern = PreTokenizationPattern(rawValue: patternName) else { throw UsageError("--pattern must be gpt2 or llama3") }
        guard vocabularySize >= 258, vocabularySize <= 1 << 20 else { throw UsageError("--vocab-size must be in 258...1048576") }

        let start = Date()
        let (texts, heldOut) = try loadCorpus(corpus)
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        printError(String(format: "read %d documents, %.1f MB in %.1f s", texts.count, Double(bytes) / 1e6, Date().timeIntervalSince(start)))

        var trainer = BPETrainer(options: .init(vocabularySize: vocabularySize, minFrequency: minFrequency, pattern: pattern))
        let countStart = Date()
        trainer.add(texts)
        let countSeconds = Date().timeIntervalSince(countStart)
        printError(String(format: "counted %d distinct pieces in %.1f s", trainer.pieceCounts.count, countSeconds))
        let result = trainer.train()
        try result.write(to: out)
        let reloaded = try TokenizerLoader.load(directory: out)
        var report = String(format: "vocabulary %d (%d merges), pre-tokenisation %.1f s, merges %.1f s, total %.1f s → %@\n",
                            reloaded.vocabularySize, result.definition.merges.count, countSeconds, result.seconds,
                            Date().timeIntervalSince(start), out.path)
        if !heldOut.isEmpty {
            var tokens = 0, textBytes = 0
            for text in heldOut {
                tokens += reloaded.encode(text, addBOS: false, allowSpecialTokens: false).count
                textBytes += text.utf8.count
            }
            report += String(format: "held-out text: %.3f bytes per token (%d tokens)\n", Double(textBytes) / Double(max(tokens, 1)), tokens)
        }
        writeStdout(report)
    }

    /// Training texts, and held-out texts when the corpus folder has a valid.jsonl.
    static func loadCorpus(_ url: URL) throws -> ([String], [String]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            throw UsageError("no such file or folder: \(url.path)")
        }
        if isDirectory.boolValue {
            let train = url.appendingPathComponent("train.jsonl")
            guard FileManager.default.fileExists(atPath: train.path) else { throw UsageError("\(url.path) has no train.jsonl") }
            let valid = url.appendingPathComponent("valid.jsonl")
            let heldOut = FileManager.default.fileExists(atPath: valid.path) ? try JSONLines.texts(Data(contentsOf: valid)) : []
            return (try JSONLines.texts(Data(contentsOf: train)), heldOut)
        }
        let data = try Data(contentsOf: url)
        if url.pathExtension == "jsonl" { return (try JSONLines.texts(data), []) }
        guard let text = String(data: data, encoding: .utf8) else { throw UsageError("\(url.path) is not UTF-8") }
        // Plain text: pieces of about 1 MB cut at paragraph breaks, so counting runs in parallel.
        return (TextNormalizer.chunks(text, maxBytes: 1 << 20), [])
    }
}
