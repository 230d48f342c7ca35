import CALMKernels
import Foundation

/// What happened to one committed vector (spec §2.10): the paper's and the demo's readouts, with the
/// entropy taken over an explicit top-k. The paper's constant "3.9 nats" is ln 50: a τ = 1 softmax over
/// cosines in [−1, 1] is near-uniform over any candidate set, so the number mostly measures k.
public struct TokenMaturationDiagnostics: Sendable, Equatable {
    /// The committed id.
    public var token: Int
    /// H(softmax(cos/τ)) over the `topK` best cosines, τ = 1, in nats.
    public var entropy: Double
    /// Candidates the entropy was taken over.
    public var topK: Int
    /// Cosine between the committed vector and its nearest embedding.
    public var cosine: Float
    /// Top-1 minus top-2 cosine (0 with a one-token vocabulary).
    public var gap: Float
    /// Updates the vector received while in the tail.
    public var updates: Int
    /// The update (1-based) from which its nearest embedding never changed again.
    public var lockStep: Int
    /// Distinct nearest embeddings along its trajectory.
    public var uniqueCandidates: Int

    /// A record with every statistic given.
    public init(token: Int, entropy: Double, topK: Int, cosine: Float, gap: Float, updates: Int, lockStep: Int, uniqueCandidates: Int) {
        self.token = token; self.entropy = entropy; self.topK = topK; self.cosine = cosine; self.gap = gap
        self.updates = updates; self.lockStep = lockStep; self.uniqueCandidates = uniqueCandidates
    }

    /// Entropy in nats of softmax(c/τ) over the `topK` largest of `cosines` (all of them when topK
    /// exceeds the count). The values must be finite.
    public static func entropy(cosines: [Float], topK: Int, temperature: Float = 1) -> Double {
        guard !cosines.isEmpty, topK >= 1 else { return 0 }
        return cosines.withUnsafeBufferPointer { entropy(cosines: $0, topK: topK, temperature: temperature).entropy }
    }

    /// Entropy over the top-k and the two best cosines.
    static func entropy(cosines: UnsafeBufferPointer<Float>, topK: Int, temperature: Float) -> (entropy: Double, best: Float, second: Float) {
        let n = cosines.count
        let k = min(max(topK, 2), n)
        var order = [Int32](repeating: 0, count: k)
        let found = Int(calm_top_k(cosines.baseAddress!, Int32(n), Int32(k), &order))
        let used = min(topK, found)
        var p = (0..<used).map { cosines[Int(order[$0])] / temperature }
        calm_softmax(&p, Int32(used))
        var h = 0.0
        for q in p where q > 0 { h -= Double(q) * log(Double(q)) }
        let best = cosines[Int(order[0])]
        let second = found > 1 ? cosines[Int(order[1])] : best
        return (h, best, second)
    }

    /// (lock step, distinct candidates) of a trajectory of nearest embeddings, one per update.
    static func trajectoryStatistics(_ trajectory: [Int32]) -> (lockStep: Int, unique: Int) {
        guard let last = trajectory.last else { return (0, 0) }
        var lock = trajectory.count
        while lock > 1 && trajectory[lock - 2] == last { lock -= 1 }
        return (lock, Set(trajectory).count)
    }
}
