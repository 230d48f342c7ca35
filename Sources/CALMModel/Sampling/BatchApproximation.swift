import Foundation

/// The reference's temperature sampler for T = 1/n (the paper's Algorithm 2): among N sampled
/// chunks, keep those repeated at least n times (falling back n−1, …, 1), weight each by
/// C(count, n) and pick one.
public enum BatchApproximation {
    /// The outcome of one selection.
    public struct Selection: Sendable, Equatable {
        /// Distinct chunks with count ≥ `level`, in order of first appearance in the pool (as the
        /// pool holds them: from a lazily decoded pool, a level-1 candidate may be a prefix that no
        /// other entry shares; see `PartialChunk`).
        public var candidates: [[Int32]]
        /// Their weights C(count, level).
        public var weights: [Double]
        /// The cascade level that first had candidates.
        public var level: Int
        /// Index of the chosen candidate.
        public var index: Int
        /// The chosen chunk.
        public var chunk: [Int32] { candidates[index] }
    }

    /// n = round(1/T) after checking 0 < T ≤ 1 and that 1/T is an integer (relative 1e-9).
    public static func level(forTemperature t: Double) throws -> Int {
        guard t > 0, t <= 1, t.isFinite else {
            throw ModelError.invalidParameter(name: "temperature", reason: "must be in (0, 1], got \(t)")
        }
        let inv = 1 / t
        guard inv <= 1e6 else {
            throw ModelError.invalidParameter(name: "temperature", reason: "\(t) is below 1e-6: the batch approximation would need 1/T = \(inv) repeats of a chunk")
        }
        let n = inv.rounded()
        guard abs(inv - n) <= 1e-9 * inv else {
            throw ModelError.invalidParameter(name: "temperature", reason: "the batch approximation needs T = 1/n for an integer n, got \(t) (1/T = \(inv)); use the exact rejection sampler for other temperatures")
        }
        return Int(n)
    }

    /// Selects from `pool` (N chunks) at level `n` with the uniform draw `u` exactly as CPython's
    /// `random.choices(candidates, weights, k=1)` does: bisect_right(cumsum(w), u·Σw, 0, len−1).
    /// Only equality between entries matters, so the entries of a lazily decoded pool
    /// (`PartialChunk.tokens`, equal exactly when their chunks are) give the same counts, level,
    /// weights and index as the whole chunks.
    public static func select(pool: [[Int32]], level n: Int, u: Double) -> Selection {
        var order: [[Int32]] = []
        var counts: [[Int32]: Int] = [:]
        for chunk in pool {
            if let c = counts[chunk] { counts[chunk] = c + 1 } else { counts[chunk] = 1; order.append(chunk) }
        }
        // The cascade n, n−1, … stops at the first level some chunk reaches: the largest count (or
        // n), found at once instead of counting down from a huge n one level at a time.
        let level = max(1, min(n, counts.values.max() ?? 1))
        let candidates = order.filter { counts[$0, default: 0] >= level }
        let weights = candidates.map { binomial(counts[$0, default: 0], level) }
        var cumulative: [Double] = []
        var sum = 0.0
        for w in weights { sum += w; cumulative.append(sum) }
        let x = u * sum
        // bisect_right over cumulative[0..<hi] with hi = len − 1.
        var lo = 0, hi = max(candidates.count - 1, 0)
        while lo < hi {
            let mid = (lo + hi) / 2
            if x < cumulative[mid] { hi = mid } else { lo = mid + 1 }
        }
        return Selection(candidates: candidates, weights: weights, level: level, index: lo)
    }

    /// C(n, k) as a double (exact while it fits in 53 bits).
    public static func binomial(_ n: Int, _ k: Int) -> Double {
        guard k >= 0, k <= n else { return 0 }
        let k = min(k, n - k)
        var result = 1.0
        if k == 0 { return 1 }
        for i in 1...k { result = result * Double(n - k + i) / Double(i) }
        return result.rounded()
    }
}
