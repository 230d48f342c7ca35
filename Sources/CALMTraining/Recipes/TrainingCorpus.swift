import CALMTokenizer
import Foundation

/// Text corpora for the training recipes: documents from plain text or JSON Lines, tokenised
/// and laid out as the reference's training scripts do.
public enum TrainingCorpus {
    /// How a document stream is laid out.
    public enum Layout: Sendable, Equatable {
        /// Autoencoder (`train_autoencoder.py`): ids + EOS per document, right-padded with PAD to
        /// a multiple of K.
        case autoencoder(patchSize: Int, eos: Int, pad: Int)
        /// CALM and the Llama baseline (`train_calm.py`): BOS + ids per document.
        case causal(bos: Int)
    }

    /// Documents of a file. JSON Lines (`.jsonl` / `.json`, or any file whose first non-blank
    /// character is `{`): one `{"text": …}` object per line (other keys ignored, blank lines
    /// skipped). Otherwise plain UTF-8 text, one document per block of lines separated by one or
    /// more blank lines.
    public static func documents(_ url: URL) throws -> [String] {
        let data = try Data(contentsOf: url)
        guard let text = String(data: data, encoding: .utf8) else { throw TrainingError.invalidInput("\(url.path) is not UTF-8") }
        let ext = url.pathExtension.lowercased()
        let firstChar = text.first(where: { !$0.isWhitespace })
        if ext == "jsonl" || ext == "json" || firstChar == "{" {
            var docs: [String] = []
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
                if trimmed.isEmpty { continue }
                guard let obj = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any],
                      let t = obj["text"] as? String else {
                    throw TrainingError.invalidInput("\(url.path):\(n + 1): not a JSON object with a \"text\" string")
                }
                docs.append(t)
            }
            return docs
        }
        var docs: [String] = [], current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.allSatisfy({ $0.isWhitespace }) {
                if !current.isEmpty { docs.append(current.joined(separator: "\n")); current = [] }
            } else {
                current.append(line)
            }
        }
        if !current.isEmpty { docs.append(current.joined(separator: "\n")) }
        return docs
    }

    /// Tokenises documents (ordinary text only, no BOS: the layout adds specials) on all cores,
    /// keeping document order.
    public static func tokenize(_ docs: [String], tokenizer: any TextTokenizer) -> [[Int]] {
        let threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let box = ResultBox(count: docs.count)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var i = t
            while i < docs.count {
                box.set(i, tokenizer.encode(docs[i], addBOS: false, allowSpecialTokens: false))
                i += threads
            }
        }
        return box.values
    }

    /// Concatenates tokenised documents in the given layout.
    public static func stream(_ docs: [[Int]], layout: Layout) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(docs.reduce(0) { $0 + $1.count + 8 })
        for d in docs {
            switch layout {
            case let .autoencoder(k, eos, pad):
                out += d
                out.append(eos)
                let rem = (d.count + 1) % k
                if rem != 0 { out += [Int](repeating: pad, count: k - rem) }
            case let .causal(bos):
                out.append(bos)
                out += d
            }
        }
        return out
    }

    /// Loads a corpus file, tokenises it and lays it out; the result is cached next to
    /// `cache` (little-endian u32) when given and reused when the cache is newer than the corpus.
    public static func load(corpus: URL, tokenizer: any TextTokenizer, layout: Layout, cache: URL?) throws -> TokenData {
        if let cache, let cached = try? TokenData.load(cache),
           let a = try? FileManager.default.attributesOfItem(atPath: cache.path)[.modificationDate] as? Date,
           let b = try? FileManager.default.attributesOfItem(atPath: corpus.path)[.modificationDate] as? Date, a >= b {
            return cached
        }
        let docs = try documents(corpus)
        guard !docs.isEmpty else { throw TrainingError.invalidInput("\(corpus.path) has no documents") }
        let ids = stream(tokenize(docs, tokenizer: tokenizer), layout: layout)
        let data = TokenData(ids: ids)
        if let cache { try? data.write(to: cache) }
        return data
    }
}

/// Per-index results written from concurrent workers (each index written once).
///
/// `@unchecked Sendable`: the only mutable state, `storage`, is read and written only while holding
/// `lock`.
final class ResultBox: @unchecked Sendable {
    private var storage: [[Int]]
    private let lock = NSLock()
    init(count: Int) { storage = [[Int]](repeating: [], count: count) }
    func set(_ i: Int, _ v: [Int]) { lock.lock(); storage[i] = v; lock.unlock() }
    var values: [[Int]] { lock.lock(); defer { lock.unlock() }; return storage }
}
