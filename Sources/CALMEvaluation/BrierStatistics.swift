import Foundation

/// The Brier indicators of one scored position (K ≥ 4) or window (K < 4), for n = 1…4:
/// whether sample 1's and sample 2's n-gram equals the target's, and whether the two samples'
/// n-grams collide. The position's Brier-n estimate is `acc1 + acc2 − coll`, an unbiased
/// estimate of 2·P(y) − Σₓ P(x)² (the Brier score up to the constant 1).
public struct BrierIndicators: Sendable, Equatable {
    public var acc1: SIMD4<Double>
    public var acc2: SIMD4<Double>
    public var coll: SIMD4<Double>
    public init(acc1: SIMD4<Double>, acc2: SIMD4<Double>, coll: SIMD4<Double>) {
        self.acc1 = acc1; self.acc2 = acc2; self.coll = coll
    }

    /// Indicators from token-equality flags (cumulative products over the 4 tokens).
    public init(match1: [Bool], match2: [Bool], collide: [Bool]) {
        func cumulative(_ flags: [Bool]) -> SIMD4<Double> {
            var out = SIMD4<Double>(repeating: 0), running = true
            for n in 0..<4 {
                running = running && n < flags.count && flags[n]
                out[n] = running ? 1 : 0
            }
            return out
        }
        self.init(acc1: cumulative(match1), acc2: cumulative(match2), coll: cumulative(collide))
    }

    /// Per-n Brier estimate acc1 + acc2 − coll.
    public var brier: SIMD4<Double> { acc1 + acc2 - coll }
    /// Per-n accuracy estimate (acc1 + acc2) / 2, an unbiased estimate of P(y).
    public var accuracy: SIMD4<Double> { (acc1 + acc2) / 2 }
}

/// Accumulates per-position Brier indicators over blocks and reports the reference's aggregates
/// with standard errors.
///
/// * Brier-n is the mean over blocks of each block's mean (the reference's `compute_metrics`
///   with one block per evaluation batch); with equal positions per block this is the mean over
///   all positions.
/// * Standard errors treat the per-position estimates as independent draws: s/√N with s the
///   sample standard deviation over all positions. For BrierLM = (Π Brier-n)^{1/4} the delta
///   method is used: Var ≈ ∇ᵀ Σ ∇ / N with ∇ₙ = BrierLM / (4·Brier-n) and Σ the 4 × 4 sample
///   covariance of the per-position Brier-n estimates. Positions in one block share context, so
///   these are standard errors of the sampling and per-position variation, not of the corpus
///   choice.
public struct BrierAccumulator: Sendable {
    public private(set) var count = 0
    var sumB = SIMD4<Double>(repeating: 0), sumA = SIMD4<Double>(repeating: 0), sumC = SIMD4<Double>(repeating: 0)
    var sumA2 = SIMD4<Double>(repeating: 0), sumC2 = SIMD4<Double>(repeating: 0)
    /// Σ b bᵀ (row-major 4 × 4).
    var crossB = [Double](repeating: 0, count: 16)
    var blockSum = SIMD4<Double>(repeating: 0), blockCount = 0
    public private(set) var blockMeans: [SIMD4<Double>] = []

    public init() {}

    public mutating func add(_ x: BrierIndicators) {
        let b = x.brier, a = x.accuracy, c = x.coll
        count += 1
        sumB += b; sumA += a; sumC += c
        sumA2 += a * a; sumC2 += c * c
        for i in 0..<4 { for j in 0..<4 { crossB[i * 4 + j] += b[i] * b[j] } }
        blockSum += b; blockCount += 1
    }

    /// Closes the current block (its mean joins `blockMeans`).
    public mutating func endBlock() {
        guard blockCount > 0 else { return }
        blockMeans.append(blockSum / Double(blockCount))
        blockSum = .init(repeating: 0); blockCount = 0
    }

    /// The aggregates so far (an open block is included as if closed).
    public func report() -> BrierReport {
        var means = blockMeans
        if blockCount > 0 { means.append(blockSum / Double(blockCount)) }
        let n = Double(max(count, 1))
        let brier: SIMD4<Double> = means.isEmpty ? .init(repeating: 0) : means.reduce(.init(repeating: 0), +) / Double(means.count)
        let meanB = sumB / n, meanA = sumA / n, meanC = sumC / n
        func stderr(_ sum2: SIMD4<Double>, _ mean: SIMD4<Double>) -> [Double] {
            guard count > 1 else { return [Double](repeating: .nan, count: 4) }
            return (0..<4).map { i in
                let variance = max(0, (sum2[i] - n * mean[i] * mean[i]) / (n - 1))
                return (variance / n).squareRoot()
            }
        }
        var covariance = [Double](repeating: 0, count: 16)
        if count > 1 {
            for i in 0..<4 { for j in 0..<4 { covariance[i * 4 + j] = (crossB[i * 4 + j] - n * meanB[i] * meanB[j]) / (n - 1) } }
        }
        let brierStderr = (0..<4).map { count > 1 ? (max(0, covariance[$0 * 5]) / n).squareRoot() : .nan }
        let product = brier[0] * brier[1] * brier[2] * brier[3]
        let unscaled = pow(max(product, 0), 0.25)
        var lmStderr = Double.nan
        if count > 1, (0..<4).allSatisfy({ brier[$0] > 0 }) {
            let gradient = (0..<4).map { unscaled / (4 * brier[$0]) }
            var v = 0.0
            for i in 0..<4 { for j in 0..<4 { v += gradient[i] * covariance[i * 4 + j] * gradient[j] } }
            lmStderr = (max(v, 0) / n).squareRoot()
        }
        return BrierReport(brier: (0..<4).map { brier[$0] }, brierStderr: brierStderr,
                           accuracy: (0..<4).map { meanA[$0] }, accuracyStderr: stderr(sumA2, meanA),
                           collision: (0..<4).map { meanC[$0] }, collisionStderr: stderr(sumC2, meanC),
                           brierLMUnscaled: unscaled, brierLMUnscaledStderr: lmStderr,
                           positions: count, blocks: means.count)
    }
}

/// Brier-1…4, BrierLM and the accuracy/collision decomposition with standard errors.
public struct BrierReport: Sendable, Equatable {
    /// Brier-n for n = 1…4 (2·P(y) − Σ P(x)², estimated).
    public var brier: [Double]
    public var brierStderr: [Double]
    /// Accuracy-n: estimated probability of the target n-gram, mean of (acc1 + acc2)/2.
    public var accuracy: [Double]
    public var accuracyStderr: [Double]
    /// Collision-n: estimated Σₓ P(x)², mean of the sample-collision indicator.
    /// Brier-n = 2·accuracy-n − collision-n (averaged over the same positions).
    public var collision: [Double]
    public var collisionStderr: [Double]
    /// The reference code's `brierLM` = max(Π Brier-n, 0)^{1/4}.
    public var brierLMUnscaled: Double
    /// Delta-method standard error of `brierLMUnscaled` (NaN when some Brier-n ≤ 0).
    public var brierLMUnscaledStderr: Double
    /// Scored positions (K ≥ 4) or windows (K < 4) in all blocks.
    public var positions: Int
    public var blocks: Int

    /// The paper's BrierLM (×100).
    public var brierLM: Double { 100 * brierLMUnscaled }
    public var brierLMStderr: Double { 100 * brierLMUnscaledStderr }
    /// Whether BrierLM means anything: every Brier-n > 0. The reference's max(Π Brier-n, 0)^{1/4}
    /// turns an even number of negative Brier-n into a positive score (untrained models get there).
    public var brierLMIsMeaningful: Bool { brier.allSatisfy { $0 > 0 } }
}
