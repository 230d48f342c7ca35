import Foundation

/// Diversity and repetition of generated samples (the Token Maturation paper's table; spec §4.1),
/// over token ids, each sample on its own (the prompt is not part of a sample).
///
/// For a sample of T ids and n ≤ T, its n-grams are the T − n + 1 windows of n consecutive ids.
/// * **Dist-n** of a sample = distinct n-grams / n-grams; Dist-n of a set of samples is the mean
///   over the samples that have at least one n-gram (T ≥ n). Shorter samples have no n-grams and
///   are left out of that mean (`countedSamples(n)` says how many counted); with none, Dist-n is nil.
/// * **Rep-n** of a sample = 1 − Dist-n = the share of its n-grams that repeat an earlier one of the
///   same sample; Rep-n of the set is the mean over the same samples, so Rep-n = 1 − Dist-n for
///   the set too (the spec's reading of the paper's table, where Rep-2 = 1 − Dist-2 in every column).
/// * **Loop %** = 100 × the share of all samples that contain some trigram twice (Rep-3 > 0). A
///   sample shorter than 3 ids cannot loop and counts as not looping.
///
/// ```swift
/// let metrics = RepetitionMetrics(samples: [[1, 2, 1, 2, 1, 2], [3, 4, 5]])
/// print(metrics.dist(1) ?? 0, metrics.rep(2) ?? 0, metrics.loopPercent)
/// ```
public struct RepetitionMetrics: Sendable, Equatable {
    /// The n-gram orders computed (Dist-n and Rep-n for n = 1…4).
    public static let orders = 1...4

    /// Samples measured.
    public let samples: Int
    /// Ids in all samples together.
    public let tokens: Int
    /// Samples that contain a repeated trigram.
    public let loopingSamples: Int
    /// Per order n (index n − 1): the sum of the samples' Dist-n and how many samples had n-grams.
    let distinctSums: [Double]
    let counted: [Int]

    /// Measures `samples` (token ids; one array per sample).
    public init(samples: [[Int]]) {
        var sums = [Double](repeating: 0, count: Self.orders.count)
        var counted = [Int](repeating: 0, count: Self.orders.count)
        var looping = 0
        for sample in samples {
            for n in Self.orders {
                guard let d = Self.distinctRatio(sample, n: n) else { continue }
                sums[n - 1] += d
                counted[n - 1] += 1
            }
            if Self.hasRepeatedNGram(sample, n: 3) { looping += 1 }
        }
        self.samples = samples.count
        self.tokens = samples.reduce(0) { $0 + $1.count }
        self.loopingSamples = looping
        self.distinctSums = sums
        self.counted = counted
    }

    /// Distinct n-grams / n-grams of one sample; nil when it is shorter than n (no n-gram).
    public static func distinctRatio(_ sample: [Int], n: Int) -> Double? {
        guard n >= 1, sample.count >= n else { return nil }
        let total = sample.count - n + 1
        var seen = Set<ArraySlice<Int>>()
        seen.reserveCapacity(total)
        for start in 0..<total { seen.insert(sample[start..<(start + n)]) }
        return Double(seen.count) / Double(total)
    }

    /// Whether some n-gram occurs twice in `sample`.
    public static func hasRepeatedNGram(_ sample: [Int], n: Int) -> Bool {
        guard let d = distinctRatio(sample, n: n) else { return false }
        return d < 1
    }

    /// Samples with at least n ids (those Dist-n and Rep-n average over); 0 outside `orders`.
    public func countedSamples(_ n: Int) -> Int {
        Self.orders.contains(n) ? counted[n - 1] : 0
    }

    /// Dist-n (n in `orders`): the mean over samples with n-grams of distinct / total n-grams;
    /// nil when no sample has n ids or n is outside `orders`.
    public func dist(_ n: Int) -> Double? {
        guard Self.orders.contains(n), counted[n - 1] > 0 else { return nil }
        return distinctSums[n - 1] / Double(counted[n - 1])
    }

    /// Rep-n = 1 − Dist-n (the mean share of repeated n-grams over the same samples).
    public func rep(_ n: Int) -> Double? { dist(n).map { 1 - $0 } }

    /// 100 × the share of samples with a repeated trigram (0 for no samples).
    public var loopPercent: Double { samples == 0 ? 0 : 100 * Double(loopingSamples) / Double(samples) }

    /// The `calm eval-repetition --json` metric keys: `dist_1`, `dist_2`, `rep_2`, `rep_3`,
    /// `loop_percent` (null where undefined), plus `samples` and `tokens`.
    public var jsonObject: [String: Any] {
        func value(_ x: Double?) -> Any { x.map { $0 as Any } ?? NSNull() }
        return ["dist_1": value(dist(1)), "dist_2": value(dist(2)), "rep_2": value(rep(2)), "rep_3": value(rep(3)),
                "loop_percent": loopPercent, "samples": samples, "tokens": tokens]
    }
}
