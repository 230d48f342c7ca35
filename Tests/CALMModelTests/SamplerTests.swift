import CALMModel
import Foundation
import Testing

/// The batch-approximation selection rules and the seeded random streams.
@Suite("Samplers")
struct SamplerTests {
    @Test func paperExample() {
        // {A,C,A,D,B,E,A,F,B,G} at T = 1/2: weights A: C(3,2) = 3, B: C(2,2) = 1.
        let (a, b, c, d, e, f, g): ([Int32], [Int32], [Int32], [Int32], [Int32], [Int32], [Int32]) = ([1], [2], [3], [4], [5], [6], [7])
        let pool = [a, c, a, d, b, e, a, f, b, g]
        let s = BatchApproximation.select(pool: pool, level: 2, u: 0.8)
        #expect(s.candidates == [a, b] && s.weights == [3, 1] && s.level == 2)
        #expect(s.chunk == b, "u·Σw = 3.2 ≥ 3 selects the second candidate")
        #expect(BatchApproximation.select(pool: pool, level: 2, u: 0.74).chunk == a)
    }

    @Test func cascadeFallsBackToLowerLevels() {
        let s = BatchApproximation.select(pool: [[1], [2], [1], [3]], level: 4, u: 0.1)
        #expect(s.level == 2 && s.candidates == [[1]])
        let distinct = BatchApproximation.select(pool: [[1], [2], [3]], level: 3, u: 0.99)
        #expect(distinct.level == 1 && distinct.index == 2)
    }

    @Test func temperatureLevels() throws {
        #expect(try BatchApproximation.level(forTemperature: 0.5) == 2)
        #expect(try BatchApproximation.level(forTemperature: 1.0 / 3) == 3)
        #expect(throws: ModelError.self) { try BatchApproximation.level(forTemperature: 0.7) }
        #expect(throws: ModelError.self) { try BatchApproximation.level(forTemperature: 0) }
    }

    @Test func binomials() {
        #expect(BatchApproximation.binomial(5, 2) == 10)
        #expect(BatchApproximation.binomial(200, 2) == 19900)
        #expect(BatchApproximation.binomial(3, 4) == 0)
        #expect(BatchApproximation.binomial(60, 30) == 118264581564861424)
    }

    @Test func seededStreamsRepeatAndAreUniform() {
        let a = SeededRandomness(seed: 9).uniformFloats(count: 10_000)
        let b = SeededRandomness(seed: 9).uniformFloats(count: 10_000)
        #expect(a == b)
        #expect(a.allSatisfy { $0 >= 0 && $0 < 1 })
        let mean = a.reduce(0, +) / Float(a.count)
        #expect(abs(mean - 0.5) < 0.01)
        #expect(SeededRandomness(seed: 10).uniformFloats(count: 4) != Array(a.prefix(4)))
    }
}
