import CALMKernels
import Foundation

/// How a discrete model's next token is drawn from its logits, with the controls users of LLM
/// engines expect. The order is vLLM's: penalties, then temperature, then top-k, top-p and min-p,
/// then one draw by inversion over the surviving ids in id order (one uniform per token, none at
/// T = 0), so the same seed gives the same token whatever else is batched with the sequence.
///
/// ```swift
/// let sampler = TokenSampler(temperature: 0.7, topP: 0.9, repetitionPenalty: 1.2)
/// let token = row.withUnsafeMutableBufferPointer { logits in
///     sampler.sample(logits: logits, history: ids, outputStart: prompt.count, randomness: rng)
/// }   // nil when the logits hold a NaN
/// ```
public struct TokenSampler: Sendable, Equatable {
    /// 0 = greedy (argmax after penalties); otherwise softmax(logits / T).
    public var temperature: Double
    /// Keep only the k most likely ids (nil or 0: off).
    public var topK: Int?
    /// Keep the smallest set of most likely ids whose probability reaches p (1: off).
    public var topP: Double
    /// Keep ids whose probability is at least minP × the largest (0: off).
    public var minP: Double
    /// CTRL / Hugging Face repetition penalty over prompt and output ids (1: off): a positive logit
    /// is divided by it, a negative one multiplied.
    public var repetitionPenalty: Double
    /// Subtracted once from the logit of every id the output already contains (0: off).
    public var presencePenalty: Double
    /// Subtracted from an id's logit per occurrence in the output (0: off).
    public var frequencyPenalty: Double

    public init(temperature: Double = 1, topK: Int? = nil, topP: Double = 1, minP: Double = 0, repetitionPenalty: Double = 1,
                presencePenalty: Double = 0, frequencyPenalty: Double = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
    }

    /// Checks every value; errors name the parameter.
    public func validate() throws {
        func bad(_ name: String, _ reason: String) -> ModelError { .invalidParameter(name: name, reason: reason) }
        guard temperature.isFinite, temperature >= 0 else { throw bad("temperature", "must be ≥ 0 (0 = greedy), got \(temperature)") }
        if let topK, topK < 0 { throw bad("topK", "must be ≥ 0 (0 = off), got \(topK)") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw bad("topP", "must be in (0, 1], got \(topP)") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw bad("minP", "must be in [0, 1], got \(minP)") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw bad("repetitionPenalty", "must be > 0 (1 = off), got \(repetitionPenalty)")
        }
        guard presencePenalty.isFinite, abs(presencePenalty) <= 1e6 else { throw bad("presencePenalty", "must be finite, got \(presencePenalty)") }
        guard frequencyPenalty.isFinite, abs(frequencyPenalty) <= 1e6 else { throw bad("frequencyPenalty", "must be finite, got \(frequencyPenalty)") }
    }

    var hasPenalties: Bool { repetitionPenalty != 1 || presencePenalty != 0 || frequencyPenalty != 0 }

    /// Applies the penalties to `logits` in place. `history` holds the prompt then the output;
    /// the output starts at `outputStart`.
    public func applyPenalties(_ logits: UnsafeMutableBufferPointer<Float>, history: [Int], outputStart: Int) {
        guard hasPenalties else { return }
        let n = logits.count
        if repetitionPenalty != 1 {
            let p = Float(repetitionPenalty)
            var seen = Set<Int>()
            for id in history where id >= 0 && id < n && seen.insert(id).inserted {
                logits[id] = logits[id] > 0 ? logits[id] / p : logits[id] * p
            }
        }
        if presencePenalty != 0 || frequencyPenalty != 0 {
            var counts: [Int: Int] = [:]
            for id in history[min(outputStart, history.count)...] where id >= 0 && id < n { counts[id, default: 0] += 1 }
            for (id, c) in counts {
                logits[id] -= Float(presencePenalty + frequencyPenalty * Double(c))
            }
        }
    }

    /// Log-probability of `token` under softmax(logits) (T = 1): what the model assigns, before
    /// penalties and filters.
    public static func logProbability(of token: Int, logits: UnsafeBufferPointer<Float>) -> Double {
        let (mx, lse) = CategoricalSampling.logNormalizer(logits: logits)
        return Double(logits[token] - mx) - lse
    }

    /// Draws the next id from `logits` (modified in place by the penalties). Returns nil when the
    /// logits hold a NaN or no finite value (the model failed; the caller ends the request).
    public func sample(logits: UnsafeMutableBufferPointer<Float>, history: [Int], outputStart: Int,
                       randomness: SequenceRandomness) -> Int? {
        let n = logits.count
        guard n > 0, let base = logits.baseAddress else { return nil }
        // no NaN, and at least one finite value (one vectorised pass over the row)
        guard calm_float_classes(base, n) == CALM_HAS_FINITE else { return nil }
        applyPenalties(logits, history: history, outputStart: outputStart)
        if temperature == 0 { return Int(calm_argmax(base, Int32(n))) }
        let u = randomness.uniformDouble()
        // softmax(logits / T) with the kernels' vectorised exp (the vocabulary is large: 128k rows
        // of scalar Double exp cost milliseconds per token), in place
        let inverse = Float(1 / temperature)
        if inverse != 1 { for i in 0..<n { logits[i] *= inverse } }
        calm_softmax(base, Int32(n))
        let k = topK ?? 0
        if (k == 0 || k >= n) && topP >= 1 && minP <= 0 {
            return Self.invert(logits, ids: nil, u: u)
        }
        // the filters over ids sorted by probability (ties: lower id first), then inversion over
        // the kept ids in id order
        var order = Array(0..<n)
        order.sort { logits[$0] != logits[$1] ? logits[$0] > logits[$1] : $0 < $1 }
        var keep = n
        if k > 0 { keep = min(keep, k) }
        if topP < 1 {
            var total = 0.0
            for i in 0..<n { total += Double(logits[i]) }
            var cumulative = 0.0
            for (rank, i) in order.prefix(keep).enumerated() {
                cumulative += Double(logits[i]) / total
                if cumulative >= topP { keep = rank + 1; break }
            }
        }
        if minP > 0, let top = order.first {
            let floor = Float(minP) * logits[top]
            var rank = 1
            while rank < keep && logits[order[rank]] >= floor { rank += 1 }
            keep = rank
        }
        var kept = Array(order.prefix(max(keep, 1)))
        kept.sort()
        return Self.invert(logits, ids: kept, u: u)
    }

    /// The id (among `ids`, or all ids, in id order) whose cumulative weight first exceeds
    /// u × the total weight.
    static func invert(_ weights: UnsafeMutableBufferPointer<Float>, ids: [Int]?, u: Double) -> Int? {
        if let ids {
            var total = 0.0
            for i in ids { total += Double(weights[i]) }
            let target = u * total
            var cumulative = 0.0
            for i in ids {
                cumulative += Double(weights[i])
                if cumulative > target { return i }
            }
            return ids.last
        }
        // All ids: the total is the one sequential sum, and the running sums at the ends of blocks of
        // `block` ids are kept on the way, so that the search only rescans the block where the
        // cumulative weight crosses the target, from the same running sum (the same additions, in the
        // same order, as one scan from id 0: the same id).
        let n = weights.count
        let block = 2048
        let blocks = (n + block - 1) / block
        return withUnsafeTemporaryAllocation(of: Double.self, capacity: blocks + 1) { ends in
            var total = 0.0
            ends[0] = 0
            for b in 0..<blocks {
                for i in (b * block)..<min(n, (b + 1) * block) { total += Double(weights[i]) }
                ends[b + 1] = total
            }
            let target = u * total
            for b in 0..<blocks where ends[b + 1] > target {
                var cumulative = ends[b]
                for i in (b * block)..<min(n, (b + 1) * block) {
                    cumulative += Double(weights[i])
                    if cumulative > target { return i }
                }
            }
            // rounding left the target at the very top: the last id with positive weight
            var i = n - 1
            while i > 0 && weights[i] == 0 { i -= 1 }
            return i
        }
    }
}
