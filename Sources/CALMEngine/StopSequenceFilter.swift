/// Holds back streamed text that could still turn into a stop sequence, and cuts the text
/// exactly before the first stop sequence that appears (even when it spans chunks).
///
/// Matching is on Unicode scalars, as Python's `in` is (vLLM's stop strings), in plain Swift:
/// Foundation's `range(of:)` trapped on some strings (a stop sequence holding U+0000, found by
/// the `request` fuzzer), and Character matching could never find a stop that ends inside a
/// grapheme cluster.
struct StopSequenceFilter: Sendable {
    let stops: [String]
    private let scalars: [[Unicode.Scalar]]
    private var held: [Unicode.Scalar] = []

    init(stops: [String]) {
        self.stops = stops
        scalars = stops.map { Array($0.unicodeScalars) }
    }

    /// Text that can be released, and the stop sequence if one completed.
    mutating func append(_ text: String) -> (release: String, stop: String?) {
        guard !stops.isEmpty else { return (text, nil) }
        held.append(contentsOf: text.unicodeScalars)
        // Earliest occurrence of any stop sequence (the first listed on a tie).
        var best: (start: Int, stop: Int)?
        for (k, s) in scalars.enumerated() where !s.isEmpty {
            if let i = Self.firstOccurrence(of: s, in: held, before: best?.start ?? Int.max) { best = (i, k) }
        }
        if let best {
            let out = Self.string(held[..<best.start])
            held.removeAll()
            return (out, stops[best.stop])
        }
        // Keep the longest suffix that is a proper prefix of some stop sequence.
        var keep = 0
        for s in scalars {
            var n = min(s.count - 1, held.count)
            while n > keep {
                if held[(held.count - n)...].elementsEqual(s[..<n]) { keep = n; break }
                n -= 1
            }
        }
        let out = Self.string(held[..<(held.count - keep)])
        held.removeFirst(held.count - keep)
        return (out, nil)
    }

    /// Releases whatever is held (the stream ended without a stop sequence).
    mutating func flush() -> String {
        defer { held.removeAll() }
        return Self.string(held[...])
    }

    /// The first start of `needle` in `haystack` that lies before `limit`.
    private static func firstOccurrence(of needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], before limit: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        let last = min(haystack.count - needle.count, limit - 1)
        guard last >= 0 else { return nil }
        for i in 0...last where haystack[i] == needle[0] && haystack[i ..< i + needle.count].elementsEqual(needle) { return i }
        return nil
    }

    private static func string(_ s: ArraySlice<Unicode.Scalar>) -> String {
        var out = ""
        out.unicodeScalars.append(contentsOf: s)
        return out
    }
}
