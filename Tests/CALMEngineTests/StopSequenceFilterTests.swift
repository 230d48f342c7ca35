@testable import CALMEngine
import CALMTestSupport
import Testing

/// The stop-sequence filter against the whole-text reference: whatever the chunking, the released
/// text is the text before the first stop sequence (Unicode scalars, as Python's `in`), and nothing
/// before it is lost or held back at the end.
@Suite("Stop sequence filter")
struct StopSequenceFilterTests {
    /// Runs `chunks` through a filter and flushes: the text released and the stop found.
    static func run(_ stops: [String], _ chunks: [String]) -> (String, String?) {
        var f = StopSequenceFilter(stops: stops)
        var out = ""
        for c in chunks {
            let (release, stop) = f.append(c)
            out += release
            if let stop { return (out, stop) }
        }
        return (out + f.flush(), nil)
    }

    /// The reference: the earliest start of any stop in the whole text, by scalars.
    static func reference(_ stops: [String], _ text: String) -> (String, String?) {
        let t = Array(text.unicodeScalars)
        var best: (Int, String)?
        for s in stops {
            let n = Array(s.unicodeScalars)
            guard !n.isEmpty, n.count <= t.count else { continue }
            for i in 0...(t.count - n.count) where Array(t[i ..< i + n.count]) == n {
                if best == nil || i < best!.0 { best = (i, s) }
                break
            }
        }
        guard let (i, s) = best else { return (text, nil) }
        var out = ""
        out.unicodeScalars.append(contentsOf: t[..<i])
        return (out, s)
    }

    /// Found by the `request` fuzzer (Scripts/fuzz.sh 600): Foundation's `range(of:)` trapped
    /// ("String index is out of bounds") on these stops and chunks.
    @Test func theFuzzerCaseNoLongerTraps() {
        let stops = ["\n", "\n\u{0}"]
        let chunks = ["\u{85}\n\u{85}", "\u{14}a\u{FFFD}", "\u{2028}", "\u{FFFD}e\u{1100}", "\u{0} \u{FE0F}", "\u{301}\u{1100}\u{0}\n"]
        let result = Self.run(stops, chunks)
        #expect(result == Self.reference(stops, chunks.joined()))
        #expect(result.1 == "\n")
    }

    @Test func anyChunkingGivesTheReference() {
        let alphabet: [String] = ["a", "b", "\n", "\r", "\r\n", "\u{0}", "\u{301}", "é", "e", "\u{FFFD}", "👍", "\u{200D}", "🇺", "🇸", " "]
        var g = TestRandom(42)
        func word(_ n: Int) -> String { (0..<n).map { _ in alphabet[Int(g.next() % UInt64(alphabet.count))] }.joined() }
        for _ in 0..<3000 {
            let stops = (0..<(1 + Int(g.next() % 3))).map { _ in word(1 + Int(g.next() % 3)) }
            let chunks = (0..<(1 + Int(g.next() % 6))).map { _ in word(Int(g.next() % 5)) }
            let got = Self.run(stops, chunks)
            let want = Self.reference(stops, chunks.joined())
            #expect(got.0 == want.0 && got.1 == want.1, "stops \(stops.map(\.unicodeScalars).map(Array.init)) chunks \(chunks)")
        }
    }
}
