import Foundation

/// Receives the byte ranges of pre-tokens (pieces) found by a scanner.
@usableFromInline
protocol PieceSink {
    /// Called once per piece, in order, with byte offsets `start ..< end`.
    mutating func piece(_ start: Int, _ end: Int)
}

/// A pre-tokenisation split pattern, implemented by a hand-written scanner over UTF-8.
///
/// The scanners reproduce the leftmost-first alternation semantics of the regexes they stand for
/// (including the backtracking of `\s+(?!\S)`), with `\p{L}` = general category L*, `\p{N}` =
/// Nd/Nl/No and `\s` = the Unicode `White_Space` property. No regex engine is involved.
///
/// ```swift
/// let pieces = PreTokenizationPattern.llama3.split("I'M here   now\r\n")
/// // ["I", "'M", " here", "  ", " now", "\r\n"]
/// ```
public enum PreTokenizationPattern: String, Sendable, CaseIterable {
    /// The Llama 3 `pat_str` (also the `Split` regex of Llama 3's `tokenizer.json`).
    case llama3
    /// The GPT-2 pattern used by the Hugging Face `ByteLevel` pre-tokenizer with `use_regex`.
    case gpt2

    /// The Llama 3 regex, exactly as tiktoken and `tokenizer.json` spell it.
    public static let llama3Regex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// The GPT-2 regex used by `ByteLevel(use_regex: true)`.
    public static let gpt2Regex =
        #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// The regex source this scanner implements.
    public var regex: String {
        switch self {
        case .llama3: return Self.llama3Regex
        case .gpt2: return Self.gpt2Regex
        }
    }

    /// Recognises a regex by its exact source text; `nil` when no scanner implements it.
    public init?(regex: String) {
        switch regex {
        case Self.llama3Regex: self = .llama3
        case Self.gpt2Regex: self = .gpt2
        default: return nil
        }
    }

    /// Splits `text` into pieces.
    ///
    /// ```swift
    /// PreTokenizationPattern.gpt2.split("Hello world!") // ["Hello", " world", "!"]
    /// ```
    public func split(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { buffer in
            pieceRanges(buffer).map { range in
                String(decoding: UnsafeBufferPointer(rebasing: buffer[range]), as: UTF8.self)
            }
        }
    }

    /// The byte ranges of the pieces of well-formed UTF-8 `bytes`.
    public func pieceRanges(_ bytes: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        struct Collect: PieceSink {
            var ranges: [Range<Int>] = []
            mutating func piece(_ start: Int, _ end: Int) { ranges.append(start..<end) }
        }
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return [] }
        var sink = Collect()
        ScalarClassTable.shared.bmp.withUnsafeBufferPointer { table in
            scan(ClassifiedUTF8(base: base, count: bytes.count, bmp: table.baseAddress!), into: &sink)
        }
        return sink.ranges
    }

    /// Runs the scanner for this pattern.
    @inlinable
    func scan<Sink: PieceSink>(_ text: ClassifiedUTF8, into sink: inout Sink) {
        switch self {
        case .llama3: scanLlama3(text, into: &sink)
        case .gpt2: scanGPT2(text, into: &sink)
        }
    }
}

/// Length of the contraction suffix after an apostrophe at `i - 1` (`s t re ve m ll d`), or 0.
///
/// With `ignoringCase` the letters match case-insensitively under simple case folding, which
/// also maps U+017F LATIN SMALL LETTER LONG S to `s` (as the Rust and Oniguruma engines do).
@inlinable @inline(__always)
func contractionLength(_ text: ClassifiedUTF8, at i: Int, ignoringCase: Bool) -> Int {
    let n = text.count
    guard i < n else { return 0 }
    let fold: UInt8 = ignoringCase ? 0x20 : 0
    let c = text.base[i] | fold
    switch c {
    case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
        return 1
    case UInt8(ascii: "r"), UInt8(ascii: "v"):
        if i + 1 < n, text.base[i + 1] | fold == UInt8(ascii: "e") { return 2 }
        return 0
    case UInt8(ascii: "l"):
        if i + 1 < n, text.base[i + 1] | fold == UInt8(ascii: "l") { return 2 }
        return 0
    default:
        // U+017F (C5 BF) folds to "s".
        if ignoringCase, text.base[i] == 0xC5, i + 1 < n, text.base[i + 1] == 0xBF { return 2 }
        return 0
    }
}

/// Scanner for `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
/// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
@inlinable
func scanLlama3<Sink: PieceSink>(_ text: ClassifiedUTF8, into sink: inout Sink) {
    let letter = ScalarClass.letter, number = ScalarClass.number
    let space = ScalarClass.whitespace, newline = ScalarClass.newline
    let n = text.count
    var i = 0
    while i < n {
        let start = i
        let b = text.base[i]
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if b == 0x27 {
            let length = contractionLength(text, at: i + 1, ignoringCase: true)
            if length > 0 {
                i += 1 + length
                sink.piece(start, i)
                continue
            }
        }
        let (flags, length) = text.scalar(at: i)
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if flags & letter != 0 {
            i = text.runEnd(from: i + length, matching: letter)
            sink.piece(start, i)
            continue
        }
        if flags & (number | newline) == 0, i + length < n {
            let (next, nextLength) = text.scalar(at: i + length)
            if next & letter != 0 {
                i = text.runEnd(from: i + length + nextLength, matching: letter)
                sink.piece(start, i)
                continue
            }
        }
        // \p{N}{1,3}
        if flags & number != 0 {
            i += length
            for _ in 0..<2 {
                guard i < n else { break }
                let (f, l) = text.scalar(at: i)
                if f & number == 0 { break }
                i += l
            }
            sink.piece(start, i)
            continue
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        if b == 0x20, i + 1 < n {
            let (next, nextLength) = text.scalar(at: i + 1)
            if next & (letter | number | space) == 0 {
                i = text.runEnd(from: i + 1 + nextLength, notMatching: letter | number | space)
                i = text.newlineRunEnd(from: i)
                sink.piece(start, i)
                continue
            }
        }
        if flags & space == 0 {
            i = text.runEnd(from: i + length, notMatching: letter | number | space)
            i = text.newlineRunEnd(from: i)
            sink.piece(start, i)
            continue
        }
        // Whitespace: `\s*[\r\n]+`, then `\s+(?!\S)`, then `\s+`.
        var j = i
        var lastNewline = -1
        var lastStart = i
        var scalars = 0
        while j < n {
            let (f, l) = text.scalar(at: j)
            if f & space == 0 { break }
            if f & newline != 0 { lastNewline = j }
            lastStart = j
            scalars += 1
            j += l
        }
        if lastNewline >= 0 {
            i = lastNewline + 1
        } else if j == n || scalars < 2 {
            i = j
        } else {
            i = lastStart
        }
        sink.piece(start, i)
    }
}

/// Scanner for `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
@inlinable
func scanGPT2<Sink: PieceSink>(_ text: ClassifiedUTF8, into sink: inout Sink) {
    let letter = ScalarClass.letter, number = ScalarClass.number
    let space = ScalarClass.whitespace
    let n = text.count
    var i = 0
    while i < n {
        let start = i
        let b = text.base[i]
        if b == 0x27 {
            let length = contractionLength(text, at: i + 1, ignoringCase: false)
            if length > 0 {
                i += 1 + length
                sink.piece(start, i)
                continue
            }
        }
        var (flags, length) = text.scalar(at: i)
        var body = i
        // An optional leading space joins a following letter, number or other-symbol run.
        if b == 0x20, i + 1 < n {
            let (next, nextLength) = text.scalar(at: i + 1)
            if next & space == 0 {
                body = i + 1
                flags = next
                length = nextLength
            }
        }
        if flags & letter != 0 {
            i = text.runEnd(from: body + length, matching: letter)
        } else if flags & number != 0 {
            i = text.runEnd(from: body + length, matching: number)
        } else if flags & space == 0 {
            i = text.runEnd(from: body + length, notMatching: letter | number | space)
        } else {
            // `\s+(?!\S)` gives back the last whitespace scalar before a non-space; `\s+` else.
            var j = i
            var lastStart = i
            var scalars = 0
            while j < n {
                let (f, l) = text.scalar(at: j)
                if f & space == 0 { break }
                lastStart = j
                scalars += 1
                j += l
            }
            i = (j == n || scalars < 2) ? j : lastStart
        }
        sink.piece(start, i)
    }
}
