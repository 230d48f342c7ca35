@testable import CALMTraining
import Foundation
import Testing

@Suite struct AdamWTests {
    @Test func warmupThenConstant() {
        let s = WarmupConstantSchedule(peak: 1e-3, warmupSteps: 4)
        #expect(s.rate(step: 1) == 2.5e-4 && s.rate(step: 2) == 5e-4 && s.rate(step: 4) == 1e-3 && s.rate(step: 100) == 1e-3)
        #expect(WarmupConstantSchedule(peak: 0.1).rate(step: 1) == 0.1)
    }

    @Test func firstStepMatchesTheFormula() {
        let w = Parameter(name: "w", shape: [2, 1], value: [1, -2])
        let b = Parameter(name: "b", shape: [1], value: [0.5])
        w.grad = [0.3, -0.1]; b.grad = [2]
        let opt = AdamW(parameters: ParameterSet([w, b]),
                        options: .init(learningRate: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5, maxGradNorm: nil))
        opt.apply()
        // Step 1: m̂ = g, v̂ = g², so the update is lr·sign(g) (up to eps); decay only on the matrix.
        #expect(abs(w.value[0] - (1 * (1 - 0.005) - 0.01)) < 1e-6)
        #expect(abs(w.value[1] - (-2 * (1 - 0.005) + 0.01)) < 1e-6)
        #expect(abs(b.value[0] - (0.5 - 0.01)) < 1e-6)
    }

    @Test func clipsTheGlobalNorm() {
        let p = Parameter(name: "p", shape: [2], value: [0, 0])
        p.grad = [3, 4]
        let opt = AdamW(parameters: ParameterSet([p]), options: .init(learningRate: 0.1, weightDecay: 0, maxGradNorm: 1))
        let info = opt.apply()
        #expect(info.clipped && abs(info.gradientNorm - 5) < 1e-9)
        #expect(abs(p.grad[0] - 0.6) < 1e-5 && abs(p.grad[1] - 0.8) < 1e-5)
    }

    @Test func minimisesAQuadratic() {
        // f(w) = Σ (w − t)², from 0; AdamW with warmup converges close to t.
        let target: [Float] = [1.5, -0.7, 0.2, 3]
        let w = Parameter(name: "w", shape: [2, 2], value: [0, 0, 0, 0])
        let opt = AdamW(parameters: ParameterSet([w]), options: .init(learningRate: 0.05, warmupSteps: 10, beta2: 0.99,
                                                                       weightDecay: 0, maxGradNorm: 10))
        func loss() -> Float { zip(w.value, target).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
        let start = loss()
        for _ in 0..<600 {
            w.grad = zip(w.value, target).map { 2 * ($0 - $1) }
            opt.apply()
        }
        #expect(opt.step == 600)
        #expect(loss() < 1e-3 * start, "loss \(loss()) from \(start)")
    }

    @Test func frozenParametersAreNotUpdated() {
        let p = Parameter(name: "p", shape: [1], value: [1], requiresGrad: false)
        p.grad = [1]
        let opt = AdamW(parameters: ParameterSet([p]), options: .init(learningRate: 0.1))
        opt.apply()
        #expect(p.value == [1])
    }
}
