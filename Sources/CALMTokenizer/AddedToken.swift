import Foundation

/// A token matched literally in the input before pre-tokenisation (Hugging Face "added token";
/// every tiktoken special token is one).
///
/// ```swift
/// let pad = AddedToken(id: 128256, content: "[PAD]")
/// ```
public struct AddedToken: Sendable, Hashable {
    /// The token id.
    public var id: Int
    /// The literal text.
    public var content: String
    /// Special tokens are only recognised when encoding with `allowSpecialTokens: true`.
    public var special: Bool
    /// Hugging Face `lstrip`: a match also swallows whitespace on its left.
    public var lstrip: Bool
    /// Hugging Face `rstrip`: a match also swallows whitespace on its right.
    public var rstrip: Bool
    /// Hugging Face `single_word` (kept for round trips; matching ignores it).
    public var singleWord: Bool
    /// Hugging Face `normalized` (kept for round trips; matching uses the raw text).
    public var normalized: Bool

    /// Creates an added token (special, not stripping, not normalised, by default).
    public init(id: Int, content: String, special: Bool = true, lstrip: Bool = false,
                rstrip: Bool = false, singleWord: Bool = false, normalized: Bool = false) {
        self.id = id
        self.content = content
        self.special = special
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.singleWord = singleWord
        self.normalized = normalized
    }
}

/// Receives the segments of an input split on added tokens.
protocol SegmentSink {
    /// Ordinary text, byte offsets `start ..< end` (never empty).
    mutating func text(_ start: Int, _ end: Int)
    /// A matched added token.
    mutating func token(_ id: Int)
}

/// Finds added-token text in UTF-8 input, leftmost-longest.
struct AddedTokenMatcher: Sendable {
    let tokens: [AddedToken]
    private let contents: [[UInt8]]
    /// For each first byte, indices into `tokens`, longest content first.
    private let candidates: [[Int]]
    private let hasSpecial: Bool
    private let hasNonSpecial: Bool

    init(_ tokens: [AddedToken]) {
        self.tokens = tokens
        let contents = tokens.map { Array($0.content.utf8) }
        self.contents = contents
        var candidates = [[Int]](repeating: [], count: 256)
        for (index, bytes) in contents.enumerated() where !bytes.isEmpty {
            candidates[Int(bytes[0])].append(index)
        }
        for b in 0..<256 {
            candidates[b].sort { contents[$0].count > contents[$1].count }
        }
        self.candidates = candidates
        hasSpecial = tokens.contains { $0.special }
        hasNonSpecial = tokens.contains { !$0.special }
    }

    /// The id of the token whose content is exactly `text`.
    func id(for text: String) -> Int? {
        tokens.first { $0.content == text }?.id
    }

    /// Splits `bytes` into ordinary segments and added tokens. Special tokens are matched only
    /// when `allowSpecial` is true; non-special added tokens always are.
    func split<Sink: SegmentSink>(_ bytes: UnsafeBufferPointer<UInt8>, allowSpecial: Bool, into sink: inout Sink) {
        let n = bytes.count
        guard n > 0 else { return }
        guard (allowSpecial && hasSpecial) || hasNonSpecial else {
            sink.text(0, n)
            return
        }
        let base = bytes.baseAddress!
        var textStart = 0
        var i = 0
        contents.withUnsafeBufferPointer { contents in
            while i < n {
                let list = candidates[Int(base[i])]
                var matched = -1
                if !list.isEmpty {
                    for index in list {
                        let token = tokens[index]
                        if token.special && !allowSpecial { continue }
                        let content = contents[index]
                        if content.count <= n - i,
                           content.withUnsafeBufferPointer({ memcmp($0.baseAddress!, base + i, $0.count) }) == 0 {
                            matched = index
                            break
                        }
                    }
                }
                if matched < 0 {
                    i += 1
                    continue
                }
                let token = tokens[matched]
                var textEnd = i
                if token.lstrip { textEnd = trailingWhitespaceStart(base, from: textStart, to: i) }
                if textEnd > textStart { sink.text(textStart, textEnd) }
                sink.token(token.id)
                i += contents[matched].count
                if token.rstrip { i = leadingWhitespaceEnd(base, from: i, to: n) }
                textStart = i
            }
        }
        if textStart < n { sink.text(textStart, n) }
    }

    private func trailingWhitespaceStart(_ base: UnsafePointer<UInt8>, from start: Int, to end: Int) -> Int {
        ScalarClassTable.shared.bmp.withUnsafeBufferPointer { table in
            let text = ClassifiedUTF8(base: base, count: end, bmp: table.baseAddress!)
            var i = start
            var runStart = start
            while i < end {
                let (flags, length) = text.scalar(at: i)
                if flags & ScalarClass.whitespace == 0 { runStart = i + length }
                i += length
            }
            return runStart
        }
    }

    private func leadingWhitespaceEnd(_ base: UnsafePointer<UInt8>, from start: Int, to end: Int) -> Int {
        ScalarClassTable.shared.bmp.withUnsafeBufferPointer { table in
            ClassifiedUTF8(base: base, count: end, bmp: table.baseAddress!)
                .runEnd(from: start, matching: ScalarClass.whitespace)
        }
    }
}
