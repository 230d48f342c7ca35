import CALMModel
import Foundation

/// The discrete baseline under the BrierLM protocol (K = 1): one backbone pass over the block,
/// vocabulary logits in row groups, two samples per position by inverse-CDF sampling from the
/// softmax (T = 1), and the cross-entropy of the target token on the way. Brier-2…4 use the
/// K < 4 path: windows continue sample 1 autoregressively on forked KV caches, batched.
public final class LlamaBrierModel: BrierEvaluable {
    public let model: LlamaCausalLM
    /// Rows of logits materialised at once.
    public let logitRows: Int
    private var base: KVCache?
    private var forks: [Int: KVCache] = [:]

    public init(model: LlamaCausalLM, logitRows: Int = 64) {
        self.model = model
        self.logitRows = max(1, logitRows)
    }

    public var chunkSize: Int { 1 }
    /// Two 24-bit uniforms make one 48-bit uniform per sample.
    public var noiseWidth: Int { 2 }

    static func combine(_ hi: Float, _ lo: Float) -> Double { Double(hi) + Double(lo) * 0x1p-24 }

    public func teacherForced(block: [Int], blockIndex: Int, noise: EvaluationNoise) throws -> TeacherForcedSamples {
        let positions = block.count - 1
        let cache = model.makeCache()
        base = cache
        let hidden = try model.forward(tokens: [Array(block[0..<positions])], caches: [cache])
        let u = noise.teacherForcedUniforms(block: blockIndex, samples: 2, positions: positions, width: 2)
        var uniforms = [[Double]](repeating: [0, 0], count: positions)
        for p in 0..<positions {
            for s in 0..<2 { uniforms[p][s] = Self.combine(u[(s * positions + p) * 2], u[(s * positions + p) * 2 + 1]) }
        }
        let (drawn, logProbs) = sampleRows(hidden: hidden, rows: positions, uniforms: uniforms, targets: Array(block[1...]))
        var result = TeacherForcedSamples(first: drawn.map { Int32($0[0]) }, second: drawn.map { Int32($0[1]) }, positions: positions)
        result.crossEntropySum = -logProbs.reduce(0, +)
        result.crossEntropyCount = positions
        return result
    }

    /// Two draws per row (and log p(target) when targets are given), rows in groups of
    /// `logitRows`, the per-row softmax work spread over threads.
    func sampleRows(hidden: [Float], rows: Int, uniforms: [[Double]], targets: [Int]?) -> (draws: [[Int]], logProbs: [Double]) {
        let v = model.vocabSize
        var draws = [[Int]](repeating: [], count: rows)
        var logProbs = [Double](repeating: 0, count: targets == nil ? 0 : rows)
        var logits = [Float](repeating: 0, count: min(logitRows, rows) * v)
        var first = 0
        while first < rows {
            let n = min(logitRows, rows - first)
            logits.withUnsafeMutableBufferPointer { model.logits(hidden, first: first, rows: n, into: $0.baseAddress!) }
            let (groupDraws, groupLog) = logits.withUnsafeBufferPointer { l in
                let job = SamplingJob(logits: l.baseAddress!, vocab: v, first: first, uniforms: uniforms, targets: targets, rows: n)
                parallelFor(pool: model.pool, count: n) { job.run(row: $0) }
                return (job.draws, job.logProbs)
            }
            for r in 0..<n {
                draws[first + r] = groupDraws[r]
                if targets != nil { logProbs[first + r] = groupLog[r] }
            }
            first += n
        }
        return (draws, logProbs)
    }

    public func `continue`(windows: [Int], feed: [[Int]], step: Int, blockIndex: Int, noise: EvaluationNoise) throws -> [Int32] {
        guard let base else { preconditionFailure("continue before teacherForced") }
        var caches: [KVCache] = []
        for w in windows {
            if let cache = forks[w] { caches.append(cache); continue }
            guard let cache = base.fork(prefix: w + 1) else {
                throw CorpusError.invalidParameter(name: "kvCache", reason: "out of KV-cache blocks")
            }
            forks[w] = cache
            caches.append(cache)
        }
        let hidden = try model.forward(tokens: feed, caches: caches)
        let uniforms = windows.map { w -> [Double] in
            let u = noise.continuationUniforms(block: blockIndex, window: w, step: step, width: 2)
            return [Self.combine(u[0], u[1]), Self.combine(u[2], u[3])]
        }
        let (drawn, _) = sampleRows(hidden: hidden, rows: windows.count, uniforms: uniforms, targets: nil)
        return drawn.flatMap { [Int32($0[0]), Int32($0[1])] }
    }

    public func endContinuations() {
        for cache in forks.values { cache.release() }
        forks.removeAll()
    }

    public func endBlock() {
        endContinuations()
        base?.release()
        base = nil
    }
}

/// One group of rows' softmax sampling, shared by the pool's threads (each row's outputs are
/// written by exactly one task, into preallocated storage).
///
/// `@unchecked Sendable`: every stored property is a `let`; the pointers are the caller's logits
/// (only read) and storage this job allocated, where task `r` writes only row `r`, and
/// `draws`/`logProbs` are read after `parallelFor` has returned (all tasks done).
final class SamplingJob: @unchecked Sendable {
    let logits: UnsafePointer<Float>
    let vocab: Int, first: Int, rows: Int
    let uniforms: [[Double]]
    let targets: [Int]?
    let drawStorage: UnsafeMutablePointer<Int>
    let logStorage: UnsafeMutablePointer<Double>
    let perRow: Int

    init(logits: UnsafePointer<Float>, vocab: Int, first: Int, uniforms: [[Double]], targets: [Int]?, rows: Int) {
        self.logits = logits; self.vocab = vocab; self.first = first; self.uniforms = uniforms; self.targets = targets
        self.rows = rows
        perRow = uniforms.first?.count ?? 0
        drawStorage = .allocate(capacity: max(1, rows * perRow))
        logStorage = .allocate(capacity: max(1, rows))
        logStorage.initialize(repeating: 0, count: max(1, rows))
    }

    deinit { drawStorage.deallocate(); logStorage.deallocate() }

    var draws: [[Int]] { (0..<rows).map { r in (0..<perRow).map { drawStorage[r * perRow + $0] } } }
    var logProbs: [Double] { (0..<rows).map { logStorage[$0] } }

    func run(row r: Int) {
        let row = UnsafeBufferPointer(start: logits + r * vocab, count: vocab)
        let (m, lse) = CategoricalSampling.logNormalizer(logits: row)
        let d = CategoricalSampling.sample(logits: row, uniforms: uniforms[first + r], maxLogit: m, logSumExp: lse)
        for (j, x) in d.enumerated() { drawStorage[r * perRow + j] = x }
        if let targets { logStorage[r] = Double(row[targets[first + r]] - m) - lse }
    }
}
