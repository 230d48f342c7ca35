import Foundation

/// Trains a byte-level BPE tokenizer (GPT-2 style) from text.
///
/// 1. Pre-tokenisation with the same scanner the tokenizer uses (`PreTokenizationPattern.gpt2`
///    by default), counting each distinct piece ("word") — in parallel over documents.
/// 2. Every word starts as its UTF-8 bytes; ids 0…255 are the 256 single bytes (so any text
///    encodes: byte fallback is built in).
/// 3. The most frequent adjacent pair is merged, repeatedly, until the vocabulary (bytes +
///    merges + special tokens) reaches the target size or no pair occurs `minFrequency`
///    times. Pair counts are updated incrementally: only words containing the merged pair are
///    rescanned, and a max-heap with lazy invalidation yields the next pair. Ties go to the
///    pair with the smaller (left id, right id), so training is deterministic.
/// 4. Special tokens (`<|endoftext|>`, `[PAD]` by default) get the last ids.
///
/// ```swift
/// var trainer = BPETrainer(options: .init(vocabularySize: 8192))
/// trainer.add(documents)                     // [String]
/// let result = trainer.train()
/// try result.write(to: URL(fileURLWithPath: "tok"))  // tokenizer.json + tokenizer_config.json
/// let tokenizer = try TokenizerLoader.load(directory: URL(fileURLWithPath: "tok"))
/// ```
public struct BPETrainer: Sendable {
    /// Training options.
    public struct Options: Sendable {
        /// Target vocabulary size, special tokens included.
        public var vocabularySize: Int
        /// Pairs seen fewer times than this are not merged.
        public var minFrequency: Int
        /// Special tokens, appended after the merged tokens. The first is the BOS/EOS token,
        /// the last the padding token (when there are two or more).
        public var specialTokens: [String]
        /// Pre-tokenisation pattern (`.gpt2`: ByteLevel with regex; `.llama3`: Split + ByteLevel).
        public var pattern: PreTokenizationPattern
        /// Threads used to count pieces.
        public var threads: Int

        public init(vocabularySize: Int = 8192, minFrequency: Int = 2,
                    specialTokens: [String] = ["<|endoftext|>", "[PAD]"],
                    pattern: PreTokenizationPattern = .gpt2,
                    threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
            self.vocabularySize = vocabularySize
            self.minFrequency = minFrequency
            self.specialTokens = specialTokens
            self.pattern = pattern
            self.threads = max(1, threads)
        }
    }

    public var options: Options
    /// Piece (pre-token) bytes → occurrences in the text added so far.
    public private(set) var pieceCounts: [[UInt8]: Int] = [:]

    public init(options: Options = Options()) {
        self.options = options
    }

    /// Counts the pre-tokens of `texts` (documents are never joined: no piece spans two).
    public mutating func add(_ texts: [String]) {
        let threads = min(options.threads, max(1, texts.count))
        let pattern = options.pattern
        let partial = BPETrainerLock([[[UInt8]: Int]](repeating: [:], count: threads))
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var counts: [[UInt8]: Int] = [:]
            var index = t
            while index < texts.count {
                var text = texts[index]
                text.withUTF8 { buffer in
                    for range in pattern.pieceRanges(buffer) {
                        counts[Array(buffer[range]), default: 0] += 1
                    }
                }
                index += threads
            }
            partial.withLock { $0[t] = counts }
        }
        for counts in partial.withLock({ $0 }) {
            if pieceCounts.isEmpty {
                pieceCounts = counts
            } else {
                pieceCounts.merge(counts, uniquingKeysWith: +)
            }
        }
    }

    /// Counts the pre-tokens of one text.
    public mutating func add(_ text: String) { add([text]) }

    /// Runs the merges on the pieces counted so far.
    public func train() -> BPETrainingResult {
        BPETrainer.train(pieceCounts: pieceCounts, options: options)
    }

    /// Runs the merges on given piece counts.
    public static func train(pieceCounts: [[UInt8]: Int], options: Options) -> BPETrainingResult {
        let start = Date()
        // Words in a deterministic order (counts desc, then bytes) — not needed for the result,
        // but keeps the work and memory layout reproducible.
        let entries = pieceCounts.sorted { a, b in
            a.value != b.value ? a.value > b.value : a.key.lexicographicallyPrecedes(b.key)
        }
        var words: [[Int32]] = entries.map { $0.key.map { Int32($0) } }
        let frequency: [Int] = entries.map(\.value)

        var vocabulary: [[UInt8]] = (0..<256).map { [UInt8($0)] }
        var ids: [[UInt8]: Int32] = [:]
        for (i, t) in vocabulary.enumerated() { ids[t] = Int32(i) }
        var merges: [BPEMerge] = []
        let target = max(256, options.vocabularySize - options.specialTokens.count)

        @inline(__always) func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

        var pairCounts: [UInt64: Int] = [:]
        var pairWords: [UInt64: [Int32]] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            let f = frequency[w]
            for i in 0 ..< word.count - 1 {
                let k = key(word[i], word[i + 1])
                pairCounts[k, default: 0] += f
                pairWords[k, default: []].append(Int32(w))
            }
        }
        var heap = BPEPairHeap()
        for (k, c) in pairCounts { heap.push(count: c, pair: k) }

        var changed: [UInt64: Int] = [:]
        while vocabulary.count < target, let top = heap.pop() {
            let current = pairCounts[top.pair] ?? 0
            if current != top.count {
                if current > 0 { heap.push(count: current, pair: top.pair) }
                continue
            }
            if current < max(1, options.minFrequency) { break }
            let a = Int32(truncatingIfNeeded: top.pair >> 32), b = Int32(truncatingIfNeeded: top.pair & 0xFFFF_FFFF)
            let merged = vocabulary[Int(a)] + vocabulary[Int(b)]
            let c: Int32
            if let existing = ids[merged] {
                c = existing
            } else {
                c = Int32(vocabulary.count)
                vocabulary.append(merged)
                ids[merged] = c
            }
            merges.append(BPEMerge(Int(a), Int(b)))

            // Rescan the words that contained (a, b): remove their old pairs, merge, add the new.
            var list = pairWords.removeValue(forKey: top.pair) ?? []
            list.sort()
            var previous: Int32 = -1
            changed.removeAll(keepingCapacity: true)
            for w32 in list where w32 != previous {
                previous = w32
                let w = Int(w32)
                let word = words[w]
                guard word.count > 1 else { continue }
                // Does the word still contain the pair?
                var found = false
                for i in 0 ..< word.count - 1 where word[i] == a && word[i + 1] == b { found = true; break }
                if !found { continue }
                let f = frequency[w]
                for i in 0 ..< word.count - 1 {
                    let k = key(word[i], word[i + 1])
                    pairCounts[k, default: 0] -= f
                }
                var out: [Int32] = []
                out.reserveCapacity(word.count)
                var i = 0
                while i < word.count {
                    if i + 1 < word.count && word[i] == a && word[i + 1] == b {
                        out.append(c)
                        i += 2
                    } else {
                        out.append(word[i])
                        i += 1
                    }
                }
                words[w] = out
                if out.count > 1 {
                    for j in 0 ..< out.count - 1 {
                        let k = key(out[j], out[j + 1])
                        pairCounts[k, default: 0] += f
                        if out[j] == c || out[j + 1] == c {
                            changed[k, default: 0] += 1
                            pairWords[k, default: []].append(w32)
                        }
                    }
                }
            }
            pairCounts[top.pair] = nil
            for k in changed.keys {
                if let count = pairCounts[k], count > 0 { heap.push(count: count, pair: k) }
            }
        }

        // Vocabulary: bytes, merged tokens, then special tokens as added tokens.
        var table: [[UInt8]?] = vocabulary.map { $0 }
        var added: [AddedToken] = []
        for text in options.specialTokens {
            added.append(AddedToken(id: table.count, content: text, special: true))
            table.append(Array(text.utf8))
        }
        let preTokenizer: [PreTokenizerStep]
        switch options.pattern {
        case .gpt2: preTokenizer = [.byteLevel(addPrefixSpace: false, useRegex: true)]
        case .llama3: preTokenizer = HuggingFaceBPEDefinition.llama3PreTokenizer
        }
        let definition = HuggingFaceBPEDefinition(vocabulary: table, merges: merges, addedTokens: added,
                                                  preTokenizer: preTokenizer)
        return BPETrainingResult(definition: definition, specialTokens: options.specialTokens,
                                 distinctPieces: pieceCounts.count, seconds: Date().timeIntervalSince(start))
    }
}

/// What `BPETrainer.train` produced.
public struct BPETrainingResult: Sendable {
    /// The tokenizer, ready to write or to instantiate.
    public var definition: HuggingFaceBPEDefinition
    /// Special tokens (first: BOS/EOS, last: padding when there are two or more).
    public var specialTokens: [String]
    /// Distinct pre-tokens the merges ran on.
    public var distinctPieces: Int
    /// Time spent merging (not counting).
    public var seconds: Double

    /// The tokenizer as an object.
    public func tokenizer() throws -> HuggingFaceBPETokenizer {
        try HuggingFaceBPETokenizer(definition: definition, config: config)
    }

    /// BOS/EOS/pad names as `tokenizer_config.json` gives them.
    public var config: TokenizerConfig {
        TokenizerConfig(addedTokens: definition.addedTokens, bosToken: specialTokens.first, eosToken: specialTokens.first,
                        padToken: specialTokens.count > 1 ? specialTokens.last : nil, addBOSToken: false)
    }

    /// Writes `tokenizer.json` and `tokenizer_config.json` into `directory` (created if needed).
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try definition.write(to: directory.appendingPathComponent("tokenizer.json"))
        var w = JSONWriter()
        w.raw("{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n  \"add_bos_token\": false,\n  \"add_eos_token\": false,\n")
        w.raw("  \"model_max_length\": 1000000000000000019884624838656,\n")
        for (name, value) in [("bos_token", specialTokens.first), ("eos_token", specialTokens.first),
                              ("unk_token", specialTokens.first),
                              ("pad_token", specialTokens.count > 1 ? specialTokens.last : nil)] {
            w.raw("  \"\(name)\": ")
            if let value { w.string(value) } else { w.raw("null") }
            w.raw(",\n")
        }
        w.raw("  \"added_tokens_decoder\": {")
        for (i, token) in definition.addedTokens.enumerated() {
            w.raw(i == 0 ? "\n    " : ",\n    ")
            w.string(String(token.id))
            w.raw(": {\"content\": ")
            w.string(token.content)
            w.raw(", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false, \"special\": true}")
        }
        w.raw(definition.addedTokens.isEmpty ? "}\n}\n" : "\n  }\n}\n")
        do {
            try Data(w.bytes).write(to: directory.appendingPathComponent("tokenizer_config.json"), options: .atomic)
        } catch {
            throw TokenizerError.writeFailed(path: directory.path, reason: error.localizedDescription)
        }
    }
}

/// A max-heap of (count, pair): larger count first, then smaller pair key.
struct BPEPairHeap {
    private var items: [(count: Int, pair: UInt64)] = []

    var isEmpty: Bool { items.isEmpty }

    @inline(__always)
    private static func before(_ x: (count: Int, pair: UInt64), _ y: (count: Int, pair: UInt64)) -> Bool {
        x.count != y.count ? x.count > y.count : x.pair < y.pair
    }

    mutating func push(count: Int, pair: UInt64) {
        items.append((count, pair))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.before(items[i], items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> (count: Int, pair: UInt64)? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            let n = items.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < n && Self.before(items[l], items[best]) { best = l }
                if r < n && Self.before(items[r], items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
        }
        return top
    }
}

/// A value behind a lock, shareable across threads.
///
/// `@unchecked Sendable`: `value` is read and written only inside `withLock`, while holding `lock`.
/// `Value` is not constrained to `Sendable`; the one use holds per-thread count dictionaries (value
/// types).
final class BPETrainerLock<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
