import Foundation

/// Reader for SWORD compressed Bible and commentary modules (`zText`, `zText4`, `zCom`, `zCom4`).
///
/// A testament is three files, named `ot.?z?` / `nt.?z?` where the first `?` is the block type
/// (`b` book, `c` chapter, `v` verse):
/// - `.?zs` block index: per block, little-endian `UInt32` offset into `.?zz`, compressed size,
///   uncompressed size (12 bytes);
/// - `.?zz` the blocks, each a zlib stream;
/// - `.?zv` verse index: per verse slot (in versification order), block number (`UInt32`),
///   offset in the uncompressed block (`UInt32`) and size (`UInt16` in `zText`/`zCom`, 10 bytes;
///   `UInt32` in the `…4` drivers, 12 bytes).
///
/// ```swift
/// let entries = try SwordModule.readTestament(blockIndex: bzs, verseIndex: bzv, blocks: bzz)
/// // ["<milestone …/>", "<chapter osisID=\"Gen.1\" …/>", "In the beginning …", …]
/// ```
public enum SwordModule {
    /// The non-empty verse entries of one testament, in index order. Entries that point at the
    /// same text as an earlier one (linked verses) are skipped.
    ///
    /// - Parameter entrySize: 10 or 12 bytes per verse-index entry; `nil` to infer it (the
    ///   size whose every entry lies inside its block; 12 wins ties). Some modules declare
    ///   `zCom4` but ship 10-byte indexes, so inference is the default.
    public static func readTestament(blockIndex: [UInt8], verseIndex: [UInt8], blocks: [UInt8], entrySize: Int? = nil) throws -> [String] {
        func le32(_ b: [UInt8], _ o: Int) -> Int {
            Int(b[o]) | Int(b[o + 1]) << 8 | Int(b[o + 2]) << 16 | Int(b[o + 3]) << 24
        }
        guard blockIndex.count % 12 == 0 else { throw CorpusError.malformed("SWORD block index", "size \(blockIndex.count) is not a multiple of 12") }
        var sizes: [Int] = []
        var ranges: [(offset: Int, compressed: Int, size: Int)] = []
        for i in stride(from: 0, to: blockIndex.count, by: 12) {
            let r = (le32(blockIndex, i), le32(blockIndex, i + 4), le32(blockIndex, i + 8))
            guard r.0 + r.1 <= blocks.count else { throw CorpusError.malformed("SWORD block index", "block \(i / 12) beyond the data file") }
            ranges.append(r)
            sizes.append(r.2)
        }

        func entries(size: Int) -> [(block: Int, offset: Int, length: Int)]? {
            guard verseIndex.count % size == 0 else { return nil }
            var out: [(Int, Int, Int)] = []
            out.reserveCapacity(verseIndex.count / size)
            for o in stride(from: 0, to: verseIndex.count, by: size) {
                let block = le32(verseIndex, o), offset = le32(verseIndex, o + 4)
                let length = size == 10 ? Int(verseIndex[o + 8]) | Int(verseIndex[o + 9]) << 8 : le32(verseIndex, o + 8)
                if length == 0 { out.append((block, offset, 0)); continue }
                guard block < sizes.count, offset + length <= sizes[block] else { return nil }
                out.append((block, offset, length))
            }
            return out
        }
        let candidates = entrySize.map { [$0] } ?? [12, 10]
        guard let index = candidates.lazy.compactMap({ entries(size: $0) }).first else {
            throw CorpusError.malformed("SWORD verse index", "no entry size (\(candidates)) fits the blocks")
        }

        var decoded: [Int: [UInt8]] = [:]
        var seen = Set<Int>()
        var out: [String] = []
        for (block, offset, length) in index where length > 0 {
            guard seen.insert(block << 32 | offset).inserted else { continue }
            if decoded[block] == nil {
                let r = ranges[block]
                let text = try Inflate.zlib(Array(blocks[r.offset ..< r.offset + r.compressed]), sizeHint: r.size)
                decoded = [block: text]  // blocks are visited in order; keep one
            }
            let text = decoded[block]!
            guard offset + length <= text.count else { throw CorpusError.malformed("SWORD block", "entry beyond decompressed block \(block)") }
            out.append(String(decoding: text[offset ..< offset + length], as: UTF8.self))
        }
        return out
    }

    /// Reads every testament (`ot` then `nt`) of the module in `directory`.
    public static func readModule(directory: URL) throws -> [String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        var out: [String] = []
        for testament in ["ot", "nt"] {
            guard let s = names.first(where: { $0.hasPrefix(testament + ".") && $0.hasSuffix("zs") }) else { continue }
            let stem = String(s.dropLast())
            func load(_ suffix: String) throws -> [UInt8] {
                Array(try Data(contentsOf: directory.appendingPathComponent(stem + suffix)))
            }
            let bzs = try load("s"), bzv = try load("v"), bzz = try load("z")
            if bzs.isEmpty || bzz.isEmpty { continue }
            out += try readTestament(blockIndex: bzs, verseIndex: bzv, blocks: bzz)
        }
        return out
    }
}

/// Turns OSIS markup (as stored in SWORD modules) into plain text.
///
/// Notes (`<note>…</note>`) and their content are dropped, as are Strong's numbers and other
/// attributes; paragraph and line-group milestones become paragraph breaks, `<lb/>` and `<l>`
/// line breaks; titles become their own paragraphs; every other tag is removed. Entities
/// (`&amp;` …) are decoded.
///
/// ```swift
/// OSISText.plain("<w lemma=\"strong:H0430\">God</w> <note>fn</note>said.") // "God said."
/// ```
public enum OSISText {
    /// What a tag does to the text around it.
    enum TagEffect { case none, paragraph, line }

    /// Converts one OSIS fragment to text (paragraph breaks as "\n\n", line breaks as "\n").
    public static func plain(_ markup: String) -> String {
        let bytes = Array(markup.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var skipDepth = 0  // inside <note> (nested notes counted)
        // A note often stands where a word break was ("God<note>…</note><w>created</w>"):
        // a space is put back when a letter or digit follows one directly.
        var afterNote = false
        let n = bytes.count
        var i = 0
        func isWordByte(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A) || b >= 0xC0
        }
        while i < n {
            let c = bytes[i]
            if c == UInt8(ascii: "<") {
                var j = i + 1
                while j < n, bytes[j] != UInt8(ascii: ">") { j += 1 }
                let tag = bytes[(i + 1) ..< min(j, n)]
                i = j + 1
                let closing = tag.first == UInt8(ascii: "/")
                let selfClosing = tag.last == UInt8(ascii: "/")
                let nameStart = closing ? tag.startIndex + 1 : tag.startIndex
                var nameEnd = nameStart
                while nameEnd < tag.endIndex, tag[nameEnd] != 0x20, tag[nameEnd] != UInt8(ascii: "/"), tag[nameEnd] != 0x0A { nameEnd += 1 }
                let name = String(decoding: tag[nameStart ..< nameEnd], as: UTF8.self)
                if name == "note" || name == "rdg" {
                    if closing {
                        skipDepth = max(0, skipDepth - 1)
                        afterNote = skipDepth == 0
                    } else if !selfClosing {
                        skipDepth += 1
                    }
                    continue
                }
                if skipDepth > 0 { continue }
                switch name {
                case "div", "p", "lg", "title", "chapter", "list", "item", "head":
                    // Milestones and containers: paragraph break (not for x-preverse markers).
                    if !contains(tag, "x-milestone") { out += [0x0A, 0x0A] }
                case "l", "lb": out.append(0x0A)
                default: break
                }
                continue
            }
            if skipDepth == 0 {
                if c == UInt8(ascii: "&"), let semi = bytes[i ..< min(n, i + 10)].firstIndex(of: UInt8(ascii: ";")),
                   let decoded = decodeEntity(String(decoding: bytes[(i + 1) ..< semi], as: UTF8.self)) {
                    out += Array(decoded.utf8)
                    i = semi + 1
                    afterNote = false
                    continue
                }
                if afterNote, isWordByte(c), let last = out.last, last != 0x20, last != 0x0A {
                    out.append(0x20)
                }
                afterNote = false
                out.append(c)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func contains(_ haystack: ArraySlice<UInt8>, _ needle: String) -> Bool {
        let pattern = Array(needle.utf8)
        guard haystack.count >= pattern.count else { return false }
        var i = haystack.startIndex
        while i + pattern.count <= haystack.endIndex {
            if haystack[i] == pattern[0] && haystack[i ..< i + pattern.count].elementsEqual(pattern) { return true }
            i += 1
        }
        return false
    }

    static func decodeEntity(_ e: String) -> String? {
        switch e {
        case "amp": return "&"
        case "lt": return "<"
        case "gt": return ">"
        case "quot": return "\""
        case "apos": return "'"
        case "nbsp": return " "
        default:
            if e.hasPrefix("#x"), let v = UInt32(e.dropFirst(2), radix: 16), let s = Unicode.Scalar(v) { return String(s) }
            if e.hasPrefix("#"), let v = UInt32(e.dropFirst()), let s = Unicode.Scalar(v) { return String(s) }
            return nil
        }
    }

    /// The `osisID` of a `<chapter … sID="…"/>` start milestone in `markup`, if any
    /// (e.g. `"Gen.1"`): chapters are the documents of SWORD sources.
    public static func chapterStart(_ markup: String) -> String? {
        guard let r = markup.range(of: "<chapter ") else { return nil }
        let rest = markup[r.upperBound...]
        guard let end = rest.firstIndex(of: ">") else { return nil }
        let tag = rest[..<end]
        guard tag.contains("sID=") else { return nil }
        for key in ["osisID=\"", "sID=\""] {
            if let k = tag.range(of: key), let q = tag[k.upperBound...].firstIndex(of: "\"") {
                return String(tag[k.upperBound ..< q])
            }
        }
        return nil
    }
}
