import CALMEvaluation
import Foundation
import Testing

/// Dist-n, Rep-n and Loop % on samples small enough to count by hand.
@Suite("Repetition metrics")
struct RepetitionMetricsTests {
    /// "a b a b a b": unigrams a, b (2 of 6); bigrams ab, ba (2 of 5); trigrams aba, bab (2 of 4).
    @Test func alternatingSampleCountedByHand() {
        let abab = [1, 2, 1, 2, 1, 2]
        #expect(RepetitionMetrics.distinctRatio(abab, n: 1) == 2.0 / 6)
        #expect(RepetitionMetrics.distinctRatio(abab, n: 2) == 2.0 / 5)
        #expect(RepetitionMetrics.distinctRatio(abab, n: 3) == 2.0 / 4)
        #expect(RepetitionMetrics.distinctRatio(abab, n: 7) == nil)
        let m = RepetitionMetrics(samples: [abab])
        #expect(m.dist(1) == 2.0 / 6)
        #expect(m.dist(2) == 2.0 / 5)
        #expect(m.rep(2) == 1 - 2.0 / 5)   // 3 of the 5 bigrams repeat an earlier one
        #expect(m.rep(3) == 0.5)
        #expect(m.loopPercent == 100)
        #expect(m.samples == 1 && m.tokens == 6 && m.loopingSamples == 1)
    }

    /// Averages are over the samples that have n-grams; Rep-n = 1 − Dist-n for the set as well.
    @Test func setAveragesLeaveOutSamplesShorterThanN() {
        let m = RepetitionMetrics(samples: [[1, 2, 1, 2, 1, 2], [1, 2, 3, 4], [7], [5, 5]])
        #expect(m.samples == 4 && m.tokens == 13)
        // Dist-1: (1/3 + 1 + 1 + 1/2) / 4
        #expect(abs(m.dist(1)! - (1.0 / 3 + 1 + 1 + 0.5) / 4) < 1e-15)
        // Dist-2 over the three samples with ≥ 2 ids: (2/5 + 1 + 1) / 3
        #expect(m.countedSamples(2) == 3)
        #expect(abs(m.dist(2)! - 0.8) < 1e-15)
        #expect(abs(m.rep(2)! - 0.2) < 1e-15)
        // Rep-3 over the two samples with ≥ 3 ids: (1/2 + 0) / 2
        #expect(m.countedSamples(3) == 2)
        #expect(abs(m.rep(3)! - 0.25) < 1e-15)
        for n in RepetitionMetrics.orders { #expect(abs(m.rep(n)! + m.dist(n)! - 1) < 1e-15) }
        // Loop %: one sample of four repeats a trigram ([5, 5] has none, [7] cannot)
        #expect(m.loopPercent == 25)
    }

    @Test func constantRunsAndEdgeCases() {
        let run = RepetitionMetrics(samples: [[9, 9, 9, 9]])
        #expect(run.dist(1) == 0.25 && run.dist(2) == 1.0 / 3 && run.dist(3) == 0.5 && run.dist(4) == 1)
        #expect(run.loopPercent == 100)
        let none = RepetitionMetrics(samples: [])
        #expect(none.dist(1) == nil && none.rep(2) == nil && none.loopPercent == 0 && none.samples == 0)
        let short = RepetitionMetrics(samples: [[], [3]])
        #expect(short.dist(1) == 1 && short.countedSamples(1) == 1 && short.dist(2) == nil && short.loopPercent == 0)
        #expect(short.dist(0) == nil && short.dist(5) == nil && short.countedSamples(9) == 0)
        // The JSON keys of calm eval-repetition, with null where a metric is undefined.
        let json = short.jsonObject
        for key in ["dist_1", "dist_2", "rep_2", "rep_3", "loop_percent", "samples", "tokens"] { #expect(json[key] != nil, "\(key)") }
        #expect(json["dist_2"] is NSNull && json["dist_1"] as? Double == 1)
    }
}
