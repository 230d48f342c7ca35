import CALMModel
@testable import CALMTraining
import Foundation
import Testing

/// Finite-difference checks of every op's backward on tiny random shapes.
@Suite struct OpGradientTests {
    @Test func linearWithBias() {
        var rng = TestRNG(1)
        let rows = 3, inF = 5, outF = 4
        let w = param("w", [outF, inF], &rng), b = param("b", [outF], &rng), x = param("x", [rows, inF], &rng)
        let op = LinearOp(weight: w, bias: b)
        let c = rng.floats(rows * outF)
        func loss() -> Double { weightedSum(op.forward(x.value, rows: rows, pool: nil), c) }
        let dx = op.backward(c, input: x.value, rows: rows, pool: nil)!
        checkGradient("linear dx", x, analytic: dx, loss: loss)
        checkGradient("linear dW", w, analytic: w.grad, loss: loss)
        checkGradient("linear db", b, analytic: b.grad, loss: loss)
    }

    @Test func embeddingScatterAddsRepeatedIDs() {
        var rng = TestRNG(2)
        let table = param("e", [6, 3], &rng)
        let op = EmbeddingOp(table: table)
        let ids = [1, 4, 1, 0, 1]
        let c = rng.floats(ids.count * 3)
        op.backward(c, ids: ids)
        checkGradient("embedding", table, analytic: table.grad) { weightedSum(op.forward(ids), c) }
        #expect(table.grad[2 * 3] == 0 && table.grad[5 * 3 + 2] == 0)
    }

    @Test func rmsNorm() {
        var rng = TestRNG(3)
        let rows = 3, n = 7
        let w = param("w", [n], &rng, scale: 0.5, offset: 1), x = param("x", [rows, n], &rng)
        let op = RMSNormOp(weight: w, eps: 1e-6)
        let c = rng.floats(rows * n)
        let (_, saved) = op.forward(x.value, rows: rows)
        let dx = op.backward(c, input: x.value, saved: saved, rows: rows)
        func loss() -> Double { weightedSum(op.forward(x.value, rows: rows).y, c) }
        checkGradient("rmsnorm dx", x, analytic: dx, h: 3e-3, loss: loss)
        checkGradient("rmsnorm dw", w, analytic: w.grad, h: 3e-3, loss: loss)
    }

    @Test func layerNorm() {
        var rng = TestRNG(4)
        let rows = 3, n = 6
        let w = param("w", [n], &rng, scale: 0.5, offset: 1), b = param("b", [n], &rng), x = param("x", [rows, n], &rng)
        let op = LayerNormOp(weight: w, bias: b)
        let c = rng.floats(rows * n)
        let (_, saved) = op.forward(x.value, rows: rows)
        let dx = op.backward(c, saved: saved, rows: rows)
        func loss() -> Double { weightedSum(op.forward(x.value, rows: rows).y, c) }
        checkGradient("layernorm dx", x, analytic: dx, h: 3e-3, loss: loss)
        checkGradient("layernorm dw", w, analytic: w.grad, h: 3e-3, loss: loss)
        checkGradient("layernorm db", b, analytic: b.grad, h: 3e-3, loss: loss)
    }

    @Test func siluAndSwiGLU() {
        var rng = TestRNG(5)
        let x = param("x", [10], &rng, scale: 3), g = param("g", [10], &rng, scale: 3), u = param("u", [10], &rng)
        let c = rng.floats(10)
        checkGradient("silu", x, analytic: SiLUOp.backward(c, input: x.value)) { weightedSum(SiLUOp.forward(x.value), c) }
        let (dg, du) = SwiGLUOp.backward(c, gate: g.value, up: u.value)
        func loss() -> Double { weightedSum(SwiGLUOp.forward(gate: g.value, up: u.value), c) }
        checkGradient("swiglu gate", g, analytic: dg, loss: loss)
        checkGradient("swiglu up", u, analytic: du, loss: loss)
    }

    @Test func crossEntropyMeanWithScale() {
        var rng = TestRNG(6)
        let rows = 4, v = 9
        let logits = param("l", [rows, v], &rng, scale: 2)
        let labels = [3, 0, 8, 3]
        let (_, saved) = CrossEntropyOp.forward(logits: logits.value, labels: labels, vocab: v)
        let d = CrossEntropyOp.backward(saved: saved, labels: labels, vocab: v, scale: 4)
        checkGradient("cross-entropy", logits, analytic: d) {
            4 * Double(CrossEntropyOp.forward(logits: logits.value, labels: labels, vocab: v).loss)
        }
    }

    @Test func gaussianSampleKLAndDropout() {
        var rng = TestRNG(7)
        let rows = 3, z = 4, p: Float = 0.25
        let mean = param("mean", [rows, z], &rng, scale: 1.5), logStd = param("logstd", [rows, z], &rng, scale: 1.2)
        let eps = rng.floats(rows * z), keep: [Float] = (0..<(rows * z)).map { $0 % 3 == 1 ? 0 : 1 }
        let c = rng.floats(rows * z)
        let klWeight: Float = 0.7, clamp: Float = 0.5
        func loss() -> Double {
            let zs = GaussianSampleOp.forward(mean: mean.value, logStd: logStd.value, eps: eps)
            let dropped = DropoutOp.forward(zs, keep: keep, p: p)
            let kl = ClampedKLOp.forward(mean: mean.value, logStd: logStd.value, rows: rows, clamp: clamp)
            return weightedSum(dropped, c) + Double(klWeight * kl.loss)
        }
        let kl = ClampedKLOp.forward(mean: mean.value, logStd: logStd.value, rows: rows, clamp: clamp)
        #expect(kl.perDim.contains { $0 < clamp } && kl.perDim.contains { $0 > clamp }, "exercise both sides of the clamp")
        var dMean = [Float](repeating: 0, count: rows * z), dLog = dMean
        let dz = DropoutOp.backward(c, keep: keep, p: p)
        GaussianSampleOp.backward(dz, logStd: logStd.value, eps: eps, dMean: &dMean, dLogStd: &dLog)
        ClampedKLOp.backward(weight: klWeight, mean: mean.value, logStd: logStd.value, perDim: kl.perDim, rows: rows,
                             clamp: clamp, dMean: &dMean, dLogStd: &dLog)
        // Keep the differences away from the clamp's kink.
        checkGradient("vae dmean", mean, analytic: dMean, h: 1e-3, tol: 3e-2, loss: loss)
        checkGradient("vae dlogstd", logStd, analytic: dLog, h: 1e-3, tol: 3e-2, loss: loss)
    }

    @Test func tokenDropoutMasksToZero() {
        let keep = TokenDropoutOp.keepMask(uniform: [0.1, 0.15, 0.16, 0.9], p: 0.15)
        #expect(keep == [false, false, true, true])
        #expect(TokenDropoutOp.apply([5, 6, 7, 8], keep: keep) == [0, 0, 7, 8])
    }

    @Test func rotaryIsOrthogonal() {
        var rng = TestRNG(8)
        let rope = RotaryOp(headDim: 8, theta: 10000)
        let positions = [0, 1, 2, 7]
        let x = param("x", [4, 2 * 8], &rng)
        let c = rng.floats(x.count)
        var d = c
        rope.backward(&d, heads: 2, positions: positions)
        checkGradient("rope", x, analytic: d) {
            var y = x.value
            rope.forward(&y, heads: 2, positions: positions)
            return weightedSum(y, c)
        }
    }

    @Test(arguments: [(2, 2), (4, 2), (4, 1)])
    func causalAttention(_ heads: (Int, Int)) {
        var rng = TestRNG(9)
        let (h, kv) = heads, d = 4, seqs = 2, t = 3
        let op = CausalAttentionOp(heads: h, kvHeads: kv, headDim: d)
        let q = param("q", [seqs * t, h * d], &rng), k = param("k", [seqs * t, kv * d], &rng), v = param("v", [seqs * t, kv * d], &rng)
        let c = rng.floats(seqs * t * h * d)
        let (_, saved) = op.forward(q: q.value, k: k.value, v: v.value, sequences: seqs, length: t)
        let (dq, dk, dv) = op.backward(c, q: q.value, k: k.value, v: v.value, saved: saved, sequences: seqs, length: t)
        func loss() -> Double { weightedSum(op.forward(q: q.value, k: k.value, v: v.value, sequences: seqs, length: t).out, c) }
        checkGradient("attention dq", q, analytic: dq, h: 3e-3, loss: loss)
        checkGradient("attention dk", k, analytic: dk, h: 3e-3, loss: loss)
        checkGradient("attention dv", v, analytic: dv, h: 3e-3, loss: loss)
    }

    @Test func causalAttentionIgnoresTheFuture() {
        var rng = TestRNG(10)
        let op = CausalAttentionOp(heads: 1, kvHeads: 1, headDim: 2)
        let q = rng.floats(6), k = rng.floats(6), v = rng.floats(6)
        var k2 = k, v2 = v
        k2[4] += 1; v2[5] += 1  // position 2 only
        let a = op.forward(q: q, k: k, v: v, sequences: 1, length: 3).out
        let b = op.forward(q: q, k: k2, v: v2, sequences: 1, length: 3).out
        #expect(Array(a[0..<4]) == Array(b[0..<4]))
    }

    @Test func energyScoreWithCoincidentSamples() {
        var rng = TestRNG(11)
        let s = 3, m = 5, n = 2, z = 3
        let x = param("x", [s, n, z], &rng)
        // Sample 2 of position 0 equals sample 0: zero distance, zero gradient contribution.
        for c in 0..<z { x.value[(2 * n + 0) * z + c] = x.value[(0 * n + 0) * z + c] }
        let y = rng.floats(m * n * z)
        let out = EnergyScoreOp.forward(x: x.value, y: y, samples: s, targets: m, positions: n, z: z)
        #expect(out.distanceXX[(0 * s + 2) * n + 0] == 0)
        let dx = EnergyScoreOp.backward(x: x.value, y: y, output: out, samples: s, targets: m, positions: n, z: z)
        #expect(dx.allSatisfy { $0.isFinite })
        // Differences only on position 1 entries (position 0 has the kink at the coincident pair).
        let probe = Parameter(name: "x1", shape: [s * z], value: (0..<s).flatMap { i in (0..<z).map { x.value[(i * n + 1) * z + $0] } })
        let analytic = (0..<s).flatMap { i in (0..<z).map { dx[(i * n + 1) * z + $0] } }
        checkGradient("energy score", probe, analytic: analytic, h: 1e-3) {
            var xv = x.value
            for i in 0..<s { for c in 0..<z { xv[(i * n + 1) * z + c] = probe.value[i * z + c] } }
            return Double(EnergyScoreOp.forward(x: xv, y: y, samples: s, targets: m, positions: n, z: z).loss)
        }
    }

    @Test func residualMLPBlock() {
        var rng = TestRNG(12)
        let hidden = 5, inter = 7, rows = 3
        let set = ParameterSet([
            param("l.norm.weight", [hidden], &rng, scale: 0.3, offset: 1),
            param("l.mlp.gate_proj.weight", [inter, hidden], &rng),
            param("l.mlp.up_proj.weight", [inter, hidden], &rng),
            param("l.mlp.down_proj.weight", [hidden, inter], &rng),
        ])
        let block = ResidualMLPBlock(set, prefix: "l", normName: "norm", eps: 1e-6)
        let x = param("x", [rows, hidden], &rng)
        let c = rng.floats(rows * hidden)
        let (_, saved) = block.forward(x.value, rows: rows, pool: nil)
        let dx = block.backward(c, saved: saved, rows: rows, pool: nil)
        func loss() -> Double { weightedSum(block.forward(x.value, rows: rows, pool: nil).y, c) }
        checkGradient("block dx", x, analytic: dx, h: 3e-3, loss: loss)
        for p in set.parameters { checkGradient(p.name, p, analytic: p.grad, h: 3e-3, loss: loss) }
    }
}

/// The ops the GPT-2 backbone adds: GELU-tanh and `Conv1D`-layout projections.
extension OpGradientTests {
    @Test func geluTanh() {
        var rng = TestRNG(7)
        let x = param("x", [16], &rng, scale: 4)
        let c = rng.floats(16)
        // the forward is GPT-2's gelu_new, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
        let y = GELUTanhOp.forward(x.value)
        for (xi, yi) in zip(x.value, y) {
            let reference = 0.5 * Double(xi) * (1 + tanh((2 / Double.pi).squareRoot() * (Double(xi) + 0.044715 * pow(Double(xi), 3))))
            #expect(abs(Double(yi) - reference) <= 2e-6 * max(1, abs(reference)), "gelu_new(\(xi))")
        }
        checkGradient("gelu-tanh", x, analytic: GELUTanhOp.backward(c, input: x.value), h: 1e-3) {
            weightedSum(GELUTanhOp.forward(x.value), c)
        }
    }

    @Test func conv1DLayoutLinear() {
        var rng = TestRNG(8)
        let rows = 3, inF = 5, outF = 4
        let w = param("w", [inF, outF], &rng), b = param("b", [outF], &rng), x = param("x", [rows, inF], &rng)
        let op = LinearOp(conv1D: w, bias: b)
        #expect(op.inFeatures == inF && op.outFeatures == outF)
        // y = x·W + b equals nn.Linear over the transposed weight
        var transposed = [Float](repeating: 0, count: inF * outF)
        for i in 0..<inF { for o in 0..<outF { transposed[o * inF + i] = w.value[i * outF + o] } }
        let linear = LinearOp(weight: Parameter(name: "wt", shape: [outF, inF], value: transposed), bias: b)
        let a = op.forward(x.value, rows: rows, pool: nil), l = linear.forward(x.value, rows: rows, pool: nil)
        #expect(zip(a, l).allSatisfy { abs($0 - $1) < 1e-5 })
        let c = rng.floats(rows * outF)
        func loss() -> Double { weightedSum(op.forward(x.value, rows: rows, pool: nil), c) }
        let dx = op.backward(c, input: x.value, rows: rows, pool: nil) ?? []
        checkGradient("conv1d dx", x, analytic: dx, loss: loss)
        checkGradient("conv1d dW", w, analytic: w.grad, loss: loss)
        checkGradient("conv1d db", b, analytic: b.grad, loss: loss)
    }
}
