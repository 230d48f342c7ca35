import Foundation

/// Plain-text normalisation for the corpus.
///
/// - Unicode NFC; CR LF / CR → LF; tabs, no-break and other Unicode spaces → space; control
///   characters, BOM and soft hyphens removed.
/// - Per line: leading and trailing whitespace removed, inner runs of spaces collapsed to one.
/// - Paragraphs (runs of non-blank lines) are separated by exactly one blank line.
/// - With `unwrapProse`, a hard-wrapped prose paragraph (all lines but the last at least
///   `proseLineLength` characters, the same indentation after the first line) is joined into
///   one line; verse and short lines keep their breaks.
///
/// ```swift
/// TextNormalizer.normalize("  Hello\t  world \r\n\r\n\r\n\r\nBye") // "Hello world\n\nBye"
/// ```
public enum TextNormalizer {
    /// Minimum length of the non-final lines of a paragraph taken as hard-wrapped prose.
    public static let proseLineLength = 55

    public static func normalize(_ text: String, unwrapProse: Bool = false) -> String {
        let nfc = text.utf8.allSatisfy({ $0 < 0x80 }) ? text : text.precomposedStringWithCanonicalMapping
        let bytes = Array(nfc.utf8)
        let n = bytes.count
        // Byte-level cleanup into lines; each line keeps its indentation for the prose test.
        struct Line { var indent = 0; var bytes: [UInt8] = []; var scalars = 0; var pendingSpace = false; var started = false }
        var paragraphs: [[Line]] = []
        var paragraph: [Line] = []
        var line = Line()
        func endLine() {
            if line.bytes.isEmpty {
                if !paragraph.isEmpty { paragraphs.append(paragraph); paragraph = [] }
            } else {
                paragraph.append(line)
            }
            line = Line()
        }
        func space() {
            if line.started { line.pendingSpace = true } else { line.indent += 1 }
        }
        var i = 0
        while i < n {
            let b = bytes[i]
            var length = 1
            if b < 0x80 {
                switch b {
                case 0x0A: endLine()
                case 0x0D:
                    endLine()
                    if i + 1 < n, bytes[i + 1] == 0x0A { length = 2 }
                case 0x09, 0x20: space()
                case 0x0C: endLine()
                case 0..<0x20, 0x7F: break
                default:
                    if line.pendingSpace { line.bytes.append(0x20); line.scalars += 1; line.pendingSpace = false }
                    line.bytes.append(b)
                    line.scalars += 1
                    line.started = true
                }
                i += length
                continue
            }
            length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2
            length = min(length, n - i)
            let b1 = i + 1 < n ? bytes[i + 1] : 0, b2 = i + 2 < n ? bytes[i + 2] : 0
            var isSpace = false, drop = false, isBreak = false
            if b == 0xC2 {
                if b1 == 0xA0 { isSpace = true } else if b1 == 0xAD || b1 < 0xA0 { drop = true }  // NBSP; soft hyphen, C1 controls
            } else if b == 0xE2 && b1 == 0x80 {
                if b2 >= 0x80 && b2 <= 0x8A || b2 == 0xAF { isSpace = true }
                else if b2 == 0x8B { drop = true }  // zero-width space
                else if b2 == 0xA8 || b2 == 0xA9 { isBreak = true }
            } else if b == 0xE2 && b1 == 0x81 && b2 == 0x9F {
                isSpace = true
            } else if b == 0xE3 && b1 == 0x80 && b2 == 0x80 {
                isSpace = true
            } else if b == 0xEF && b1 == 0xBB && b2 == 0xBF {
                drop = true  // BOM
            }
            if isBreak { endLine() } else if isSpace { space() } else if !drop {
                if line.pendingSpace { line.bytes.append(0x20); line.scalars += 1; line.pendingSpace = false }
                line.bytes.append(contentsOf: bytes[i ..< i + length])
                line.scalars += 1
                line.started = true
            }
            i += length
        }
        endLine()
        if !paragraph.isEmpty { paragraphs.append(paragraph) }

        var out: [UInt8] = []
        out.reserveCapacity(n)
        for (index, p) in paragraphs.enumerated() {
            if index > 0 { out += [0x0A, 0x0A] }
            let join: UInt8 = unwrapProse && isWrappedProse(p.map { ($0.indent, $0.scalars) }) ? 0x20 : 0x0A
            for (k, l) in p.enumerated() {
                if k > 0 { out.append(join) }
                out += l.bytes
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether a paragraph's lines, given as (indentation, length in scalars), look like
    /// hard-wrapped prose.
    static func isWrappedProse(_ paragraph: [(indent: Int, length: Int)]) -> Bool {
        guard paragraph.count >= 2 else { return false }
        let bodyIndent = paragraph[1].indent
        for (i, line) in paragraph.enumerated() {
            if i > 0 && line.indent != bodyIndent { return false }
            if i < paragraph.count - 1 && line.length + (i == 0 ? line.indent - bodyIndent : 0) < proseLineLength { return false }
        }
        return true
    }

    /// Splits `text` at paragraph breaks into pieces of at most about `maxBytes` UTF-8 bytes
    /// (a single longer paragraph stays whole).
    public static func chunks(_ text: String, maxBytes: Int) -> [String] {
        guard text.utf8.count > maxBytes else { return [text] }
        var pieces: [String] = []
        var current = ""
        var currentBytes = 0
        for paragraph in text.components(separatedBy: "\n\n") {
            let n = paragraph.utf8.count
            if currentBytes > 0 && currentBytes + 2 + n > maxBytes {
                pieces.append(current)
                current = ""
                currentBytes = 0
            }
            if currentBytes > 0 { current += "\n\n"; currentBytes += 2 }
            current += paragraph
            currentBytes += n
        }
        if currentBytes > 0 { pieces.append(current) }
        return pieces
    }
}

/// One document of the corpus: a chapter, a scene, a dictionary entry, a fortune.
public struct CorpusDocument: Sendable, Equatable {
    /// Source name (e.g. `"sword-text-kjv"`).
    public var source: String
    /// Human-readable title (e.g. `"KJV Gen.1"`).
    public var title: String
    /// The key hashed for the train/held-out split. Bible chapters use the OSIS chapter id
    /// (`"Gen.1"`) in every SWORD source, so a chapter's translations and commentaries fall on
    /// the same side.
    public var splitKey: String
    /// Normalised text.
    public var text: String

    public init(source: String, title: String, splitKey: String, text: String) {
        self.source = source
        self.title = title
        self.splitKey = splitKey
        self.text = text
    }
}

/// The fixed, deterministic train / held-out split.
///
/// A document is held out when FNV-1a-64 of its UTF-8 split key, modulo 10 000, is below
/// `heldOutBasisPoints` (default 150, i.e. 1.5 %). No randomness, no dependence on order.
///
/// ```swift
/// CorpusSplit.isHeldOut(key: "Gen.1") // same answer on every machine, every run
/// ```
public enum CorpusSplit {
    /// Default held-out share in basis points (1.5 %).
    public static let defaultHeldOutBasisPoints = 150

    /// FNV-1a, 64-bit.
    public static func fnv1a64(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    /// Whether the document with `key` belongs to the held-out (validation) split.
    public static func isHeldOut(key: String, basisPoints: Int = defaultHeldOutBasisPoints) -> Bool {
        Int(fnv1a64(key) % 10_000) < basisPoints
    }
}

/// JSON Lines helpers: `{"text": …}` per line.
public enum JSONLines {
    /// One JSON object line `{"text": "…"}` (with a trailing newline).
    public static func line(text: String) -> String {
        var out = "{\"text\": \""
        out.reserveCapacity(text.utf8.count + 16)
        for s in text.unicodeScalars {
            switch s {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if s.value < 0x20 {
                    out += String(format: "\\u%04x", s.value)
                } else {
                    out.unicodeScalars.append(s)
                }
            }
        }
        out += "\"}\n"
        return out
    }

    /// The `text` fields of a JSONL file's lines (lines without one are skipped).
    public static func texts(_ data: Data) throws -> [String] {
        var out: [String] = []
        for line in data.split(separator: 0x0A, omittingEmptySubsequences: true) {
            let object = try JSONSerialization.jsonObject(with: Data(line))
            if let dict = object as? [String: Any], let text = dict["text"] as? String { out.append(text) }
        }
        return out
    }
}
