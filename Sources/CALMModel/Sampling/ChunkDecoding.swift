import Foundation

/// How a sampling round turns its head samples into chunks. Both strategies give every sampler
/// the same chunks, the same selections and the same random draws (the tests check this for
/// every sampler); they differ only in how many rows of the vocabulary argmax
/// (`Autoencoder.vocabularyArgmax`, V × Hₐ per row) they compute, which at T < 1 is most of a
/// step's work.
public enum DecodingStrategy: String, Sendable, Equatable, CaseIterable {
    /// Every head sample decoded in full: K argmax rows each. The reference path (the conformance
    /// replays use it, and check `.lazy` against the same goldens).
    case full
    /// Prefix-grouped: token position 1 for every sample of a round, position j + 1 only for the
    /// samples whose first j tokens another sample it is compared with shares, then the chosen
    /// chunk in full after selection. Two chunks are equal only if all K tokens are, so the
    /// selectors see exactly the equalities the full decode shows them.
    case lazy
}

/// A head sample's chunk as far as the decoder took it: all K ids, or — under lazy decoding —
/// only the first `tokens.count`, which no other chunk it was compared with begins with. Such a
/// chunk is known up to position j and unique beyond: the rest was never computed, because no
/// selection could depend on it. Within one pool (one round's draws, for the exact sampler with
/// its earlier draws of the step) two entries are equal exactly when their chunks are, so counting
/// and comparing entries counts and compares chunks.
public struct PartialChunk: Sendable, Hashable, CustomStringConvertible {
    /// The ids decoded so far, a prefix of the chunk (the whole chunk when `isComplete`).
    public var tokens: [Int32]
    /// The chunk's length K.
    public let size: Int

    /// Built by the sampling loop only, which never decodes past position K.
    init(tokens: [Int32], size: Int) {
        assert(tokens.count <= size, "a chunk of \(size) ids cannot have \(tokens.count) decoded")
        self.tokens = tokens
        self.size = size
    }

    /// Whether all K ids are decoded.
    public var isComplete: Bool { tokens.count == size }
    /// The whole chunk, or nil when only a prefix was decoded.
    public var chunk: [Int32]? { isComplete ? tokens : nil }

    public var description: String {
        isComplete ? "\(tokens)" : "\(tokens) + \(size - tokens.count) undecoded"
    }
}

/// The decoder trunk's output for one round's draws, shared by the round's `DecodedDraw`s (and
/// kept alive by the exact sampler's earlier draws that may still need decoding further).
final class DecoderRows: Sendable {
    /// draws × K × Hₐ normalised decoder hidden states.
    let hidden: [Float]
    /// draws × z latents.
    let latents: [Float]
    let chunkSize: Int
    let width: Int
    let latentSize: Int

    init(hidden: [Float], latents: [Float], chunkSize: Int, width: Int, latentSize: Int) {
        self.hidden = hidden; self.latents = latents
        self.chunkSize = chunkSize; self.width = width; self.latentSize = latentSize
    }
}

/// One head sample of a round: its latent and its chunk as far as decoded, with the decoder rows
/// it needs to be decoded further (when a later draw shares its prefix, or when it is chosen).
public struct DecodedDraw: Sendable {
    /// The chunk as far as decoded.
    public internal(set) var chunk: PartialChunk
    let rows: DecoderRows
    /// The draw's index among `rows`' draws.
    let index: Int

    init(chunk: PartialChunk, rows: DecoderRows, index: Int) {
        self.chunk = chunk; self.rows = rows; self.index = index
    }

    /// The head sample (z floats).
    public var latent: [Float] {
        let z = rows.latentSize
        return Array(rows.latents[(index * z)..<((index + 1) * z)])
    }

    /// Copies the decoder's hidden row of token position `position` (Hₐ floats) to `destination`.
    func copyHiddenRow(_ position: Int, to destination: UnsafeMutablePointer<Float>) {
        let w = rows.width, start = (index * rows.chunkSize + position) * w
        rows.hidden.withUnsafeBufferPointer { destination.update(from: $0.baseAddress! + start, count: w) }
    }
}

/// What a selector sees of one round.
public struct DecodedRound: Sendable {
    /// This round's draws, in draw order.
    public internal(set) var draws: [DecodedDraw]
    /// The selector's `earlierDraws`, in the same order, decoded as far as this round's
    /// comparisons needed. Entries of `draws` and `earlier` are equal exactly when their chunks are.
    public internal(set) var earlier: [DecodedDraw]
}

/// Vocabulary-argmax work, per sequence.
public struct SamplingWork: Sendable, Equatable {
    /// Head samples drawn (each through the decoder trunk).
    public var samples = 0
    /// Rows of the vocabulary argmax computed (K per sample under full decoding).
    public var argmaxRows = 0

    public init(samples: Int = 0, argmaxRows: Int = 0) {
        self.samples = samples
        self.argmaxRows = argmaxRows
    }
}

extension Autoencoder {
    /// Decodes further, in place, the draws of each comparison set (one per sequence: a round's
    /// draws, plus the selector's earlier draws): position j is computed for every draw that has
    /// no id there yet and whose first j ids another draw of its set shares, so that afterwards two
    /// draws of a set have equal `chunk.tokens` exactly when their chunks are equal. One argmax
    /// call per position for all sets together (the kernel computes each row alone, so a row's id
    /// does not depend on the rows beside it). Returns the argmax rows computed for each set.
    func decodePrefixes(_ sets: inout [[DecodedDraw]], pool: ComputePool) -> [Int] {
        let k = config.patchSize, width = config.hiddenSize
        var rowsPerSet = [Int](repeating: 0, count: sets.count)
        // Groups of draws (indices into their set) whose decoded prefixes so far are equal.
        var groups: [[[Int]]] = sets.map { $0.count >= 2 ? [Array($0.indices)] : [] }
        for j in 0..<k {
            var needed: [(set: Int, draw: Int)] = []
            for s in sets.indices {
                for group in groups[s] {
                    for d in group where sets[s][d].chunk.tokens.count == j { needed.append((s, d)) }
                }
            }
            if !needed.isEmpty {
                var x = [Float](repeating: 0, count: needed.count * width)
                x.withUnsafeMutableBufferPointer { xp in
                    for (n, item) in needed.enumerated() {
                        sets[item.set][item.draw].copyHiddenRow(j, to: xp.baseAddress! + n * width)
                    }
                }
                let ids = vocabularyArgmax(x, rows: needed.count, pool: pool)
                for (n, item) in needed.enumerated() {
                    sets[item.set][item.draw].chunk.tokens.append(ids[n])
                    rowsPerSet[item.set] += 1
                }
            }
            guard j + 1 < k else { break }
            // Every draw of a group now has an id at position j: split the groups by it, and keep
            // the parts that are still tied.
            for s in sets.indices where !groups[s].isEmpty {
                var next: [[Int]] = []
                for group in groups[s] {
                    var part: [Int32: Int] = [:]
                    var parts: [[Int]] = []
                    for d in group {
                        let t = sets[s][d].chunk.tokens[j]
                        if let p = part[t] { parts[p].append(d) } else { part[t] = parts.count; parts.append([d]) }
                    }
                    next += parts.filter { $0.count >= 2 }
                }
                groups[s] = next
            }
        }
        return rowsPerSet
    }

    /// Decodes the remaining positions of each draw (one argmax call for all); returns the whole
    /// chunks and the rows computed for each.
    func completeChunks(_ draws: [DecodedDraw], pool: ComputePool) -> (chunks: [[Int32]], rows: [Int]) {
        let k = config.patchSize, width = config.hiddenSize
        var needed: [(draw: Int, position: Int)] = []
        for (i, d) in draws.enumerated() {
            for j in d.chunk.tokens.count..<k { needed.append((i, j)) }
        }
        var chunks = draws.map(\.chunk.tokens)
        var rows = [Int](repeating: 0, count: draws.count)
        guard !needed.isEmpty else { return (chunks, rows) }
        var x = [Float](repeating: 0, count: needed.count * width)
        x.withUnsafeMutableBufferPointer { xp in
            for (n, item) in needed.enumerated() { draws[item.draw].copyHiddenRow(item.position, to: xp.baseAddress! + n * width) }
        }
        let ids = vocabularyArgmax(x, rows: needed.count, pool: pool)
        for (n, item) in needed.enumerated() {
            chunks[item.draw].append(ids[n])   // positions come in increasing order per draw
            rows[item.draw] += 1
        }
        return (chunks, rows)
    }
}
