import CALMModel
import Foundation
import Testing

/// The temperature samplers against a synthetic implicit distribution: a black box that returns
/// one of a few hundred outcomes with known probabilities p.
@Suite("Sampler statistics")
struct SamplerStatisticsTests {
    /// p_i ∝ 0.9^i over `count` outcomes, sampled by inverse CDF from a seeded stream.
    struct BlackBox {
        let p: [Double]
        let cdf: [Double]
        let rng: SeededRandomness
        init(count: Int, decay: Double = 0.9, seed: UInt64) {
            let w = (0..<count).map { pow(decay, Double($0)) }
            let z = w.reduce(0, +)
            p = w.map { $0 / z }
            var c = 0.0
            cdf = p.map { c += $0; return c }
            rng = SeededRandomness(seed: seed)
        }
        func draw() -> Int {
            let u = rng.uniformDouble()
            var lo = 0, hi = cdf.count - 1
            while lo < hi { let mid = (lo + hi) / 2; if u < cdf[mid] { hi = mid } else { lo = mid + 1 } }
            return lo
        }
        func tempered(_ t: Double) -> [Double] {
            let q = p.map { pow($0, 1 / t) }
            let z = q.reduce(0, +)
            return q.map { $0 / z }
        }
    }

    /// Pearson chi-square of observed counts against expected probabilities, pooling cells with
    /// expectation below 5 into one; returns (statistic, degrees of freedom).
    static func chiSquare(_ counts: [Int], _ q: [Double]) -> (Double, Int) {
        let total = Double(counts.reduce(0, +))
        var stat = 0.0, cells = 0, pooledObserved = 0.0, pooledExpected = 0.0
        for (c, qi) in zip(counts, q) {
            let e = qi * total
            if e < 5 { pooledObserved += Double(c); pooledExpected += e; continue }
            stat += (Double(c) - e) * (Double(c) - e) / e
            cells += 1
        }
        if pooledExpected > 0 {
            stat += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / pooledExpected
            cells += 1
        }
        return (stat, cells - 1)
    }

    /// Upper 0.1% point of χ²(df) (Wilson–Hilferty).
    static func critical(_ df: Int) -> Double {
        let d = Double(df), z = 3.09
        return d * pow(1 - 2 / (9 * d) + z * (2 / (9 * d)).squareRoot(), 3)
    }

    @Test(arguments: [0.7, 0.5, 0.4, 0.9, 1.0 / 3])
    func exactRejectionMatchesTemperedDistribution(temperature: Double) throws {
        // No vanishing probabilities: the draw count's tail grows like min(p)^(α−1) as T → 1
        // (the paper advises against the exact algorithm near T = 1 for this reason).
        let box = BlackBox(count: 200, decay: 0.97, seed: UInt64(temperature * 1000))
        let coin = SeededRandomness(seed: 77)
        let samples = temperature < 0.4 ? 1500 : 6000
        var counts = [Int](repeating: 0, count: box.p.count)
        var draws: [Double] = []
        for _ in 0..<samples {
            var sampler = try ExactRejectionSampler<Int>(temperature: temperature, maxDraws: 10_000_000)
            var result: Int?
            while result == nil { result = sampler.consume(box.draw()) { coin.uniformDouble() } }
            #expect(!sampler.truncated)
            counts[result!] += 1
            draws.append(Double(sampler.draws))
        }
        let (stat, df) = Self.chiSquare(counts, box.tempered(temperature))
        #expect(stat < Self.critical(df), "χ² = \(stat) with \(df) df at T = \(temperature)")
        // Mean number of draws against Theorem 2, within 4 standard errors.
        let mean = draws.reduce(0, +) / Double(samples)
        let variance = draws.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(samples - 1)
        let expected = ExactRejectionSampler<Int>.expectedDraws(probabilities: box.p, temperature: temperature)
        #expect(abs(mean - expected) < 4 * (variance / Double(samples)).squareRoot(),
                "mean draws \(mean), Theorem 2 gives \(expected)")
    }

    @Test func batchApproximationApproachesTemperedDistributionAsNGrows() {
        let box = BlackBox(count: 20, decay: 0.8, seed: 5)
        let target = box.tempered(0.5)
        let coin = SeededRandomness(seed: 6)
        func totalVariation(samples n: Int, selections: Int) -> Double {
            var counts = [Int](repeating: 0, count: box.p.count)
            for _ in 0..<selections {
                let pool: [[Int32]] = (0..<n).map { _ in [Int32(box.draw())] }
                let s = BatchApproximation.select(pool: pool, level: 2, u: coin.uniformDouble())
                counts[Int(s.chunk[0])] += 1
            }
            var tv = 0.0
            for (c, q) in zip(counts, target) { tv += abs(Double(c) / Double(selections) - q) }
            return tv / 2
        }
        let small = totalVariation(samples: 4, selections: 4000)
        let medium = totalVariation(samples: 40, selections: 4000)
        let large = totalVariation(samples: 400, selections: 4000)
        #expect(small > medium && medium > large, "TV \(small) → \(medium) → \(large)")
        #expect(large < 0.06, "TV at N = 400 is \(large)")
    }

    @Test func truncationAtMaxDraws() throws {
        var s = try ExactRejectionSampler<Int>(temperature: 0.1, maxDraws: 5)
        var result: Int?
        var k = 0
        while result == nil { result = s.consume(k % 7) { 0.99 }; k += 1 }
        #expect(s.draws == 5 && s.truncated)
    }
}
