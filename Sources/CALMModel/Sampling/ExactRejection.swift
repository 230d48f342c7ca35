import Foundation

/// The paper's Algorithm 1: exact sampling at any temperature T ∈ (0, 1] from a black-box
/// sampler of P, returning x with probability P(x)^(1/T) / Z_T.
///
/// Stage 1 draws n = ⌊1/T⌋ samples and restarts unless all are equal (x*). With α = 1/T − n > 0,
/// stage 2 is a Bernoulli factory for P(x*)^α: draw x; x = x* accepts; otherwise restart with
/// probability α/i, else i += 1. The state machine consumes samples one at a time, so callers can
/// draw samples in batches (several sequences, several draws each) and feed them in order; unused
/// draws are simply discarded, which keeps the result exact.
public struct ExactRejectionSampler<Outcome: Equatable>: Sendable where Outcome: Sendable {
    public let n: Int
    public let alpha: Double
    /// Most samples to consume before giving up (the last stage-1 candidate, or the last draw, is returned).
    public let maxDraws: Int

    private var stage1: [Outcome] = []
    private var candidate: Outcome?
    private var i = 1
    public private(set) var draws = 0
    public private(set) var restarts = 0
    /// True once `maxDraws` ran out before an exact acceptance.
    public private(set) var truncated = false

    /// Validates T ∈ (0, 1] and maxDraws ≥ 1.
    public init(temperature t: Double, maxDraws: Int) throws {
        guard t.isFinite, t > 0, t <= 1 else {
            throw ModelError.invalidParameter(name: "temperature", reason: "must be in (0, 1], got \(t)")
        }
        guard maxDraws >= 1 else { throw ModelError.invalidParameter(name: "maxDraws", reason: "must be at least 1, got \(maxDraws)") }
        let inv = 1 / t
        guard inv <= 1e6 else {
            throw ModelError.invalidParameter(name: "temperature", reason: "\(t) is below 1e-6: the exact sampler would need at least 1/T = \(inv) equal draws per step")
        }
        var n = Int(inv.rounded(.down))
        var alpha = inv - Double(n)
        // 1/T within 1e-9 of an integer is that integer (T = 1/3 is not exactly representable).
        if abs(inv - inv.rounded()) <= 1e-9 * inv { n = Int(inv.rounded()); alpha = 0 }
        self.n = n
        self.alpha = alpha
        self.maxDraws = maxDraws
    }

    /// Feeds the next sample; returns the accepted outcome when the algorithm accepts.
    /// `uniform` supplies the stage-2 coin (only called when needed).
    public mutating func consume(_ x: Outcome, uniform: () -> Double) -> Outcome? {
        draws += 1
        defer { if draws >= maxDraws && !truncated { truncated = true } }
        if let star = candidate {
            // Stage 2.
            if x == star { return star }
            if uniform() < alpha / Double(i) {
                restart()
            } else {
                i += 1
            }
            if draws >= maxDraws { return star }
            return nil
        }
        // Stage 1: n samples, accepted only if all are equal (drawn in full, as in the paper, so
        // the expected number of draws is exactly Theorem 2's).
        stage1.append(x)
        if stage1.count == n {
            let star = stage1[0]
            let allEqual = stage1.allSatisfy { $0 == star }
            stage1.removeAll()
            if allEqual {
                if alpha == 0 { return star }
                candidate = star
                i = 1
            } else {
                restarts += 1
            }
        }
        if draws >= maxDraws { return candidate ?? x }
        return nil
    }

    /// The outcomes a later sample can still be compared with: the first stage-1 sample (every
    /// other stage-1 sample is compared with it) or the stage-2 candidate; at most one. Callers
    /// that decode samples lazily keep these and may forget the rest.
    public var comparands: [Outcome] {
        if let candidate { return [candidate] }
        return stage1.first.map { [$0] } ?? []
    }

    private mutating func restart() {
        candidate = nil
        stage1.removeAll()
        i = 1
        restarts += 1
    }

    /// Expected number of sampler calls (Theorem 2): (n + 1[α>0]·Σ P^(1/T−1)) / Z_T.
    public static func expectedDraws(probabilities p: [Double], temperature t: Double) -> Double {
        let inv = 1 / t
        guard inv <= 1e6 else { return .infinity }
        var n = Int(inv.rounded(.down)), alpha = inv - Double(n)
        if abs(inv - inv.rounded()) <= 1e-9 * inv { n = Int(inv.rounded()); alpha = 0 }
        let z = p.reduce(0) { $0 + pow($1, inv) }
        let extra = alpha > 0 ? p.reduce(0) { $0 + pow($1, inv - 1) } : 0
        return (Double(n) + extra) / z
    }
}
