import Foundation

/// How English generated text is: the share of its words that a dictionary knows (issue: "≥ 75% of
/// its words are real words").
///
/// A **word** is a maximal run of letters and apostrophes (any script; digits, punctuation, spaces and
/// hyphens separate words, so "well-known" is two), with leading and trailing apostrophes removed.
/// It is **real** when the dictionary holds it in any letter case, or it ends in "'s" and the
/// dictionary holds the rest. Words are counted over all samples together (a long sample weighs more).
///
/// ```swift
/// let dictionary = try RealWordShare.Dictionary(contentsOf: URL(fileURLWithPath: "/usr/share/dict/words"))
/// let share = RealWordShare(texts: ["The cat sat on the mat.", "Xqzzy glorp."], dictionary: dictionary)
/// print(share.percent)   // 75.0: 6 of 8 words
/// ```
public struct RealWordShare: Sendable, Equatable {
    /// A word list, matched ignoring case.
    public struct Dictionary: Sendable {
        let words: Set<String>
        /// Where the list came from (reported with the figure).
        public let source: String

        /// One word a line (blank lines ignored), as `/usr/share/dict/words`.
        public init(words: [String], source: String) {
            self.words = Set(words.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty })
            self.source = source
        }

        /// Reads a word list file.
        ///
        /// - Throws: `CorpusError.unreadable` naming the file when it cannot be read as UTF-8, and
        ///   `CorpusError.empty` when it holds no word.
        public init(contentsOf url: URL) throws {
            guard let data = FileManager.default.contents(atPath: url.path), let text = String(data: data, encoding: .utf8) else {
                throw CorpusError.unreadable(file: url.path, reason: "cannot read it as UTF-8 text")
            }
            self.init(words: text.split(whereSeparator: \.isNewline).map(String.init), source: url.path)
            guard !words.isEmpty else { throw CorpusError.empty(file: url.path) }
        }

        /// Whether `word` (already split out) is real: known in any case, or a known stem + "'s".
        public func contains(_ word: String) -> Bool {
            let lower = word.lowercased()
            if words.contains(lower) { return true }
            if lower.hasSuffix("'s"), lower.count > 2 { return words.contains(String(lower.dropLast(2))) }
            return false
        }
    }

    /// Words seen and how many of them are real.
    public let words: Int
    public let realWords: Int

    /// 100 × real / words (0 with no word).
    public var percent: Double { words > 0 ? 100 * Double(realWords) / Double(words) : 0 }

    /// Measures `texts` against `dictionary`.
    public init(texts: [String], dictionary: Dictionary) {
        var words = 0, real = 0
        for text in texts {
            for word in Self.words(in: text) {
                words += 1
                if dictionary.contains(word) { real += 1 }
            }
        }
        self.words = words
        self.realWords = real
    }

    /// The words of `text` by the definition above.
    public static func words(in text: String) -> [String] {
        var out: [String] = [], current = ""
        func flush() {
            let trimmed = current.trimmingCharacters(in: CharacterSet(charactersIn: "'’"))
            if !trimmed.isEmpty { out.append(trimmed.replacingOccurrences(of: "’", with: "'")) }
            current = ""
        }
        for scalar in text.unicodeScalars {
            if CharacterSet.letters.contains(scalar) || scalar == "'" || scalar == "’" {
                current.unicodeScalars.append(scalar)
            } else {
                flush()
            }
        }
        flush()
        return out
    }
}
