import CALMKernels

/// A pre-norm residual SwiGLU block, x ← x + down(SiLU(gate(n)) ⊙ up(n)) with n = RMSNorm(x):
/// the autoencoder's layer (`layernorm` + `mlp`) and the backbone's feed-forward half.
final class ResidualGatedMLP: Sendable {
    let norm: RMSNorm
    let gate: Linear
    let up: Linear
    let down: Linear
    /// gate and up side by side in one packing (`Linear.fused`; gate and up are views of it), so
    /// one multiply computes both; nil when they could not be fused.
    let gateUp: Linear?

    init(norm: RMSNorm, gate: Linear, up: Linear, down: Linear, gateUp: Linear? = nil) {
        self.norm = norm; self.gate = gate; self.up = up; self.down = down; self.gateUp = gateUp
    }

    /// Reads `<prefix>.mlp.{gate,up,down}_proj` and `<prefix>.<normName>`.
    convenience init(reader: WeightReader, prefix: String, normName: String, hidden: Int, intermediate: Int, eps: Double) throws {
        let gu = try reader.fusedLinears(["\(prefix).mlp.gate_proj", "\(prefix).mlp.up_proj"], outs: [intermediate, intermediate],
                                         in: hidden)
        self.init(norm: try reader.rmsNorm("\(prefix).\(normName)", size: hidden, eps: eps),
                  gate: gu.parts[0], up: gu.parts[1],
                  down: try reader.linear("\(prefix).mlp.down_proj", out: hidden, in: intermediate, bias: false),
                  gateUp: gu.fused)
    }

    var weightBytes: Int { gate.weightBytes + up.weightBytes + down.weightBytes }

    /// Applies the block to `rows` rows of x in place.
    func apply(_ x: inout [Float], rows: Int, pool: ComputePool) {
        let normed = norm(x, rows: rows)
        let inter = gate.outFeatures
        if let gateUp {
            // one multiply for [gate | up] per row, SwiGLU into the gate half, down from there
            var gu = [Float](repeating: 0, count: rows * 2 * inter)
            gu.withUnsafeMutableBufferPointer { g in
                let p = g.baseAddress!
                normed.withUnsafeBufferPointer { gateUp.apply($0.baseAddress!, rows: rows, into: p, pool: pool) }
                for r in 0..<rows { calm_swiglu(p + r * 2 * inter, p + r * 2 * inter + inter, p + r * 2 * inter, inter) }
                x.withUnsafeMutableBufferPointer {
                    down.apply(p, rows: rows, inputStride: 2 * inter, into: $0.baseAddress!, accumulate: true, pool: pool)
                }
            }
            return
        }
        var g = [Float](repeating: 0, count: rows * inter)
        var u = [Float](repeating: 0, count: rows * inter)
        normed.withUnsafeBufferPointer { n in
            g.withUnsafeMutableBufferPointer { gate.apply(n.baseAddress!, rows: rows, into: $0.baseAddress!, pool: pool) }
            u.withUnsafeMutableBufferPointer { up.apply(n.baseAddress!, rows: rows, into: $0.baseAddress!, pool: pool) }
        }
        let count = rows * inter
        g.withUnsafeMutableBufferPointer { gp in
            u.withUnsafeBufferPointer { calm_swiglu(gp.baseAddress!, $0.baseAddress!, gp.baseAddress!, count) }
        }
        g.withUnsafeBufferPointer { gp in
            x.withUnsafeMutableBufferPointer {
                down.apply(gp.baseAddress!, rows: rows, into: $0.baseAddress!, accumulate: true, pool: pool)
            }
        }
    }
}
