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

    /// `rows` windows of `length` ids for `step` (0-based), consecutive through the stream and
    /// wrapping around.
    public func batch(step: Int, rows: Int, length: Int) throws -> [[Int]] {
        guard ids.count >= length else {
            throw TrainingError.invalidInput("the data has \(ids.count) tokens, fewer than one window of \(length)")
        }
        let windows = ids.count / length
        return (0..<rows).map { r in
            let w = (step * rows + r) % windows
            return Array(ids[(w * length)..<((w + 1) * length)])
        }
    }
}
