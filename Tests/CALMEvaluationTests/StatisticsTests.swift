import CALMEvaluation
import CALMTestSupport
import Foundation
import Testing

@Suite("Brier statistics")
struct StatisticsTests {
    @Test func indicatorsAreCumulative() {
        let x = BrierIndicators(match1: [true, true, false, true], match2: [false, true, true, true], collide: [true, true])
        #expect(x.acc1 == SIMD4(1, 1, 0, 0))
        #expect(x.acc2 == SIMD4(0, 0, 0, 0))
        #expect(x.coll == SIMD4(1, 1, 0, 0))
        #expect(x.brier == SIMD4(0, 0, 0, 0))
        #expect(x.accuracy == SIMD4(0.5, 0.5, 0, 0))
    }

    @Test func aggregatesAndStandardErrors() {
        var acc = BrierAccumulator()
        var rng = TestRandom(3)
        var brier1: [Double] = [], accuracy1: [Double] = []
        var all: [SIMD4<Double>] = []
        for block in 0..<3 {
            for _ in 0..<50 {
                let flags = (0..<3).map { _ in (0..<4).map { _ in Double.random(in: 0..<1, using: &rng) < (block == 0 ? 0.8 : 0.9) } }
                let x = BrierIndicators(match1: flags[0], match2: flags[1], collide: flags[2])
                acc.add(x)
                brier1.append(x.brier[0]); accuracy1.append(x.accuracy[0]); all.append(x.brier)
            }
            acc.endBlock()
        }
        let r = acc.report()
        #expect(r.positions == 150 && r.blocks == 3)
        let (m, se) = meanAndStderr(brier1)
        #expect(abs(r.brier[0] - m) < 1e-12)
        #expect(abs(r.brierStderr[0] - se) < 1e-12)
        let (am, ase) = meanAndStderr(accuracy1)
        #expect(abs(r.accuracy[0] - am) < 1e-12 && abs(r.accuracyStderr[0] - ase) < 1e-12)
        for n in 0..<4 { #expect(abs(r.brier[n] - (2 * r.accuracy[n] - r.collision[n])) < 1e-12) }
        let product = r.brier.reduce(1, *)
        #expect(abs(r.brierLMUnscaled - pow(max(product, 0), 0.25)) < 1e-12)
        #expect(abs(r.brierLM - 100 * r.brierLMUnscaled) < 1e-9)
        // Delta method against a direct jackknife-free check: finite-difference gradient.
        if r.brier.allSatisfy({ $0 > 0 }) {
            let n = Double(all.count)
            let mean = all.reduce(SIMD4<Double>(repeating: 0), +) / n
            var v = 0.0
            for x in all {
                var g = 0.0
                for i in 0..<4 { g += r.brierLMUnscaled / (4 * mean[i]) * (x[i] - mean[i]) }
                v += g * g
            }
            let expected = (v / (n - 1) / n).squareRoot()
            #expect(abs(r.brierLMUnscaledStderr - expected) < 1e-12)
        }
    }

    @Test func brierLMIsClampedAndStderrUndefinedForNonPositiveBrier() {
        var acc = BrierAccumulator()
        acc.add(BrierIndicators(acc1: .init(repeating: 0), acc2: .init(repeating: 0), coll: .init(repeating: 1)))
        acc.add(BrierIndicators(acc1: SIMD4(1, 0, 0, 0), acc2: .init(repeating: 0), coll: SIMD4(0, 0, 0, 1)))
        let r = acc.report()
        #expect(r.brier == [0, -0.5, -0.5, -1])
        #expect(r.brierLMUnscaled == 0)
        #expect(r.brierLMStderr.isNaN)
        #expect(!r.brierLMIsMeaningful)
    }

    /// The reference's max(Π, 0)^¼ scores two negative Brier-n as a positive BrierLM (an early
    /// training checkpoint does this); the report flags it rather than changing the reference value.
    @Test func evenNumberOfNegativeBrierGivesPositiveButUnmeaningfulBrierLM() {
        var acc = BrierAccumulator()
        // Both draws match the first two target tokens and collide on all four: Brier = (1, 1, −1, −1).
        acc.add(BrierIndicators(acc1: SIMD4(1, 1, 0, 0), acc2: SIMD4(1, 1, 0, 0), coll: SIMD4(1, 1, 1, 1)))
        let r = acc.report()
        #expect(r.brier == [1, 1, -1, -1])
        #expect(abs(r.brierLMUnscaled - 1) < 1e-12)
        #expect(!r.brierLMIsMeaningful)
    }
}
