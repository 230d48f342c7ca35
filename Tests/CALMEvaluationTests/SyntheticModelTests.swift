import CALMEvaluation
import CALMTestSupport
import Foundation
import Testing

/// A synthetic implicit model whose exact Brier scores are known: chunks of K tokens over a
/// small alphabet follow a Markov chain (next chunk given the previous chunk), and the model can
/// only be sampled (inverse CDF on the protocol's noise), like CALM's head.
final class MarkovChunkModel: BrierEvaluable {
    let k: Int, alphabet: Int
    /// table[prev][next]: probabilities over the alphabet^K chunks.
    let table: [[Double]]
    var block: [Int] = []
    var continued: [Int: Int] = [:]

    init(k: Int, alphabet: Int, seed: UInt64, sharpness: Double = 3) {
        self.k = k; self.alphabet = alphabet
        var rng = TestRandom(seed)
        let chunks = Int(pow(Double(alphabet), Double(k)))
        table = (0..<chunks).map { _ in
            let w = (0..<chunks).map { _ in pow(Double.random(in: 0..<1, using: &rng), sharpness) }
            let s = w.reduce(0, +)
            return w.map { $0 / s }
        }
    }

    var chunkSize: Int { k }
    var noiseWidth: Int { 1 }
    var chunkCount: Int { table.count }

    func index(_ tokens: ArraySlice<Int>) -> Int { tokens.reduce(0) { $0 * alphabet + $1 } }
    func tokens(_ index: Int) -> [Int] {
        var out = [Int](repeating: 0, count: k), x = index
        for t in (0..<k).reversed() { out[t] = x % alphabet; x /= alphabet }
        return out
    }
    func draw(_ prev: Int, _ u: Float) -> Int {
        var c = 0.0
        for (i, p) in table[prev].enumerated() { c += p; if Double(u) < c { return i } }
        return table[prev].count - 1
    }

    /// A block of `chunks` chunks sampled from the chain.
    func sampleBlock(chunks: Int, seed: UInt64) -> [Int] {
        var rng = TestRandom(seed)
        var prev = Int.random(in: 0..<chunkCount, using: &rng)
        var out = tokens(prev)
        for _ in 1..<chunks {
            prev = draw(prev, Float.random(in: 0..<1, using: &rng))
            out += tokens(prev)
        }
        return out
    }

    func teacherForced(block: [Int], blockIndex: Int, noise: EvaluationNoise) throws -> TeacherForcedSamples {
        self.block = block
        let positions = block.count / k - 1
        let u = noise.teacherForcedUniforms(block: blockIndex, samples: 2, positions: positions, width: 1)
        var first: [Int32] = [], second: [Int32] = []
        for p in 0..<positions {
            let prev = index(block[(p * k)..<((p + 1) * k)])
            first += tokens(draw(prev, u[p])).map { Int32($0) }
            second += tokens(draw(prev, u[positions + p])).map { Int32($0) }
        }
        return TeacherForcedSamples(first: first, second: second, positions: positions)
    }

    func `continue`(windows: [Int], feed: [[Int]], step: Int, blockIndex: Int, noise: EvaluationNoise) throws -> [Int32] {
        var out: [Int32] = []
        for (w, chunk) in zip(windows, feed) {
            continued[w, default: 0] += 1
            let u = noise.continuationUniforms(block: blockIndex, window: w, step: step, width: 1)
            let prev = index(chunk[...])
            out += (tokens(draw(prev, u[0])) + tokens(draw(prev, u[1]))).map { Int32($0) }
        }
        return out
    }

    func endContinuations() {}
    func endBlock() {}

    /// Exact Brier-1…4 (2·P(y) − Σ P(x)²) of the window starting at position i: the
    /// distribution of the next ⌈4/K⌉ chunks given input chunk i, cut to 4 tokens.
    func exactBrier(block: [Int], window i: Int) -> [Double] {
        let steps = (4 + k - 1) / k
        var sequences: [([Int], Double)] = [([], 1)]
        var prevs = [index(block[(i * k)..<((i + 1) * k)])]
        for _ in 0..<steps {
            var next: [([Int], Double)] = [], nextPrev: [Int] = []
            for (s, pv) in zip(sequences, prevs) {
                for c in 0..<chunkCount where table[pv][c] > 0 {
                    next.append((s.0 + tokens(c), s.1 * table[pv][c])); nextPrev.append(c)
                }
            }
            sequences = next; prevs = nextPrev
        }
        let target = Array(block[((i + 1) * k)..<((i + 1) * k + 4)])
        return (1...4).map { n in
            var marginal: [[Int]: Double] = [:]
            for (s, p) in sequences { marginal[Array(s.prefix(n)), default: 0] += p }
            let py = marginal[Array(target.prefix(n))] ?? 0
            return 2 * py - marginal.values.reduce(0) { $0 + $1 * $1 }
        }
    }
}

@Suite("BrierLM protocol on a synthetic implicit model")
struct SyntheticModelTests {
    /// The estimator is unbiased: over many seeds its mean matches the exact Brier-n within 3
    /// standard errors, for K ≥ 4 and for the K < 4 continuation path (K = 2 and K = 1).
    @Test(arguments: [(4, 2), (2, 3), (1, 4)])
    func estimatorIsUnbiased(k: Int, alphabet: Int) throws {
        let model = MarkovChunkModel(k: k, alphabet: alphabet, seed: UInt64(10 + k), sharpness: 5)
        let chunks = 40 / k + 1
        let block = model.sampleBlock(chunks: chunks, seed: 5)
        let windows = BrierProtocol.scoredPositions(chunks: chunks, k: k)
        let exact = (0..<windows).map { model.exactBrier(block: block, window: $0) }
        // Per (window, seed): estimate − exact, so the spread between windows (fixed across
        // seeds) does not inflate the standard error.
        var errors = [[Double]](repeating: [], count: 4)
        var continued = 0
        for seed in 0..<3000 {
            let outcome = try BrierProtocol.evaluate(model, block: block, blockIndex: 0, noise: SeededEvaluationNoise(seed: UInt64(seed)))
            #expect(outcome.indicators.count == windows)
            continued += outcome.continuedWindows
            for (i, x) in outcome.indicators.enumerated() { for n in 0..<4 { errors[n].append(x.brier[n] - exact[i][n]) } }
        }
        if k < 4 { #expect(continued > 0, "the continuation path must be exercised") }
        for n in 0..<4 {
            let (bias, se) = meanAndStderr(errors[n])
            #expect(abs(bias) <= 3 * se + 1e-12, "K=\(k) Brier-\(n + 1): mean error \(bias) ± \(se)")
        }
    }

    /// Continuation results do not depend on how windows are grouped (per-window noise streams).
    @Test func groupingDoesNotChangeResults() throws {
        let model = MarkovChunkModel(k: 2, alphabet: 2, seed: 7)
        let block = model.sampleBlock(chunks: 30, seed: 9)
        let noise = SeededEvaluationNoise(seed: 4)
        let a = try BrierProtocol.evaluate(model, block: block, blockIndex: 0, noise: noise, continuationGroup: 1)
        let b = try BrierProtocol.evaluate(model, block: block, blockIndex: 0, noise: noise, continuationGroup: 256)
        let c = try BrierProtocol.evaluate(model, block: block, blockIndex: 0, noise: noise, continuationGroup: 3)
        #expect(a.indicators == b.indicators && b.indicators == c.indicators)
        #expect(a.continuedWindows > 0 && a.continuedWindows == b.continuedWindows)
    }

    /// Windows: K ≥ 4 scores every predicted position; K < 4 uses the reference's range
    /// i = 0 … P − S − 1.
    @Test func windowCounts() {
        #expect(BrierProtocol.scoredPositions(chunks: 2048, k: 4) == 2047)
        #expect(BrierProtocol.scoredPositions(chunks: 2048, k: 8) == 2047)
        #expect(BrierProtocol.scoredPositions(chunks: 4096, k: 2) == 4093)
        #expect(BrierProtocol.scoredPositions(chunks: 8192, k: 1) == 8187)
        #expect(BrierProtocol.scoredPositions(chunks: 2731, k: 3) == 2728)
    }

    @Test func recordedNoiseReplaysInOrder() {
        let noise = RecordedEvaluationNoise(uniforms: [0.1, 0.2, 0.3, 0.4, 0.5], normals: [1, 2])
        #expect(noise.teacherForcedUniforms(block: 0, samples: 2, positions: 1, width: 1) == [0.1, 0.2])
        #expect(noise.continuationUniforms(block: 0, window: 5, step: 1, width: 1) == [0.3, 0.4])
        #expect(noise.posteriorNormals(block: 0, count: 2) == [1, 2])
        #expect(!noise.fullyConsumed && !noise.exhausted)
        _ = noise.continuationUniforms(block: 0, window: 6, step: 1, width: 1)
        #expect(noise.exhausted)
    }

    @Test func seededNormalsLookNormal() {
        let xs = SeededEvaluationNoise(seed: 1).posteriorNormals(block: 0, count: 20001).map(Double.init)
        let (mean, se) = meanAndStderr(xs)
        #expect(abs(mean) < 4 * se)
        let variance = xs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(xs.count - 1)
        #expect(abs(variance - 1) < 0.05)
    }
}
