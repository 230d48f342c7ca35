import Foundation

/// Holds back streamed text that could still turn into a stop sequence, and cuts the text
/// exactly before the first stop sequence that appears (even when it spans chunks).
struct StopSequenceFilter: Sendable {
    let stops: [String]
    private var held = ""

    init(stops: [String]) { self.stops = stops }

    /// Text that can be released, and the stop sequence if one completed.
    mutating func append(_ text: String) -> (release: String, stop: String?) {
        guard !stops.isEmpty else { return (text, nil) }
        held += text
        // Earliest occurrence of any stop sequence.
        var best: (Range<String.Index>, String)?
        for s in stops {
            if let r = held.range(of: s), r.lowerBound < (best?.0.lowerBound ?? held.endIndex) || best == nil { best = (r, s) }
        }
        if let (r, s) = best {
            let out = String(held[..<r.lowerBound])
            held = ""
            return (out, s)
        }
        // Keep the longest suffix that is a proper prefix of some stop sequence.
        var keep = 0
        for s in stops {
            var n = min(s.count - 1, held.count)
            while n > keep {
                if held.hasSuffix(s.prefix(n)) { keep = n; break }
                n -= 1
            }
        }
        let cut = held.index(held.endIndex, offsetBy: -keep)
        let out = String(held[..<cut])
        held = String(held[cut...])
        return (out, nil)
    }

    /// Releases whatever is held (the stream ended without a stop sequence).
    mutating func flush() -> String {
        defer { held = "" }
        return held
    }
}
