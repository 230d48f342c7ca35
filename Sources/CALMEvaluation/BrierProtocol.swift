import Foundation

/// Two sampled chunks at every teacher-forced position of a block, plus what else the model
/// measured on the way.
public struct TeacherForcedSamples: Sendable {
    /// Sample 1's chunk at each position (positions × K ids, position-major).
    public var first: [Int32]
    /// Sample 2's chunk at each position.
    public var second: [Int32]
    /// Predicted positions (input chunks L − 1).
    public var positions: Int
    /// The energy loss of the block (CALM with the energy loss on), mean over positions.
    public var energyLoss: Double?
    /// Σ −log p(target token) over the block's predicted tokens (discrete models), and how many.
    public var crossEntropySum: Double?
    public var crossEntropyCount = 0

    public init(first: [Int32], second: [Int32], positions: Int) {
        self.first = first; self.second = second; self.positions = positions
    }
}

/// What the BrierLM protocol needs from a model that predicts chunks of K tokens and can only
/// be sampled: CALM (K tokens per position, implicit head) and the discrete baseline (K = 1).
///
/// The protocol calls `teacherForced` once per block; for K < 4 it then calls `continue` for
/// groups of windows, step 1, 2, … (a window that starts at position i continues the context
/// "input chunks 0…i" with the chunks it is fed), then `endContinuations`; `endBlock` last.
public protocol BrierEvaluable: AnyObject {
    /// Chunk length K.
    var chunkSize: Int { get }
    /// Uniforms one sample consumes.
    var noiseWidth: Int { get }
    /// Runs the teacher-forced pass over `block` (L whole chunks: inputs 0…L−2 predict chunks
    /// 1…L−1) and returns two sampled chunks per predicted position.
    func teacherForced(block: [Int], blockIndex: Int, noise: EvaluationNoise) throws -> TeacherForcedSamples
    /// One continuation step for each window in `windows` (start positions, increasing): append
    /// `feed[w]` (one chunk) to the window's context and draw two chunks from the next position.
    /// Returns 2·K ids per window: sample 1's chunk, then sample 2's.
    func `continue`(windows: [Int], feed: [[Int]], step: Int, blockIndex: Int, noise: EvaluationNoise) throws -> [Int32]
    /// Frees the state of the windows continued since the last call.
    func endContinuations()
    /// Frees the block's state.
    func endBlock()
}

/// The reference's `eval_brier` over one block, for any `BrierEvaluable`.
///
/// * **K ≥ 4**: every predicted position scores the n-grams (n ≤ 4) that start at its chunk
///   boundary, from the two teacher-forced samples.
/// * **K < 4**: with S = ⌈4/K⌉, windows start at positions i = 0 … P − S − 1 (P predicted
///   positions; the reference's range). Accuracy concatenates the teacher-forced sample-1 (and
///   sample-2) chunks at positions i … i+S−1 (valid: a later chunk only counts while the earlier
///   ones matched the target, i.e. the teacher-forced context). Collision continues the two
///   samples autoregressively: feed sample 1's chunk, draw two new chunks, compare the first
///   min(K, 4 − K·j) tokens, for j = 1 … S−1, while the two prefixes are still identical (once
///   they differ the indicator is 0 whatever follows; the reference stops when no row of its
///   batch still collides). Windows continue in groups of `continuationGroup`, one batched step
///   per group and j.
public enum BrierProtocol {
    /// Result of one block: the per-position indicators.
    public struct BlockOutcome: Sendable {
        public var indicators: [BrierIndicators]
        public var samples: TeacherForcedSamples
        /// Windows that needed continuation steps, and the steps run (K < 4).
        public var continuedWindows = 0, continuationSteps = 0
    }

    /// Windows scored per block of `chunks` chunks with chunk size `k`.
    public static func scoredPositions(chunks: Int, k: Int) -> Int {
        let positions = chunks - 1
        return k >= 4 ? positions : positions - (4 + k - 1) / k
    }

    public static func evaluate(_ model: BrierEvaluable, block: [Int], blockIndex: Int, noise: EvaluationNoise,
                                continuationGroup: Int = 256) throws -> BlockOutcome {
        let k = model.chunkSize
        guard k >= 1, block.count % k == 0 else {
            throw CorpusError.invalidParameter(name: "blockSize", reason: "a block of \(block.count) tokens is not a whole number of chunks of \(k)")
        }
        let chunks = block.count / k
        let windows = scoredPositions(chunks: chunks, k: k)
        guard windows >= 1 else {
            throw CorpusError.invalidParameter(name: "blockSize", reason: "a block of \(block.count) tokens (\(chunks) chunks of \(k)) leaves no position to score")
        }
        let samples = try model.teacherForced(block: block, blockIndex: blockIndex, noise: noise)
        defer { model.endBlock() }
        precondition(samples.positions == chunks - 1 && samples.first.count == samples.positions * k && samples.second.count == samples.first.count)
        let first = samples.first, second = samples.second
        // Accuracy flags: the concatenated teacher-forced samples from position i on, against the
        // target stream from chunk i + 1 on (chunks are contiguous in `first`/`second`).
        func matches(_ s: [Int32], _ i: Int) -> [Bool] {
            (0..<4).map { t in Int(s[i * k + t]) == block[(i + 1) * k + t] }
        }
        var collide = [[Bool]](repeating: [], count: windows)
        let firstTokens = min(k, 4)
        for i in 0..<windows {
            collide[i] = (0..<firstTokens).map { first[i * k + $0] == second[i * k + $0] }
        }
        var outcome = BlockOutcome(indicators: [], samples: samples)
        if k < 4 {
            let steps = (4 + k - 1) / k
            let candidates = (0..<windows).filter { collide[$0].allSatisfy { $0 } }
            let group = max(1, continuationGroup)
            var start = 0
            while start < candidates.count {
                var active = Array(candidates[start..<min(start + group, candidates.count)])
                start += group
                outcome.continuedWindows += active.count
                var feed = Dictionary(uniqueKeysWithValues: active.map { w in (w, (0..<k).map { t in Int(first[w * k + t]) }) })
                defer { model.endContinuations() }
                for j in 1..<steps where !active.isEmpty {
                    let out = try model.continue(windows: active, feed: active.map { feed[$0]! }, step: j,
                                                 blockIndex: blockIndex, noise: noise)
                    precondition(out.count == active.count * 2 * k)
                    outcome.continuationSteps += 1
                    let compare = min(k, 4 - k * j)
                    var still: [Int] = []
                    for (r, w) in active.enumerated() {
                        let s1 = out[(2 * r) * k..<((2 * r) * k + k)], s2 = out[(2 * r + 1) * k..<((2 * r + 1) * k + k)]
                        let flags = (0..<compare).map { t in s1[s1.startIndex + t] == s2[s2.startIndex + t] }
                        collide[w] += flags
                        if flags.allSatisfy({ $0 }) && k * (j + 1) < 4 {
                            still.append(w)
                            feed[w] = s1.map { Int($0) }
                        }
                    }
                    active = still
                }
            }
        }
        outcome.indicators = (0..<windows).map { i in
            BrierIndicators(match1: matches(first, i), match2: matches(second, i), collide: collide[i])
        }
        return outcome
    }
}
