import Foundation
import Testing
@testable import CALMTraining

/// A zlib stream of one stored block (enough to build synthetic module files).
func storedZlib(_ payload: [UInt8]) -> [UInt8] {
    precondition(payload.count <= 65_535)
    let n = payload.count
    var z: [UInt8] = [0x78, 0x01, 0x01, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
    z += payload
    let a = Checksum.adler32(payload)
    z += [UInt8(a >> 24), UInt8((a >> 16) & 0xFF), UInt8((a >> 8) & 0xFF), UInt8(a & 0xFF)]
    return z
}

func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> ($0 * 8)) & 0xFF) } }

@Suite struct CorpusSwordTests {
    /// Two blocks, five verse slots (one empty, one linked duplicate), in both index formats.
    func module(entrySize: Int) -> (bzs: [UInt8], bzv: [UInt8], bzz: [UInt8]) {
        let block0 = Array("<chapter osisID=\"Gen.1\" sID=\"Gen.1\"/>In the <w lemma=\"x\">beginning</w>.".utf8)
        let block1 = Array("<chapter osisID=\"Gen.2\" sID=\"Gen.2\"/>Thus<note>a note</note> the heavens.".utf8)
        let z0 = storedZlib(block0), z1 = storedZlib(block1)
        let bzz = z0 + z1
        let bzs = le32(0) + le32(z0.count) + le32(block0.count) + le32(z0.count) + le32(z1.count) + le32(block1.count)
        func entry(_ block: Int, _ offset: Int, _ size: Int) -> [UInt8] {
            le32(block) + le32(offset) + (entrySize == 10 ? Array(le32(size).prefix(2)) : le32(size))
        }
        let split0 = "<chapter osisID=\"Gen.1\" sID=\"Gen.1\"/>".utf8.count, split1 = split0
        let bzv = entry(0, 0, 0) + entry(0, 0, split0) + entry(0, split0, block0.count - split0)
            + entry(0, split0, block0.count - split0) + entry(1, 0, split1) + entry(1, split1, block1.count - split1)
        return (bzs, bzv, bzz)
    }

    @Test(arguments: [10, 12]) func readsBothIndexFormats(entrySize: Int) throws {
        let m = module(entrySize: entrySize)
        let entries = try SwordModule.readTestament(blockIndex: m.bzs, verseIndex: m.bzv, blocks: m.bzz)
        #expect(entries == ["<chapter osisID=\"Gen.1\" sID=\"Gen.1\"/>", "In the <w lemma=\"x\">beginning</w>.",
                            "<chapter osisID=\"Gen.2\" sID=\"Gen.2\"/>", "Thus<note>a note</note> the heavens."])
        let docs = CorpusExtraction.swordDocuments("test", label: "T", entries: entries)
        #expect(docs.map(\.splitKey) == ["Gen.1", "Gen.2"])
        #expect(docs.map(\.text) == ["In the beginning.", "Thus the heavens."])
    }

    @Test func osisMarkup() {
        #expect(OSISText.plain("<w lemma=\"strong:H0430\">God</w><note placement=\"foot\">fn <i>x</i></note><w>created</w>, &amp; said") == "God created, & said")
        #expect(OSISText.plain("word<note>n</note>, next") == "word, next")
        let t = TextNormalizer.normalize(OSISText.plain("<title>Psalm 1</title><div sID=\"a\" type=\"x-p\"/>Blessed <lb/>is the man"))
        #expect(t == "Psalm 1\n\nBlessed\nis the man")
        #expect(OSISText.chapterStart("<chapter n=\"1\" osisID=\"Ps.1\" sID=\"Ps.1\"/> ") == "Ps.1")
        #expect(OSISText.chapterStart("<chapter eID=\"Ps.1\"/>") == nil)
    }
}

/// Builds R XDR serialization bytes.
struct RWriter {
    var bytes: [UInt8] = Array("X\n".utf8)
    init() { int(3); int(0x040201); int(0x030500); int(5); bytes += Array("UTF-8".utf8) }
    mutating func int(_ v: Int32) { let u = UInt32(bitPattern: v); bytes += [UInt8(u >> 24), UInt8((u >> 16) & 0xFF), UInt8((u >> 8) & 0xFF), UInt8(u & 0xFF)] }
    mutating func int(_ v: Int) { int(Int32(v)) }
    mutating func charsxp(_ s: String?) {
        int(0x00040009)
        guard let s else { int(-1); return }
        int(s.utf8.count)
        bytes += Array(s.utf8)
    }
    mutating func strings(_ v: [String?], names: [String]? = nil) {
        int(16 | (names == nil ? 0 : 1 << 9))
        int(v.count)
        for s in v { charsxp(s) }
        if let names { attributeNames(names) }
    }
    mutating func attributeNames(_ names: [String]) {
        int(2 | 1 << 10)  // LISTSXP with tag
        int(1); charsxp("names")  // SYMSXP
        strings(names.map { $0 })
        int(254)
    }
    mutating func integers(_ v: [Int32]) { int(13); int(v.count); for x in v { int(x) } }
}

@Suite struct CorpusRDataTests {
    @Test func characterVectorsAndAttributes() throws {
        var w = RWriter()
        w.int(19 | 1 << 9)  // VECSXP with attributes
        w.int(2)
        w.strings(["Chapter 1", "It was a dark night.", nil])
        w.integers([7, -2])
        w.attributeNames(["text", "numbers"])
        let value = try RSerialization.read(w.bytes)
        #expect(value.names == ["text", "numbers"])
        #expect(value["text"] == .strings(["Chapter 1", "It was a dark night.", nil], attributes: [:]))
        #expect(value["numbers"] == .integers([7, -2], attributes: [:]))
    }

    @Test func lazyLoadDatabase() throws {
        var a = RWriter(); a.strings(["CHAPTER 1", "", "Emma Woodhouse, handsome, clever, and rich.", "", "CHAPTER 2", "Mr. Weston was a native."])
        var b = RWriter(); b.strings(["Call me Ishmael.\r\nSome years ago."])
        func record(_ bytes: [UInt8]) -> [UInt8] {
            [UInt8(bytes.count >> 24), UInt8((bytes.count >> 16) & 0xFF), UInt8((bytes.count >> 8) & 0xFF), UInt8(bytes.count & 0xFF)] + storedZlib(bytes)
        }
        let ra = record(a.bytes), rb = record(b.bytes)
        let rdb = ra + rb
        // Index: list(variables = list(emma = c(0, len), moby = c(off, len)), references = list(), compressed = TRUE)
        var x = RWriter()
        x.int(19 | 1 << 9); x.int(3)
        x.int(19 | 1 << 9); x.int(2)
        x.integers([0, Int32(ra.count)]); x.integers([Int32(ra.count), Int32(rb.count)])
        x.attributeNames(["emma", "moby"])
        x.int(19); x.int(0)
        x.int(10); x.int(1); x.int(1)
        x.attributeNames(["variables", "references", "compressed"])
        let db = try RLazyLoadDB(index: x.bytes, data: rdb)
        #expect(db.variables == ["emma", "moby"])
        guard case .strings(let emma, _) = try db.value(of: "emma") else { Issue.record("not strings"); return }
        let docs = CorpusExtraction.novelDocuments("r", work: "emma", lines: emma.compactMap { $0 })
        #expect(docs.map(\.title) == ["emma chapter 1", "emma chapter 2"])
        #expect(docs[1].text == "CHAPTER 2\nMr. Weston was a native.")
        guard case .strings(let moby, _) = try db.value(of: "moby") else { Issue.record("not strings"); return }
        #expect(CorpusExtraction.lines(moby[0]!) == ["Call me Ishmael.", "Some years ago."])
    }
}

@Suite struct CorpusTextTests {
    @Test func normaliser() {
        #expect(TextNormalizer.normalize("  Hello\t  world \r\n\r\n\r\n\r\nBye\u{00A0}now ") == "Hello world\n\nBye now")
        #expect(TextNormalizer.normalize("Cafe\u{0301}\u{FEFF} soft\u{00AD}hyphen") == "Caf\u{00E9} softhyphen")
        let prose = "It is a truth universally acknowledged, that a single man in\npossession of a good fortune, must be in want of a wife.\n\nShort line\nanother short line"
        #expect(TextNormalizer.normalize(prose, unwrapProse: true)
            == "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.\n\nShort line\nanother short line")
        #expect(TextNormalizer.normalize(prose) == prose)
        let chunks = TextNormalizer.chunks("aaaa\n\nbbbb\n\ncccc", maxBytes: 10)
        #expect(chunks == ["aaaa\n\nbbbb", "cccc"])
    }

    @Test func splitIsDeterministic() {
        #expect(CorpusSplit.fnv1a64("") == 0xcbf2_9ce4_8422_2325)
        #expect(CorpusSplit.fnv1a64("a") == 0xaf63_dc4c_8601_ec8c)
        let keys = (0..<20_000).map { "doc/\($0)" }
        let held = keys.filter { CorpusSplit.isHeldOut(key: $0) }
        #expect(held.count > 200 && held.count < 400)  // ≈ 1.5 %
        #expect(held == keys.filter { CorpusSplit.isHeldOut(key: $0) })
        #expect(keys.filter { CorpusSplit.isHeldOut(key: $0, basisPoints: 0) }.isEmpty)
        #expect(keys.allSatisfy { CorpusSplit.isHeldOut(key: $0, basisPoints: 10_000) })
    }

    @Test func jsonLinesRoundTrip() throws {
        let texts = ["plain", "quote \" backslash \\ newline\n tab\t ctrl \u{01} é “”"]
        let data = Data(texts.map { JSONLines.line(text: $0) }.joined().utf8)
        #expect(try JSONLines.texts(data) == texts)
    }

    @Test func smallFormats() throws {
        let fortunes = CorpusExtraction.fortuneDocuments("f", file: "wisdom", text: "First one.\n%\nSecond\n  -- Someone\n%\n")
        #expect(fortunes.map(\.text) == ["First one.", "Second\n-- Someone"])
        let play = CorpusExtraction.playDocuments("i", play: "hamlet", markdown: "# Hamlet\n\n## ACT I\n\n### SCENE I. Elsinore.\n\n_Enter BERNARDO_\n\n**BERNARDO**  \nWho's there?\n\n### SCENE II. A room.\n\n**KING**  \nThough yet.\n")
        #expect(play.map(\.text) == ["Hamlet\n\nACT I\n\nSCENE I. Elsinore.\n\nEnter BERNARDO\n\nBERNARDO:\nWho's there?", "SCENE II. A room.\n\nKING:\nThough yet."])
        let jargon = CorpusExtraction.jargonDocuments("j", text: "   Intro text here.\n\n   :foo: n.\n\n   A {bar} thing.\n\n   :bar: v.\n\n   To foo.\n")
        #expect(jargon.map(\.title) == ["Jargon File front 0", "foo", "bar"])
        #expect(jargon[1].text == "foo: n.\n\nA bar thing.")
        let dict = Array("headerENTRY, n. A thing.".utf8)
        let docs = CorpusExtraction.dictdDocuments("d", index: "00databaseinfo\tA\tG\nENTRY\tG\tS\n", dictionary: dict)
        #expect(docs.map(\.text) == ["ENTRY, n. A thing."])
        #expect(CorpusExtraction.dictNumber("BdqM") == 1 * 262_144 + 29 * 4_096 + 42 * 64 + 12)
    }

    @Test func zipReader() throws {
        let zip = try ZipReader(bytes: hexBytes("504b030414000000080005bb765d003b3daf430000008000000009000000612f706c61792e6d64535608c849ace4e252565656087676f57355f0d453705428cacfcfd5e3e2d2d2f270f4f5710dd1d25250e00ac957484ad551c82f52c8cb2f512801f1f4b89429d40f00504b030414000000000000002100b501af0f0b0000000b00000005000000622e74787473746f7265642074657874504b0102140314000000080005bb765d003b3daf4300000080000000090000000000000000000000800100000000612f706c61792e6d64504b0102140314000000000000002100b501af0f0b0000000b00000005000000000000000000000080016a000000622e747874504b050600000000020002006a000000980000000000"))
        #expect(zip.names == ["a/play.md", "b.txt"])
        #expect(String(decoding: try zip.read("b.txt"), as: UTF8.self) == "stored text")
        #expect(String(decoding: try zip.read("a/play.md"), as: UTF8.self) == String(repeating: "# Play\n\n### SCENE I. A room.\n\n**HAMLET**  \nTo be, or not to be.\n", count: 2))
    }
}
