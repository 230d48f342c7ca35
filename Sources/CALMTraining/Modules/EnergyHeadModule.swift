import CALMModel

/// The energy generative head (`mlp_generator.*`) on trainable parameters. Samples are rows
/// s·N + n (the reference's (S, N, ·) layout); the hidden path is computed once per position and
/// broadcast to every sample, so its gradient is summed over samples.
public struct EnergyHeadModule: Sendable {
    public struct Block: Sendable {
        public let inNorm: LayerNormOp
        public let l0: LinearOp, l2: LinearOp, l4: LinearOp
        public let down: LinearOp
    }

    public let hidden: Int
    public let noiseSize: Int
    public let latentSize: Int
    public let noiseEmbed: LinearOp
    public let hiddenEmbed: LinearOp
    public let normNoise: LayerNormOp
    public let normHidden: LayerNormOp
    public let blocks: [Block]
    public let finalNorm: LayerNormOp
    public let final0: LinearOp
    public let final2: LinearOp

    public init(config: CALMConfig, parameters p: ParameterSet, prefix g: String = "mlp_generator") {
        hidden = config.hiddenSize
        noiseSize = config.noiseSize
        latentSize = config.latentSize
        func lin(_ n: String) -> LinearOp { LinearOp(weight: p["\(g).\(n).weight"], bias: p["\(g).\(n).bias"]) }
        func ln(_ n: String) -> LayerNormOp { LayerNormOp(weight: p["\(g).\(n).weight"], bias: p["\(g).\(n).bias"], eps: 1e-6) }
        noiseEmbed = lin("noise_embd")
        hiddenEmbed = lin("hidden_embd")
        normNoise = ln("norm_noise")
        normHidden = ln("norm_hidden")
        blocks = (0..<config.numMLPLayers).map { m in
            Block(inNorm: ln("mlp_blocks.\(m).in_ln"), l0: lin("mlp_blocks.\(m).linears.0"),
                  l2: lin("mlp_blocks.\(m).linears.2"), l4: lin("mlp_blocks.\(m).linears.4"),
                  down: lin("mlp_blocks.\(m).down_proj"))
        }
        finalNorm = ln("final_layer.in_ln")
        final0 = lin("final_layer.linears.0")
        final2 = lin("final_layer.linears.2")
    }

    struct BlockSaved: Sendable {
        var inNorm: LayerNormOp.Saved
        var a: [Float]
        var t1: [Float], s1: [Float], t2: [Float], s2: [Float], t4: [Float], g: [Float]
    }

    public struct Saved: Sendable {
        var noise: [Float]
        var noisePre: [Float]
        var normNoise: LayerNormOp.Saved
        var hiddenIn: [Float]
        var normHidden: LayerNormOp.Saved
        var blocks: [BlockSaved]
        var finalNorm: LayerNormOp.Saved
        var fNormed: [Float], f0: [Float], f0s: [Float]
        var samples: Int, positions: Int
    }

    /// hidden (N × H), noise (S·N × noiseSize, already in [−0.5, 0.5)) → latents (S·N × z).
    public func forward(hidden h: [Float], positions n: Int, samples sCount: Int, noise: [Float],
                        pool: ComputePool?) -> (x: [Float], saved: Saved) {
        let H = hidden, rows = sCount * n
        precondition(h.count == n * H && noise.count == rows * noiseSize)
        let noisePre = noiseEmbed.forward(noise, rows: rows, pool: pool)
        var (e, nns) = normNoise.forward(noisePre, rows: rows)
        let yPre = hiddenEmbed.forward(h, rows: n, pool: pool)
        let (y, nhs) = normHidden.forward(yPre, rows: n)
        var bs: [BlockSaved] = []
        for b in blocks {
            let (ln, lns) = b.inNorm.forward(e, rows: rows)
            var a = [Float](repeating: 0, count: rows * 2 * H)
            for r in 0..<rows {
                let p = r % n
                for j in 0..<H { a[r * 2 * H + j] = ln[r * H + j]; a[r * 2 * H + H + j] = y[p * H + j] }
            }
            let t1 = b.l0.forward(a, rows: rows, pool: pool)
            let s1 = SiLUOp.forward(t1)
            let t2 = b.l2.forward(s1, rows: rows, pool: pool)
            let s2 = SiLUOp.forward(t2)
            let t4 = b.l4.forward(s2, rows: rows, pool: pool)
            var gate = [Float](repeating: 0, count: rows * H), up = gate
            for r in 0..<rows { for j in 0..<H { gate[r * H + j] = t4[r * 2 * H + j]; up[r * H + j] = t4[r * 2 * H + H + j] } }
            let g = SwiGLUOp.forward(gate: gate, up: up)
            let dn = b.down.forward(g, rows: rows, pool: pool)
            for i in 0..<e.count { e[i] += dn[i] }
            bs.append(BlockSaved(inNorm: lns, a: a, t1: t1, s1: s1, t2: t2, s2: s2, t4: t4, g: g))
        }
        let (fn, fns) = finalNorm.forward(e, rows: rows)
        let f0 = final0.forward(fn, rows: rows, pool: pool)
        let f0s = SiLUOp.forward(f0)
        let x = final2.forward(f0s, rows: rows, pool: pool)
        return (x, Saved(noise: noise, noisePre: noisePre, normNoise: nns, hiddenIn: h, normHidden: nhs, blocks: bs,
                         finalNorm: fns, fNormed: fn, f0: f0, f0s: f0s, samples: sCount, positions: n))
    }

    /// d latents (S·N × z) → d hidden (N × H).
    public func backward(_ dx: [Float], saved s: Saved, pool: ComputePool?) -> [Float] {
        let H = hidden, n = s.positions, rows = s.samples * n
        var d = final2.backward(dx, input: s.f0s, rows: rows, pool: pool)!
        d = SiLUOp.backward(d, input: s.f0)
        d = final0.backward(d, input: s.fNormed, rows: rows, pool: pool)!
        var de = finalNorm.backward(d, saved: s.finalNorm, rows: rows)
        var dy = [Float](repeating: 0, count: n * H)
        for (b, bs) in zip(blocks, s.blocks).reversed() {
            let dg = b.down.backward(de, input: bs.g, rows: rows, pool: pool)!
            var gate = [Float](repeating: 0, count: rows * H), up = gate
            for r in 0..<rows { for j in 0..<H { gate[r * H + j] = bs.t4[r * 2 * H + j]; up[r * H + j] = bs.t4[r * 2 * H + H + j] } }
            let (dGate, dUp) = SwiGLUOp.backward(dg, gate: gate, up: up)
            var dt4 = [Float](repeating: 0, count: rows * 2 * H)
            for r in 0..<rows { for j in 0..<H { dt4[r * 2 * H + j] = dGate[r * H + j]; dt4[r * 2 * H + H + j] = dUp[r * H + j] } }
            var t = b.l4.backward(dt4, input: bs.s2, rows: rows, pool: pool)!
            t = SiLUOp.backward(t, input: bs.t2)
            t = b.l2.backward(t, input: bs.s1, rows: rows, pool: pool)!
            t = SiLUOp.backward(t, input: bs.t1)
            let da = b.l0.backward(t, input: bs.a, rows: rows, pool: pool)!
            var dln = [Float](repeating: 0, count: rows * H)
            for r in 0..<rows {
                let p = r % n
                for j in 0..<H { dln[r * H + j] = da[r * 2 * H + j]; dy[p * H + j] += da[r * 2 * H + H + j] }
            }
            let dIn = b.inNorm.backward(dln, saved: bs.inNorm, rows: rows)
            for i in 0..<de.count { de[i] += dIn[i] }
        }
        let dnoise = normNoise.backward(de, saved: s.normNoise, rows: rows)
        noiseEmbed.backward(dnoise, input: s.noise, rows: rows, inputGradient: false, pool: pool)
        let dyPre = normHidden.backward(dy, saved: s.normHidden, rows: n)
        return hiddenEmbed.backward(dyPre, input: s.hiddenIn, rows: n, pool: pool)!
    }
}
