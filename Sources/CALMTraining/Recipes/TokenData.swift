import Foundation

/// A flat stream of token ids to train on, cut into fixed windows deterministically by step (so a
/// resumed run sees the same batches as an uninterrupted one).
public struct TokenData: Sendable {
    public let ids: [Int]

    public init(ids: [Int]) { self.ids = ids }

    /// Reads whitespace-separated decimal ids (`.txt`) or little-endian u32 ids (any other extension).
    public static func load(_ url: URL) throws -> TokenData {
        let data = try Data(contentsOf: url)
        if url.pathExtension.lowercased() == "txt" {
            guard let text = String(data: data, encoding: .utf8) else { throw TrainingError.invalidInput("\(url.path) is not UTF-8") }
            var ids: [Int] = []
            for part in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" || $0 == "," }) {
                guard let v = Int(part) else { throw TrainingError.invalidInput("\(url.path): '\(part)' is not a token id") }
                ids.append(v)
            }
            return TokenData(ids: ids)
        }
        guard data.count % 4 == 0 else { throw TrainingError.invalidInput("\(url.path): size is not a multiple of 4 (u32 ids)") }
        let ids = data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) } }
        return TokenData(ids: ids)
    }

    /// Writes little-endian u32 ids.
    public func write(to url: URL) throws {
        var data = Data(capacity: ids.count * 4)
        for id in ids { withUnsafeBytes(of: UInt32(truncatingIfNeeded: id).littleEndian) { data.append(contentsOf: $0) } }
        try data.write(to: url)
    }

    /// Number of whole blocks of `length` ids (the remainder is dropped, as `group_texts` does).
    public func blockCount(length: Int) -> Int { length > 0 ? ids.count / length : 0 }

    /// `rows` blocks of `length` ids for `step` (0-based): blocks are the stream cut into
    /// consecutive non-overlapping windows; step s takes blocks s·rows …, wrapping around (one pass
    /// over the blocks is an epoch). With `shuffleSeed`, each epoch visits the blocks in a seeded
    /// random order (deterministic, so a resumed run sees the same batches).
    public func batch(step: Int, rows: Int, length: Int, shuffleSeed: UInt64? = nil) throws -> [[Int]] {
        guard ids.count >= length else {
            throw TrainingError.invalidInput("the data has \(ids.count) tokens, fewer than one block of \(length)")
        }
        let windows = ids.count / length
        var permutationEpoch = -1
        var permutation: [Int] = []
        return (0..<rows).map { r in
            let flat = step * rows + r
            var w = flat % windows
            if let shuffleSeed {
                let epoch = flat / windows
                if epoch != permutationEpoch {
                    permutation = Self.permutation(windows, seed: shuffleSeed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
                    permutationEpoch = epoch
                }
                w = permutation[w]
            }
            return Array(ids[(w * length)..<((w + 1) * length)])
        }
    }

    /// A seeded Fisher–Yates permutation of 0 ..< n (splitmix64).
    static func permutation(_ n: Int, seed: UInt64) -> [Int] {
        var state = seed
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var p = Array(0..<n)
        if n > 1 { for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, Int(next() % UInt64(i + 1))) } }
        return p
    }
}
